"""Fine-tuning on a few hundred clips: the ``small-data`` recipe against training from scratch and a linear probe.

The task is one the bundled demo model (``tokshift_demo_motion.synthetic``, four directions) was never trained
on: whether the object is approaching, receding or keeping its distance, 3 classes (``LOOMING_LABELS``). An
approaching object grows by a factor of 2-3 over the clip (``tokshift_zoo.synthetic``'s ``growth``), a receding
one shrinks by the same factors (the time reverse of an approaching clip), and one keeping its distance keeps its
size; all three drift in one of the demo model's four directions, drawn at random, so what the demo model
already reads is no help. Objects are 25-45% of the short side at their larger size, on the generator's plain
scenes (``plain=True``: flat or gradient backgrounds, a clear contrast, a steady camera), H.264 at crf 16-34. The
three runs see the same clips, written once per seed as mp4 files, and are scored on the same held-out clips with
the demo model's test views (1 clip x 3 crops):

- ``recipe``: ``TrainConfig.from_recipe("small-data")`` from the demo model's weights (a new 3-class head);
- ``scratch``: the same network from random initialisation, with the demo model's own recipe (AdamW 2e-3,
  no layer decay, no EMA);
- ``linear_probe``: the demo model's frozen features, only a new head trained (``freeze_backbone``, lr 1e-2).

All three train with the model's crop jitter but without scale jitter (``train_scale`` = the crop), the setting
the figures in docs/benchmarks.md were measured with.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..synthetic import MOTION_LABELS, TASK_VERSION, make_motion_clip, random_clip_size
from ..video.io import write_video
from .core import environment, loadavg

__all__ = ["GROWTH", "LOOMING_LABELS", "write_looming_task", "finetune_suite"]

LOOMING_LABELS = ("approaching", "receding", "same_size")
GROWTH = (2.0, 3.0)  # how many times larger (approaching) or smaller (receding) the object ends than it starts
DEMO = "tokshift_demo_motion"


def write_looming_task(root: str | Path, num_clips: int, seed: int, name: str) -> Path:
    """Write ``num_clips`` class-balanced mp4 clips of the looming task (module docstring) under ``root`` and
    their list (``FOLDER/NNNNN.mp4 LABEL`` lines, class names), named after ``name``, the task version, the seed
    and the count; an existing list is reused.

    Returns:
        The list file's path.
    """
    root = Path(root)
    stem = f"{name}-looming-v{TASK_VERSION}-seed{seed}-{num_clips}"
    list_file = root / f"{stem}.txt"
    if list_file.is_file():
        return list_file
    folder = root / stem
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = np.arange(num_clips) % len(LOOMING_LABELS)
    rng.shuffle(labels)
    lines = []
    for i, label in enumerate(labels):
        length, height, width = random_clip_size(rng)
        ratio = rng.uniform(*GROWTH)
        growth = {"approaching": ratio, "receding": 1 / ratio, "same_size": 1.0}[LOOMING_LABELS[label]]
        clip = make_motion_clip(
            int(rng.integers(len(MOTION_LABELS))),
            num_frames=length,
            height=height,
            width=width,
            rng=rng,
            growth=growth,
            size=(0.25, 0.45),
            plain=True,
        )
        path = folder / f"{i:05d}.mp4"
        write_video(path, clip, fps=int(rng.choice([8, 12, 15, 24, 25, 30])), crf=int(rng.integers(16, 35)))
        lines.append(f"{folder.name}/{path.name} {LOOMING_LABELS[label]}\n")
    return atomic_write(list_file, lambda tmp: tmp.write_text("".join(lines)))


def finetune_suite(
    workdir: str | Path,
    train_clips: int = 320,
    val_clips: int = 160,
    epochs: int | None = None,
    seed: int = 0,
    num_workers: int = 0,
) -> dict[str, Any]:
    """Train the three runs (module docstring) and return their held-out top-1.

    Returns:
        ``{"environment", "task", "rows"}``; each row: ``method``, ``top1`` (the last epoch, of the weights the
        run keeps: the EMA's for the recipe), ``best_top1`` (the best epoch's), ``train_top1``, ``epochs``,
        ``seconds`` and the 1-minute load average at the end.
    """
    from ..train import TrainConfig, train
    from ..train.recipes import RECIPES

    workdir = Path(workdir)
    env = environment("cpu")
    started = time.perf_counter()
    train_list = write_looming_task(workdir / "data", train_clips, seed, "train")
    val_list = write_looming_task(workdir / "data", val_clips, seed + 1, "val")
    data_seconds = time.perf_counter() - started
    epochs = epochs or RECIPES["small-data"]["epochs"]
    common = dict(
        train_list=str(train_list),
        val_list=str(val_list),
        data_root=str(workdir / "data"),
        epochs=epochs,
        train_scale=(32, 32),
        val_views="1x3",
        num_workers=num_workers,
        device="cpu",
        seed=seed,
        progress=False,
    )
    runs = {
        "recipe": dict(model=f"{DEMO}.synthetic"),
        "scratch": dict(model=DEMO, lr=2e-3, layer_decay=None, ema_decay=0.0, ema_best=False),
        "linear_probe": dict(model=f"{DEMO}.synthetic", freeze_backbone=True, lr=1e-2, layer_decay=None),
    }
    rows = []
    for method, values in runs.items():
        output = workdir / "runs" / f"{method}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        config = TrainConfig.from_recipe("small-data", output=str(output), **common, **values)
        began = time.perf_counter()
        result = train(config)
        key = "val_ema_top1" if config.ema_best else "val_top1"
        rows.append(
            dict(
                method=method,
                top1=round(result[key], 2),
                best_top1=round(result["best_val_top1"], 2),
                train_top1=round(result["train_top1"], 2),
                epochs=epochs,
                seconds=round(time.perf_counter() - began, 1),
                loadavg_1min=loadavg(),
                output=str(output),
            )
        )
    task = dict(
        labels=list(LOOMING_LABELS),
        train_clips=train_clips,
        val_clips=val_clips,
        seed=seed,
        data_seconds=round(data_seconds, 1),
        total_seconds=round(time.perf_counter() - started, 1),
    )
    return {"environment": env, "task": task, "rows": rows}

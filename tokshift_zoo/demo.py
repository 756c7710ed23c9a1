"""The bundled demo model: the recipe that trains it from scratch, and the clip ``make demo`` classifies.

``train_demo_model`` is the whole recipe: it writes the synthetic motion task (``tokshift_zoo.synthetic``) as mp4
files, trains ``tokshift_demo_motion`` with the zoo's trainer in two stages (the plain part of the task with
brighter objects, then the whole task), and scores it on freshly generated clips; with ``fold_div=0`` it trains
the same-size plain ViT the same way, for comparison. ``tokshift-zoo train-demo`` runs it; ``--install`` copies
the TokShift weights into the package. The held-out sets that differ from training (other drawings, codecs and
backgrounds) live outside the package, in ``benchmarks/demo_heldout.py``, which nothing here imports.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write
from .synthetic import MOTION_LABELS, make_motion_clip, write_motion_dataset
from .video.io import write_video

__all__ = ["DEMO_MODEL", "DEMO_RECIPE", "DemoRecipe", "write_demo_clip", "train_demo_model", "score_on_fresh_clips"]

DEMO_MODEL = "tokshift_demo_motion"


@dataclasses.dataclass(frozen=True)
class DemoRecipe:
    """Everything the demo model's training depends on (see docs/demo_model.md for why these values)."""

    plain_clips: int = 1200  # stage 1: the plain part of the task, brighter objects only
    plain_epochs: int = 8
    train_clips: int = 24000  # stage 2: the whole task, from stage 1's weights
    val_clips: int = 600
    test_clips: int = 400
    epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    seed: int = 0
    num_workers: int = 2


DEMO_RECIPE = DemoRecipe()


def write_demo_clip(path: str | os.PathLike, direction: str | None = None, seed: int = 0) -> str:
    """Write one clear clip of the synthetic motion task (16 frames, 96x128, H.264) and return its true label.

    Clear: the easy part of the task (flat or gradient background, good contrast, steady camera; brighter or darker
    object), an object of 25-40% of the frame's height on a path of 45-70% of the frame. The demo model named 48 of
    48 such clips right (12-01, seeds 0-47); on clips of the whole task at this size, 45 of 48 (docs/demo_model.md).
    """
    rng = np.random.default_rng(seed)
    direction = direction or MOTION_LABELS[int(rng.integers(len(MOTION_LABELS)))]
    clip = make_motion_clip(
        direction, num_frames=16, height=96, width=128, rng=rng, plain=True, size=(0.25, 0.4), travel=(0.45, 0.7)
    )
    write_video(path, clip, fps=12)
    return direction


def score_on_fresh_clips(model: Any, root: str | os.PathLike, num_clips: int, seed: int) -> dict[str, Any]:
    """Top-1 (%) of ``model`` on ``num_clips`` newly written clips of the task (views 1x3, as the demo's config)."""
    from .inference import evaluate
    from .train.datasets import read_video_list

    list_file = write_motion_dataset(root, num_clips, seed=seed)
    samples = [(str(s.path), s.label) for s in read_video_list(list_file, root, label_names=MOTION_LABELS)]
    return evaluate(model, samples, views="1x3", progress=False)


def _dataset(
    root: Path, num_clips: int, seed: int, list_name: str, subdir: str, clip_options: dict, **size_ranges: Any
) -> Path:
    """The task's clips under ``root`` (``write_motion_dataset``), reused when a list of that size is there: the
    same seed writes the same clips, so the baseline's run shares the TokShift run's data."""
    list_file = root / list_name
    if list_file.is_file() and len(list_file.read_text().splitlines()) == num_clips:
        return list_file
    return write_motion_dataset(
        root, num_clips, seed=seed, list_name=list_name, subdir=subdir, clip_options=clip_options, **size_ranges
    )


def train_demo_model(
    workdir: str | os.PathLike, fold_div: int = 4, recipe: DemoRecipe = DEMO_RECIPE, install: bool = False
) -> dict[str, Any]:
    """Train the demo model from scratch on CPU (or GPU) with the zoo's trainer and score it on fresh clips.

    Two stages: the plain part of the task (flat or gradient backgrounds, larger objects, all brighter than the
    background, a steady camera) gets the motion learnt at all; the whole task (either polarity, outlines,
    textured and noisy backgrounds, camera noise and brightness changes, H.264 at several qualities) then starts
    from those weights. See docs/demo_model.md for why.

    Args:
        workdir: where the data sets, checkpoints and metrics go.
        fold_div: 4 for TokShift; 0 trains the same network without the shift (the plain ViT baseline).
        recipe: the data sizes and optimisation settings.
        install: copy the weights to ``tokshift_zoo/data/`` (written to a temporary name, then renamed).

    Returns:
        ``{"fresh_top1", "best_val_top1", "plain_val_top1", "train_seconds", "weights", "sha256"}``.
    """
    import time

    from .factory import create_model
    from .train import TrainConfig, train
    from .weights import sha256_file

    workdir = Path(workdir)
    data = workdir / "data"
    seed = recipe.seed
    # stage 1: small, nearly square frames that the training crop (32 of a 32-47 short side) sees almost whole,
    # large objects on long paths: the motion fills the crop
    plain = dict(plain=True, darker=0.0, size=(0.25, 0.45), travel=(0.4, 0.75))
    small = dict(short_side=(32, 40), aspect=(1.0, 1.25))
    run = workdir / ("tokshift" if fold_div else "vit")

    def stage(name: str, lists: tuple[Path, Path], epochs: int, checkpoint: str | None) -> dict[str, Any]:
        config = TrainConfig(
            model=DEMO_MODEL,
            model_kwargs={"fold_div": fold_div},
            checkpoint=checkpoint,
            train_list=str(lists[0]),
            val_list=str(lists[1]),
            data_root=str(data),
            labels=str(data / "labels.txt"),
            output=str(run / name),
            epochs=epochs,
            batch_size=recipe.batch_size,
            optimizer="adamw",
            lr=recipe.lr,
            weight_decay=recipe.weight_decay,
            warmup_epochs=recipe.warmup_epochs,
            num_workers=recipe.num_workers,
            seed=recipe.seed,
        )
        return train(config)

    started = time.perf_counter()
    plain_list = _dataset(data, recipe.plain_clips, seed + 4, "plain.txt", "plain", plain, **small)
    plain_val = _dataset(data, recipe.val_clips // 2, seed + 5, "plain_val.txt", "plain_val", plain, **small)
    first = stage("plain", (plain_list, plain_val), recipe.plain_epochs, None)
    train_list = _dataset(data, recipe.train_clips, seed + 1, "train.txt", "clips", {})
    val_list = _dataset(data, recipe.val_clips, seed + 2, "val.txt", "val", {})
    result = stage("full", (train_list, val_list), recipe.epochs, first["best"])
    seconds = time.perf_counter() - started
    model = create_model(None, checkpoint_path=result["best"]).eval()
    score = score_on_fresh_clips(model, workdir / "fresh", recipe.test_clips, seed=recipe.seed + 3)
    weights = Path(result["best"])
    if install:
        target = Path(__file__).parent / "data" / f"{DEMO_MODEL}.safetensors"
        weights = atomic_write(target, lambda tmp: shutil.copyfile(weights, tmp))
    return {
        "model": DEMO_MODEL if fold_div else f"{DEMO_MODEL} (fold_div=0: plain ViT)",
        "fresh_top1": score["top1"],
        "best_val_top1": result["best_val_top1"],
        "plain_val_top1": first["best_val_top1"],
        "train_seconds": round(seconds, 1),
        "weights": str(weights),
        "sha256": sha256_file(weights),
    }

"""The training loader's clips/s against the number of workers, over Kinetics-like short clips."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .core import BASE_REFERENCE, cache_dir, measure, paired_ratio, significant
from .videos import write_long_video

__all__ = ["loader_suite"]


def _write_training_videos(folder: Path, count: int, seconds: float, width: int, height: int) -> Path:
    """``count`` Kinetics-like short clips (``seconds`` long, 30 fps, x264's default keyframe interval, 3
    B-frames) and a ``path label`` list file."""
    lines = []
    for index in range(count):
        path = folder / f"clip_{index:03d}.mp4"
        if not path.exists():
            write_long_video(path, seconds, 30, width, height, seed=index)
        lines.append(f"{path.name} {index % 4}")
    list_file = folder / "train.txt"
    list_file.write_text("\n".join(lines) + "\n")
    return list_file


def loader_suite(
    workers: Sequence[int] = (0, 1, 2),
    num_videos: int = 16,
    batch_size: int = 4,
    seconds: float = 10.0,
    size: tuple[int, int] = (340, 256),
    reps: int = 2,
    name: str = BASE_REFERENCE,
    model_kwargs: Mapping[str, Any] | None = None,
    workdir: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """The training loader (``VideoClipDataset`` + ``DataLoader``, as the trainer builds it) over Kinetics-like
    clips (10 s, 340x256, 30 fps), one pass per setting, clips/s against the number of workers; the reference
    is the same pass in the main process (``workers=0``). Worker start-up is included, as in one epoch."""
    import timm
    from torch.utils.data import DataLoader

    from ..models.registry import weights_of
    from ..train.datasets import VideoClipDataset, collate_skipping, read_video_list

    with torch.device("meta"):
        model = timm.create_model(name, **(model_kwargs or {}))
    config = weights_of(model)
    folder = Path(workdir) if workdir is not None else cache_dir() / f"loader_{size[0]}x{size[1]}_{seconds:g}s_bf3_v2"
    folder.mkdir(parents=True, exist_ok=True)
    list_file = _write_training_videos(folder, num_videos, seconds, *size)
    samples = read_video_list(list_file, data_root=folder, num_classes=4)
    dataset = VideoClipDataset(samples, config, is_training=True)

    def one_pass(num_workers: int) -> Callable[[], int]:
        def run() -> int:
            loader = DataLoader(
                dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers, collate_fn=collate_skipping
            )
            return sum(0 if clips is None else clips.shape[0] for clips, _, _ in loader)

        return run

    fns = {f"workers={w}": one_pass(w) for w in workers}
    times = measure(fns, "cpu", reps=reps, warmup=0)
    reference = f"workers={workers[0]}"
    return [
        {
            "workers": w,
            "clips": num_videos,
            "batch_size": batch_size,
            "clip": f"{config.num_frames}x{config.frame_stride} of {seconds:.0f} s {size[0]}x{size[1]} mp4",
            "pass_s": significant(statistics.median(times[f"workers={w}"])),
            "clips_per_s": significant(num_videos / statistics.median(times[f"workers={w}"])),
            "speedup": round(paired_ratio(times[reference], times[f"workers={w}"]), 2),
        }
        for w in workers
    ]

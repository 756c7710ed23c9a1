"""Fine-tuning: the trainer (loop, checkpoints, exact resume), the video-list formats, distributed helpers.

Names are imported on first use, so ``TrainConfig`` (and the command line's ``--help``) needs no torch.
"""

from importlib import import_module
from typing import Any

_API = {
    "TrainConfig": ".config",
    "train": ".trainer",
    "find_latest_checkpoint": ".trainer",
    "VideoClipDataset": ".datasets",
    "VideoListError": ".datasets",
    "VideoSample": ".datasets",
    "read_video_list": ".datasets",
    "read_label_names": ".datasets",
}

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_API[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])

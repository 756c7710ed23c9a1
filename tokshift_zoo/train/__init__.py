"""Fine-tuning: the trainer (loop, checkpoints, exact resume), the video-list formats, distributed helpers."""

from .datasets import VideoClipDataset, VideoListError, VideoSample, read_label_names, read_video_list
from .trainer import TrainConfig, find_latest_checkpoint, train

__all__ = [
    "TrainConfig",
    "train",
    "find_latest_checkpoint",
    "VideoClipDataset",
    "VideoListError",
    "VideoSample",
    "read_video_list",
    "read_label_names",
]

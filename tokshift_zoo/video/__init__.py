"""From a video file to model input: decode (``io``), choose frames (``sampling``), transform (``transforms``).

Knows nothing of models: a model's settings come in as a ``DataConfig``.
"""

from .io import (
    DecodeStats,
    VideoInfo,
    VideoNotFoundError,
    VideoReadError,
    decode_frame_folder,
    decode_frames,
    decode_stats,
    frame_folder_length,
    load_video,
    read_video_info,
)
from .sampling import dense_indices, parse_sampling, parse_views, uniform_indices
from .transforms import DataConfig, VideoEvalTransform, VideoTrainTransform, create_transform, resolve_data_config

__all__ = [
    "VideoInfo",
    "VideoReadError",
    "VideoNotFoundError",
    "read_video_info",
    "decode_frames",
    "decode_stats",
    "DecodeStats",
    "load_video",
    "frame_folder_length",
    "decode_frame_folder",
    "dense_indices",
    "uniform_indices",
    "parse_sampling",
    "parse_views",
    "DataConfig",
    "resolve_data_config",
    "create_transform",
    "VideoEvalTransform",
    "VideoTrainTransform",
]

"""From a video file to model input: decode (``io``), choose frames (``sampling``), transform (``transforms``).

Knows nothing of models: a model's settings come in as its weights record (read through ``ClipSpec``).
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
from .transforms import (
    ClipSpec,
    VideoEvalTransform,
    VideoTrainTransform,
    create_transform,
    crop_size,
    frame_indices,
    train_short_side,
)

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
    "ClipSpec",
    "create_transform",
    "crop_size",
    "frame_indices",
    "train_short_side",
    "VideoEvalTransform",
    "VideoTrainTransform",
]

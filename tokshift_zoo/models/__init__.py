"""TokShift models, registered with timm on import: the model (``tokshift``), the checkpoint mapping
(``checkpoints``), the registry (``registry``) and its entries (``entries``)."""

from .checkpoints import checkpoint_filter_fn
from .registry import ModelEntry, VideoCfg, get_entry, get_video_cfg, list_models
from .tokshift import VideoVisionTransformer, token_shift

__all__ = [
    "ModelEntry",
    "VideoCfg",
    "VideoVisionTransformer",
    "checkpoint_filter_fn",
    "get_entry",
    "get_video_cfg",
    "list_models",
    "token_shift",
]

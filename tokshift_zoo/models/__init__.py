"""TokShift models, registered with timm on import."""

from .registry import VideoCfg, get_video_cfg, list_models
from .tokshift import VideoVisionTransformer, checkpoint_filter_fn, token_shift

__all__ = ["VideoCfg", "VideoVisionTransformer", "checkpoint_filter_fn", "get_video_cfg", "list_models", "token_shift"]

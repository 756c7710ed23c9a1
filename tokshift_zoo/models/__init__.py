"""TokShift models, registered with timm on import: the model (``tokshift``), the checkpoint mapping
(``checkpoints``), the registry of weights records (``registry``) and the records (``entries``)."""

from .checkpoints import checkpoint_filter_fn
from .registry import Weights, get_weights, list_models, weights_of
from .tokshift import VideoVisionTransformer, token_shift

__all__ = [
    "VideoVisionTransformer",
    "Weights",
    "checkpoint_filter_fn",
    "get_weights",
    "list_models",
    "token_shift",
    "weights_of",
]

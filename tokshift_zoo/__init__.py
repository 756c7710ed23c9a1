"""tokshift-zoo: the TokShift video transformers with verified weights and the right preprocessing.

Importing the package registers its models with timm, so ``timm.create_model("tokshift_base16_224_8f")`` works.
"""

from .embed import embed, read_embeddings
from .factory import create_model
from .inference import predict
from .models import list_models
from .ready import load
from .video import create_transform, load_video, resolve_data_config

__version__ = "0.1.0"

__all__ = [
    "create_model",
    "list_models",
    "load",
    "resolve_data_config",
    "create_transform",
    "predict",
    "embed",
    "read_embeddings",
    "load_video",
    "__version__",
]

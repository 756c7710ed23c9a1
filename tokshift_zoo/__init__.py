"""tokshift-zoo: the TokShift video transformers with verified weights and the right preprocessing.

The public API is imported on first use, so ``import tokshift_zoo`` (and the command line's ``--help``) costs no
torch. The models are registered with timm as soon as timm is loaded, whether before or after this package:
``import timm, tokshift_zoo`` then ``timm.create_model("tokshift_base16_224_8f")`` works.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .errors import (
    ChecksumError,
    ConfigError,
    DeviceError,
    DownloadError,
    NotCachedError,
    TokShiftZooError,
    VideoError,
    WeightsError,
    WriteError,
)

try:
    __version__ = version("tokshift-zoo")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

_API = {
    "create_model": ".factory",
    "list_models": ".models.registry",
    "load": ".ready",
    "download": ".weights",
    "predict": ".inference",
    "evaluate": ".inference",
    "embed": ".embeddings",
    "read_embeddings": ".embeddings",
    "resolve_data_config": ".factory",
    "create_transform": ".video",
    "load_video": ".video",
    "DataConfig": ".video",
    "VideoCfg": ".models.registry",
    "TrainConfig": ".train.config",
}

__all__ = [
    *_API,
    "TokShiftZooError",
    "ConfigError",
    "DeviceError",
    "WeightsError",
    "ChecksumError",
    "DownloadError",
    "NotCachedError",
    "VideoError",
    "WriteError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _register_with_timm()
    value = getattr(import_module(_API[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


def _register_with_timm() -> None:
    """Register the models with timm and install the weights loader their builders call back."""
    import_module(".weights", __name__)


def _importing_own_modules() -> bool:
    """Whether one of this package's modules is being imported right now (importlib marks its spec)."""
    return any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
        if name.startswith(__name__ + ".")
    )


class _RegisterWhenTimmLoads(importlib.abc.MetaPathFinder):
    """Registers the zoo's models right after ``timm`` is first imported, by whoever imports it."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "timm":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("timm")
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module: Any) -> None:
            exec_module(module)
            if not _importing_own_modules():  # else the import under way (models, weights) registers them
                _register_with_timm()

        spec.loader.exec_module = exec_then_register  # this spec's own loader object
        return spec


if "timm" in sys.modules:
    _register_with_timm()
else:
    sys.meta_path.insert(0, _RegisterWhenTimmLoads())

"""The zoo's registry: one ``ModelEntry`` per ``name.tag``, the single source of every table derived from it.

timm's ``PretrainedCfg`` is a fixed dataclass that holds the image settings (input size, mean/std, crop,
classes, label names, license, paper ids, weight location). What a video model needs on top - the clip length,
frame stride and sampling, the test views, the paper's figures and the sha256 pin of each weight file - is a
``VideoCfg``. A ``ModelEntry`` holds both; ``register_entries`` generates timm's ``default_cfgs`` from the entries
(so the two tables cannot drift apart) and refuses a ``name.tag`` registered twice. Model cards, ``tokshift-zoo
models --json`` and the torch.hub entry points are all read from here.

Builders get their weights through a loader that ``tokshift_zoo.weights`` installs with ``set_weights_loader``:
the arrow runs weights -> models at import time, and the builder calls back at run time, so ``models/`` imports
nothing of where weights come from.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

import timm
from timm.models import PretrainedCfg, generate_default_cfgs
from torch import nn

from ..errors import ConfigError

__all__ = [
    "DEFAULT_MODEL",
    "KINETICS400_LABELS",
    "PACKAGE_SCHEME",
    "ModelEntry",
    "VideoCfg",
    "attach_weights",
    "check_model_name",
    "get_entry",
    "get_video_cfg",
    "list_models",
    "package_file",
    "register_entries",
    "set_weights_loader",
]


@dataclass(frozen=True)
class VideoCfg:
    """Video settings of one ``name.tag`` that timm's ``PretrainedCfg`` cannot hold.

    Attributes:
        num_frames: frames per clip the weights were trained with.
        frame_stride: the S of dense "NxS" sampling (every S-th frame); unused by uniform sampling.
        sampling: "dense" (N frames every S-th, the paper's 8x32) or "uniform" (one frame per N equal segments).
        test_clips: clips per video in the paper's test protocol (spread evenly over the video).
        test_crops: spatial crops per clip in the test protocol (3: left, centre, right after resizing the
            short side to the crop size; 1: centre).
        train_hflip: whether fine-tuning may flip clips horizontally (False where left and right are classes).
        dataset: what the weights were trained on.
        paper_top1: top-1 (%) reported in the paper for these weights, None if not reported.
        paper_gflops: GFLOPs per view reported in the paper (multiply-adds of linear and conv layers).
        sha256: hex sha256 of the weight file; a download that does not match is refused and removed.
        filename: the weight file's name at its source (hub repo file, URL basename or package file).
    """

    num_frames: int
    frame_stride: int = 32
    sampling: str = "dense"
    test_clips: int = 10
    test_crops: int = 3
    train_hflip: bool = True
    dataset: str = ""
    paper_top1: float | None = None
    paper_gflops: float | None = None
    sha256: str | None = None
    filename: str = "model.safetensors"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelEntry:
    """One ``name.tag``: timm's pretrained cfg (image settings, weight location, license) and the ``VideoCfg``.

    Attributes:
        name: the architecture, a registered builder's name.
        tag: the weights' tag (``k400``, ``in21k``, ...).
        pretrained_cfg: the keyword arguments of timm's ``PretrainedCfg`` for this tag.
        video: the video settings and the sha256 pin.
        default: whether this tag is the architecture's default (timm's ``*``).
        drive_folder: the Google Drive folder id of the authors' release of these weights, if they made one.
    """

    name: str
    tag: str
    pretrained_cfg: Mapping[str, Any] = field(default_factory=dict)
    video: VideoCfg = field(default_factory=lambda: VideoCfg(num_frames=8))
    default: bool = False
    drive_folder: str | None = None

    @property
    def key(self) -> str:
        return f"{self.name}.{self.tag}"

    def timm_cfg(self) -> dict[str, Any]:
        """timm's full ``PretrainedCfg`` of this entry as a dict (timm's defaults filled in, name and tag set)."""
        return dict(PretrainedCfg(**self.pretrained_cfg).to_dict(), architecture=self.name, tag=self.tag)

    @property
    def has_source(self) -> bool:
        """Whether ``pretrained=True`` can fetch these weights without a file of the user's."""
        return bool(self.drive_folder) or any(self.pretrained_cfg.get(k) for k in ("hf_hub_id", "url", "file"))


_ENTRIES: dict[str, ModelEntry] = {}

# The model `tokshift-zoo predict` and `make demo` use when none is named: trained by the zoo on its synthetic
# motion task, its weights ship inside the package, so it works offline.
DEFAULT_MODEL = "tokshift_demo_motion.synthetic"

PACKAGE_SCHEME = "package://"


def package_file(filename: str) -> str:
    """The ``pretrained_cfg['file']`` value of a weight file shipped in ``tokshift_zoo/data/``.

    An entry declares a bundled file as ``file=package_file("NAME.safetensors")`` and pins its sha256 in its
    ``VideoCfg``; the weights loader checks the pin before loading.
    """
    return f"{PACKAGE_SCHEME}tokshift_zoo/data/{filename}"


def register_entries(entries: Iterable[ModelEntry]) -> dict[str, Any]:
    """Add entries to the registry and return timm's ``default_cfgs`` generated from them.

    A model family's module calls it once, as ``default_cfgs = register_entries(...)`` before its
    ``@register_model`` builders (timm looks ``default_cfgs`` up in the builder's module).

    Raises:
        ConfigError: a ``name.tag`` given twice, or already registered.
    """
    entries = list(entries)
    seen: set[str] = set()
    for entry in entries:
        if entry.key in _ENTRIES or entry.key in seen:
            raise ConfigError(f"registry entry {entry.key!r} is registered twice; each name.tag has one entry")
        seen.add(entry.key)
    _ENTRIES.update({entry.key: entry for entry in entries})
    return generate_default_cfgs(
        {entry.key + ("*" if entry.default else ""): dict(entry.pretrained_cfg) for entry in entries}
    )


def _entry_key(name: str) -> str:
    name, _, tag = name.partition(".")
    if not tag:
        tag = timm.models.get_pretrained_cfg(name).tag if timm.is_model(name) else ""
    return f"{name}.{tag}"


def get_entry(name: str) -> ModelEntry:
    """The entry of ``name.tag`` (``name`` alone: its default tag).

    Raises:
        ConfigError: no such entry; the message lists the known ones.
    """
    key = _entry_key(name)
    if key not in _ENTRIES:
        raise ConfigError(f"no zoo entry {key!r}; known: {sorted(_ENTRIES)}")
    return _ENTRIES[key]


def get_video_cfg(model_or_name: Any) -> VideoCfg:
    """The ``VideoCfg`` of a built model or of a ``name[.tag]`` (default tag when omitted).

    A model built from settings the zoo does not know (an ``hf-hub:`` repo, a custom size) gets one made from
    its ``num_frames`` and the defaults (dense 8x32-style sampling, 10x3 test views).
    """
    if isinstance(model_or_name, str):
        return get_entry(model_or_name).video
    existing = getattr(model_or_name, "video_cfg", None)
    if isinstance(existing, VideoCfg):
        return existing
    pretrained_cfg = getattr(model_or_name, "pretrained_cfg", {}) or {}
    key = f"{pretrained_cfg.get('architecture')}.{pretrained_cfg.get('tag')}"
    if key in _ENTRIES:
        return _ENTRIES[key].video
    return VideoCfg(num_frames=getattr(model_or_name, "num_frames", 8))


def list_models(filter: str = "", pretrained: bool = False) -> list[str]:  # noqa: A002 - timm's argument name
    """Names of the zoo's models, or with ``pretrained=True`` its ``name.tag`` entries, matching a glob ``filter``."""
    entries = sorted(_ENTRIES) if pretrained else sorted({k.split(".")[0] for k in _ENTRIES})
    return [e for e in entries if fnmatch.fnmatch(e, filter or "*")]


def check_model_name(name: str) -> None:
    """Refuse a ``name[.tag]`` the zoo does not have, suggesting the closest names (``hf-hub:`` and
    ``local-dir:`` names pass: timm reads their ``config.json``).

    Raises:
        ConfigError: an unknown model, or an unknown tag of a known one; the message gives the closest matches.
    """
    if name.startswith(("hf-hub:", "local-dir:")):
        return
    arch, _, tag = name.partition(".")
    models = list_models()
    if arch not in models:
        close = difflib.get_close_matches(arch, models, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ConfigError(f"unknown model {arch!r}: {hint}The zoo's models: {', '.join(models)}")
    tags = [key.split(".", 1)[1] for key in list_models(f"{arch}.*", pretrained=True)]
    if tag and tag not in tags:
        close = difflib.get_close_matches(tag, tags, n=1, cutoff=0.5)
        hint = f"did you mean {arch}.{close[0]}? " if close else ""
        raise ConfigError(f"{arch} has no tag {tag!r}: {hint}Its tags: {', '.join(tags)}")


# --- the weights loader the builders call back ------------------------------------------------------------

WeightsLoader = Callable[[nn.Module, bool, Any], None]
_weights_loader: list[WeightsLoader] = []


def set_weights_loader(loader: WeightsLoader) -> None:
    """Install ``loader(model, pretrained, cache_dir)``, which every builder calls on the model it built.

    ``tokshift_zoo.weights`` installs its loader when imported (``import tokshift_zoo`` does that on first use).
    """
    _weights_loader[:] = [loader]


def attach_weights(model: nn.Module, pretrained: bool, cache_dir: Any = None) -> None:
    """Give a freshly built model its ``video_cfg`` and, if ``pretrained``, its weights through the loader."""
    model.video_cfg = get_video_cfg(model)
    if _weights_loader:
        _weights_loader[0](model, pretrained, cache_dir)
    elif pretrained:
        raise ConfigError("no weights loader is installed: import tokshift_zoo (or tokshift_zoo.weights) first")


def _read_labels(filename: str) -> tuple[str, ...]:
    text = resources.files("tokshift_zoo").joinpath("data", filename).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


KINETICS400_LABELS: tuple[str, ...] = _read_labels("kinetics400_labels.txt")

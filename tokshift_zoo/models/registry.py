"""The zoo's registry: one frozen ``Weights`` record per ``name.tag``, the single source of every table.

A record is what torchvision's ``Weights`` is (``torchvision/models/_api.py``): where the file is and its sha256,
how the weights were measured (the clip sampling, the test views and the clip-start rule, the pixels: crop size,
resize, mean and std), ``transforms()`` (the eval preset) and ``meta`` (categories, parameters, the paper's
GFLOPs and top-1, file size, the recipe it comes from, licence). timm's ``default_cfgs`` are generated from the
records (``register_weights``), so the two cannot drift apart; a built model carries its record as
``model.weights``, fitted to how it was built (input size, frames, head) and with the sha256 that was verified
when its weights were loaded. Model cards, ``tokshift-zoo models --json``, the data pipeline and the torch.hub
entry points all read records.

Two arrows are callbacks, so that ``models/`` imports neither ``weights/`` nor ``video/``: builders get their
weights through a loader that ``tokshift_zoo.weights`` installs (``set_weights_loader``), and ``transforms()``
builds ``video.transforms``' preset through a factory that ``tokshift_zoo.presets`` installs
(``set_transforms_factory``); importing ``tokshift_zoo`` installs both.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
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
    "START_RULES",
    "Weights",
    "attach_weights",
    "check_model_name",
    "get_weights",
    "list_models",
    "package_file",
    "register_weights",
    "set_transforms_factory",
    "set_weights_loader",
    "weights_of",
]

SAMPLINGS = ("dense", "uniform")
# How the test clips' starts are placed over a video (dense sampling): "authors" is the authors' read_clip (clip
# k at int(k * L / clips), clipped to the last start), "even" spreads them from the first to the last start.
START_RULES = ("authors", "even")
_INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic")
_PIPELINE_FIELDS = (
    "num_frames",
    "frame_stride",
    "sampling",
    "start_rule",
    "test_clips",
    "test_crops",
    "input_size",
    "mean",
    "std",
    "interpolation",
    "crop_pct",
    "train_hflip",
    "train_scale",
)
# the model family's layer names, the same for every record (timm's ``first_conv`` / ``classifier``)
_FAMILY_CFG = dict(first_conv="patch_embed.proj", classifier="head", fixed_input_size=True, crop_mode="center")
_META_CFG_KEYS = ("license", "description", "paper_name", "paper_ids", "origin_url")
# keys of the zoo's former ``VideoCfg`` that are now ``meta`` (files and hub repos written before the record)
_LEGACY_META_KEYS = {"dataset": "dataset", "paper_top1": "paper_top1", "paper_gflops": "gflops"}


@dataclass(frozen=True)
class Weights:
    """One ``name.tag``: the weight file, the protocol it was measured with, its preset and its metadata.

    Attributes:
        name: the architecture, a registered builder's name.
        tag: the weights' tag (``k400``, ``in21k``, ...).
        hf_hub_id, url, file: where the file is: a hub repo (``ORG/REPO[@REV]``), an HTTPS URL, or a local path or
            ``package://`` file; at most one is used, in the order file, hub, URL.
        filename: the weight file's name at its source (hub repo file, URL basename or package file).
        drive_folder: the authors' Google Drive folder of these weights, if they released them there.
        sha256: hex sha256 of the weight file. On a registry record, the pin a download must match (a mismatch
            is refused and removed); on ``model.weights``, the sha256 that was verified when loading (None when
            nothing was verified: a random init or a file of the user's).
        num_frames: frames per clip.
        frame_stride: the S of dense "NxS" sampling (every S-th frame); unused by uniform sampling.
        sampling: ``"dense"`` (N frames every S-th, the paper's 8x32) or ``"uniform"`` (one frame per segment).
        start_rule: dense test clips' starts: ``"authors"`` (their ``read_clip``: clip k at ``int(k * L / clips)``
            clipped to the last start, so long videos repeat clips) or ``"even"`` (spread evenly from the first
            to the last start: distinct clips, not the paper's protocol).
        test_clips, test_crops: the test views, clips per video and crops per clip (3: left, centre, right
            along the long side after resizing the short side to the crop; 1: centre).
        input_size: (C, H, W) of each frame the model takes; (H, W) is the crop.
        mean, std: per-channel normalisation of pixels scaled to [0, 1].
        interpolation: the short-side resize's filter, a torchvision mode name.
        crop_pct: crop size / resized short side at test time (1.0: resize the short side to the crop).
        train_hflip: whether fine-tuning may flip clips (False where left and right are classes).
        train_scale: (min, max) training short side in pixels; None scales the paper's 224-330 to the crop.
        meta: ``categories`` (class names, head order), ``num_params``, ``gflops`` (the paper's, per view),
            ``paper_top1`` (%, at these test views), ``file_size`` (bytes), ``recipe`` (the authors' config the
            weights come from), ``license``, ``dataset``, ``description``, and the paper's ids.
        default: whether this tag is the architecture's default (timm's ``*``).
    """

    name: str
    tag: str
    hf_hub_id: str | None = None
    url: str | None = None
    file: str | None = None
    filename: str = "model.safetensors"
    drive_folder: str | None = None
    sha256: str | None = None
    num_frames: int = 8
    frame_stride: int = 32
    sampling: str = "dense"
    start_rule: str = "authors"
    test_clips: int = 10
    test_crops: int = 3
    input_size: tuple[int, int, int] = (3, 224, 224)
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    interpolation: str = "bicubic"
    crop_pct: float = 1.0
    train_hflip: bool = True
    train_scale: tuple[int, int] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    default: bool = False

    def __post_init__(self) -> None:
        for name in ("input_size", "mean", "std", "train_scale"):  # JSON gives lists
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if isinstance(self.meta.get("categories"), list):
            object.__setattr__(self, "meta", {**self.meta, "categories": tuple(self.meta["categories"])})
        problems = []
        if self.sampling not in SAMPLINGS:
            problems.append(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.start_rule not in START_RULES:
            problems.append(f"start_rule must be one of {START_RULES}, got {self.start_rule!r}")
        if self.test_crops not in (1, 3):
            problems.append(f"test_crops must be 1 (centre) or 3 (left, centre, right), got {self.test_crops}")
        if self.test_clips < 1 or self.num_frames < 1 or self.frame_stride < 1:
            problems.append(
                f"test_clips, num_frames and frame_stride must be >= 1, got {self.test_clips}, {self.num_frames}, "
                f"{self.frame_stride}"
            )
        if len(self.input_size) != 3 or len(self.mean) != self.input_size[0] or len(self.std) != self.input_size[0]:
            problems.append(
                f"input_size must be (C, H, W) with C values of mean and std, got input_size={self.input_size}, "
                f"mean={self.mean}, std={self.std}"
            )
        if self.interpolation not in _INTERPOLATIONS:
            problems.append(f"interpolation must be one of {_INTERPOLATIONS}, got {self.interpolation!r}")
        if problems:
            raise ConfigError(f"weights record {self.key}: " + "; ".join(problems))

    def __repr__(self) -> str:
        source = self.file or (f"hf-hub:{self.hf_hub_id}" if self.hf_hub_id else self.url)
        source = source or (f"authors' Drive {self.drive_folder}" if self.drive_folder else None)
        classes = len(self.categories) if self.categories else 0
        return (
            f"Weights({self.key}: {self.protocol['sampling']}, start_rule={self.start_rule}, views={self.views}, "
            f"input_size={self.input_size}, resize={self.interpolation} crop_pct={self.crop_pct}, "
            f"mean={self.mean}, std={self.std}, classes={classes}, source={source}, sha256={self.sha256})"
        )

    @property
    def key(self) -> str:
        """``name.tag``."""
        return f"{self.name}.{self.tag}"

    @property
    def views(self) -> str:
        """The test views as ``"CLIPSxCROPS"`` (``"10x3"``: the paper's)."""
        return f"{self.test_clips}x{self.test_crops}"

    @property
    def categories(self) -> tuple[str, ...] | None:
        """The class names in head order, None where the weights have no head or no names."""
        names = self.meta.get("categories")
        return tuple(names) if names else None

    @property
    def protocol(self) -> dict[str, Any]:
        """What a prediction ran: the views, the sampling, the start rule and the weights (key and sha256)."""
        sampling = f"{self.num_frames}x{self.frame_stride}" if self.sampling == "dense" else f"{self.num_frames}"
        return {
            "views": self.views,
            "sampling": f"{self.sampling} {sampling}",
            "start_rule": self.start_rule if self.sampling == "dense" else None,
            "weights": self.key,
            "sha256": self.sha256,
        }

    @property
    def has_source(self) -> bool:
        """Whether ``pretrained=True`` can fetch these weights without a file of the user's."""
        return bool(self.drive_folder or self.hf_hub_id or self.url or self.file)

    def transforms(self, is_training: bool = False) -> nn.Module:
        """The preset of these weights: frames -> model input (``video.transforms.create_transform``).

        Evaluation: uint8 (..., T, 3, H, W) -> float32 (..., test_crops, 3, T, crop_h, crop_w); training: one
        random crop, (..., 3, T, crop_h, crop_w). Frame sampling is ``video.transforms.frame_indices(record, L)``.
        """
        if not _transforms_factory:
            raise ConfigError("no preset factory is installed: import tokshift_zoo (or tokshift_zoo.presets) first")
        return _transforms_factory[0](self, is_training=is_training)

    def replace(self, **changes: Any) -> Weights:
        """A copy with ``changes`` (``dataclasses.replace``); ``meta=`` entries are merged into the meta."""
        if "meta" in changes:
            changes["meta"] = {**self.meta, **changes["meta"]}
        return dataclasses.replace(self, **changes)

    def with_views(self, clips: int, crops: int) -> Weights:
        """The same record with other test views (``meta`` stays: ``paper_top1`` is at the record's own views)."""
        if (clips, crops) == (self.test_clips, self.test_crops):
            return self
        return self.replace(test_clips=clips, test_crops=crops)

    def preprocessing(self) -> dict[str, Any]:
        """The fields a video pipeline reads (``video.transforms.ClipSpec``): sampling, start rule, test views,
        input size, resize and normalisation, training scale and flips; plain values."""
        return {k: v for k, v in self.to_dict().items() if k in _PIPELINE_FIELDS}

    def timm_cfg_args(self) -> dict[str, Any]:
        """The keyword arguments of timm's ``PretrainedCfg`` generated from this record."""
        cfg = dict(
            input_size=tuple(self.input_size),
            crop_pct=self.crop_pct,
            interpolation=self.interpolation,
            mean=tuple(self.mean),
            std=tuple(self.std),
            num_classes=len(self.categories or ()) or self.meta.get("num_classes", 0),
            label_names=self.categories,
            **_FAMILY_CFG,
            **{k: self.meta[k] for k in _META_CFG_KEYS if self.meta.get(k) is not None},
        )
        cfg.update({k: v for k in ("hf_hub_id", "url", "file") if (v := getattr(self, k))})
        return cfg

    def timm_cfg(self) -> dict[str, Any]:
        """timm's full ``PretrainedCfg`` of this record as a dict (timm's defaults filled in, name and tag set)."""
        return dict(PretrainedCfg(**self.timm_cfg_args()).to_dict(), architecture=self.name, tag=self.tag)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain values (``Weights.from_dict`` reads it back; ``json.dumps`` writes it)."""
        out = dataclasses.asdict(self)
        out["meta"] = dict(self.meta)
        return out

    @classmethod
    def known_keys(cls) -> tuple[str, ...]:
        """The keys a saved record may hold (``to_dict``'s, and the former ``video_cfg``'s ``dataset``,
        ``paper_top1``, ``paper_gflops``): the record's settings first, then its identity and ``meta``, then the
        former keys, the order an error listing them reads best in."""
        fields = [f.name for f in dataclasses.fields(cls)]
        identity = ["name", "tag", "hf_hub_id", "url", "file", "filename", "sha256", "drive_folder", "meta", "default"]
        settings = [f for f in fields if f not in identity]
        return (*settings, *(f for f in fields if f in identity), *_LEGACY_META_KEYS)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], **defaults: Any) -> Weights:
        """A record from ``to_dict``'s values over ``defaults``; unknown keys are ignored, and the former
        ``video_cfg`` keys (``dataset``, ``paper_top1``, ``paper_gflops``) go to ``meta``."""
        known = {f.name for f in dataclasses.fields(cls)}
        meta = dict(defaults.pop("meta", None) or {})
        meta.update({new: values[old] for old, new in _LEGACY_META_KEYS.items() if values.get(old) is not None})
        meta.update(values.get("meta") or {})
        fields = {**defaults, **{k: v for k, v in values.items() if k in known and k != "meta"}}
        return cls(**fields, meta=meta)

    def fit(self, model: nn.Module) -> Weights:
        """This record as ``model`` was built: its input size, frames, head and ``pretrained_cfg`` (overlays
        included). A new head drops what described the old one (the categories, ``paper_top1``); a source
        other than the record's drops the record's sha256 pin."""
        cfg = getattr(model, "pretrained_cfg", None) or {}
        changes: dict[str, Any] = {
            "input_size": (model.in_chans, *model.patch_embed.img_size),
            "num_frames": model.num_frames,
            **{k: tuple(cfg[k]) for k in ("mean", "std") if cfg.get(k)},
            **{k: cfg[k] for k in ("interpolation", "crop_pct", "hf_hub_id", "url", "file") if cfg.get(k)},
        }
        channels = changes["input_size"][0]
        for key in ("mean", "std"):  # another in_chans: one value per channel (grey: the RGB values' mean)
            values = changes.get(key, getattr(self, key))
            if len(values) != channels:
                changes[key] = (sum(values) / len(values),) * channels
        if cfg.get("hf_hub_filename"):
            changes["filename"] = cfg["hf_hub_filename"]
        if changes.get("interpolation") not in (None, *_INTERPOLATIONS):
            del changes["interpolation"]  # a filter name of timm's only ("random"): the record's stays
        meta: dict[str, Any] = {}
        names = cfg.get("label_names")
        num_classes = getattr(model, "num_classes", None)
        if names is not None and len(names) == num_classes:
            meta["categories"] = tuple(names)
        elif self.categories is not None and len(self.categories) != num_classes:
            meta["categories"] = None  # a new head: these names are not its classes
        if cfg.get("source") in ("hf-hub", "local-dir"):  # a repo or folder: where the file is, all of it
            changes.update(hf_hub_id=cfg.get("hf_hub_id"), url=None, file=cfg.get("file"), drive_folder=None)
        if any(changes.get(k, getattr(self, k)) != getattr(self, k) for k in ("hf_hub_id", "url", "file")):
            changes["sha256"] = None  # the pin belongs to the record's own source, not to an overlay's
        if meta.get("categories", True) is None:
            meta["paper_top1"] = None  # it was the old head's accuracy
        fitted = self.replace(**changes, meta=meta)
        return fitted if fitted != self else self

    def keys(self) -> Any:
        """Refuse ``**record``: timm's ``create_transform(**cfg)`` makes per-image transforms, not a clip's."""
        raise ConfigError(
            f"{self.key}: a weights record is not timm's image data config. For the video preset call "
            "record.transforms() (or tokshift_zoo.create_transform(record)); for timm's per-frame config call "
            "timm.data.resolve_data_config(model=model)"
        )


_RECORDS: dict[str, Weights] = {}

# The model `tokshift-zoo predict` and `make demo` use when none is named: trained by the zoo on its synthetic
# motion task, its weights ship inside the package, so it works offline.
DEFAULT_MODEL = "tokshift_demo_motion.synthetic"

PACKAGE_SCHEME = "package://"


def package_file(filename: str) -> str:
    """The ``file`` value of a weight file shipped in ``tokshift_zoo/data/`` (its record pins its sha256)."""
    return f"{PACKAGE_SCHEME}tokshift_zoo/data/{filename}"


def register_weights(records: Iterable[Weights]) -> dict[str, Any]:
    """Add records to the registry and return timm's ``default_cfgs`` generated from them.

    A model family's module calls it once, as ``default_cfgs = register_weights(...)`` before its
    ``@register_model`` builders (timm looks ``default_cfgs`` up in the builder's module).

    Raises:
        ConfigError: a ``name.tag`` given twice, or already registered.
    """
    records = list(records)
    seen: set[str] = set()
    for record in records:
        if record.key in _RECORDS or record.key in seen:
            raise ConfigError(f"weights record {record.key!r} is registered twice; each name.tag has one record")
        seen.add(record.key)
    _RECORDS.update({record.key: record for record in records})
    # timm lists a tag as pretrained only when its cfg names a url, file or hub id; the authors' Drive releases
    # (the k400 default tags) come through the zoo's loader, so timm's registry is told (timm has no public call)
    timm.models._registry._model_has_pretrained.update(record.key for record in records if record.has_source)
    return generate_default_cfgs({r.key + ("*" if r.default else ""): r.timm_cfg_args() for r in records})


def _record_key(name: str) -> str:
    name, _, tag = name.partition(".")
    if not tag:
        tag = timm.models.get_pretrained_cfg(name).tag if timm.is_model(name) else ""
    return f"{name}.{tag}"


def get_weights(name: str) -> Weights:
    """The weights record of ``name.tag`` (``name`` alone: its default tag), as torchvision's ``get_weight``.

    ``get_weights("tokshift_base16_224_8f.k400").transforms()`` is its eval preset, ``.meta`` its metadata.

    Raises:
        ConfigError: no such record; the message suggests the closest names.
    """
    key = _record_key(name)
    if key not in _RECORDS:
        check_model_name(key)  # an unknown name or tag: the closest ones
        raise ConfigError(f"no weights record {key!r}; known: {sorted(_RECORDS)}")
    return _RECORDS[key]


def weights_of(model_or_name: Any) -> Weights:
    """The record of a built model (``model.weights``) or of a ``name[.tag]`` (default tag when omitted).

    A model built from settings the zoo does not know (an ``hf-hub:`` repo of another tag, a custom size) gets a
    record made from the model: its input, frames and ``pretrained_cfg``, the defaults for the rest.
    """
    if isinstance(model_or_name, str):
        return get_weights(model_or_name)
    existing = getattr(model_or_name, "weights", None)
    if isinstance(existing, Weights):
        return existing
    cfg = getattr(model_or_name, "pretrained_cfg", {}) or {}
    key = f"{cfg.get('architecture')}.{cfg.get('tag')}"
    base = _RECORDS.get(key) or Weights(
        str(cfg.get("architecture")), str(cfg.get("tag") or ""), interpolation="bilinear"
    )
    return base.fit(model_or_name)


def list_models(filter: str = "", pretrained: bool = False) -> list[str]:  # noqa: A002 - timm's argument name
    """Names of the zoo's models, or with ``pretrained=True`` its ``name.tag`` records, matching a glob ``filter``."""
    keys = sorted(_RECORDS) if pretrained else sorted({k.split(".")[0] for k in _RECORDS})
    return [k for k in keys if fnmatch.fnmatch(k, filter or "*")]


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


# --- the callbacks: the weights loader the builders call, the preset factory of transforms() ---------------

WeightsLoader = Callable[[nn.Module, bool, Any], None]
_weights_loader: list[WeightsLoader] = []
_transforms_factory: list[Callable[..., nn.Module]] = []


def set_weights_loader(loader: WeightsLoader) -> None:
    """Install ``loader(model, pretrained, cache_dir)``, which every builder calls on the model it built.

    ``tokshift_zoo.weights`` installs its loader when imported (``import tokshift_zoo`` does that on first use).
    """
    _weights_loader[:] = [loader]


def set_transforms_factory(factory: Callable[..., nn.Module]) -> None:
    """Install ``factory(record, is_training=...)``, which ``Weights.transforms`` calls (``tokshift_zoo.presets``
    installs ``video.transforms.create_transform``)."""
    _transforms_factory[:] = [factory]


def attach_weights(model: nn.Module, pretrained: bool, cache_dir: Any = None) -> None:
    """Give a freshly built model its ``weights`` record and, if ``pretrained``, its weights through the loader.

    The loader checks the file against the record's sha256 pin and leaves the sha256 it verified on
    ``model.weights``; without ``pretrained`` nothing was loaded, so the record's sha256 is None.
    """
    model.weights = weights_of(model)
    if _weights_loader:
        _weights_loader[0](model, pretrained, cache_dir)
    elif pretrained:
        raise ConfigError("no weights loader is installed: import tokshift_zoo (or tokshift_zoo.weights) first")
    if not pretrained:
        model.weights = model.weights.replace(sha256=None)


def _read_labels(filename: str) -> tuple[str, ...]:
    text = resources.files("tokshift_zoo").joinpath("data", filename).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


KINETICS400_LABELS: tuple[str, ...] = _read_labels("kinetics400_labels.txt")

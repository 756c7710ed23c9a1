"""``TrainConfig``: everything a training run is made of; named recipes and the YAML file a run reads and writes.

Kept apart from the trainer so that reading the defaults (the command line's ``--help``) imports no torch.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .recipes import RECIPES

__all__ = ["RECIPE_DEFAULTS", "TrainConfig", "default_num_workers", "read_config_file"]

RECIPE_DEFAULTS = {"sgd": dict(lr=0.1, weight_decay=0.0), "adamw": dict(lr=1e-4, weight_decay=0.05)}
AUGMENTS = ("zoo", "paper")  # the zoo's training preset; the authors' Train_ClipAug
AUTO_AUGMENTS = ("rand", "trivial")  # torchvision's RandAugment, TrivialAugmentWide (one draw per clip)
SCHEDULES = ("step", "cosine")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_num_workers() -> int:
    """Data-loading processes per training process when none are asked for: 4, but no more than
    ``usable_cores()`` (more would only contend for them, and torch's DataLoader warns)."""
    return min(4, usable_cores())


@dataclass
class TrainConfig:
    """Everything a training run is made of; ``train(config)`` runs it.

    Model: ``model`` is ``NAME`` (random init), ``NAME.TAG`` (that tag's weights through the zoo's loader) or
    ``hf-hub:ORG/REPO``; ``checkpoint`` loads a local file instead of the tag's weights. A classifier whose class
    count differs from the weights' is re-initialised; everything else loads.

    Classes: from ``labels`` (a file of names, one per line) if given; else, when the lists use class names,
    the weights' label names if they cover every name used (the head is kept), or else the lists' sorted names
    (a new task); else (integer labels) ``num_classes`` or the weights' class count.

    The fine-tuning kit (timm's and torchvision's tools): ``layer_decay`` (timm's per-block lr scale), ``ema_decay``
    (``timm.utils.ModelEmaV3``, validated every epoch beside the raw weights; ``ema_best`` keeps the EMA weights
    as the best model), ``mixup``/``cutmix`` (``timm.data.Mixup`` on whole clips), ``auto_augment`` (RandAugment
    or TrivialAugment, one draw per clip), ``freeze_backbone`` (a linear probe: only the classifier trains),
    ``val_views`` (multi-clip validation), ``tensorboard``. ``recipe`` names the recipe the values came from
    (``TrainConfig.from_recipe``); it is a record, the values themselves are what the run uses.
    """

    model: str
    train_list: str
    val_list: str | None = None  # None: no validation; best.safetensors is then the last epoch's weights
    output: str = field(kw_only=True)  # required; keyword-only so that val_list can be left out
    data_root: str = ""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    labels: str | None = None
    num_classes: int | None = None
    recipe: str | None = None  # the recipe these values came from, if any (see recipes.py)
    epochs: int = 18
    batch_size: int = 21
    accum_steps: int = 1
    optimizer: str = "sgd"  # "sgd" (momentum) or "adamw"
    sched: str | None = None  # "step" or "cosine"; None: step for SGD, cosine for AdamW
    lr: float | None = None  # None: 0.1 for SGD, 1e-4 for AdamW
    lr_base_size: int | None = None  # the lr is for this many clips per step (all processes): scaled linearly
    weight_decay: float | None = None  # None: 0 for SGD (the authors'), 0.05 for AdamW
    momentum: float = 0.9
    lr_steps: tuple[int, ...] = (10, 15)  # step schedule: epochs at which the lr is multiplied by lr_gamma
    lr_gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up (from 1e-5, timm's), in epochs
    min_lr: float = 0.0  # cosine floor
    layer_decay: float | None = None  # lr x layer_decay ** (blocks above): timm's param_groups_layer_decay
    label_smoothing: float = 0.01
    clip_grad: float = 1.0  # max gradient norm; 0 disables
    augment: str = "zoo"  # "zoo": the model's training preset; "paper": the authors' Train_ClipAug and starts
    train_scale: tuple[int, int] | None = None  # training short side (min, max) px; None: the model's
    auto_augment: str | None = None  # "rand" (RandAugment) or "trivial" (TrivialAugmentWide), after the crop
    mixup: float = 0.0  # Mixup alpha (0: off)
    cutmix: float = 0.0  # CutMix alpha (0: off); with both, each batch takes one of them
    mixup_prob: float = 1.0  # share of batches mixed
    ema_decay: float = 0.0  # EMA of the weights (0: off), e.g. 0.999; validated every epoch
    ema_best: bool = False  # keep the EMA weights (chosen by their validation top-1) as best.safetensors
    freeze_backbone: bool = False  # train only the classifier: a linear probe on the frozen features
    val_views: str = "1x1"  # validation views per video, CLIPSxCROPS (the logits averaged)
    tensorboard: bool = False  # also log to output/tensorboard (needs the tensorboard extra)
    amp: str = "auto"  # "auto" (bf16 on CUDA, off on CPU), "bf16", "fp16", "none"
    fsdp: bool = False
    grad_checkpointing: bool = False
    num_workers: int = field(default_factory=default_num_workers)  # 4, at most this machine's cores
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    resume: str | None = None  # "auto" (newest checkpoint in output, if any) or a checkpoint path
    keep_checkpoints: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        choices = dict(optimizer=RECIPE_DEFAULTS, augment=AUGMENTS)
        choices.update(recipe=(None, *RECIPES), sched=(None, *SCHEDULES), auto_augment=(None, *AUTO_AUGMENTS))
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                shown = ", ".join(repr(a) for a in allowed)
                raise ConfigError(f"{name} must be one of {shown}, got {getattr(self, name)!r}")
        from ..devices import AMP_CHOICES  # torch; this module stays light for the command line's --help

        if self.amp not in AMP_CHOICES:
            raise ConfigError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {self.amp!r}")
        for name in ("epochs", "batch_size", "accum_steps", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ConfigError(f"layer_decay must be in (0, 1], got {self.layer_decay}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1) (0: no EMA), got {self.ema_decay}")
        if self.ema_best and not self.ema_decay:
            raise ConfigError("ema_best keeps the EMA weights as the best model: it needs ema_decay > 0")
        if self.ema_decay and self.fsdp:
            raise ConfigError("ema_decay with fsdp is not supported: the EMA copy would hold the full model per rank")
        from ..video import parse_views

        try:
            parse_views(self.val_views)
        except ValueError as err:
            raise ConfigError(f"val_views: {err}") from None
        self.lr_steps = tuple(self.lr_steps)
        self.train_scale = None if self.train_scale is None else tuple(self.train_scale)
        self.sched = self.sched or ("step" if self.optimizer == "sgd" else "cosine")
        defaults = RECIPE_DEFAULTS[self.optimizer]
        self.lr = defaults["lr"] if self.lr is None else self.lr
        self.weight_decay = defaults["weight_decay"] if self.weight_decay is None else self.weight_decay
        kwargs = dict(self.model_kwargs)
        if "num_classes" in kwargs:  # one place for the class count
            count = kwargs.pop("num_classes")
            if self.num_classes is not None and self.num_classes != count:
                raise ConfigError(f"num_classes {self.num_classes} and model_kwargs num_classes {count} differ")
            self.num_classes = count
        self.model_kwargs = kwargs

    @classmethod
    def from_recipe(cls, recipe: str | None, **values: Any) -> TrainConfig:
        """A config of the named recipe (see ``recipes.py``; ``None``: the plain defaults), ``values`` winning
        over the recipe's."""
        if recipe is not None and recipe not in RECIPES:
            raise ConfigError(f"recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
        return cls(**{**RECIPES.get(recipe, {}), **values, "recipe": recipe})

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (tuples as lists): what ``config.yaml`` holds."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_yaml(self) -> str:
        """The config as YAML text; ``TrainConfig(**read_config_file(path))`` reads it back."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The ``TrainConfig`` fields a YAML file sets (a mapping of field names; any subset).

    Raises:
        ConfigError: the file is missing, is not a YAML mapping, or names fields ``TrainConfig`` does not have.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no config file at {path}")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of TrainConfig fields, found a {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{path} sets fields TrainConfig does not have: {unknown} (known: {sorted(known)})")
    return values

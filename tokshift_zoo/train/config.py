"""``TrainConfig``: everything a training run is made of, with the paper's recipe as defaults.

Kept apart from the trainer so that reading the defaults (the command line's ``--help``) imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["RECIPE_DEFAULTS", "TrainConfig"]

RECIPE_DEFAULTS = {"sgd": dict(lr=0.1, weight_decay=0.0), "adamw": dict(lr=1e-4, weight_decay=0.05)}


@dataclass
class TrainConfig:
    """Everything a training run is made of; ``train(config)`` runs it.

    Model: ``model`` is ``NAME`` (random init), ``NAME.TAG`` (that tag's weights through the zoo's loader) or
    ``hf-hub:ORG/REPO``; ``checkpoint`` loads a local file instead of the tag's weights. A classifier whose class
    count differs from the weights' is re-initialised; everything else loads.

    Classes: from ``labels`` (a file of names, one per line) if given; else, when the lists use class names,
    the weights' label names if they cover every name used (the head is kept), or else the lists' sorted names
    (a new task); else (integer labels) ``num_classes`` or the weights' class count.
    """

    model: str
    train_list: str
    val_list: str
    output: str
    data_root: str = ""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    labels: str | None = None
    num_classes: int | None = None
    epochs: int = 18
    batch_size: int = 21
    accum_steps: int = 1
    optimizer: str = "sgd"  # "sgd" (momentum, step schedule) or "adamw" (cosine schedule)
    lr: float | None = None  # None: 0.1 for SGD, 1e-4 for AdamW
    weight_decay: float | None = None  # None: 0 for SGD (the authors'), 0.05 for AdamW
    momentum: float = 0.9
    lr_steps: tuple[int, ...] = (10, 15)  # SGD: epochs at which the lr is multiplied by lr_gamma
    lr_gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up, in epochs
    min_lr: float = 0.0  # cosine floor
    label_smoothing: float = 0.01
    clip_grad: float = 1.0  # max gradient norm; 0 disables
    amp: str = "auto"  # "auto" (bf16 on CUDA, off on CPU), "bf16", "fp16", "none"
    fsdp: bool = False
    grad_checkpointing: bool = False
    num_workers: int = 4
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    resume: str | None = None  # "auto" (newest checkpoint in output, if any) or a checkpoint path
    keep_checkpoints: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in RECIPE_DEFAULTS:
            raise ConfigError(f"optimizer must be one of {sorted(RECIPE_DEFAULTS)}, got {self.optimizer!r}")
        from ..devices import AMP_CHOICES  # torch; this module stays light for the command line's --help

        if self.amp not in AMP_CHOICES:
            raise ConfigError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {self.amp!r}")
        for name in ("epochs", "batch_size", "accum_steps", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        self.lr_steps = tuple(self.lr_steps)
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

"""The commands of ``train``: fine-tuning with the zoo's trainer."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Any

from ..errors import ConfigError
from ..train.config import AUGMENTS, AUTO_AUGMENTS, usable_cores
from .options import AMP_CHOICES, _add_list_options, _json_object, _weight_file


def _cmd_train(args: argparse.Namespace) -> int:
    from ..train import TrainConfig, train
    from ..train.config import read_config_file
    from ..train.datasets import VideoListError

    # precedence: flags given > the --config file > the recipe > TrainConfig's defaults (flags not given are absent)
    values = read_config_file(args.config) if args.config else {}
    values.update({f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)})
    missing = [f"--{name.replace('_', '-')}" for name in ("model", "train_list", "output") if name not in values]
    if missing:
        raise ConfigError(f"train needs {', '.join(missing)} (as flags, or set in the --config file)")
    recipe = values.pop("recipe", None)
    try:
        result = train(TrainConfig.from_recipe(recipe, **values))
    except VideoListError as err:
        missing_video = "no video file at" in str(err) or "no frame folder at" in str(err)
        if missing_video and not values.get("data_root"):
            raise VideoListError(
                f"{err}\n(the paths in a list are relative to --data-root DIR, which was not given: the current folder)"
            ) from None
        raise
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(result, indent=2))
    return 0


# TrainConfig field -> (help, extra argparse keywords); the default always comes from TrainConfig
_TRAIN_HELP: dict[str, tuple[str, dict[str, Any]]] = {
    "epochs": ("epochs to train", {}),
    "batch_size": ("clips per process and step", {}),
    "accum_steps": ("gradient accumulation steps", {}),
    "optimizer": ("sgd (momentum) or adamw", {"choices": ["sgd", "adamw"]}),
    "sched": ("lr schedule, timm's (default: step for sgd, cosine for adamw)", {"choices": ["step", "cosine"]}),
    "lr": ("learning rate (default 0.1 for sgd, 1e-4 for adamw)", {}),
    "lr_base_size": ("linear scaling rule: --lr is for this many clips per step (all processes)", {}),
    "weight_decay": ("weight decay (default 0 for sgd, 0.05 for adamw)", {}),
    "momentum": ("sgd momentum", {}),
    "lr_steps": ("sgd: epochs where the lr is multiplied by --lr-gamma", {"nargs": "+"}),
    "lr_gamma": ("sgd: the lr factor at each of --lr-steps", {}),
    "warmup_epochs": ("linear warm-up epochs", {}),
    "min_lr": ("the cosine schedule's floor", {}),
    "layer_decay": ("layer-wise lr decay: block k of n gets lr x decay^(n - k) (timm)", {}),
    "label_smoothing": ("label smoothing of the loss", {}),
    "clip_grad": ("max gradient norm (0: off)", {}),
    "augment": ("training augmentation: the model's preset, or the authors' Train_ClipAug", {"choices": AUGMENTS}),
    "train_scale": ("training short side MIN MAX in pixels (default: the model's)", {"nargs": 2}),
    "auto_augment": ("RandAugment or TrivialAugmentWide, one draw per clip", {"choices": AUTO_AUGMENTS}),
    "mixup": ("Mixup alpha on clips (timm; 0: off)", {}),
    "cutmix": ("CutMix alpha on clips (timm; 0: off)", {}),
    "mixup_prob": ("share of batches mixed", {}),
    "ema_decay": ("EMA of the weights (timm ModelEmaV3; 0: off), validated every epoch", {}),
    "val_views": ("validation views per video, CLIPSxCROPS, logits averaged", {}),
    "amp": ("autocast: auto is bf16 on GPU, off on CPU", {"choices": AMP_CHOICES}),
    "num_workers": ("data-loading processes per training process", {}),
    "device": ("auto (CUDA if present), cpu, cuda, cuda:1 ...", {}),
    "seed": ("random seed", {}),
    "resume": ("'auto' (the newest checkpoint in --output, if any) or a checkpoint path", {}),
    "keep_checkpoints": ("epoch checkpoints kept", {}),
}
_TRAIN_FLAGS = {
    "fsdp": "shard the model with FSDP (for the Large models)",
    "grad_checkpointing": "recompute blocks to save memory",
    "deterministic": "deterministic kernels (slower)",
    "ema_best": "keep the EMA weights (by their validation top-1) as best.safetensors",
    "freeze_backbone": "train only the classifier: a linear probe on the frozen features",
    "tensorboard": "also log to OUTPUT/tensorboard (the tensorboard extra)",
}


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """The parser of ``train``."""
    from ..train.config import TrainConfig
    from ..train.recipes import RECIPES

    train = commands.add_parser(
        "train",
        help="fine-tune a model on a video list (one process, or any number under torchrun)",
        description="Fine-tune a zoo model. Defaults: SGD momentum 0.9, lr 0.1 divided by 10 at epochs 10 and 15 "
        "of 18, label smoothing 0.01, gradient clipping 1.0. --recipe paper is the authors' training as they ran it, "
        "--recipe small-data the zoo's for a few hundred clips (docs/benchmarks.md). Values come from the flags "
        "given, then --config FILE (YAML; every run writes its own as OUTPUT/config.yaml), then the recipe. Run "
        "under `torchrun --nproc_per_node N -m tokshift_zoo.cli train ...` for DistributedDataParallel (or --fsdp).",
    )
    train.add_argument("--config", help="a YAML file of TrainConfig fields, e.g. a run's config.yaml")
    train.add_argument("--recipe", choices=sorted(RECIPES), help="a named recipe (see docs); flags override it")
    train.add_argument("--model", help="NAME (random init), NAME.TAG (its weights) or hf-hub:ORG/REPO")
    train.add_argument(
        "--model-kwargs",
        type=_json_object,
        default={},
        help="model overrides as JSON, e.g. '{\"drop_path_rate\": 0.1}'",
    )
    train.add_argument(
        "--checkpoint", type=_weight_file, help="start from this local weight file instead of the tag's weights"
    )
    _add_list_options(train, "train-list", "val-list")
    train.add_argument("--output", help="folder for checkpoints, best.safetensors and metrics.jsonl")
    train.add_argument(
        "--labels",
        help="class names, one per line in index order (default: the weights' names if they cover the names in "
        "the lists, else the lists' names sorted)",
    )
    train.add_argument("--num-classes", type=int, help="class count when the lists give integer labels")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name, (help_text, extra) in _TRAIN_HELP.items():
        spec = fields[name]
        default = spec.default_factory() if spec.default is dataclasses.MISSING else spec.default  # num_workers
        value_type = type(default[0]) if isinstance(default, tuple) else type(default)
        if default is None:  # lr, weight_decay, layer_decay: floats; lr_base_size, train_scale: ints; the rest strings
            value_type = float if name in ("lr", "weight_decay", "layer_decay") else str
            value_type = int if name in ("lr_base_size", "train_scale") else value_type
        default = list(default) if isinstance(default, tuple) else default
        shown = "" if default is None else f" (default: {default})"
        if name == "num_workers":
            shown = f" (default: {default}, at most this machine's {usable_cores()} cores)"
        train.add_argument(
            f"--{name.replace('_', '-')}", type=value_type, default=default, help=help_text + shown, **extra
        )
    for name, help_text in _TRAIN_FLAGS.items():
        train.add_argument(f"--{name.replace('_', '-')}", action="store_true", help=help_text)
    train.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    for action in train._actions:  # a flag not given is absent, so that --config and --recipe can set it
        if action.dest in fields:
            action.default, action.required = argparse.SUPPRESS, False
    train.set_defaults(func=_cmd_train)

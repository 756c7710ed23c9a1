"""The commands of ``train``: fine-tuning with the zoo's trainer."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Any

from .options import AMP_CHOICES, _add_list_options, _json_object, _weight_file


def _cmd_train(args: argparse.Namespace) -> int:
    from ..train import TrainConfig, train
    from ..train.datasets import VideoListError

    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    try:
        result = train(TrainConfig(**fields))
    except VideoListError as err:
        missing = "no video file at" in str(err) or "no frame folder at" in str(err)
        if missing and not args.data_root:
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
    "optimizer": ("sgd: step lr; adamw: cosine lr", {"choices": ["sgd", "adamw"]}),
    "lr": ("learning rate (default 0.1 for sgd, 1e-4 for adamw)", {}),
    "weight_decay": ("weight decay (default 0 for sgd, 0.05 for adamw)", {}),
    "momentum": ("sgd momentum", {}),
    "lr_steps": ("sgd: epochs where the lr is multiplied by --lr-gamma", {"nargs": "+"}),
    "lr_gamma": ("sgd: the lr factor at each of --lr-steps", {}),
    "warmup_epochs": ("linear warm-up epochs", {}),
    "min_lr": ("adamw: the cosine schedule's floor", {}),
    "label_smoothing": ("label smoothing of the loss", {}),
    "clip_grad": ("max gradient norm (0: off)", {}),
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
}


def _cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """The parser of ``train``."""
    from ..train.config import TrainConfig

    train = commands.add_parser(
        "train",
        help="fine-tune a model on a video list (one process, or any number under torchrun)",
        description="Fine-tune a zoo model. Defaults are the paper's recipe: SGD momentum 0.9, lr 0.1 divided by "
        "10 at epochs 10 and 15 of 18, label smoothing 0.01, gradient clipping 1.0. Run under `torchrun "
        "--nproc_per_node N -m tokshift_zoo.cli train ...` for DistributedDataParallel (or --fsdp).",
    )
    train.add_argument("--model", required=True, help="NAME (random init), NAME.TAG (its weights) or hf-hub:ORG/REPO")
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
    train.add_argument("--output", required=True, help="folder for checkpoints, best.safetensors and metrics.jsonl")
    train.add_argument(
        "--labels",
        help="class names, one per line in index order (default: the weights' names if they cover the names in "
        "the lists, else the lists' names sorted)",
    )
    train.add_argument("--num-classes", type=int, help="class count when the lists give integer labels")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name, (help_text, extra) in _TRAIN_HELP.items():
        default = fields[name].default
        value_type = type(default[0]) if isinstance(default, tuple) else type(default)
        if default is None:  # lr, weight_decay: floats; resume: a string
            value_type = str if name == "resume" else float
        default = list(default) if isinstance(default, tuple) else default
        shown = "" if default is None else f" (default: {default})"
        if name == "num_workers":  # no more loader processes than this machine has cores (torch warns)
            default = min(default, _cores())
            shown = f" (default: {default}, at most this machine's {_cores()} cores)"
        train.add_argument(
            f"--{name.replace('_', '-')}", type=value_type, default=default, help=help_text + shown, **extra
        )
    for name, help_text in _TRAIN_FLAGS.items():
        train.add_argument(f"--{name.replace('_', '-')}", action="store_true", help=help_text)
    train.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    train.set_defaults(func=_cmd_train)

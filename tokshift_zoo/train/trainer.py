"""Fine-tuning a zoo model on a video list: the loop, checkpoints, exact resume and the best model's export.

One process by default; under ``torchrun`` (any number of processes and nodes) each process trains a shard of
every epoch with DistributedDataParallel, or with FSDP (``fsdp=True``, each block sharded) for the Large models.
The defaults: SGD with momentum 0.9 and no weight decay, lr 0.1 divided by 10 at epochs 10 and 15 of 18, label
smoothing 0.01, gradient norm clipped at 1.0, accumulation 1, the lr not rescaled for the batch. The authors'
training exactly (their augmentation, smoothing 0.1, 10 accumulation steps, lr 0.1 per 42 clips scaled
linearly) is ``TrainConfig.from_recipe("paper", ...)``; ``"small-data"`` is the zoo's for a few hundred clips
(see ``recipes.py``). The optimiser, layer decay and schedule are timm's (``optim.py``), the inner loops with
Mixup and EMA are ``loop.py``.

Files in ``output``:

- ``checkpoint-epochNNN.pt``: everything needed to continue exactly (model, optimiser, scheduler, grad scaler,
  epoch, sampler seed and every rank's torch/numpy/python RNG state), written at the end of each epoch to a
  temporary name and renamed; ``resume="auto"`` continues from the newest. It is the last file an epoch writes
  (after ``best.safetensors`` and the metrics line), so it alone marks the epoch done: a run killed, or stopped by
  a full disk, anywhere before it redoes that epoch on resume.
- ``best.safetensors``: the weights of the epoch with the best validation top-1. Its metadata holds the
  ``pretrained_cfg`` (class count and label names included), ``architecture``, ``model_kwargs`` (with
  ``num_classes``) and ``weights`` (the weights record: sampling, test protocol), as JSON; it loads with
  ``create_model(NAME, checkpoint_path=..., **model_kwargs)``, and ``pretrained_cfg_overlay=dict(label_names=...)``
  gives ``predict`` the class names.
  With ``ema_best`` they are the EMA weights of the epoch whose EMA validated best.
- ``metrics.jsonl``: one JSON object per epoch (losses, top-1/top-5, the EMA's as ``val_ema_*``, the largest
  group learning rate, skipped videos, time).
- ``config.yaml``: the run's whole ``TrainConfig`` (recipe name included), written at the start; ``train
  --config OUTPUT/config.yaml`` runs it again.
- ``tensorboard/``: TensorBoard event files of the same numbers, with ``tensorboard=True``.

Across several nodes, ``output`` must be a folder every node sees (rank 0 writes, every rank resumes from it).
Rank 0 holds the folder's lock (``outputs.lock_output``) for the whole run: a second run into it is refused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import random
import re
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import save_file
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.models import get_pretrained_cfg
from timm.utils import ModelEmaV3
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from ..atomic import atomic_write
from ..devices import amp_dtype as resolve_amp
from ..errors import ConfigError, WeightsError
from ..factory import create_model
from ..models.registry import weights_of
from ..outputs import OutputWriteError, lock_output, remove_incomplete, write_output
from ..video import ClipSpec, crop_size, parse_views
from ..weights import read_checkpoint_metadata
from .config import TrainConfig
from .datasets import (
    VideoClipDataset,
    class_names_from_lists,
    collate_skipping,
    labels_unseen_in_training,
    read_label_names,
    read_video_list,
)
from .distributed import DistInfo, all_gather_objects, cleanup_distributed, init_distributed
from .loop import Optimisation, evaluate, max_lr, train_epoch
from .optim import create_optimizer, create_scheduler, freeze_backbone
from .tensorboard_log import TensorBoardLog

__all__ = ["TrainConfig", "train", "find_latest_checkpoint"]

_logger = logging.getLogger(__name__)

CHECKPOINT_GLOB = "checkpoint-epoch*.pt"
BEST_FILE = "best.safetensors"
METRICS_FILE = "metrics.jsonl"
_CHECKPOINT_KEYS = {"epoch", "model", "optimizer", "scheduler", "scaler", "sampler", "rng", "best_val_top1"}
_AFTER_WRITE_FAILED = "the epoch is not done: make room and continue with resume='auto' (--resume auto)"
CONFIG_FILE = "config.yaml"  # the run's TrainConfig; train --config reads it back
_SOURCE_KEYS = ("file", "url", "hf_hub_id", "hf_hub_filename", "hf_hub_revision", "state_dict")


# --- classes and model ---------------------------------------------------------------------------------------


def _weights_classes(config: TrainConfig) -> tuple[int | None, list[str] | None]:
    """Class count and label names of the weights the run starts from, read without building the model."""
    if config.checkpoint is not None:
        path = Path(config.checkpoint)
        if path.suffix != ".safetensors" or not path.is_file():
            return None, None
        cfg = read_checkpoint_metadata(path).get("pretrained_cfg")
        if isinstance(cfg, dict):
            return cfg.get("num_classes"), cfg.get("label_names")
        with safe_open(path, framework="pt") as f:  # a file without the zoo's metadata: its head's rows
            return (f.get_slice("head.weight").get_shape()[0] if "head.weight" in f.keys() else None), None
    name = config.model
    if name.startswith("hf-hub:") or "." not in name:
        return None, None
    cfg = get_pretrained_cfg(name)
    if cfg is None:
        return None, None
    return cfg.num_classes, list(cfg.label_names) if cfg.label_names else None


def _resolve_classes(config: TrainConfig) -> tuple[int, list[str] | None]:
    """(class count, label names or None) of the task; see ``TrainConfig``."""
    weights_count, weights_names = _weights_classes(config)
    lists = [config.train_list] + ([config.val_list] if config.val_list else [])
    head_from_weights = False
    if config.labels is not None:
        names = read_label_names(config.labels)
    elif (list_names := class_names_from_lists(*lists)) is not None:
        head_from_weights = bool(weights_names) and set(list_names) <= set(weights_names)
        if head_from_weights:
            names = list(weights_names)
        else:
            names = list_names
            _logger.info("a new task: %d classes named in the lists (sorted): %s", len(names), names[:10])
    else:
        count = config.num_classes or weights_count
        if not count:
            raise ConfigError(
                "the lists give integer labels and the starting weights have no classifier: give the class count "
                "(--num-classes) or the class names (--labels FILE)"
            )
        _refuse_unseen_val_labels(config, head_from_weights=count == weights_count)
        return count, weights_names if weights_names and len(weights_names) == count else None
    if config.num_classes is not None and config.num_classes != len(names):
        raise ConfigError(f"num_classes is {config.num_classes}, but there are {len(names)} class names")
    _refuse_unseen_val_labels(config, head_from_weights)
    return len(names), names


def _refuse_unseen_val_labels(config: TrainConfig, head_from_weights: bool) -> None:
    """A class only the validation list has cannot be learnt by a new head: refuse it, naming the labels."""
    if not config.val_list or head_from_weights:
        return
    unseen = labels_unseen_in_training(config.train_list, config.val_list)
    if unseen:
        raise ConfigError(
            f"{config.val_list} has labels that no line of {config.train_list} has: {unseen[:20]}"
            f"{' ...' if len(unseen) > 20 else ''}. A new classifier cannot learn classes it never sees: add "
            "training videos of them or remove those validation lines"
        )


def _build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    pretrained = config.checkpoint is None and (config.model.startswith("hf-hub:") or "." in config.model)
    model = create_model(
        config.model,
        pretrained=pretrained,
        checkpoint_path=config.checkpoint,
        num_classes=num_classes,
        **config.model_kwargs,
    )
    if config.grad_checkpointing:
        model.set_grad_checkpointing(True)
    return model


def _wrap(model: nn.Module, config: TrainConfig, info: DistInfo) -> nn.Module:
    """DDP (or FSDP with each block sharded) around ``model`` when there are several processes."""
    if config.fsdp:
        if not info.distributed:
            _logger.warning("fsdp=True in a single process: nothing to shard, training unsharded")
            return model
        for block in model.blocks:
            fully_shard(block)
        fully_shard(model)
        return model
    if info.distributed:
        return DistributedDataParallel(model, device_ids=[info.device] if info.device.type == "cuda" else None)
    return model


# --- RNG, checkpoints, exports ----------------------------------------------------------------------------------


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    """This process's random streams, in plain types and tensors (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _checkpoints(output: str | os.PathLike) -> dict[int, Path]:
    """The epoch checkpoints in ``output``, by epoch."""
    found = {}
    for path in Path(output).glob(CHECKPOINT_GLOB):
        match = re.fullmatch(r"checkpoint-epoch(\d+)\.pt", path.name)
        if match:
            found[int(match[1])] = path
    return found


def find_latest_checkpoint(output: str | os.PathLike) -> Path | None:
    """The checkpoint of the highest epoch in ``output``, or None."""
    found = _checkpoints(output)
    return found[max(found)] if found else None


def _export_cfg(model: nn.Module, num_classes: int, label_names: list[str] | None, note: str) -> dict[str, Any]:
    """The ``pretrained_cfg`` of the fine-tuned weights: the model's, with this task's classes."""
    cfg = {k: v for k, v in dict(model.pretrained_cfg).items() if k not in _SOURCE_KEYS}
    cfg.update(num_classes=num_classes, label_names=label_names, description=note)
    return cfg


def _save_best(
    path: Path, state_dict: dict[str, torch.Tensor], pretrained_cfg: dict[str, Any], metadata: dict[str, Any]
) -> None:
    tensors = {k: v.contiguous() for k, v in state_dict.items()}
    meta = {"format": "pt", "pretrained_cfg": json.dumps(pretrained_cfg)}
    meta.update({k: json.dumps(v) for k, v in metadata.items()})
    write_output(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta), _AFTER_WRITE_FAILED)


# --- the run --------------------------------------------------------------------------------------------------


def _loaders(
    config: TrainConfig, info: DistInfo, data_config: ClipSpec, train_samples: list, val_samples: list
) -> tuple[DataLoader, DataLoader, DistributedSampler, int]:
    """The train loader (a seeded ``DistributedSampler``, one shard per process) and the validation loader (this
    rank's shard, no padding duplicates), and the most validation batches any rank has."""
    train_set = VideoClipDataset(
        train_samples, data_config, is_training=True, augment=config.augment, auto_augment=config.auto_augment
    )
    val_set = VideoClipDataset(val_samples, data_config, is_training=False, views=parse_views(config.val_views))
    sampler = DistributedSampler(
        train_set, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=config.seed
    )
    common = dict(
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        collate_fn=collate_skipping,
        pin_memory=info.device.type == "cuda",
    )
    train_loader = DataLoader(train_set, sampler=sampler, **common)
    val_loader = DataLoader(val_set, sampler=range(info.rank, len(val_set), info.world_size), **common)
    max_val_batches = math.ceil(math.ceil(len(val_set) / info.world_size) / config.batch_size)
    return train_loader, val_loader, sampler, max_val_batches


def train(config: TrainConfig) -> dict[str, Any]:
    """Fine-tune ``config.model`` on ``config.train_list``, validating on ``config.val_list`` every epoch (with
    no ``val_list``: no validation, and ``best.safetensors`` holds the last epoch's weights).

    Works the same in one process and under torchrun (see the module docstring for the files written).

    Returns:
        The last epoch's metrics (the last line of ``metrics.jsonl``) plus ``best_val_top1`` and the paths of
        ``checkpoint``, ``best`` and ``metrics``.

    Raises:
        VideoListError: a list names missing files, labels outside the class range or unknown names (every bad
            line is named), before any training step.
    """
    info = init_distributed(config.device)
    saved = (  # global switches of deterministic=True, put back afterwards
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
    )
    try:
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        with ExitStack() as held:  # the output folder's lock (rank 0), released however the run ends
            return _run(config, info, held)
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark = saved[2]
        cleanup_distributed()


def _run(config: TrainConfig, info: DistInfo, held: ExitStack) -> dict[str, Any]:
    # the lists first: a bad line is refused before a model is built or a file written
    num_classes, label_names = _resolve_classes(config)
    read = dict(data_root=config.data_root, label_names=label_names, num_classes=num_classes)
    train_samples = read_video_list(config.train_list, **read)
    validate = bool(config.val_list)
    val_samples = read_video_list(config.val_list, **read) if validate else []
    output = Path(config.output)
    resume_path = _resume_path(config, output)

    _seed_everything(config.seed)  # the same initial weights on every rank (FSDP shards them in place)
    model = _build_model(config, num_classes).to(info.device)
    if config.freeze_backbone:
        _logger.info("freeze_backbone: training only %s", ", ".join(freeze_backbone(model)))
    if info.is_main:  # only now: weights that cannot be had leave no empty run folder behind
        held.enter_context(lock_output(output, "train"))  # creates the folder; a second writer is refused
        remove_incomplete(output)  # the temporary file of a write a killed run did not finish
        output.mkdir(parents=True, exist_ok=True)
        atomic_write(output / CONFIG_FILE, lambda tmp: tmp.write_text(config.to_yaml(), encoding="utf-8"))
        if not validate:
            _logger.warning(
                "no validation list (--val-list): no validation; %s holds the last epoch's weights", output / BEST_FILE
            )
    data_config = weights_of(model)
    if config.train_scale is not None:
        data_config = data_config.replace(train_scale=config.train_scale)
    train_loader, val_loader, sampler, max_val_batches = _loaders(config, info, data_config, train_samples, val_samples)
    _seed_everything(config.seed + info.rank)  # augmentation differs across ranks

    net = model
    model = _wrap(net, config, info)
    optimizer = create_optimizer(net, config, info.world_size)
    updates_per_epoch = math.ceil(len(train_loader) / config.accum_steps)
    amp_dtype = resolve_amp(config.amp, info.device)
    source = config.checkpoint or config.model
    export_cfg = _export_cfg(net, num_classes, label_names, f"fine-tuned from {source} on {config.train_list}")
    opt = Optimisation(
        optimizer,
        create_scheduler(optimizer, config, updates_per_epoch),
        torch.amp.GradScaler(info.device.type, enabled=amp_dtype == torch.float16),
        criterion=_training_loss(config),
        mixup=_mixup(config, num_classes),
        ema=ModelEmaV3(net, decay=config.ema_decay, use_warmup=True) if config.ema_decay else None,
    )
    run = _Run(net, optimizer, opt.scheduler, opt.scaler, sampler, num_classes, label_names, ema=opt.ema)
    start_epoch = run.load(resume_path, info) if resume_path is not None else 0
    opt.updates = run.updates
    opt.scheduler.step_update(num_updates=opt.updates)  # the lr (and each group's lr_scale) of the first update
    metrics_path = output / METRICS_FILE
    if info.is_main:
        _truncate_metrics(metrics_path, start_epoch)
        if resume_path is not None:
            run.reconcile_best(output, resume_path, start_epoch, config, export_cfg)

    log = TensorBoardLog(output) if config.tensorboard and info.is_main else None

    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)  # validation
    dummy_clip = torch.zeros(1, 3, data_config.num_frames, *crop_size(data_config))
    source = config.checkpoint or config.model
    export_cfg = _export_cfg(net, num_classes, label_names, f"fine-tuned from {source} on {config.train_list}")
    row: dict[str, Any] = {}
    checkpoint_path = resume_path
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        desc = f"epoch {epoch + 1}/{config.epochs}"
        train_stats = train_epoch(model, train_loader, opt, config, info, amp_dtype, dummy_clip, desc)
        val_stats, ema_stats = {"skipped": []}, {}
        if validate:
            args = (val_loader, criterion, config, info, amp_dtype, dummy_clip, max_val_batches)
            val_stats = evaluate(model, *args, f"{desc} val")
            if opt.ema is not None:
                ema_stats = evaluate(opt.ema.module, *args, f"{desc} val ema")
                ema_stats.pop("skipped")
            top1 = (ema_stats if config.ema_best else val_stats)["top1"]
            is_best = top1 > run.best_top1
            run.best_top1 = max(run.best_top1, top1)
        else:  # the last epoch's weights are the ones kept
            is_best = True
        train_skipped, val_skipped = train_stats.pop("skipped"), val_stats.pop("skipped")
        row = {
            "epoch": epoch + 1,
            "lr": max_lr(optimizer),
            **{f"train_{k}": v for k, v in train_stats.items()},
            **{f"val_{k}": v for k, v in val_stats.items()},
            **{f"val_ema_{k}": v for k, v in ema_stats.items()},
            "best_val_top1": run.best_top1 if validate else None,
            "skipped_train": len(train_skipped),
            "skipped_val": len(val_skipped),
            "skipped_videos": (train_skipped + val_skipped)[:20],
            "world_size": info.world_size,
            "epoch_seconds": round(time.perf_counter() - started, 3),
        }
        run.updates = opt.updates
        best_state = opt.ema.module.state_dict() if config.ema_best and is_best else None
        checkpoint_path = run.save(output, epoch + 1, config, info, export_cfg if is_best else None, row, best_state)
        if info.is_main:
            if log is not None:
                log.epoch(row)
            _report_epoch(row, train_skipped + val_skipped)
    if log is not None:
        log.close()
    return dict(
        row,
        best_val_top1=run.best_top1 if validate else None,
        checkpoint=str(checkpoint_path) if checkpoint_path else None,
        best=str(output / BEST_FILE) if (output / BEST_FILE).is_file() else None,
        metrics=str(metrics_path),
        config=str(output / CONFIG_FILE),
    )


def _training_loss(config: TrainConfig) -> nn.Module:
    """Cross-entropy with label smoothing; on Mixup's soft targets (which carry the smoothing) timm's
    ``SoftTargetCrossEntropy``."""
    if config.mixup or config.cutmix:
        return SoftTargetCrossEntropy()
    return nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)


def _mixup(config: TrainConfig, num_classes: int) -> Mixup | None:
    if not (config.mixup or config.cutmix):
        return None
    return Mixup(
        mixup_alpha=config.mixup,
        cutmix_alpha=config.cutmix,
        prob=config.mixup_prob,
        label_smoothing=config.label_smoothing,
        num_classes=num_classes,
    )


def _report_epoch(row: dict[str, Any], skipped: list[str]) -> None:
    line = f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} top-1 {row['train_top1']:.2f}"
    if "val_top1" in row:
        line += (
            f" | val loss {row['val_loss']:.4f} top-1 {row['val_top1']:.2f} top-5 {row['val_top5']:.2f} "
            f"(best {row['best_val_top1']:.2f})"
        )
    if "val_ema_top1" in row:
        line += f" | ema top-1 {row['val_ema_top1']:.2f}"
    tqdm.write(file=sys.stderr, s=line)
    if skipped:
        _logger.warning("skipped %d unreadable video(s) this epoch: %s", len(skipped), ", ".join(skipped[:20]))


def _resume_path(config: TrainConfig, output: Path) -> Path | None:
    """The checkpoint to continue from; a fresh start into a folder that holds checkpoints is refused."""
    if config.resume is None:
        if find_latest_checkpoint(output) is not None:
            raise ConfigError(
                f"{output} holds checkpoints of an earlier run: continue it with resume='auto' (--resume auto), or "
                "write to another output folder"
            )
        return None
    if config.resume == "auto":
        path = find_latest_checkpoint(output)
        if path is None:
            _logger.info("resume=auto: no checkpoint in %s, starting from scratch", output)
        return path
    path = Path(config.resume)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from at {path}")
    return path


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """A trainer checkpoint, read with ``weights_only=True`` (nothing in it is executed).

    Raises:
        WeightsError: the file is not a checkpoint this trainer wrote (a pickle of other objects, another
            program's checkpoint, not a torch file at all).
    """
    expected = f"expected a checkpoint-epochNNN.pt written by tokshift-zoo train; {path}"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's advice to load it unsafely is not passed on
        found = [line.strip() for line in str(err).splitlines() if "Unsupported global" in line]
        if not found:
            raise WeightsError(f"{expected} is not a torch checkpoint that can be read (not a pickle)") from None
        raise WeightsError(
            f"{expected} holds pickled objects that are not plain tensors and types, and it was not executed "
            f"({found[0].split('WeightsUnpickler error: ')[-1][:200]})"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        raise WeightsError(f"{expected} is not a torch checkpoint that can be read ({err})") from None
    missing = sorted(_CHECKPOINT_KEYS - state.keys()) if isinstance(state, dict) else None
    if missing is None or missing:
        found = f"a dict without {missing}" if missing else type(state).__name__
        raise WeightsError(f"{expected} holds {found}")
    return state


def _append_metrics(path: Path, row: dict[str, Any]) -> None:
    """One epoch's line, on disk (fsync) before the checkpoint that marks the epoch done is written."""
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise OutputWriteError(f"could not write {path}: {err}; {_AFTER_WRITE_FAILED}") from err


def _truncate_metrics(path: Path, epochs_done: int) -> None:
    """Keep the metrics of the epochs a resumed run does not redo (all of them on a fresh start: none); the
    lines of epochs a killed run did not finish go, a line torn by the kill included."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            epoch = json.loads(line)["epoch"]
        except (ValueError, KeyError, TypeError):  # a torn last line, or a blank one
            continue
        if epoch <= epochs_done:
            kept.append(line)
    atomic_write(path, lambda tmp: tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8"))


@dataclass
class _Run:
    """What a checkpoint restores: the training objects and the task they train for."""

    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    sampler: DistributedSampler
    num_classes: int
    label_names: list[str] | None
    best_top1: float = -1.0
    best_epoch: int | None = None
    ema: ModelEmaV3 | None = None
    updates: int = 0  # optimiser updates done: the clock of timm's schedule

    def save(
        self,
        output: Path,
        epoch: int,
        config: TrainConfig,
        info: DistInfo,
        best_cfg: dict | None,
        row: dict[str, Any],
        best_state: dict[str, torch.Tensor] | None = None,
    ) -> Path:
        """End an epoch: the best model when ``best_cfg`` is given (``best_state``, e.g. the EMA weights, instead of
        the model's), then the epoch's metrics line, then its
        checkpoint, which marks the epoch done; every rank takes part (FSDP gathers the full state to rank 0, and
        every rank's RNG state is collected). In this order a kill or a full disk at any point leaves a folder
        that resumes from the previous epoch and redoes this one, its best weights and its line included."""
        if best_cfg is not None:
            self.best_epoch = epoch
        model_state, optim_state = get_state_dict(
            self.net, self.optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        rng_states = all_gather_objects(_rng_state())
        path = output / f"checkpoint-epoch{epoch:03d}.pt"
        if not info.is_main:
            return path
        state = {
            "epoch": epoch,
            "model": model_state,
            "optimizer": optim_state,
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": {"seed": self.sampler.seed, "epoch": epoch},
            "rng": rng_states,
            "best_val_top1": self.best_top1,
            "best_epoch": self.best_epoch,
            "num_classes": self.num_classes,
            "label_names": self.label_names,
            "config": json.dumps(asdict(config)),
        }
        state["updates"] = self.updates
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if best_cfg is not None:
            best = model_state if best_state is None else best_state
            self._save_best(output, epoch, config, best, best_cfg)
        _append_metrics(output / METRICS_FILE, row)
        write_output(path, lambda tmp: torch.save(state, tmp), _AFTER_WRITE_FAILED)
        for done, stale in _checkpoints(output).items():  # older ones, and later ones of an abandoned branch
            if not epoch - config.keep_checkpoints < done <= epoch:
                stale.unlink()
        return path

    def _save_best(
        self, output: Path, epoch: int, config: TrainConfig, model_state: dict[str, torch.Tensor], best_cfg: dict
    ) -> None:
        meta = {
            "architecture": best_cfg.get("architecture"),
            "model_kwargs": dict(config.model_kwargs, num_classes=self.num_classes),
            "weights": weights_of(self.net).replace(sha256=None).to_dict(),
            "epoch": epoch,
            "val_top1": self.best_top1 if self.best_top1 >= 0 else None,
        }
        _save_best(output / BEST_FILE, model_state, best_cfg, meta)

    def reconcile_best(
        self, output: Path, checkpoint: Path, epochs_done: int, config: TrainConfig, best_cfg: dict
    ) -> None:
        """Rank 0, after ``load``: make ``best.safetensors`` agree with the checkpoint resumed from.

        The checkpoint's best epoch: kept. From an epoch the checkpoint does not count (an attempt killed before
        its checkpoint, an abandoned branch) and at least as good: kept, as the best so far, so that only a
        better epoch replaces it. Missing (an older zoo killed between checkpoint and best), or worse, and the
        checkpoint's own epoch is the best: written again from the checkpoint, with the weights the run keeps
        (the EMA's under ``ema_best``, as ``save`` wrote them). Otherwise the best of the epochs still to run is
        kept (with a warning).
        """
        path = output / BEST_FILE
        try:
            meta = read_checkpoint_metadata(path) if path.is_file() else None
        except Exception as err:  # noqa: BLE001 - a damaged file is replaced, whatever its reader says
            _logger.warning("%s cannot be read (%s): it is replaced", path, err)
            meta = None
        epoch, found = (meta.get("epoch"), meta.get("val_top1")) if meta is not None else (None, None)
        if meta is not None and (
            epoch == self.best_epoch or (self.best_epoch is None and isinstance(epoch, int) and epoch <= epochs_done)
        ):  # the checkpoint's best (a checkpoint of an older zoo does not say which epoch that was)
            return
        if isinstance(found, (int, float)) and found >= self.best_top1 >= 0:
            self.best_top1, self.best_epoch = float(found), epoch
            _logger.warning(
                "%s holds epoch %s (val top-1 %.2f), which the checkpoint of epoch %d does not count: kept as the "
                "best so far (delete it to start the best over)",
                path,
                epoch,
                found,
                epochs_done,
            )
            return
        if self.best_epoch == epochs_done:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
            if config.ema_best:  # ModelEmaV3's state: the EMA model's under "module."
                best = {k.removeprefix("module."): v for k, v in state["ema"].items()}
            else:
                best = state["model"]
            self._save_best(output, epochs_done, config, best, best_cfg)
            _logger.warning(
                "%s written again from the checkpoint of epoch %d, its best epoch%s",
                path,
                epochs_done,
                " (its EMA weights: ema_best)" if config.ema_best else "",
            )
            return
        _logger.warning(
            "%s is %s and the checkpoint of the best epoch (%s) is gone: the best of the epochs to come replaces it",
            path,
            "missing" if meta is None else f"of epoch {epoch}",
            self.best_epoch,
        )
        self.best_top1, self.best_epoch = -1.0, None

    def load(self, path: Path, info: DistInfo) -> int:
        """Restore everything from a checkpoint, on every rank; returns the epochs it had done."""
        state = _read_checkpoint(path)
        if state["num_classes"] != self.num_classes or state["label_names"] != self.label_names:
            raise ConfigError(
                f"{path} was trained for {state['num_classes']} classes {state['label_names'] or ''}; this run has "
                f"{self.num_classes} {self.label_names or ''}: resume only the same task"
            )
        set_state_dict(
            self.net,
            self.optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optimizer"],
            options=StateDictOptions(full_state_dict=True),
        )
        self.scheduler.load_state_dict(state["scheduler"])
        self.updates = state["updates"]
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.scaler.load_state_dict(state["scaler"])
        self.sampler.seed = state["sampler"]["seed"]
        self.best_top1 = state["best_val_top1"]
        self.best_epoch = state.get("best_epoch")
        if len(state["rng"]) == info.world_size:
            _set_rng_state(state["rng"][info.rank])
        else:
            _logger.warning(
                "%s was written by %d processes, this run has %d: the random streams go on from the seed, so the "
                "run continues but not bit-for-bit",
                path,
                len(state["rng"]),
                info.world_size,
            )
        if info.is_main:
            _logger.info("resumed from %s after epoch %d", path, state["epoch"])
        return state["epoch"]

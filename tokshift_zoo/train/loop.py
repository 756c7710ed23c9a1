"""One training epoch and one validation pass: the inner loops of the trainer, with the kit's per-step pieces.

A training step: (Mixup/CutMix on the clips) -> forward under autocast -> loss -> backward (gradient sync
skipped on accumulation micro-steps) -> on the last micro-step: gradient clipping, the optimiser step, timm's
``scheduler.step_update`` and the EMA update. Validation averages the logits of a video's views.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from timm.data import Mixup
from timm.scheduler.scheduler import Scheduler
from timm.utils import ModelEmaV3
from torch.distributed.fsdp import FSDPModule
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..devices import autocast
from ..metrics import topk_hits
from .config import TrainConfig
from .distributed import DistInfo, all_gather_objects, all_reduce_sum

__all__ = ["Optimisation", "EpochStats", "train_epoch", "evaluate", "unwrap"]


@dataclass
class Optimisation:
    """What a training step uses and changes: the optimiser, timm's schedule, the grad scaler, the training loss,
    the optional Mixup and EMA, and the count of optimiser updates so far (the schedule's clock)."""

    optimizer: torch.optim.Optimizer
    scheduler: Scheduler
    scaler: torch.amp.GradScaler
    criterion: nn.Module
    mixup: Mixup | None = None
    ema: ModelEmaV3 | None = None
    updates: int = 0


@dataclass
class EpochStats:
    loss_sum: torch.Tensor
    top1: torch.Tensor
    top5: torch.Tensor
    count: torch.Tensor
    skipped: list[str] = field(default_factory=list)

    @classmethod
    def zeros(cls, device: torch.device) -> EpochStats:
        return cls(*(torch.zeros((), dtype=torch.float64, device=device) for _ in range(4)))

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        n = labels.numel()
        hits = topk_hits(logits, labels)
        self.loss_sum += loss.detach().double() * n
        self.top1 += hits[1].sum()
        self.top5 += hits[5].sum()
        self.count += n

    def reduce(self) -> dict[str, Any]:
        """Sum over all processes -> mean loss, top-1/top-5 (%) and the skipped videos of every rank."""
        totals = all_reduce_sum(torch.stack([self.loss_sum, self.top1, self.top5, self.count])).tolist()
        loss_sum, top1, top5, count = totals
        skipped = sorted({p for rank_paths in all_gather_objects(self.skipped) for p in rank_paths})
        div = max(count, 1)
        return dict(
            loss=loss_sum / div, top1=100 * top1 / div, top5=100 * top5 / div, samples=int(count), skipped=skipped
        )


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DDP (FSDP modules are the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def _batches(loader: DataLoader, desc: str, show: bool) -> tqdm:
    return tqdm(loader, desc=desc, disable=not show, dynamic_ncols=True, leave=False)


@contextmanager
def _gradient_sync(model: nn.Module, sync: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on accumulation micro-steps (DDP ``no_sync``, FSDP's switch)."""
    if isinstance(model, DistributedDataParallel) and not sync:
        with model.no_sync():
            yield
        return
    if isinstance(model, FSDPModule):
        model.set_requires_gradient_sync(sync)
    yield


def _mix(mixup: Mixup, clips: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """timm's Mixup/CutMix on whole clips: (B, 3, T, H, W) is seen as B images of 3*T channels, so that one
    CutMix box covers every frame. An odd batch (timm mixes pairs) leaves out its last clip.

    Returns:
        the mixed clips, the soft targets (B, classes) and the hard labels of the clips kept.
    """
    keep = len(clips) - len(clips) % 2
    clips, labels = clips[:keep].contiguous(), labels[:keep]
    images, targets = mixup(clips.flatten(1, 2), labels)  # mixes in place: (B, 3*T, H, W) is a view of clips
    return images.unflatten(1, clips.shape[1:3]), targets, labels


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    opt: Optimisation,
    config: TrainConfig,
    info: DistInfo,
    amp_dtype: torch.dtype | None,
    dummy_clip: torch.Tensor,
    desc: str,
) -> dict[str, Any]:
    """One pass over this rank's shard of ``loader``; returns the reduced ``EpochStats`` (the loss is the
    training loss, on mixed targets with Mixup; top-1 is against the clips' own labels)."""
    model.train()
    stats = EpochStats.zeros(info.device)
    bar = _batches(loader, desc, info.is_main and config.progress)
    trained = [p for p in model.parameters() if p.requires_grad]
    for i, (clips, labels, skipped) in enumerate(bar):
        stats.skipped += [s.path for s in skipped]
        last_micro = (i + 1) % config.accum_steps == 0 or i + 1 == len(loader)
        weight = 1.0
        if clips is None or (opt.mixup is not None and len(clips) < 2):  # nothing (to mix): keep in step
            clips, labels, weight = dummy_clip, torch.zeros(1, dtype=torch.long), 0.0
        clips = clips.to(info.device, non_blocking=True)
        labels = labels.to(info.device, non_blocking=True)
        targets = labels
        if opt.mixup is not None and weight:
            clips, targets, labels = _mix(opt.mixup, clips, labels)
        elif opt.mixup is not None:  # the dummy step: soft targets of the right shape
            targets = nn.functional.one_hot(labels, unwrap(model).num_classes).float()
        with _gradient_sync(model, last_micro):
            with autocast(info.device, amp_dtype):
                logits = model(clips)
            loss = opt.criterion(logits.float(), targets)
            opt.scaler.scale(loss * (weight / config.accum_steps)).backward()
        if weight:
            stats.add(loss, logits.float(), labels)
        if last_micro:
            if config.clip_grad > 0:
                opt.scaler.unscale_(opt.optimizer)
                nn.utils.clip_grad_norm_(trained, config.clip_grad)
            opt.scaler.step(opt.optimizer)
            opt.scaler.update()
            opt.optimizer.zero_grad(set_to_none=True)
            opt.updates += 1
            opt.scheduler.step_update(num_updates=opt.updates)
            if opt.ema is not None:
                opt.ema.update(unwrap(model), step=opt.updates)
        if info.is_main and config.progress and weight:
            bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{max_lr(opt.optimizer):.3g}")
    return stats.reduce()


def max_lr(optimizer: torch.optim.Optimizer) -> float:
    """The largest learning rate of the groups (the head's, under layer decay)."""
    return max(group["lr"] for group in optimizer.param_groups)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    criterion: nn.Module,
    config: TrainConfig,
    info: DistInfo,
    amp_dtype: torch.dtype | None,
    dummy_clip: torch.Tensor,
    max_batches: int,
    desc: str,
) -> dict[str, Any]:
    """Validation on this rank's shard: a video's logits are the mean over its views (clips (B, V, 3, T, H, W)
    from a multi-view loader). FSDP ranks with a shorter shard run dummy forwards to keep their all-gathers in
    step."""
    net = unwrap(model)
    net.eval()
    stats = EpochStats.zeros(info.device)
    sharded = config.fsdp and info.distributed
    dummy_forwards = max_batches - len(loader) if sharded else 0
    for clips, labels, skipped in _batches(loader, desc, info.is_main and config.progress):
        stats.skipped += [s.path for s in skipped]
        if clips is None:
            dummy_forwards += sharded
            continue
        clips, labels = clips.to(info.device, non_blocking=True), labels.to(info.device, non_blocking=True)
        with autocast(info.device, amp_dtype):
            if clips.ndim == 6:  # (B, V, 3, T, H, W) -> (B*V, ...) -> logits (B, V, K) -> mean over views
                logits = net(clips.flatten(0, 1)).float().unflatten(0, clips.shape[:2]).mean(dim=1)
            else:
                logits = net(clips).float()
        stats.add(criterion(logits, labels), logits, labels)
    for _ in range(dummy_forwards):
        with autocast(info.device, amp_dtype):
            net(dummy_clip.to(info.device))
    return stats.reduce()

"""The optimiser, its learning-rate schedule and what trains: timm's tools, configured from a ``TrainConfig``.

- ``create_optimizer``: ``timm.optim.create_optimizer_v2``, with layer-wise lr decay (timm's
  ``param_groups_layer_decay`` over the model's ``group_matcher``: the stem, each block, then the final norm and
  the head) and the linear scaling rule (``lr_base_size``).
- ``create_scheduler``: ``timm.scheduler.create_scheduler_v2`` stepped per optimiser update (warm-up, the
  multi-step or cosine decay), which also applies each group's ``lr_scale``.
- ``freeze_backbone``: only the classifier keeps ``requires_grad`` (a linear probe).
"""

from __future__ import annotations

import logging

import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.scheduler.scheduler import Scheduler
from torch import nn

from .config import TrainConfig

__all__ = ["scaled_lr", "create_optimizer", "create_scheduler", "freeze_backbone"]

_logger = logging.getLogger(__name__)

_WARMUP_LR = 1e-5  # timm's start of the warm-up


def scaled_lr(config: TrainConfig, world_size: int) -> float:
    """``config.lr``, scaled by the linear rule when ``lr_base_size`` is set: ``lr * clips / lr_base_size`` with
    ``clips = batch_size * world_size`` per step (gradient accumulation not counted, as the authors')."""
    if config.lr_base_size is None:
        return config.lr
    return config.lr * config.batch_size * world_size / config.lr_base_size


def freeze_backbone(model: nn.Module) -> list[str]:
    """Stop gradients everywhere but the classifier (``model.get_classifier()``); returns the trained names."""
    head = {id(p) for p in model.get_classifier().parameters()}
    trained = []
    for name, param in model.named_parameters():
        param.requires_grad_(id(param) in head)
        if id(param) in head:
            trained.append(name)
    return trained


def create_optimizer(model: nn.Module, config: TrainConfig, world_size: int) -> torch.optim.Optimizer:
    """timm's optimiser over the parameters that train (``requires_grad``), at ``scaled_lr``.

    SGD is timm's ``momentum`` (plain momentum, as the paper; timm's ``sgd`` is Nesterov). With ``layer_decay``
    each group carries ``lr_scale = layer_decay ** (num_layers - layer)``: the head 1, the last block
    ``layer_decay``, ..., the patch embedding and position embedding the smallest.
    """
    lr = scaled_lr(config, world_size)
    if lr != config.lr:
        _logger.info(
            "lr %.4g for %d clips per step (%.4g for %d)",
            lr,
            config.batch_size * world_size,
            config.lr,
            config.lr_base_size,
        )
    return create_optimizer_v2(
        model,
        opt="momentum" if config.optimizer == "sgd" else "adamw",
        lr=lr,
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        layer_decay=config.layer_decay,
    )


def create_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, updates_per_epoch: int) -> Scheduler:
    """timm's schedule, per optimiser update: ``scheduler.step_update(n)`` after update ``n``.

    ``step``: lr x ``lr_gamma`` at each epoch of ``lr_steps``; ``cosine``: from the lr to ``min_lr`` over the
    run. Both after ``warmup_epochs`` of linear warm-up from 1e-5.
    """
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched="multistep" if config.sched == "step" else "cosine",
        num_epochs=config.epochs,
        decay_milestones=list(config.lr_steps),
        decay_rate=config.lr_gamma,
        min_lr=config.min_lr,
        warmup_lr=_WARMUP_LR,
        warmup_epochs=config.warmup_epochs,
        step_on_epochs=False,
        updates_per_epoch=updates_per_epoch,
    )
    return scheduler

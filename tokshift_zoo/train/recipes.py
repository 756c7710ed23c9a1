"""Named training recipes: ``TrainConfig`` values that go together (``--recipe NAME``, ``TrainConfig.from_recipe``).

A recipe fills the fields it names; anything given explicitly (keyword, ``--config`` file, command-line flag)
wins over it. No torch here, so ``--help`` stays light.

- ``paper``: the authors' training as they ran it (``main_ddp_shift_v3.py``, ``data/augmentation.py``,
  ``data/dataset.py`` and ``config/custom/kinetics400/k400_tokshift_div4_8x32_base_224.yml`` of
  VideoNetworks/TokShift-Transformer): SGD, momentum 0.9, no weight decay, lr 0.1 for 42 clips per step
  (2 GPUs x 21; scaled linearly to this run's clips per step across processes, gradient accumulation not
  counted, as their config's comment says), 10 accumulation steps, lr x0.1 at epochs 10, 15 and 18 of 18
  (``MultiStepLR``), ``LabelSmoothingCrossEntropy()`` with its default smoothing 0.1 (the yml's ``LABEL_SMOOTH:
  0.01`` is only tested for truth), gradient norm clipped at 1.0, and their ``Train_ClipAug``: flip, bicubic
  short-side resize to ``randint(224, 330)`` and random crop, then brightness, saturation, gamma and hue each
  with probability 0.1 (``augment="paper"``, see ``tokshift_zoo.video.transforms.PaperClipAugment``), clip
  starts drawn from ``randint(0, L - 256)``.
- ``small-data``: fine-tuning a zoo model on a few hundred clips (docs/benchmarks.md, "Fine-tuning on a few
  hundred clips", measures it against training from scratch and a linear probe).
"""

from __future__ import annotations

from typing import Any

__all__ = ["RECIPES", "PAPER_LR_BASE_SIZE"]

PAPER_LR_BASE_SIZE = 42  # clips per step (2 GPUs x 21) that the authors' lr 0.1 is for

RECIPES: dict[str, dict[str, Any]] = {
    "paper": dict(
        optimizer="sgd",
        sched="step",
        lr=0.1,
        lr_base_size=PAPER_LR_BASE_SIZE,
        momentum=0.9,
        weight_decay=0.0,
        epochs=18,
        batch_size=21,
        accum_steps=10,
        lr_steps=(10, 15, 18),
        lr_gamma=0.1,
        warmup_epochs=0.0,
        label_smoothing=0.1,
        clip_grad=1.0,
        augment="paper",
    ),
    "small-data": dict(
        optimizer="adamw",
        sched="cosine",
        lr=5e-3,  # the new head's; block k of n gets 5e-3 x 0.75 ** (n + 1 - k)
        weight_decay=0.05,
        layer_decay=0.75,
        warmup_epochs=1.0,
        epochs=12,
        batch_size=16,
        label_smoothing=0.1,
        clip_grad=1.0,
        ema_decay=0.99,
        ema_best=True,
    ),
}

"""Classification metrics shared by evaluation and training: top-k hits and mean per-class accuracy."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["mean_class_accuracy", "topk_hits"]


def topk_hits(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, torch.Tensor]:
    """Whether each sample's label is among its ``k`` highest logits, for each ``k`` in ``ks``.

    Args:
        logits: (N, C) scores.
        labels: (N,) class indices.
        ks: the k's; a k above C counts every class (top-5 of 4 classes is always a hit).

    Returns:
        ``{k: (N,) bool}``.
    """
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices  # (N, max k)
    hits = top == labels[:, None]
    return {k: hits[:, :k].any(dim=1) for k in ks}


def mean_class_accuracy(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Accuracy (%) of each class that occurs in ``labels``, averaged over those classes.

    Args:
        predicted, labels: (N,) class indices.
    """
    correct = torch.zeros(num_classes).index_add_(0, labels, (predicted == labels).float())
    total = torch.zeros(num_classes).index_add_(0, labels, torch.ones(len(labels)))
    seen = total > 0
    return 100.0 * (correct[seen] / total[seen]).mean().item() if seen.any() else float("nan")

"""One call to a ready model: weights loaded and verified, on the right device and dtype, its protocol known.

timm returns a CPU model and leaves preprocessing to the user; torchvision hands the transforms over on a
separate weights object. ``load`` does both: the model comes back with ``model.weights`` (the record of the
weights loaded: verified sha256, sampling, the test views asked for, ``transforms()``), which ``predict`` and
``evaluate`` follow, and ``model.labels``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from .devices import resolve_device, resolve_dtype
from .factory import create_model
from .inference import class_names
from .models import list_models
from .video.sampling import parse_views

__all__ = ["load", "hub_entrypoints", "resolve_device", "resolve_dtype"]


def load(
    model_name: str | None,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    views: str | None = None,
    pretrained: bool | None = None,
    **kwargs: Any,
) -> nn.Module:
    """A zoo model with its weights, on ``device`` in ``dtype``, with the test views it will be run with.

    Args:
        model_name: ``name``, ``name.tag`` or ``hf-hub:ORG/REPO``. Its weights are loaded (verified downloads or
            the package's own file) unless ``checkpoint_path`` names a local file to load instead (then
            ``model_name`` may be None for a zoo safetensors file, which names its architecture).
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: ``None`` (float32), ``"bf16"``, ``"fp16"`` or a ``torch.dtype``.
        checkpoint_path: a local weight file (zoo safetensors, authors' ``.pth``, Google ``.npz``).
        views: the test views ``predict`` / ``evaluate`` run by default, ``"CLIPSxCROPS"``; None: the weights'
            own test protocol (``"10x3"`` for the k400 tags, the paper's).
        pretrained: load the tag's weights (default: yes, unless ``checkpoint_path`` is given). False gives a
            randomly initialised model, ready in the same way (device, dtype, preprocessing), in train mode.
        **kwargs: ``create_model`` overrides. ``num_classes`` different from the weights' gives a fresh head
            and a model in train mode, ready to fine-tune.

    Returns:
        The model, in eval mode (train mode with a fresh head), with ``model.weights``: its weights record with
        these views (``VideoPreprocess(model.weights, device=..., dtype=...)`` turns a video into its views); and
        ``model.labels``: the class names (or None).
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype)
    pretrained = checkpoint_path is None if pretrained is None else pretrained
    model = create_model(model_name, pretrained=pretrained, checkpoint_path=checkpoint_path, **kwargs)
    report = getattr(model, "load_report", None)
    fresh_head = report is None or any(key.startswith("head.") for key in report.reinitialised)
    model = model.to(device=device, dtype=dtype).train(fresh_head)
    if views is not None:
        model.weights = model.weights.with_views(*parse_views(views))
    model.labels = None if fresh_head else class_names(model)
    return model


def hub_entrypoints() -> dict[str, Callable[..., nn.Module]]:
    """``torch.hub`` entry points, one per zoo model: ``name(tag=None, device="auto", dtype=None, pretrained=None,
    **kwargs)`` returns ``load(name[.tag], device, dtype, pretrained=pretrained, **kwargs)``."""

    def entry(name: str) -> Callable[..., nn.Module]:
        def build(
            tag: str | None = None,
            device: str = "auto",
            dtype: Any = None,
            pretrained: bool | None = None,
            **kwargs: Any,
        ) -> nn.Module:
            return load(f"{name}.{tag}" if tag else name, device=device, dtype=dtype, pretrained=pretrained, **kwargs)

        build.__name__ = name
        build.__doc__ = f"{name}: a ready model, see tokshift_zoo.load. Tags: " + ", ".join(
            entry.split(".", 1)[1] for entry in list_models(f"{name}.*", pretrained=True)
        )
        return build

    return {name: entry(name) for name in list_models()}

"""``create_model``: timm's factory, plus the zoo's loading of local checkpoints in any supported format; and
``resolve_data_config``: the weights record of a model or of a name, fitted to how the model is built."""

from __future__ import annotations

import os
from typing import Any

import timm
import torch
import torch.nn as nn

from . import models  # noqa: F401 - registers the zoo's models with timm
from .errors import ConfigError, WeightsError
from .models.registry import Weights, check_model_name, weights_of
from .models.tokshift import feature_model, pop_feature_args
from .weights import load_weights_file, read_checkpoint_metadata

__all__ = ["create_model", "read_checkpoint_metadata", "resolve_data_config"]


def create_model(
    model_name: str | None,
    pretrained: bool = False,
    checkpoint_path: str | os.PathLike | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a zoo model by name; the same signature as ``timm.create_model``.

    Args:
        model_name: ``name``, ``name.tag`` (see ``list_models(pretrained=True)``) or ``hf-hub:ORG/REPO``; may be
            None with a ``checkpoint_path`` whose metadata names the architecture.
        pretrained: load the tag's weights (downloaded and sha256-verified, or from the package).
        checkpoint_path: a local file loaded after building: the zoo's safetensors, an authors'-format ``.pth``
            or a Google ViT ``.npz``; the model takes the file's head (its class count), unless ``num_classes`` is
            given: then a head of another class count stays re-initialised, ready to fine-tune.
            A file written by the zoo (``convert``, the trainer's ``best.safetensors`` or its
            ``checkpoint-epochNNN.pt``) also gives the model's arguments, class names and weights record (its
            sampling and test protocol), unless ``kwargs`` say otherwise.
        **kwargs: model overrides as in timm (``num_classes``, ``img_size``, ``num_frames``, ``fold_div``,
            ``embed_dim``, ``depth``, ``num_heads``, ``drop_path_rate``, ``pretrained_cfg_overlay``, ...), and
            timm's ``features_only`` / ``out_indices`` / ``feature_cls`` (a feature extractor, see docs/timm.md).

    Raises:
        ConfigError: an unknown name or tag (the message suggests the closest ones).

    Returns:
        A ``VideoVisionTransformer`` taking (B, 3, T, H, W) clips and returning (B, num_classes) logits, with
        ``model.weights``: its weights record (file, verified sha256, sampling and test views, preset, meta).
        When weights were loaded, ``model.load_report`` (a ``weights.LoadReport``) lists the keys loaded,
        re-initialised and unused.
    """
    saved = read_checkpoint_metadata(checkpoint_path) if checkpoint_path is not None else {}
    model_name = model_name or saved.get("architecture")
    if not model_name:
        raise ConfigError(
            f"no model name given and {checkpoint_path} does not name its architecture: give it (--model NAME)"
        )
    check_model_name(model_name)
    kwargs = dict(saved.get("model_kwargs") or {}, **kwargs)
    if "pretrained_cfg" in saved and "pretrained_cfg_overlay" not in kwargs:
        cfg = saved["pretrained_cfg"]
        kwargs["pretrained_cfg_overlay"] = {
            k: cfg[k] for k in ("label_names", "num_classes", "mean", "std") if k in cfg
        }
    # features_only wraps the model, so with a checkpoint the wrapping waits until the weights are in
    features = pop_feature_args(kwargs) if checkpoint_path is not None else None
    model = timm.create_model(model_name, pretrained=pretrained, **kwargs)
    key = "weights" if "weights" in saved else "video_cfg"
    if key in saved:  # the file's own protocol, fitted to the model built from it
        saved_record = _checked_record(saved[key], key, checkpoint_path)
        model.weights = Weights.from_dict(saved_record, **model.weights.to_dict()).fit(model)
    if checkpoint_path is not None:  # the file's own head, unless a class count was asked for
        classes = model.num_classes
        model.load_report = load_weights_file(model, checkpoint_path, fit_head="num_classes" not in kwargs)
        model.weights = model.weights.replace(file=os.fspath(checkpoint_path), sha256=None)  # nothing pins it
        if model.num_classes != classes:  # the file's head replaced the record's
            model.weights = model.weights.fit(model)
    return feature_model(model, **features) if features is not None else model


def _checked_record(saved: Any, key: str, path: str | os.PathLike | None) -> dict[str, Any]:
    """A file's saved weights record (``weights``, or a former file's ``video_cfg``) as a dict; keys this zoo does
    not know are refused, naming those it does (the record's settings first, its identity and meta last)."""
    known = Weights.known_keys()
    if not isinstance(saved, dict):
        raise WeightsError(f"{path}: the metadata's {key} must be a JSON object, found {type(saved).__name__}")
    unknown = sorted(set(saved) - set(known))
    if unknown:
        raise WeightsError(
            f"{path}: the metadata's {key} has keys this tokshift-zoo does not know: {unknown} (known: "
            f"{', '.join(known)}); a newer zoo wrote it, or it was edited"
        )
    return saved


def resolve_data_config(model: nn.Module | str, **kwargs: Any) -> Weights:
    """The weights record a model's data goes through (input size, clip sampling and start rule, normalisation,
    test views), fitted to the model; the zoo's one ``resolve_data_config``.

    Args:
        model: a built zoo model (its ``model.weights``), or a ``name[.tag]`` / ``hf-hub:ORG/REPO`` (built on the
            meta device: no weights, no memory).
        **kwargs: with a name, the ``create_model`` overrides that change the input (``img_size``,
            ``num_frames``, ...).

    Returns:
        The record: ``create_transform(record)`` (or ``record.transforms()``) is its preset. It is not timm's
        image data config: ``timm.data.create_transform(**record)`` raises a ``ConfigError`` saying so (timm's
        own ``timm.data.resolve_data_config(model=model)`` gives the per-frame image settings).
    """
    if isinstance(model, str):
        with torch.device("meta"):
            model = create_model(model, **kwargs)
    return weights_of(model)

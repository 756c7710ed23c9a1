"""Checkpoint names -> the zoo's: the authors' release, timm's image ViT and the zoo's own state dicts.

Pure functions over state dicts, used by the weights loaders (``tokshift_zoo.weights``) and the converter; they
know nothing of where a file came from. The authors' release is ``torch.save`` of ``{'epoch', 'state_dict', ...}``
with keys ``module.base_model.`` + jeonsworld ViT-pytorch names; the zoo's model uses timm's ViT names.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from timm.layers import resample_abs_pos_embed
from timm.models import adapt_input_conv
from torch import nn

from ..errors import WeightsError

__all__ = ["MODEL_KWARG_LIMITS", "adapt_input_channels", "check_model_kwargs", "checkpoint_filter_fn", "needs_mapping"]

_AUTHORS_PREFIX = "transformer."
_WRAPPERS = ("module.", "_orig_mod.", "base_model.")
_AUTHORS_BLOCK_NAMES = {
    "attention_norm": "norm1",
    "ffn_norm": "norm2",
    "attn.out": "attn.proj",
    "ffn.fc1": "mlp.fc1",
    "ffn.fc2": "mlp.fc2",
}


# builder arguments that size the model, with the most a file may ask for: generous beyond any ViT trained (ViT-22B:
# width 6144, 48 blocks, 48 heads), far below what would exhaust memory before an error could say why
MODEL_KWARG_LIMITS: dict[str, tuple[type, float, float]] = {
    "depth": (int, 1, 256),
    "embed_dim": (int, 1, 16384),
    "num_heads": (int, 1, 1024),
    "patch_size": (int, 1, 1024),
    "img_size": (int, 1, 4096),
    "in_chans": (int, 1, 64),
    "num_classes": (int, 0, 1_000_000),
    "num_frames": (int, 1, 1024),
    "fold_div": (int, 0, 16384),
    "mlp_ratio": (float, 0.0, 64.0),
}
_MAX_TOKENS = 65536  # patches per frame: a 4096x4096 frame in 16x16 patches


def check_model_kwargs(kwargs: Any, source: Any, field: str = "model_kwargs") -> dict[str, Any]:
    """Refuse builder arguments read from a file (a checkpoint's metadata, a hub repo's or ``local-dir:``
    folder's ``config.json``) that no model could have, before any memory is allocated: each sizing argument must
    be a number within ``MODEL_KWARG_LIMITS`` (``img_size`` and ``patch_size`` also as a pair), with at most 65536
    patches per frame where both are given.

    Args:
        kwargs: the builder arguments found in the file.
        source: the file, named in the error.
        field: what the file calls them (``model_kwargs`` in the zoo's metadata, ``model_args`` in timm's
            ``config.json``), named in the error.

    Returns:
        ``kwargs``, unchanged.

    Raises:
        WeightsError: not a dict, or an argument out of range or of the wrong type (named, with its limits).
    """
    if not isinstance(kwargs, dict):
        raise WeightsError(f"{source}: {field} must be a JSON object, got {str(kwargs)[:100]}")
    for key, (kind, low, high) in MODEL_KWARG_LIMITS.items():
        if key not in kwargs:
            continue
        value = kwargs[key]
        values = value if key in ("img_size", "patch_size") and isinstance(value, list | tuple) else [value]
        for item in values:
            number_ok = isinstance(item, int | float) if kind is float else isinstance(item, int)
            if isinstance(item, bool) or not number_ok or not low <= item <= high or len(values) > 2:
                kind_name = "an integer" if kind is int else "a number"
                raise WeightsError(
                    f"{source}: {field} {key}={str(value)[:60]} is out of bounds: expected "
                    f"{kind_name} from {low:g} to {high:g}. Refusing to build a model from it."
                )
    if "img_size" not in kwargs or "patch_size" not in kwargs:  # the builder's own default fits
        return kwargs
    img, patch = kwargs["img_size"], kwargs["patch_size"]
    img = img if isinstance(img, list | tuple) else (img, img)
    patch = patch if isinstance(patch, list | tuple) else (patch, patch)
    tokens = (img[0] // patch[0]) * (img[-1] // patch[-1])
    if tokens > _MAX_TOKENS:
        raise WeightsError(
            f"{source}: {field} img_size={kwargs.get('img_size')}, patch_size={kwargs.get('patch_size')} "
            f"give {tokens} patches per frame, more than {_MAX_TOKENS}. Refusing to build a model from it."
        )
    return kwargs


def _strip_wrappers(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the DDP / TSN wrappers of the authors' training code (``module.``, ``base_model.``)."""
    out = {}
    for key, value in state_dict.items():
        for prefix in _WRAPPERS:
            key = key.removeprefix(prefix)
        out[key] = value
    return out


def _convert_authors(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map jeonsworld ViT-pytorch names (the authors' release) to timm's; unplaceable keys raise WeightsError."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    unmapped = []
    for key, value in state_dict.items():
        if key == "transformer.embeddings.cls_token":
            out["cls_token"] = value
        elif key == "transformer.embeddings.position_embeddings":
            out["pos_embed"] = value
        elif key.startswith("transformer.embeddings.patch_embeddings."):
            out["patch_embed.proj." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("transformer.encoder.encoder_norm."):
            out["norm." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("head."):
            out[key] = value
        elif m := re.fullmatch(r"transformer\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)", key):
            idx, name, kind = m.groups()
            if name in ("attn.query", "attn.key", "attn.value"):
                qkv.setdefault(f"blocks.{idx}.attn.qkv.{kind}", {})[name.split(".")[1]] = value
            elif name in _AUTHORS_BLOCK_NAMES:
                out[f"blocks.{idx}.{_AUTHORS_BLOCK_NAMES[name]}.{kind}"] = value
            else:
                unmapped.append(key)
        else:
            unmapped.append(key)
    for key, parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            unmapped.append(f"{key} (has only {sorted(parts)})")
            continue
        out[key] = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)
    if unmapped:
        raise WeightsError(f"cannot place these keys of an authors'-format checkpoint: {unmapped}")
    return out


def checkpoint_filter_fn(state_dict: dict[str, Any], model: nn.Module) -> dict[str, torch.Tensor]:
    """Turn any supported state dict into this model's names and sizes.

    Accepts the zoo's own state dicts, timm's image ViT state dicts, and the authors' release (a dict with
    ``state_dict`` whose keys are ``module.base_model.transformer...``). The position embedding is resampled
    with timm's ``resample_abs_pos_embed`` when the grid differs; ViT ``pre_logits`` are dropped; a patch
    embedding made for another channel count is adapted to the model's ``in_chans`` (``adapt_input_channels``).
    """
    state_dict = state_dict.get("state_dict", state_dict)
    state_dict = _strip_wrappers(state_dict)
    if any(k.startswith(_AUTHORS_PREFIX) for k in state_dict):
        state_dict = _convert_authors(state_dict, model)
    out = {}
    for key, value in state_dict.items():
        if "pre_logits" in key:
            continue
        if key == "pos_embed" and value.shape != model.pos_embed.shape:
            num_prefix = model.num_prefix_tokens
            old_side = int(round((value.shape[1] - num_prefix) ** 0.5))
            value = resample_abs_pos_embed(
                value, new_size=model.patch_embed.grid_size, old_size=(old_side, old_side), num_prefix_tokens=num_prefix
            )
        out[key] = value
    return adapt_input_channels(out, model)


def needs_mapping(state_dict: dict[str, Any], model: nn.Module) -> bool:
    """Whether ``checkpoint_filter_fn`` would change ``state_dict`` for ``model``: the authors' names, a training
    wrapper's prefix, a release's ``state_dict`` nesting, ViT ``pre_logits``, or another position-embedding grid or
    input channel count. A state dict already in the model's names and sizes is left as it is."""
    if "state_dict" in state_dict or any(
        k.startswith((*_WRAPPERS, _AUTHORS_PREFIX)) or "pre_logits" in k for k in state_dict
    ):
        return True
    pos_embed, patch = state_dict.get("pos_embed"), state_dict.get("patch_embed.proj.weight")
    if pos_embed is not None and model.pos_embed is not None and pos_embed.shape != model.pos_embed.shape:
        return True
    return patch is not None and patch.ndim == 4 and patch.shape[1] != model.patch_embed.proj.in_channels


def adapt_input_channels(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Fit a state dict's patch embedding (O, C, P, P) to the model's ``in_chans``, as timm does for any model:
    ``timm.models.adapt_input_conv`` sums the RGB filters for one channel, repeats and rescales them for more.
    The state dict is changed in place and returned; one that already fits is left alone."""
    key = "patch_embed.proj.weight"
    weight = state_dict.get(key)
    in_chans = model.patch_embed.proj.in_channels
    if weight is not None and weight.ndim == 4 and weight.shape[1] != in_chans:
        state_dict[key] = adapt_input_conv(in_chans, weight, base_chans=weight.shape[1])
    return state_dict

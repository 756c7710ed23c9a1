"""FLOPs counted from the built model, in the paper's convention and in full; and the same from the architecture.

The paper's GFLOPs are the multiply-adds of the linear and convolution layers for one view (one clip of T
frames at one crop). ``count_flops`` runs the model once on the meta device under
``torch.utils.flop_counter.FlopCounterMode`` (no memory, no compute) and splits the counted operators into the
linear/convolution part and the attention matrix products. ``architecture_size`` gives the same counts, and the
parameter count, as arithmetic on the builder's arguments (depth, width, patch, frame size, frames, classes), so
that ``model_table`` (``tokshift-zoo models``) builds no model; the tests hold the two equal for every model.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn
from timm.models import get_pretrained_cfg
from torch.utils.flop_counter import FlopCounterMode

from .models.registry import get_weights, list_models
from .models.tokshift import MODEL_ARGS

__all__ = ["architecture_size", "count_flops", "model_table"]

_aten = torch.ops.aten
_LINEAR_CONV_OPS = {_aten.mm, _aten.addmm, _aten.convolution, _aten._convolution}
_ATTENTION_OPS = {
    _aten.bmm,
    _aten.baddbmm,
    _aten._scaled_dot_product_efficient_attention,
    _aten._scaled_dot_product_flash_attention,
    _aten._scaled_dot_product_cudnn_attention,
    _aten._scaled_dot_product_flash_attention_for_cpu,
}


def count_flops(model: nn.Module, num_frames: int | None = None) -> dict[str, float]:
    """Multiply-adds of one forward pass on one view, in GFLOPs (1e9 multiply-adds, the paper's unit).

    Args:
        model: a zoo video model; counted on a meta-device copy (no memory, no compute) unless already there.
        num_frames: clip length; the model's trained ``num_frames`` by default.

    Returns:
        ``{"gflops": linear + convolution multiply-adds, "gflops_full": that plus the attention matrix products}``.
    """
    num_frames = num_frames or model.num_frames
    height, width = model.patch_embed.img_size
    meta_model = model if next(model.parameters()).is_meta else copy.deepcopy(model).to("meta")
    clip = torch.empty(1, model.in_chans, num_frames, height, width, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta_model(clip)
    totals = counter.get_flop_counts()["Global"]
    unknown = [op for op in totals if op not in _LINEAR_CONV_OPS | _ATTENTION_OPS]
    if unknown:
        raise RuntimeError(f"FLOP counter saw operators this module does not classify: {unknown}")
    linear_conv = sum(n for op, n in totals.items() if op in _LINEAR_CONV_OPS) / 2  # FLOPs -> multiply-adds
    attention = sum(n for op, n in totals.items() if op in _ATTENTION_OPS) / 2
    return {"gflops": linear_conv / 1e9, "gflops_full": (linear_conv + attention) / 1e9}


def architecture_size(
    depth: int,
    embed_dim: int,
    img_size: int | tuple[int, int],
    patch_size: int,
    num_frames: int,
    num_classes: int,
    in_chans: int = 3,
    mlp_ratio: float = 4.0,
) -> dict[str, float]:
    """The size of a zoo video model (timm's ViT with a class token, run on each frame; the head on the clip's
    time-averaged class token) from its builder's arguments, without building it.

    Returns:
        ``{"params": parameter count, "gflops", "gflops_full"}``: the GFLOPs per view as ``count_flops`` counts
        them (1e9 multiply-adds of the linear and convolution layers; ``gflops_full`` adds the attention matrix
        products).
    """
    height, width = (img_size, img_size) if isinstance(img_size, int) else img_size
    dim, hidden = embed_dim, int(embed_dim * mlp_ratio)
    patches = (height // patch_size) * (width // patch_size)
    tokens = patches + 1  # and the class token
    patch_embed = patches * in_chans * patch_size**2 * dim  # the patch convolution, per frame
    block = tokens * (3 * dim * dim + dim * dim + 2 * dim * hidden)  # qkv, proj, fc1, fc2; per frame
    attention = 2 * tokens * tokens * dim  # q @ k^T and attn @ v, per frame and block
    linear_conv = num_frames * (patch_embed + depth * block) + dim * num_classes
    block_params = 4 * dim + (3 * dim * dim + 3 * dim) + (dim * dim + dim) + 2 * dim * hidden + hidden + dim
    params = (in_chans * patch_size**2 + 1) * dim + dim + tokens * dim + depth * block_params + 2 * dim
    params += (dim + 1) * num_classes if num_classes else 0
    return {
        "params": params,
        "gflops": linear_conv / 1e9,
        "gflops_full": (linear_conv + num_frames * depth * attention) / 1e9,
    }


def _registered_size(name: str) -> dict[str, Any]:
    """``architecture_size`` of a registered architecture as ``timm.create_model(name)`` builds it (the default
    tag's class count)."""
    args = MODEL_ARGS[name]
    sizing = ("depth", "embed_dim", "img_size", "patch_size", "num_frames", "in_chans", "mlp_ratio")
    size = architecture_size(
        num_classes=get_pretrained_cfg(name).num_classes, **{k: args[k] for k in sizing if k in args}
    )
    return dict(size, num_frames=args["num_frames"], img_size=args["img_size"])


def model_table(filter: str = "") -> list[dict[str, Any]]:  # noqa: A002 - timm's argument name
    """One row per zoo model: params, counted and paper GFLOPs per view, frames, resolution, tags with weights.

    A tag's ``available`` says whether ``pretrained=True`` can load it without the user's own file.
    """
    rows = []
    for name in list_models(filter):
        size = _registered_size(name)  # arithmetic: equal to count_flops and the parameters of the built model
        record = get_weights(name)
        tags = {}
        for key in list_models(f"{name}.*", pretrained=True):
            tagged = get_weights(key)
            tags[tagged.tag] = tagged.has_source
        rows.append(
            {
                "name": name,
                "params_m": round(size["params"] / 1e6, 1),
                "gflops": round(size["gflops"], 1),
                "gflops_full": round(size["gflops_full"], 1),
                "paper_gflops": record.meta.get("gflops"),
                "frames": size["num_frames"],
                "resolution": size["img_size"],
                "tags": ",".join(f"{t}{'' if ok else '(no download)'}" for t, ok in tags.items()),
                "available": tags,
            }
        )
    return rows

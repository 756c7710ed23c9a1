"""FLOPs counted from the built model, in the paper's convention and in full.

The paper's GFLOPs are the multiply-adds of the linear and convolution layers for one view (one clip of T
frames at one crop). ``count_flops`` runs the model once on the meta device under
``torch.utils.flop_counter.FlopCounterMode`` (no memory, no compute) and splits the counted operators into the
linear/convolution part and the attention matrix products.
"""

from __future__ import annotations

import copy
from typing import Any

import timm
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from .models.registry import get_weights, list_models

__all__ = ["count_flops", "model_table"]

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


def model_table(filter: str = "") -> list[dict[str, Any]]:  # noqa: A002 - timm's argument name
    """One row per zoo model: params, counted and paper GFLOPs per view, frames, resolution, tags with weights.

    A tag's ``available`` says whether ``pretrained=True`` can load it without the user's own file.
    """
    rows = []
    for name in list_models(filter):
        with torch.device("meta"):
            model = timm.create_model(name)
        flops = count_flops(model)
        record = get_weights(name)
        tags = {}
        for key in list_models(f"{name}.*", pretrained=True):
            tagged = get_weights(key)
            tags[tagged.tag] = tagged.has_source
        rows.append(
            {
                "name": name,
                "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
                "gflops": round(flops["gflops"], 1),
                "gflops_full": round(flops["gflops_full"], 1),
                "paper_gflops": record.meta.get("gflops"),
                "frames": model.num_frames,
                "resolution": model.patch_embed.img_size[0],
                "tags": ",".join(f"{t}{'' if ok else '(no download)'}" for t, ok in tags.items()),
                "available": tags,
            }
        )
    return rows

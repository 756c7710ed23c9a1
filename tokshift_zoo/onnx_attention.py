"""The attention an ONNX export writes: one ONNX ``Attention`` node (opset 23) on (batch, tokens, channels) tensors.

timm's ``Attention`` splits its fused q/k/v projection into heads (a reshape, a 5-d permute and an unbind) before
``scaled_dot_product_attention`` and merges them again after it; exported, each block then holds a Split, four
Transposes and an ``Attention`` node on 4-d tensors, and ONNX Runtime copies the activations around it.
``with_export_attention`` returns a copy of a model whose attention modules are ``ExportAttention``: three
projections (the rows of ``qkv``) feeding the custom op ``tokshift_zoo::attention``, which ``torch.onnx.export``
writes, through ``ONNX_TRANSLATIONS``, as one ``Attention`` node on the 3-d projections (its ``q_num_heads``
splits the heads). The arithmetic is the same; only the copies go (TokShift-B/16 in ONNX Runtime on two CPU
cores: 1.9% faster, docs/benchmarks.md). Nothing here runs outside an ONNX export.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import Attention

__all__ = ["ONNX_OPSET", "ONNX_TRANSLATIONS", "ExportAttention", "attention", "with_export_attention"]

ONNX_OPSET = 23  # the first opset with the Attention operator


@torch.library.custom_op("tokshift_zoo::attention", mutates_args=())
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Multi-head scaled dot-product attention on (B, N, C) queries, keys and values whose heads lie side by side
    along C (scale ``(C / num_heads) ** -0.5``); returns (B, N, C) in the same layout."""

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (num_heads, -1)).transpose(1, 2)

    return F.scaled_dot_product_attention(heads(q), heads(k), heads(v)).transpose(1, 2).flatten(2)


@attention.register_fake
def _attention_shape(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int) -> torch.Tensor:
    return torch.empty_like(q)


def _attention_onnx(q: Any, k: Any, v: Any, num_heads: int) -> Any:
    """The ONNX translation of ``tokshift_zoo::attention`` (an onnxscript graph builder)."""
    from onnxscript import opset23 as op

    output, *_ = op.Attention(q, k, v, q_num_heads=num_heads, kv_num_heads=num_heads)
    return output


ONNX_TRANSLATIONS = {torch.ops.tokshift_zoo.attention.default: _attention_onnx}


def _linear_rows(layer: nn.Linear, rows: slice) -> nn.Linear:
    part = nn.Linear(layer.in_features, rows.stop - rows.start, bias=layer.bias is not None)
    part.weight.data.copy_(layer.weight.data[rows])
    if layer.bias is not None:
        part.bias.data.copy_(layer.bias.data[rows])
    return part


class ExportAttention(nn.Module):
    """timm's plain ``Attention`` (no q/k norm, gate or scale norm) as three projections and ``attention``."""

    def __init__(self, source: Attention) -> None:
        super().__init__()
        width = source.qkv.out_features // 3
        self.num_heads = source.num_heads
        self.q, self.k, self.v = (_linear_rows(source.qkv, slice(i * width, (i + 1) * width)) for i in range(3))
        self.proj = source.proj

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        """Tokens (B, N, C) -> (B, N, C), as the ``Attention`` it was made from (in eval mode, without a mask)."""
        if attn_mask is not None or is_causal:
            raise ValueError("ExportAttention exports attention without a mask; got attn_mask or is_causal")
        return self.proj(attention(self.q(x), self.k(x), self.v(x), self.num_heads))


def _plain(module: nn.Module) -> bool:
    return (
        type(module) is Attention
        and all(isinstance(getattr(module, name), nn.Identity) for name in ("q_norm", "k_norm", "norm"))
        and getattr(module, "gate", None) is None
    )


def with_export_attention(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) whose plain timm ``Attention`` modules are ``ExportAttention``s; other
    attention modules are kept as they are."""
    model = copy.deepcopy(model).eval()
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if _plain(child):
                setattr(parent, name, ExportAttention(child))
    return model

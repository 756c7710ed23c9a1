"""Attention: ``F.scaled_dot_product_attention`` per backend (flash / memory-efficient / cuDNN / math on GPU)
against attention written out as ``softmax(q k^T) v``, at each model's shape."""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..devices import DTYPES
from .core import BASE_REFERENCE, build_model, measure, num_tokens, paired_ratio, significant

__all__ = ["attention_suite"]


def _sdpa_backends(device: torch.device) -> dict[str, Any]:
    from torch.nn.attention import SDPBackend

    if device.type == "cuda":
        return {
            "sdpa (auto)": None,
            "flash": SDPBackend.FLASH_ATTENTION,
            "mem_efficient": SDPBackend.EFFICIENT_ATTENTION,
            "cudnn": SDPBackend.CUDNN_ATTENTION,
            "math": SDPBackend.MATH,
        }
    return {"sdpa (auto)": None, "math": SDPBackend.MATH}


def _manual_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    scale = q.shape[-1] ** -0.5
    return torch.softmax((q * scale) @ k.transpose(-2, -1), dim=-1) @ v


def attention_suite(
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    batch_size: int = 1,
    num_frames: int | None = None,
    reps: int = 3,
    names: Sequence[str] = (BASE_REFERENCE,),
    model_kwargs: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One attention layer of each model, at its shape (B*T, heads, tokens, head_dim): SDPA with each backend
    the device has, against attention written out (``softmax(q k^T / sqrt(d)) v``, the authors' code).

    Also reports whether timm's ``Attention`` modules of the model take the fused path (``fused_attn``). A
    backend that cannot run the shape or dtype is reported as skipped. On GPU the peak memory of each is given.
    """
    device = torch.device(device)
    rows = []
    for name in names:
        model = build_model(name, torch.device("meta"), **(model_kwargs or {}))
        rows += _attention_rows(model, name, device, dtype, batch_size, num_frames or model.num_frames, reps)
    return rows


def _attention_rows(
    model: nn.Module, name: str, device: torch.device, dtype: str, batch_size: int, num_frames: int, reps: int
) -> list[dict[str, Any]]:
    from torch.nn.attention import sdpa_kernel

    fused = all(block.attn.fused_attn for block in model.blocks)
    attn = model.blocks[0].attn
    shape = (batch_size * num_frames, attn.num_heads, num_tokens(model), attn.head_dim)
    generator = torch.Generator(device="cpu").manual_seed(0)
    q, k, v = (torch.randn(shape, generator=generator).to(device, DTYPES[dtype]) for _ in range(3))
    flops = 4 * math.prod(shape) * shape[2]  # two (N x d) x (d x N)-sized products per head
    fns: dict[str, Callable[[], torch.Tensor]] = {"written out": lambda: _manual_attention(q, k, v)}
    skipped: dict[str, str] = {}
    for label, backend in _sdpa_backends(device).items():

        def call(backend: Any = backend) -> torch.Tensor:
            with sdpa_kernel(backend) if backend is not None else contextlib.nullcontext():
                return F.scaled_dot_product_attention(q, k, v)

        try:
            with torch.inference_mode():
                call()
            fns[label] = call
        except RuntimeError as err:
            skipped[label] = str(err).strip().splitlines()[0][:120]
    peaks: dict[str, int] = {}
    with torch.inference_mode():
        expected = _manual_attention(q.float(), k.float(), v.float())
        errors = {label: float((fn().float() - expected).abs().max()) for label, fn in fns.items()}
        if device.type == "cuda":
            for label, fn in fns.items():
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
                fn()
                torch.cuda.synchronize(device)
                peaks[label] = torch.cuda.max_memory_allocated(device) - base
        times = measure(fns, device, reps=reps, warmup=2, min_seconds=0.05 if device.type == "cpu" else 0.02)
    rows = []
    for label in [*fns, *skipped]:
        row: dict[str, Any] = {
            "model": name,
            "shape": "x".join(map(str, shape)),
            "dtype": dtype,
            "kernel": label,
            "timm_fused_attn": fused,
        }
        if label in skipped:
            row["skipped"] = skipped[label]
        else:
            median = statistics.median(times[label])
            row.update(
                ms=significant(1e3 * median),
                tflops=significant(flops / median / 1e12),
                speedup_vs_written_out=round(paired_ratio(times["written out"], times[label]), 2),
                max_abs_err=float(f"{errors[label]:.2e}"),
            )
            if label in peaks:
                row["peak_mib"] = significant(peaks[label] / 2**20)
        rows.append(row)
    return rows

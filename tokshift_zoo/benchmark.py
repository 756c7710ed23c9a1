"""Benchmarks of the zoo, each against a reference measured in the same run.

A busy or throttled machine slows everything it runs, so no figure here stands alone: every timing is taken in
rounds that alternate it with its reference (a plain GEMM of the model's own MLP shape, timm's plain ViT on the
same frames, decoding every frame of the same file, ...), and the reported ratio is the median of the per-round
ratios. Absolute times are reported too, as medians and minima over the rounds.

Suites (each a function returning plain dicts and lists, JSON-ready; ``tokshift-zoo benchmark`` prints them):

- ``model_suite``: clips/s and latency per zoo model, fp32 / bf16, eager / ``torch.compile``, and the achieved
  FLOP rate as a fraction of a same-dtype GEMM of shape (tokens, C) x (C, 4C) - the model's own MLP ``fc1``.
- ``shift_suite``: TokShift against timm's plain ViT on the same frames, and the shift alone against the
  authors' formulation (a zero-filled copy of every token): time and elements written per call.
- ``attention_suite``: ``F.scaled_dot_product_attention`` per backend (flash / memory-efficient / cuDNN / math
  on GPU) against attention written out as ``softmax(q k^T) v``.
- ``decode_suite``: the paper's 10x3 test views of a long 720p video (only the sampled frames decoded) against
  decoding every frame; ``loader_suite``: the training loader's clips/s against the number of workers.
- ``memory_suite``: peak memory of inference and of a training step (optionally with gradient checkpointing):
  ``torch.cuda.max_memory_allocated`` on GPU, the peak resident set of a fresh process on CPU.

FLOPs are ``tokshift_zoo.flops.count_flops(model)["gflops_full"]`` (linear, convolution and attention
multiply-adds, so 2 FLOPs each); the rate is ``2 * multiply-adds / seconds``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gc
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = [
    "environment",
    "measure",
    "paired_ratio",
    "summarize",
    "gemm_shape",
    "make_gemm",
    "benchmark_model",
    "model_suite",
    "op_breakdown",
    "authors_token_shift",
    "count_writes",
    "shift_suite",
    "attention_suite",
    "write_long_video",
    "decode_suite",
    "loader_suite",
    "peak_memory",
    "memory_suite",
    "default_models",
    "run_benchmarks",
    "format_table",
    "SUITES",
    "DEFAULT_SUITES",
]

_logger = logging.getLogger(__name__)

SUITES = ("model", "breakdown", "shift", "attention", "decode", "loader", "memory")
DEFAULT_SUITES = ("model", "breakdown", "shift", "attention")  # minutes on 2 CPU cores; "all" adds the rest
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_BASE_REFERENCE = "tokshift_base16_224_8f"  # the model the shift, attention and decode suites take shapes from


# --- environment and timing ---------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN has bf16 matrix kernels for this CPU (AVX-512 or newer: AVX512-BF16, AMX); on an AVX2-only
    CPU bf16 matrix products fall back to a path far slower than fp32."""
    with contextlib.suppress(Exception):
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def environment(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Date, machine and library versions, to print beside the figures."""
    import av
    import timm

    device = torch.device(device)
    env: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": str(device),
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "ram_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
        if hasattr(os, "sysconf")
        else None,
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "av": av.__version__,
        "loadavg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            gpu_capability=f"{props.major}.{props.minor}",
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
        )
    return env


def synchronize(device: str | torch.device) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously); nothing to do on CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_calls(fn: Callable[[], Any], device: torch.device, calls: int) -> float:
    synchronize(device)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / calls


def measure(
    fns: Mapping[str, Callable[[], Any]],
    device: str | torch.device = "cpu",
    reps: int = 3,
    warmup: int = 1,
    min_seconds: float = 0.0,
) -> dict[str, list[float]]:
    """Seconds per call of each function, measured in ``reps`` interleaved rounds.

    Each function first runs ``warmup`` times (at least once: that call also sizes it). In each round every
    function runs once, in alternating order, so a slow patch of a shared machine hits all of them alike and
    the ratio of two functions can be taken round by round (``paired_ratio``). A function faster than
    ``min_seconds`` is called several times per round and its mean taken.
    """
    device = torch.device(device)
    calls: dict[str, int] = {}
    for name, fn in fns.items():
        for _ in range(max(warmup - 1, 0)):
            fn()
        first = _time_calls(fn, device, 1)
        calls[name] = max(1, math.ceil(min_seconds / max(first, 1e-9))) if min_seconds else 1
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for round_ in range(reps):
        for name in names if round_ % 2 == 0 else names[::-1]:
            times[name].append(_time_calls(fns[name], device, calls[name]))
    return times


def _sig(value: float, digits: int = 4) -> float:
    """``value`` rounded to ``digits`` significant digits (figures span tiny test models to 1e15 FLOP/s)."""
    return float(f"{value:.{digits}g}")


def summarize(times: Sequence[float]) -> dict[str, float]:
    """Median and minimum of a list of seconds, in seconds."""
    return {"median_s": statistics.median(times), "min_s": min(times)}


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """The median over rounds of ``numerator[i] / denominator[i]`` (two lists from the same ``measure``)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


# --- building models and their inputs -----------------------------------------------------------------------


def default_models(device: str | torch.device) -> str:
    """The default ``--models`` glob: every zoo model on GPU; on CPU the two Base-224 8-frame ones, the ViT
    baseline and TokShift (a ViT-B/16 8x224 forward takes seconds on a small CPU, a Large-384 one minutes)."""
    return "*" if torch.device(device).type == "cuda" else "*base16_224_8f"


def _create(name: str, device: torch.device, **kwargs: Any) -> nn.Module:
    from .factory import create_model

    if device.type == "meta":  # shapes only: build without allocating or initialising weights
        with torch.device("meta"):
            return create_model(name, **kwargs).eval()
    return create_model(name, **kwargs).to(device).eval()


def _clip(model: nn.Module, batch_size: int, num_frames: int, device: torch.device) -> torch.Tensor:
    height, width = model.patch_embed.img_size
    return torch.randn(batch_size, model.in_chans, num_frames, height, width, device=device)


def _autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _tokens(model: nn.Module) -> int:
    return model.patch_embed.num_patches + model.num_prefix_tokens


# --- the GEMM reference -------------------------------------------------------------------------------------


def gemm_shape(model: nn.Module, batch_size: int, num_frames: int) -> tuple[int, int, int]:
    """(M, K, N) of the model's MLP ``fc1`` on a batch: M = B*T*tokens, K = width, N = MLP width (4x)."""
    fc1 = model.blocks[0].mlp.fc1
    return batch_size * num_frames * _tokens(model), fc1.in_features, fc1.out_features


def make_gemm(m: int, k: int, n: int, dtype: torch.dtype, device: str | torch.device) -> Callable[[], torch.Tensor]:
    """A plain (M, K) x (K, N) matrix product in ``dtype``, laid out as ``F.linear`` runs it (weight (N, K),
    transposed, no bias); each call allocates its output, as a layer does. 2*M*K*N FLOPs per call."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(m, k, generator=generator).to(device, dtype)
    w = torch.randn(n, k, generator=generator).to(device, dtype)
    return lambda: F.linear(a, w)


# --- 1. model speed -----------------------------------------------------------------------------------------


def benchmark_model(
    name: str,
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    compile: bool = False,  # noqa: A002 - the CLI flag's name
    batch_size: int = 1,
    num_frames: int | None = None,
    reps: int = 3,
    warmup: int = 1,
    model_kwargs: Mapping[str, Any] | None = None,
    min_seconds: float | None = None,
) -> dict[str, Any]:
    """Throughput, latency and achieved FLOP rate of one zoo model (random weights: speed does not depend on
    them), against a same-dtype GEMM of the model's MLP shape, measured in the same rounds.

    Args:
        name: a zoo model name.
        device: ``"cpu"`` or ``"cuda"``.
        dtype: ``"fp32"`` (fp32 weights and maths; on GPU without TF32 unless the user enabled it) or ``"bf16"``
            / ``"fp16"`` (autocast, as the trainer and ``predict`` run).
        compile: ``torch.compile`` the model first (the compile time is reported as ``first_call_s``, not
            counted); on CPU with Inductor's weight freezing (inference only).
        batch_size: clips per forward for the throughput; the latency is one clip's forward.
        num_frames: T; the model's trained clip length by default.
        reps, warmup: measurement rounds and untimed warm-up calls.
        model_kwargs: extra ``create_model`` arguments (tests use tiny models).
        min_seconds: a function faster than this is repeated within a round (see ``measure``); default 1 s on
            CPU, 0.2 s on GPU.

    Returns:
        A row: ``clips_per_s``, ``latency_ms``, ``tflops`` (achieved), ``gemm_tflops`` (the reference),
        ``frac_of_gemm`` (median over rounds of achieved / GEMM rate), ``gflops_per_view`` and the settings.
    """
    from .flops import count_flops

    device = torch.device(device)
    torch_dtype = DTYPES[dtype]
    model = _create(name, device, **(model_kwargs or {}))
    num_frames = num_frames or model.num_frames
    gflops = count_flops(model, num_frames)["gflops_full"]
    row: dict[str, Any] = {
        "model": name,
        "dtype": dtype,
        "compile": compile,
        "batch_size": batch_size,
        "frames": num_frames,
        "resolution": model.patch_embed.img_size[0],
        "gflops_per_view": _sig(gflops),
    }
    if device.type == "cpu" and torch_dtype != torch.float32 and not cpu_has_native_bf16():
        row["skipped"] = f"no native {dtype} matrix units on this CPU ({torch.backends.cpu.get_cpu_capability()})"
        return row
    net = model
    if compile:
        net = torch.compile(model)
    clips = _clip(model, batch_size, num_frames, device)
    one = clips[:1]
    m, k, n = gemm_shape(model, batch_size, num_frames)
    gemm = make_gemm(m, k, n, torch_dtype, device)
    autocast = _autocast(device, torch_dtype)

    def forward(x: torch.Tensor) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with torch.inference_mode(), autocast:
                return net(x)

        return run

    # Inductor on CPU: freeze the weights into the graph (inference), which lets it prepack them for oneDNN and
    # fuse the bias and GELU into the matrix products - PyTorch's recommended CPU inference setting.
    freezing: contextlib.AbstractContextManager = contextlib.nullcontext()
    if compile and device.type == "cpu":
        import torch._inductor.config as inductor_config

        freezing = inductor_config.patch(freezing=True)
    with freezing:
        start = time.perf_counter()
        forward(clips)()  # compiles, when asked
        synchronize(device)
        row["first_call_s"] = round(time.perf_counter() - start, 2)
        fns = {"model": forward(clips), "gemm": gemm}
        if batch_size > 1:
            fns["latency"] = forward(one)
        if min_seconds is None:  # a GEMM sample spans about a second on CPU: it sees the load the model sees
            min_seconds = 0.2 if device.type == "cuda" else 1.0
        times = measure(fns, device, reps=reps, warmup=warmup, min_seconds=min_seconds)
    model_flops = 2 * gflops * 1e9 * batch_size
    gemm_flops = 2 * m * k * n
    rates = [model_flops / t for t in times["model"]]
    gemm_rates = [gemm_flops / t for t in times["gemm"]]
    model_s = summarize(times["model"])
    latency_s = summarize(times["latency"] if batch_size > 1 else times["model"])
    row.update(
        clips_per_s=_sig(batch_size / model_s["median_s"]),
        latency_ms=_sig(1e3 * latency_s["median_s"]),
        latency_min_ms=_sig(1e3 * latency_s["min_s"]),
        tflops=_sig(statistics.median(rates) / 1e12),
        gemm_tflops=_sig(statistics.median(gemm_rates) / 1e12),
        gemm_shape=f"({m}, {k}) x ({k}, {n})",
        frac_of_gemm=round(statistics.median(r / g for r, g in zip(rates, gemm_rates, strict=True)), 3),
        frac_of_gemm_best=round((model_flops / model_s["min_s"]) / (gemm_flops / min(times["gemm"])), 3),
        reps=reps,
    )
    return row


_OP_GROUPS = {
    "matmul": ("addmm", "mm", "bmm", "baddbmm", "matmul", "linear", "mkldnn_linear", "_linear_pointwise"),
    "attention": ("_scaled_dot_product", "scaled_dot_product", "_flash_attention", "_efficient_attention"),
    "gelu": ("gelu",),
    "layer_norm": ("native_layer_norm", "layer_norm"),
    "elementwise": ("add", "add_", "mul", "mul_", "div", "sub"),
    "copies": ("copy_", "cat", "clone", "contiguous", "constant_pad_nd", "fill_", "zero_"),
    "patch_embed": ("convolution", "_convolution", "mkldnn_convolution", "conv2d", "cudnn_convolution"),
}


def _op_group(name: str) -> str:
    op = name.removeprefix("aten::")
    for group, names in _OP_GROUPS.items():
        if op in names or any(op.startswith(prefix) for prefix in names if prefix.startswith("_")):
            return group
    return "other"


def op_breakdown(
    name: str,
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    num_frames: int | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Where one fp32 forward spends its time, from ``torch.profiler`` (self time per ATen operator, grouped):
    matrix products, attention, GELU, LayerNorm, element-wise ops, copies, the patch embedding, other.

    Also the FLOP rate of the model's own linear layers (their multiply-adds over the matmul group's time),
    which says whether the gap to a plain GEMM is in the GEMMs themselves or in the memory-bound ops around them.
    """
    from torch.profiler import ProfilerActivity, profile

    from .flops import count_flops

    device = torch.device(device)
    model = _create(name, device, **(model_kwargs or {}))
    num_frames = num_frames or model.num_frames
    clip = _clip(model, batch_size, num_frames, device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.no_grad():
        model(clip)
        synchronize(device)
        with profile(activities=activities) as prof:
            model(clip)
            synchronize(device)
    # the ATen operators' own time: on GPU the device time of the kernels each launched, on CPU their CPU time
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    groups: dict[str, float] = {}
    for event in prof.key_averages():
        if event.key.startswith("aten::") and event.device_type == torch.autograd.DeviceType.CPU:
            groups[_op_group(event.key)] = groups.get(_op_group(event.key), 0.0) + getattr(event, attr)
    total = sum(groups.values())
    linear_gflops = count_flops(model, num_frames)["gflops"] * batch_size
    matmul_s = groups.get("matmul", 0.0) / 1e6
    return {
        "model": name,
        "batch_size": batch_size,
        "frames": num_frames,
        "profiled_s": _sig(total / 1e6),
        "share": {group: _sig(t / total, 3) for group, t in sorted(groups.items(), key=lambda kv: -kv[1])},
        "matmul_tflops": _sig(2 * linear_gflops * 1e9 / matmul_s / 1e12) if matmul_s else None,
    }


def model_suite(
    models: Iterable[str],
    device: str | torch.device = "cpu",
    dtypes: Sequence[str] = ("fp32",),
    compile_modes: Sequence[bool] = (False,),
    batch_size: int = 1,
    num_frames: int | None = None,
    reps: int = 3,
    warmup: int = 1,
    model_kwargs: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """``benchmark_model`` for every model x dtype x eager/compiled; one row each."""
    rows = []
    for name in models:
        for dtype in dtypes:
            for compiled in compile_modes:
                _logger.info("model suite: %s %s%s", name, dtype, " compiled" if compiled else "")
                rows.append(
                    benchmark_model(name, device, dtype, compiled, batch_size, num_frames, reps, warmup, model_kwargs)
                )
    return rows


# --- 2 and 3. the shift: its cost in the model and on its own -------------------------------------------------


def authors_token_shift(x: torch.Tensor, num_frames: int, fold_div: int = 4) -> torch.Tensor:
    """The shift as the authors' ``shift_tk`` computes it (``vit_models/modeling_tokshift.py``): a zero-filled
    tensor the size of ``x``, into which every token is copied, the class token's moving channels shifted.
    Same result as ``token_shift``; kept here only to be measured against."""
    bt, n, c = x.shape
    fold = c // fold_div
    clips = x.view(bt // num_frames, num_frames, n, c)
    out = torch.zeros_like(clips)
    out[:, :-1, 0, :fold] = clips[:, 1:, 0, :fold]
    out[:, 1:, 0, fold : 2 * fold] = clips[:, :-1, 0, fold : 2 * fold]
    out[:, :, 1:, : 2 * fold] = clips[:, :, 1:, : 2 * fold]
    out[:, :, :, 2 * fold :] = clips[:, :, :, 2 * fold :]
    return out.view(bt, n, c)


class _WriteCounter(TorchDispatchMode):
    """Counts, per ATen operator call, the elements written: in place (arguments the schema marks as written)
    and into newly made tensors; views count nothing."""

    _NO_WRITE = ("empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided")

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.allocated: list[int] = []
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's signature
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        schema = func._schema
        self.ops.append(str(func.overloadpacket.__name__))
        mutated = False
        for position, argument in enumerate(schema.arguments):
            if argument.alias_info is not None and argument.alias_info.is_write:
                value = args[position] if position < len(args) else kwargs.get(argument.name)
                if isinstance(value, torch.Tensor):
                    self.written += value.numel()
                    mutated = True
        if mutated or any(r.alias_info is not None for r in schema.returns):
            return out  # in place (counted above) or a view
        for tensor in torch.utils._pytree.tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self.allocated.append(tensor.numel())
                if func.overloadpacket.__name__ not in self._NO_WRITE:
                    self.written += tensor.numel()
        return out


def count_writes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run ``fn(*args, **kwargs)`` and count what its ATen operators write.

    Run it outside ``torch.inference_mode`` (``torch.no_grad`` is fine): under inference mode composite
    operators such as ``reshape`` reach the counter whole, and one that copies would count as a view.

    Returns:
        ``{"elements_written", "largest_new_tensor" (elements), "new_tensors", "ops"}``.
    """
    counter = _WriteCounter()
    with counter:
        fn(*args, **kwargs)
    return {
        "elements_written": counter.written,
        "largest_new_tensor": max(counter.allocated, default=0),
        "new_tensors": len(counter.allocated),
        "ops": counter.ops,
    }


def shift_suite(
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    num_frames: int | None = None,
    reps: int = 3,
    warmup: int = 1,
    name: str = _BASE_REFERENCE,
    model_kwargs: Mapping[str, Any] | None = None,
    timm_name: str = "vit_base_patch16_224",
) -> dict[str, Any]:
    """TokShift against timm's plain ViT on the same frames (same weights), and the shift on its own.

    The three models are timed in interleaved rounds on the same clip: timm's image ViT on the B*T frames, the
    zoo's ViT baseline (the same model without the shift) and TokShift; ``ratio`` is TokShift's time over
    timm's (the median of the per-round ratios; ``ratio_range`` shows their spread: a shared machine's rounds
    can differ by 10% or more, and a median of few rounds by several percent). The shift alone is timed at the
    model's token shape three ways: in place (what the model runs), on a copy (``token_shift`` by default) and
    as the authors wrote it, with the elements each writes.
    """
    import timm

    from .models.tokshift import token_shift

    device = torch.device(device)
    model_kwargs = dict(model_kwargs or {})
    tokshift = _create(name, device, **model_kwargs)
    baseline = _create(name, device, fold_div=0, **model_kwargs)
    baseline.load_state_dict(tokshift.state_dict())
    image_kwargs = {k: v for k, v in model_kwargs.items() if k != "num_frames"}
    image_kwargs.setdefault("num_classes", tokshift.num_classes)
    image = timm.create_model(timm_name, **image_kwargs).to(device).eval()
    image.load_state_dict(tokshift.state_dict())
    num_frames = num_frames or tokshift.num_frames
    clip = _clip(tokshift, batch_size, num_frames, device)
    frames = clip.transpose(1, 2).reshape(-1, clip.shape[1], *clip.shape[-2:]).contiguous()  # (B*T, 3, H, W)

    def run(model: nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
        def call() -> torch.Tensor:
            with torch.inference_mode():
                return model(x)

        return call

    times = measure(
        {"timm_vit": run(image, frames), "zoo_vit": run(baseline, clip), "tokshift": run(tokshift, clip)},
        device,
        reps=reps,
        warmup=warmup,
    )
    rounds = [a / b for a, b in zip(times["tokshift"], times["timm_vit"], strict=True)]
    models = {
        "model": name,
        "reference": f"timm {timm_name} on the same {batch_size}x{num_frames} frames",
        "batch_size": batch_size,
        "frames": num_frames,
        "timm_vit_ms": _sig(1e3 * statistics.median(times["timm_vit"])),
        "zoo_vit_ms": _sig(1e3 * statistics.median(times["zoo_vit"])),
        "tokshift_ms": _sig(1e3 * statistics.median(times["tokshift"])),
        "ratio": round(paired_ratio(times["tokshift"], times["timm_vit"]), 4),
        "ratio_best": round(min(times["tokshift"]) / min(times["timm_vit"]), 4),
        "ratio_range": [round(min(rounds), 4), round(max(rounds), 4)],  # the machine's noise, round to round
        "zoo_vit_ratio": round(paired_ratio(times["zoo_vit"], times["timm_vit"]), 4),
        "reps": reps,
    }

    # the shift on its own, at the model's token shape
    tokens = _tokens(tokshift)
    width = tokshift.embed_dim
    fold_div = tokshift.fold_div
    x = torch.randn(batch_size * num_frames, tokens, width, device=device)
    variants = {
        "in_place": lambda: token_shift(x, num_frames, fold_div, inplace=True),
        "copy": lambda: token_shift(x, num_frames, fold_div),
        "authors": lambda: authors_token_shift(x, num_frames, fold_div),
    }
    with torch.no_grad():  # not inference_mode: the write counter then sees the decomposed ATen operators
        shift_times = measure(variants, device, reps=max(reps, 5), warmup=3, min_seconds=0.05)
        writes = {key: count_writes(fn) for key, fn in variants.items()}
        y = x.clone()
        same = torch.equal(
            token_shift(y, num_frames, fold_div, inplace=True), authors_token_shift(x, num_frames, fold_div)
        )
    calls = 2 * len(tokshift.blocks)
    model_s = statistics.median(times["tokshift"])
    shift_rows = []
    for key, fn_times in shift_times.items():
        per_call = statistics.median(fn_times)
        shift_rows.append(
            {
                "shift": key,
                "us_per_call": _sig(1e6 * per_call),
                "elements_written": writes[key]["elements_written"],
                "largest_new_tensor": writes[key]["largest_new_tensor"],
                "share_of_forward": _sig(calls * per_call / model_s, 3),
                "vs_in_place": round(paired_ratio(fn_times, shift_times["in_place"]), 2),
            }
        )
    return {
        "models": models,
        "shift": shift_rows,
        "shift_shape": f"({batch_size * num_frames}, {tokens}, {width}), {calls} calls per forward",
        "class_token_channels": batch_size * num_frames * 2 * (width // fold_div),
        "tokens_elements": x.numel(),
        "matches_authors": same,
    }


# --- 4. attention -------------------------------------------------------------------------------------------


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
    names: Sequence[str] = (_BASE_REFERENCE,),
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
        model = _create(name, torch.device("meta"), **(model_kwargs or {}))
        rows += _attention_rows(model, name, device, dtype, batch_size, num_frames or model.num_frames, reps)
    return rows


def _attention_rows(
    model: nn.Module, name: str, device: torch.device, dtype: str, batch_size: int, num_frames: int, reps: int
) -> list[dict[str, Any]]:
    from torch.nn.attention import sdpa_kernel

    fused = all(block.attn.fused_attn for block in model.blocks)
    attn = model.blocks[0].attn
    shape = (batch_size * num_frames, attn.num_heads, _tokens(model), attn.head_dim)
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
                ms=_sig(1e3 * median),
                tflops=_sig(flops / median / 1e12),
                speedup_vs_written_out=round(paired_ratio(times["written out"], times[label]), 2),
                max_abs_err=float(f"{errors[label]:.2e}"),
            )
            if label in peaks:
                row["peak_mib"] = _sig(peaks[label] / 2**20)
        rows.append(row)
    return rows


# --- 5. decoding and loading --------------------------------------------------------------------------------


def _moving_scene(width: int, height: int, seed: int = 0) -> Callable[[int], np.ndarray]:
    """yuv420p frames, (H * 3/2, W) uint8, of a smooth textured scene panning across a larger canvas with a
    square crossing it: content a codec must actually code (every frame differs), but noise-free so that it
    encodes fast. Drawn in YUV directly, so that writing needs no colour conversion."""
    rng = np.random.default_rng(seed)
    pad = 256

    def plane(h: int, w: int) -> np.ndarray:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        wave = sum(
            np.sin(rng.uniform(0.005, 0.04) * yy + rng.uniform(0.005, 0.04) * xx + rng.uniform(0, 2 * np.pi))
            for _ in range(3)
        )
        return ((wave - wave.min()) / (wave.max() - wave.min()) * 219 + 16).astype(np.uint8)

    luma = plane(height + pad, width + pad)
    chroma = [plane(height // 2 + pad // 2, width // 2 + pad // 2) for _ in range(2)]
    grain = rng.integers(-6, 7, (height + pad, width + pad), dtype=np.int16)  # texture moving the other way
    side = height // 6

    def frame(index: int) -> np.ndarray:
        dy, dx = (index * 2) % pad, (index * 4) % pad  # even: chroma moves with luma
        gy, gx = pad - 1 - (index * 3) % pad, pad - 1 - (index * 5) % pad
        y = luma[dy : dy + height, dx : dx + width] + grain[gy : gy + height, gx : gx + width]
        y = y.clip(0, 255).astype(np.uint8)
        top, left = (index * 7) % (height - side), (index * 11) % (width - side)
        y[top : top + side, left : left + side] = 16 + (index * 3) % 220
        u, v = (c[dy // 2 : dy // 2 + height // 2, dx // 2 : dx // 2 + width // 2] for c in chroma)
        return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(height * 3 // 2, width)

    return frame


def _write_synthetic_video(
    path: Path, seconds: float, fps: int, width: int, height: int, gop: int, preset: str, bframes: int, seed: int = 0
) -> Path:
    import av

    scene = _moving_scene(width, height, seed)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": preset, "x264-params": f"keyint={gop}:bframes={bframes}:b-pyramid=normal"}
        for index in range(round(seconds * fps)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(scene(index), format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_long_video(
    path: str | os.PathLike,
    seconds: float = 240.0,
    fps: int = 30,
    width: int = 1280,
    height: int = 720,
    gop: int = 250,
    preset: str = "ultrafast",
    bframes: int = 3,
) -> Path:
    """Write an H.264 mp4 of ``seconds`` of synthetic moving content (see ``_moving_scene``) with PyAV.

    ``gop`` is the keyframe interval (x264's default 250); ``preset`` trades encoding time for size (ultrafast:
    CAVLC, one reference frame), which keeps writing four minutes of 720p to a few minutes on two cores.
    ``bframes`` B-frames between reference frames, with x264's B-pyramid (the middle one is a reference), as
    x264's default presets write and most real videos have; 0 for none.
    """
    return _write_synthetic_video(Path(path), seconds, fps, width, height, gop, preset, bframes)


def _cache_dir() -> Path:
    """Where the synthetic videos are kept between runs: ``$XDG_CACHE_HOME/tokshift_zoo/benchmark``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tokshift_zoo" / "benchmark"


def _decode_all(path: str | os.PathLike, to_rgb: bool) -> int:
    """Decode every frame of the video (PyAV, the same threading as ``decode_frames``), converting each to an
    RGB array when ``to_rgb`` - what a decode-everything reader does - without keeping them."""
    import av

    count = 0
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if to_rgb:
                frame.to_ndarray(format="rgb24")
            count += 1
    return count


class _DecodeStats(logging.Handler):
    """Collects the ``frames_decoded`` / ``seeks`` that ``decode_frames`` logs at debug level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.frames_decoded = self.seeks = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.frames_decoded += getattr(record, "frames_decoded", 0)
        self.seeks += getattr(record, "seeks", 0)


@contextlib.contextmanager
def _decode_stats() -> Iterator[_DecodeStats]:
    handler = _DecodeStats()
    logger = logging.getLogger("tokshift_zoo.video.io")
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # the debug records are for the counter, not for the user's log
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


@contextlib.contextmanager
def _nonref_frames_decoded() -> Iterator[None]:
    """Within the block ``decode_frames`` decodes the non-reference frames it passes, as it did before it
    learnt to skip them: the same-run reference for what the skipping saves."""
    from .video import io as video_io

    skippable = video_io._NONREF_SKIPPABLE
    video_io._NONREF_SKIPPABLE = frozenset()
    try:
        yield
    finally:
        video_io._NONREF_SKIPPABLE = skippable


def decode_suite(
    video: str | os.PathLike | None = None,
    seconds: float = 300.0,
    views: str = "10x3",
    reps: int = 2,
    name: str = _BASE_REFERENCE,
    workdir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The paper's test views of one long video, against decoding every frame of it.

    ``views`` time: ``VideoPreprocess(resolve_data_config(model), views)(video)`` - the packet scan, the seeks
    and decoding of only the sampled frames, and the crops - as ``predict`` and ``evaluate`` run it. The
    references: the same views with the non-reference frames between wanted ones decoded rather than skipped;
    decoding every frame and converting each to RGB (what a decode-everything reader such as ``load_video`` or
    ``torchvision.io.read_video`` must do, here without keeping the frames); and decoding every frame without
    even the conversion (the least any decode-everything approach can cost).

    Args:
        video: a video file; by default a ``seconds``-long synthetic 720p30 H.264 file (keyframe every 250
            frames, 3 B-frames between references) is written once to ``workdir`` (default
            ``~/.cache/tokshift_zoo/benchmark``) and reused.
        views: ``"CLIPSxCROPS"``.

    The speed-up is bounded by the video's length: the 10 dense 8x32 clips span 10 x 225 frames, and each
    starts on average half a keyframe interval after the keyframe that decoding must start from, so about
    3,300 frames are passed whatever the length (a 5-minute 30 fps video has 9,000), of which the non-reference
    B-frames not sampled are skipped.
    """
    import timm

    from .inference import VideoPreprocess
    from .video.io import read_video_info
    from .video.transforms import resolve_data_config

    with torch.device("meta"):
        model = timm.create_model(name)
    config = resolve_data_config(model)
    if video is None:
        folder = Path(workdir) if workdir is not None else _cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        video = folder / f"synthetic_720p30_{seconds:g}s_gop250_bf3_v2.mp4"
        if not video.exists():
            _logger.info("writing %s (once; reused by later runs)", video)
            start = time.perf_counter()
            write_long_video(video.with_suffix(".part.mp4"), seconds=seconds).rename(video)
            _logger.info("wrote %s in %.0f s", video, time.perf_counter() - start)
    info = read_video_info(video)
    preprocess = VideoPreprocess(config, views)

    def views_without_skipping() -> torch.Tensor:
        with _nonref_frames_decoded():
            return preprocess(video)

    with _decode_stats() as stats:
        out = preprocess(video)
    with _decode_stats() as stats_no_skip:
        views_without_skipping()
    fns = {
        "views": lambda: preprocess(video),
        "views_no_skip": views_without_skipping,
        "all_frames_rgb": lambda: _decode_all(video, to_rgb=True),
        "all_frames_no_rgb": lambda: _decode_all(video, to_rgb=False),
    }
    times = measure(fns, "cpu", reps=reps, warmup=0)
    views_s = statistics.median(times["views"])
    return {
        "video": f"{info.width}x{info.height} {info.codec} {info.fps:.0f} fps, {info.num_frames} frames "
        f"({info.duration_s:.0f} s), {len(info.keyframes)} keyframes",
        "views": views,
        "view_shape": list(out.shape[1:]),
        "frames_sampled": config.num_frames * int(views.split("x")[0]),
        "frames_decoded": stats.frames_decoded,
        "frames_decoded_no_skip": stats_no_skip.frames_decoded,
        "seeks": stats.seeks,
        "views_s": _sig(views_s),
        "views_per_s": _sig(out.shape[0] / views_s),
        "views_no_skip_s": _sig(statistics.median(times["views_no_skip"])),
        "all_frames_rgb_s": _sig(statistics.median(times["all_frames_rgb"])),
        "all_frames_no_rgb_s": _sig(statistics.median(times["all_frames_no_rgb"])),
        "speedup_vs_no_skip": round(paired_ratio(times["views_no_skip"], times["views"]), 2),
        "speedup_vs_all_rgb": round(paired_ratio(times["all_frames_rgb"], times["views"]), 2),
        "speedup_vs_all_no_rgb": round(paired_ratio(times["all_frames_no_rgb"], times["views"]), 2),
        "reps": reps,
    }


def _write_training_videos(folder: Path, count: int, seconds: float, width: int, height: int) -> Path:
    """``count`` Kinetics-like short clips (``seconds`` long, 30 fps, x264's default keyframe interval, 3
    B-frames) and a ``path label`` list file."""
    lines = []
    for index in range(count):
        path = folder / f"clip_{index:03d}.mp4"
        if not path.exists():
            _write_synthetic_video(path, seconds, 30, width, height, 250, "ultrafast", 3, seed=index)
        lines.append(f"{path.name} {index % 4}")
    list_file = folder / "train.txt"
    list_file.write_text("\n".join(lines) + "\n")
    return list_file


def loader_suite(
    workers: Sequence[int] = (0, 1, 2),
    num_videos: int = 16,
    batch_size: int = 4,
    seconds: float = 10.0,
    size: tuple[int, int] = (340, 256),
    reps: int = 2,
    name: str = _BASE_REFERENCE,
    model_kwargs: Mapping[str, Any] | None = None,
    workdir: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """The training loader (``VideoClipDataset`` + ``DataLoader``, as the trainer builds it) over Kinetics-like
    clips (10 s, 340x256, 30 fps), one pass per setting, clips/s against the number of workers; the reference
    is the same pass in the main process (``workers=0``). Worker start-up is included, as in one epoch."""
    import timm
    from torch.utils.data import DataLoader

    from .train.datasets import VideoClipDataset, collate_skipping, read_video_list
    from .video.transforms import resolve_data_config

    with torch.device("meta"):
        model = timm.create_model(name, **(model_kwargs or {}))
    config = resolve_data_config(model)
    folder = Path(workdir) if workdir is not None else _cache_dir() / f"loader_{size[0]}x{size[1]}_{seconds:g}s_bf3_v2"
    folder.mkdir(parents=True, exist_ok=True)
    list_file = _write_training_videos(folder, num_videos, seconds, *size)
    samples = read_video_list(list_file, data_root=folder, num_classes=4)
    dataset = VideoClipDataset(samples, config, is_training=True)

    def one_pass(num_workers: int) -> Callable[[], int]:
        def run() -> int:
            loader = DataLoader(
                dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers, collate_fn=collate_skipping
            )
            return sum(0 if clips is None else clips.shape[0] for clips, _, _ in loader)

        return run

    fns = {f"workers={w}": one_pass(w) for w in workers}
    times = measure(fns, "cpu", reps=reps, warmup=0)
    reference = f"workers={workers[0]}"
    return [
        {
            "workers": w,
            "clips": num_videos,
            "batch_size": batch_size,
            "clip": f"{config.num_frames}x{config.frame_stride} of {seconds:.0f} s {size[0]}x{size[1]} mp4",
            "pass_s": _sig(statistics.median(times[f"workers={w}"])),
            "clips_per_s": _sig(num_videos / statistics.median(times[f"workers={w}"])),
            "speedup": round(paired_ratio(times[reference], times[f"workers={w}"]), 2),
        }
        for w in workers
    ]


# --- 6. memory ----------------------------------------------------------------------------------------------


def _rss_bytes() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return 0


def _memory_step(
    name: str,
    mode: str,
    device: torch.device,
    dtype: str,
    batch_size: int,
    num_frames: int | None,
    grad_checkpointing: bool,
    model_kwargs: Mapping[str, Any],
    steps: int,
) -> dict[str, Any]:
    """Build the model, then run inference or ``steps`` training steps (SGD with momentum, the trainer's default
    and the paper's recipe); peak memory in bytes.

    On CUDA: ``max_memory_allocated`` over the last step (after a first, untimed one that creates the optimizer
    state). On CPU: the process's peak resident set (``ru_maxrss``; meaningful in a fresh process) and the
    resident set once the model, data and optimizer exist.
    """
    torch.manual_seed(0)
    model = _create(name, device, **dict(model_kwargs))
    num_frames = num_frames or model.num_frames
    clips = _clip(model, batch_size, num_frames, device)
    labels = torch.zeros(batch_size, dtype=torch.long, device=device)
    autocast = _autocast(device, DTYPES[dtype])
    optimizer = None
    if mode == "train":
        model.train()
        model.set_grad_checkpointing(grad_checkpointing)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        if optimizer is None:
            with torch.inference_mode(), autocast:
                model(clips)
            return
        with autocast:
            loss = F.cross_entropy(model(clips).float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    params = sum(p.numel() * p.element_size() for p in model.parameters())
    if device.type == "cuda":
        for _ in range(steps - 1):
            step()
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return {
            "params_bytes": params,
            "before_bytes": before,
            "peak_bytes": torch.cuda.max_memory_allocated(device),
            "reserved_bytes": torch.cuda.max_memory_reserved(device),
        }
    import resource  # Unix only, like ru_maxrss

    before = _rss_bytes()
    for _ in range(steps):
        step()
    return {
        "params_bytes": params,
        "before_bytes": before,
        "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # KiB on Linux
    }


def _memory_child_main() -> None:
    """Entry point of the fresh process that ``peak_memory`` starts on CPU: JSON arguments in, JSON out."""
    kwargs = json.loads(sys.argv[1])
    torch.set_num_threads(kwargs.pop("threads"))
    result = _memory_step(device=torch.device("cpu"), **kwargs)
    print(json.dumps(result))


def peak_memory(
    name: str,
    mode: str = "inference",
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    batch_size: int = 1,
    num_frames: int | None = None,
    grad_checkpointing: bool = False,
    model_kwargs: Mapping[str, Any] | None = None,
    steps: int = 2,
) -> dict[str, Any]:
    """Peak memory of one model's inference or training step.

    Args:
        mode: ``"inference"`` (a forward under ``inference_mode``) or ``"train"`` (forward, cross-entropy,
            backward and an SGD-with-momentum step; fp32 weights and optimizer state, autocast for bf16).
        device: on CUDA measured in this process (``torch.cuda.max_memory_allocated``); on CPU in a fresh Python
            process (peak RSS), so that nothing this process allocated before counts.
        grad_checkpointing: recompute each block in the backward pass instead of keeping its activations.
        steps: training steps run; the peak is that of the last (the first creates the optimizer state).

    Returns:
        A row with ``peak_mib`` (and on CPU ``rss_before_mib``, the process once model and data exist) or
        ``error`` (e.g. out of memory).
    """
    device = torch.device(device)
    row: dict[str, Any] = {
        "model": name,
        "mode": mode + (" +ckpt" if grad_checkpointing else ""),
        "dtype": dtype,
        "batch_size": batch_size,
    }
    steps = steps if mode == "train" else 1
    args = dict(
        name=name,
        mode=mode,
        dtype=dtype,
        batch_size=batch_size,
        num_frames=num_frames,
        grad_checkpointing=grad_checkpointing,
        model_kwargs=dict(model_kwargs or {}),
        steps=steps,
    )
    if device.type == "cuda":
        try:
            result = _memory_step(device=device, **args)
        except torch.cuda.OutOfMemoryError as err:
            row["error"] = f"out of memory: {str(err).splitlines()[0][:100]}"
            return row
        finally:
            gc.collect()
            torch.cuda.empty_cache()
        row.update(
            peak_mib=_sig(result["peak_bytes"] / 2**20),
            reserved_mib=_sig(result["reserved_bytes"] / 2**20),
            params_mib=_sig(result["params_bytes"] / 2**20),
        )
        return row
    code = "from tokshift_zoo.benchmark import _memory_child_main; _memory_child_main()"
    args["threads"] = torch.get_num_threads()
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        row["error"] = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1][:200]
        return row
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(
        peak_mib=_sig(result["peak_bytes"] / 2**20),
        rss_before_mib=_sig(result["before_bytes"] / 2**20),
        params_mib=_sig(result["params_bytes"] / 2**20),
    )
    return row


def memory_suite(
    models: Iterable[str],
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    batch_size: int = 1,
    num_frames: int | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """``peak_memory`` for inference, a training step, and a training step with gradient checkpointing."""
    rows = []
    for name in models:
        for mode, ckpt in (("inference", False), ("train", False), ("train", True)):
            _logger.info("memory suite: %s %s%s", name, mode, " +ckpt" if ckpt else "")
            rows.append(peak_memory(name, mode, device, dtype, batch_size, num_frames, ckpt, model_kwargs))
    return rows


# --- everything, and printing -------------------------------------------------------------------------------


def run_benchmarks(
    suites: Iterable[str] = DEFAULT_SUITES,
    models: str | None = None,
    device: str = "cpu",
    dtypes: Sequence[str] | None = None,
    compile: bool = False,  # noqa: A002 - the CLI flag's name
    batch_size: int | None = None,
    num_frames: int | None = None,
    reps: int | None = None,
    video: str | None = None,
    video_seconds: float = 300.0,
    workers: Sequence[int] = (0, 1, 2),
    workdir: str | None = None,
    report: Callable[[str, Any], None] | None = None,
) -> dict[str, Any]:
    """Run the chosen suites with the CLI's defaults; ``report(suite, result)`` is called as each finishes.

    Defaults: on CPU the Base-224 8-frame models, fp32, batch 1, 3 rounds; on GPU every model, fp32 and bf16,
    batch 8, 10 rounds; the decode suite 2 rounds unless ``reps`` is given. The memory suite runs in the first
    dtype given (bf16 when it is among them on GPU).
    """
    device_t = torch.device(device)
    on_gpu = device_t.type == "cuda"
    if on_gpu and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
    from .models.registry import list_models

    names = list_models(models or default_models(device_t))
    if not names:
        raise ValueError(f"no zoo model matches {models!r}")
    dtypes = list(dtypes or (("fp32", "bf16") if on_gpu else ("fp32",)))
    batch_size = batch_size or (8 if on_gpu else 1)
    decode_reps = reps or 2  # a round decodes a long video several times over
    reps = reps or (10 if on_gpu else 3)
    warmup = 3 if on_gpu else 1
    report = report or (lambda suite, result: None)
    results: dict[str, Any] = {"environment": environment(device_t)}
    report("environment", results["environment"])
    suites = list(suites)
    if "model" in suites:
        compile_modes = (False, True) if compile else (False,)
        rows = model_suite(names, device_t, dtypes, compile_modes, batch_size, num_frames, reps, warmup)
        results["model"] = rows
        report("model", rows)
    if "breakdown" in suites:
        rows = []
        for name in names:
            result = op_breakdown(name, device_t, batch_size, num_frames)
            rows.append({k: v for k, v in result.items() if k != "share"} | result["share"])
        results["breakdown"] = rows
        report("breakdown", rows)
    if "shift" in suites:
        results["shift"] = shift_suite(device_t, batch_size if on_gpu else 1, num_frames, max(reps, 3), warmup)
        report("shift", results["shift"])
    if "attention" in suites:
        attention_names = [n for n in names if fnmatch.fnmatch(n, "tokshift_*")] or names
        rows = []
        for dtype in dtypes:
            if not on_gpu and dtype != "fp32" and not cpu_has_native_bf16():
                continue
            rows += attention_suite(device_t, dtype, batch_size, num_frames, reps, attention_names)
        results["attention"] = rows
        report("attention", rows)
    if "decode" in suites:
        results["decode"] = decode_suite(video, video_seconds, reps=decode_reps, workdir=workdir)
        report("decode", results["decode"])
    if "loader" in suites:
        results["loader"] = loader_suite(workers, workdir=Path(workdir) / "loader" if workdir else None)
        report("loader", results["loader"])
    if "memory" in suites:
        memory_dtype = "bf16" if on_gpu and "bf16" in dtypes else dtypes[0]
        results["memory"] = memory_suite(names, device_t, memory_dtype, 1 if not on_gpu else batch_size, num_frames)
        report("memory", results["memory"])
    results["environment"]["loadavg_1min_end"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    return results


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as an aligned text table; ``columns`` defaults to every key, in first-seen order."""
    if not rows:
        return "(no rows)"
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)

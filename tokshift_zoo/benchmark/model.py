"""Model speed: clips/s, latency and the achieved FLOP rate against a same-dtype GEMM of the model's own MLP shape
measured in the same rounds; and where one forward spends its time (``torch.profiler``, grouped by operator).

FLOPs are ``tokshift_zoo.flops.count_flops(model)["gflops_full"]`` (linear, convolution and attention
multiply-adds, so 2 FLOPs each); the rate is ``2 * multiply-adds / seconds``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..devices import DTYPES, autocast
from . import core
from .core import build_model, measure, num_tokens, random_clip, significant, summarize, synchronize

__all__ = ["gemm_shape", "make_gemm", "benchmark_model", "model_suite", "op_breakdown"]

_logger = logging.getLogger(__name__)

# --- the GEMM reference -------------------------------------------------------------------------------------


def gemm_shape(model: nn.Module, batch_size: int, num_frames: int) -> tuple[int, int, int]:
    """(M, K, N) of the model's MLP ``fc1`` on a batch: M = B*T*tokens, K = width, N = MLP width (4x)."""
    fc1 = model.blocks[0].mlp.fc1
    return batch_size * num_frames * num_tokens(model), fc1.in_features, fc1.out_features


def make_gemm(m: int, k: int, n: int, dtype: torch.dtype, device: str | torch.device) -> Callable[[], torch.Tensor]:
    """A plain (M, K) x (K, N) matrix product in ``dtype``, laid out as ``F.linear`` runs it (weight (N, K),
    transposed, no bias); each call allocates its output, as a layer does. 2*M*K*N FLOPs per call."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(m, k, generator=generator).to(device, dtype)
    w = torch.randn(n, k, generator=generator).to(device, dtype)
    return lambda: F.linear(a, w)


# --- model speed and where it goes ---------------------------------------------------------------------------


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
    from ..flops import count_flops

    device = torch.device(device)
    torch_dtype = DTYPES[dtype]
    model = build_model(name, device, **(model_kwargs or {}))
    num_frames = num_frames or model.num_frames
    gflops = count_flops(model, num_frames)["gflops_full"]
    row: dict[str, Any] = {
        "model": name,
        "dtype": dtype,
        "compile": compile,
        "batch_size": batch_size,
        "frames": num_frames,
        "resolution": model.patch_embed.img_size[0],
        "gflops_per_view": significant(gflops),
    }
    if device.type == "cpu" and torch_dtype != torch.float32 and not core.cpu_has_native_bf16():
        row["skipped"] = f"no native {dtype} matrix units on this CPU ({torch.backends.cpu.get_cpu_capability()})"
        return row
    net = model
    if compile:
        net = torch.compile(model)
    clips = random_clip(model, batch_size, num_frames, device)
    one = clips[:1]
    m, k, n = gemm_shape(model, batch_size, num_frames)
    gemm = make_gemm(m, k, n, torch_dtype, device)
    amp = autocast(device, None if torch_dtype == torch.float32 else torch_dtype)

    def forward(x: torch.Tensor) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with torch.inference_mode(), amp:
                return net(x)

        return run

    with core.inductor_freezing(device) if compile else contextlib.nullcontext():
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
        clips_per_s=significant(batch_size / model_s["median_s"]),
        latency_ms=significant(1e3 * latency_s["median_s"]),
        latency_min_ms=significant(1e3 * latency_s["min_s"]),
        tflops=significant(statistics.median(rates) / 1e12),
        gemm_tflops=significant(statistics.median(gemm_rates) / 1e12),
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


# Kineto (the profiler's C++ core) writes its progress and, on a machine without a GPU, a failed CUDA device query
# straight to file descriptor 2: lines such as "USDT:... profiler_start" and "ERROR:... gpuGetDeviceCount failed".
_KINETO_NOISE = re.compile(r"^(USDT|STAGE|INFO|WARNING):.*\.cpp:\d+\]|^ERROR:.*gpuGetDeviceCount failed")


@contextlib.contextmanager
def _kineto_noise_filtered() -> Iterator[None]:
    """Within the block, the process's stderr (the file descriptor, which C++ writes to) goes to a temporary
    file; afterwards every line but Kineto's progress and device-query noise is written back to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines()
            kept = [line for line in lines if not _KINETO_NOISE.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


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

    from ..flops import count_flops

    device = torch.device(device)
    model = build_model(name, device, **(model_kwargs or {}))
    num_frames = num_frames or model.num_frames
    clip = random_clip(model, batch_size, num_frames, device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.no_grad():
        model(clip)
        synchronize(device)
        with _kineto_noise_filtered():
            with profile(activities=activities) as prof:
                model(clip)
                synchronize(device)
            events = prof.key_averages()
    # the ATen operators' own time: on GPU the device time of the kernels each launched, on CPU their CPU time
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    groups: dict[str, float] = {}
    for event in events:
        if event.key.startswith("aten::") and event.device_type == torch.autograd.DeviceType.CPU:
            groups[_op_group(event.key)] = groups.get(_op_group(event.key), 0.0) + getattr(event, attr)
    total = sum(groups.values())
    linear_gflops = count_flops(model, num_frames)["gflops"] * batch_size
    matmul_s = groups.get("matmul", 0.0) / 1e6
    return {
        "model": name,
        "batch_size": batch_size,
        "frames": num_frames,
        "profiled_s": significant(total / 1e6),
        "share": {group: significant(t / total, 3) for group, t in sorted(groups.items(), key=lambda kv: -kv[1])},
        "matmul_tflops": significant(2 * linear_gflops * 1e9 / matmul_s / 1e12) if matmul_s else None,
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

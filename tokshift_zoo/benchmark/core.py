"""The timing core every suite shares: interleaved rounds, paired ratios, the environment, model and clip builders.

A busy or throttled machine slows everything it runs, so no figure stands alone: ``measure`` times a set of
functions in rounds that alternate their order, and ``paired_ratio`` takes the median over rounds of the ratio of
two of them, so a slow patch of a shared machine hits a figure and its reference alike.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

__all__ = [
    "BASE_REFERENCE",
    "build_model",
    "cache_dir",
    "cpu_has_native_bf16",
    "default_models",
    "environment",
    "inductor_freezing",
    "loadavg",
    "measure",
    "num_tokens",
    "paired_ratio",
    "random_clip",
    "significant",
    "summarize",
    "synchronize",
]

BASE_REFERENCE = "tokshift_base16_224_8f"  # the model the shift, attention, decode and runtime suites take shapes from


# --- the machine ----------------------------------------------------------------------------------------------


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


def loadavg() -> float | None:
    """The 1-minute load average (how busy the machine was), or None where the OS has none."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


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
        "loadavg_1min": loadavg(),
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


def cache_dir() -> Path:
    """Where synthetic benchmark videos are kept between runs: ``$XDG_CACHE_HOME/tokshift_zoo/benchmark``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tokshift_zoo" / "benchmark"


# --- timing ---------------------------------------------------------------------------------------------------


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
    lead_calls: int = 0,
) -> dict[str, list[float]]:
    """Seconds per call of each function, measured in ``reps`` interleaved rounds.

    Each function first runs ``warmup`` times (at least once: that call also sizes it). In each round every
    function runs once, in alternating order, so a slow patch of a shared machine hits all of them alike and
    the ratio of two functions can be taken round by round (``paired_ratio``). A function faster than
    ``min_seconds`` is called several times per round and its mean taken. ``lead_calls``: untimed calls of each
    function right before its timed ones in every round, so that it is timed as a server running only it would
    run: on its own warm threads and caches, not slowed by the function timed before it (ONNX Runtime's threads
    spin for tens of milliseconds after a call and take the cores from whatever runs next).

    Returns:
        ``{name: [seconds per call in round 0, round 1, ...]}``.
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
            for _ in range(lead_calls):
                fns[name]()
            times[name].append(_time_calls(fns[name], device, calls[name]))
    return times


def significant(value: float, digits: int = 4) -> float:
    """``value`` rounded to ``digits`` significant digits (figures span tiny test models to 1e15 FLOP/s)."""
    return float(f"{value:.{digits}g}")


def summarize(times: Sequence[float]) -> dict[str, float]:
    """Median and minimum of a list of seconds, in seconds."""
    return {"median_s": statistics.median(times), "min_s": min(times)}


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """The median over rounds of ``numerator[i] / denominator[i]`` (two lists from the same ``measure``)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


# --- models and their inputs ----------------------------------------------------------------------------------


def default_models(device: str | torch.device) -> str:
    """The default ``--models`` glob: every zoo model on GPU; on CPU the two Base-224 8-frame ones, the ViT
    baseline and TokShift (a ViT-B/16 8x224 forward takes seconds on a small CPU, a Large-384 one minutes)."""
    return "*" if torch.device(device).type == "cuda" else "*base16_224_8f"


def build_model(name: str, device: str | torch.device = "cpu", **kwargs: Any) -> nn.Module:
    """A zoo model with random weights (speed does not depend on them) in eval mode on ``device``; on the meta
    device built without allocating or initialising weights (shapes only)."""
    from ..factory import create_model

    device = torch.device(device)
    if device.type == "meta":
        with torch.device("meta"):
            return create_model(name, **kwargs).eval()
    return create_model(name, **kwargs).to(device).eval()


def random_clip(model: nn.Module, batch_size: int, num_frames: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """Standard-normal clips at the model's input size: (batch_size, 3, num_frames, H, W) float32."""
    height, width = model.patch_embed.img_size
    return torch.randn(batch_size, model.in_chans, num_frames, height, width, device=device)


def num_tokens(model: nn.Module) -> int:
    """Tokens per frame: patches plus the class token."""
    return model.patch_embed.num_patches + model.num_prefix_tokens


class _DropNoCudaWarning(logging.Filter):
    """torch's C++ extension loader, imported by Inductor, warns on a machine without CUDA that it found none."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No CUDA runtime is found" not in record.getMessage()


@contextlib.contextmanager
def inductor_freezing(device: str | torch.device) -> Iterator[None]:
    """Within it, Inductor on CPU freezes the weights into the graph (inference), which lets it prepack them for
    oneDNN and fuse the bias and GELU into the matrix products: PyTorch's recommended CPU inference setting."""
    if torch.device(device).type != "cpu":
        yield
        return
    import torch._inductor.config as inductor_config

    logger, no_cuda = logging.getLogger("torch.utils.cpp_extension"), _DropNoCudaWarning()
    logger.addFilter(no_cuda)
    try:
        with inductor_config.patch(freezing=True):
            yield
    finally:
        logger.removeFilter(no_cuda)

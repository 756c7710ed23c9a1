"""Peak memory of inference and of a training step (optionally with gradient checkpointing):
``torch.cuda.max_memory_allocated`` on GPU, the peak resident set of a fresh process on CPU."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..devices import DTYPES, autocast
from .core import build_model, random_clip, significant

__all__ = ["peak_memory", "memory_suite"]

_logger = logging.getLogger(__name__)


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
    model = build_model(name, device, **dict(model_kwargs))
    num_frames = num_frames or model.num_frames
    clips = random_clip(model, batch_size, num_frames, device)
    labels = torch.zeros(batch_size, dtype=torch.long, device=device)
    amp = autocast(device, None if DTYPES[dtype] == torch.float32 else DTYPES[dtype])
    optimizer = None
    if mode == "train":
        model.train()
        model.set_grad_checkpointing(grad_checkpointing)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        if optimizer is None:
            with torch.inference_mode(), amp:
                model(clips)
            return
        with amp:
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
            peak_mib=significant(result["peak_bytes"] / 2**20),
            reserved_mib=significant(result["reserved_bytes"] / 2**20),
            params_mib=significant(result["params_bytes"] / 2**20),
        )
        return row
    code = "from tokshift_zoo.benchmark.memory import _memory_child_main; _memory_child_main()"
    args["threads"] = torch.get_num_threads()
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        row["error"] = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1][:200]
        return row
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(
        peak_mib=significant(result["peak_bytes"] / 2**20),
        rss_before_mib=significant(result["before_bytes"] / 2**20),
        params_mib=significant(result["params_bytes"] / 2**20),
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

"""Runtimes: eager fp32, ``torch.compile``, ONNX Runtime fp32 and ONNX Runtime int8 (dynamic quantisation of the
matrix products), each timed against eager fp32 in the same rounds, with how far each one's outputs are from
eager's; and the demo model's held-out accuracy under each runtime."""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .core import (
    BASE_REFERENCE,
    build_model,
    cache_dir,
    inductor_freezing,
    measure,
    paired_ratio,
    random_clip,
    significant,
)

__all__ = ["runtime_suite", "runtime_accuracy"]

_logger = logging.getLogger(__name__)


def _agreement(
    run: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    clips: torch.Tensor,
    expected: list[tuple[torch.Tensor, torch.Tensor]],
) -> dict[str, Any]:
    """A runtime's outputs against eager's on the same clips, one clip at a time."""
    diffs, agree, cosines = [], 0, []
    for clip, (logits_ref, embedding_ref) in zip(clips.split(1), expected, strict=True):
        logits, embedding = (out.float().cpu() for out in run(clip))
        diffs.append(float((logits - logits_ref).abs().max()))
        agree += int(logits.argmax(-1).item() == logits_ref.argmax(-1).item())
        cosines.append(float(torch.nn.functional.cosine_similarity(embedding, embedding_ref).min()))
    return {
        "max_abs_diff": float(f"{max(diffs):.3g}"),
        "top1_agreement": round(100.0 * agree / len(diffs), 1),
        "embedding_cosine_min": round(min(cosines), 6),
    }


def runtime_suite(
    name: str = BASE_REFERENCE,
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    num_frames: int | None = None,
    reps: int = 3,
    warmup: int = 1,
    compile_backend: str | None = "inductor",
    agreement_clips: int = 8,
    model_kwargs: Mapping[str, Any] | None = None,
    min_seconds: float = 0.0,
) -> list[dict[str, Any]]:
    """One model (random weights, seeded) under each runtime, on the same clip, timed in interleaved rounds, each
    timed call right after an untimed one of the same runtime (so no runtime runs on another's spinning threads).

    Args:
        name: a zoo model; Base-224 8-frame by default.
        device: eager and compiled run there; ONNX Runtime runs on CPU (on CUDA its rows are skipped unless
            onnxruntime has the CUDA execution provider, and int8 always is: dynamic quantisation is a CPU path).
        compile_backend: ``torch.compile``'s backend (Inductor, with weight freezing on CPU); None leaves the
            compiled row out.
        agreement_clips: random clips on which each runtime's outputs are compared with eager's.
        min_seconds: a call faster than this is repeated within a round (tiny test models).

    Returns:
        One row per runtime: ``ms`` (median per call), ``ms_min``, ``vs_eager`` (median over rounds of its time
        over eager's in the same round: < 1 is faster) and ``vs_eager_range`` (lowest and highest), ``setup_s``
        (export or compile time), and against eager on the clips: ``max_abs_diff`` (logits), ``top1_agreement``
        (%), ``embedding_cosine_min``.
    """
    from ..export import LogitsAndEmbedding, OnnxRuntimeModel, export_model, require

    device = torch.device(device)
    torch.manual_seed(0)
    model = build_model(name, "cpu", **(model_kwargs or {}))
    num_frames = num_frames or model.num_frames
    clip = random_clip(model, batch_size, num_frames)
    generator = torch.Generator().manual_seed(1)
    height, width = model.patch_embed.img_size
    clips = torch.randn(agreement_clips, model.in_chans, num_frames, height, width, generator=generator)
    outputs = LogitsAndEmbedding(model).eval()
    with torch.inference_mode():
        expected = [outputs(c) for c in clips.split(1)]

    def on(module: nn.Module) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            with torch.inference_mode():
                return module(x.to(device))

        return run

    rows: dict[str, dict[str, Any]] = {"eager fp32": {"setup_s": 0.0}}
    runs = {"eager fp32": on(outputs)}
    if compile_backend is not None:
        runs["torch.compile"] = on(torch.compile(outputs, backend=compile_backend))
        rows["torch.compile"] = {}

    ort = require("onnxruntime")
    providers = ["CPUExecutionProvider"]
    ort_skip = None
    if device.type == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers = ["CUDAExecutionProvider"]
        else:
            ort_skip = "this onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)"
    with tempfile.TemporaryDirectory() as tmp:
        for label, int8 in (("onnxruntime fp32", False), ("onnxruntime int8", True)):
            if ort_skip or (int8 and device.type == "cuda"):
                rows[label] = {"skipped": ort_skip or "dynamic int8 quantisation runs on CPU only"}
                continue
            start = time.perf_counter()
            path = Path(tmp) / f"{label.split()[-1]}.onnx"
            export_model(model, path, "onnx", int8=int8, frames=num_frames, dynamic_batch=True, check=False)
            runner = OnnxRuntimeModel(path, providers=providers)
            rows[label] = {"setup_s": round(time.perf_counter() - start, 1)}
            runs[label] = runner.run
    outputs.to(device)

    x = clip.to(device)
    fns = {label: (lambda run=run: run(x)) for label, run in runs.items()}
    with inductor_freezing(device) if compile_backend == "inductor" else contextlib.nullcontext():
        if "torch.compile" in runs:
            start = time.perf_counter()
            fns["torch.compile"]()  # compiles
            rows["torch.compile"]["setup_s"] = round(time.perf_counter() - start, 1)
        # each runtime timed right after an untimed call of its own, not on the heels of another runtime's threads
        times = measure(fns, device, reps=reps, warmup=warmup, min_seconds=min_seconds, lead_calls=1)
        for label, run in runs.items():
            rows[label].update(_agreement(run, clips, expected))
    result = []
    for label, row in rows.items():
        head = {"runtime": label, "model": name, "batch_size": batch_size, "frames": num_frames}
        if "skipped" in row:
            result.append(head | row)
            continue
        result.append(
            head
            | {
                "ms": significant(1e3 * statistics.median(times[label])),
                "ms_min": significant(1e3 * min(times[label])),
                "vs_eager": round(paired_ratio(times[label], times["eager fp32"]), 3),
                "vs_eager_range": [  # the machine's noise, round to round
                    round(min(a / b for a, b in zip(times[label], times["eager fp32"], strict=True)), 3),
                    round(max(a / b for a, b in zip(times[label], times["eager fp32"], strict=True)), 3),
                ],
            }
            | row
            | {"reps": reps}
        )
    return result


def runtime_accuracy(
    model_name: str | None = None,
    num_clips: int = 400,
    seed: int = 3,
    views: str = "1x3",
    workdir: str | os.PathLike | None = None,
    runtimes: Sequence[tuple[str, bool]] = (("eager", False), ("onnxruntime", False), ("onnxruntime", True)),
) -> list[dict[str, Any]]:
    """The demo model's top-1 on held-out clips of its synthetic motion task under each runtime.

    The clips (``num_clips`` class-balanced mp4 files, ``seed`` 3: the demo recipe's held-out seed, clips its
    training never saw) are written once to ``workdir`` (default: a folder of ``~/.cache/tokshift_zoo/benchmark``
    named by the task's version, the clip count and the seed).

    Returns:
        One row per runtime: ``top1``, ``mean_class_accuracy``, ``top1_vs_eager`` (points).
    """
    from ..export import runtime_model
    from ..inference import evaluate
    from ..models.registry import DEFAULT_MODEL
    from ..ready import load
    from ..synthetic import MOTION_LABELS, TASK_VERSION, write_motion_dataset
    from ..train.datasets import read_video_list

    model_name = model_name or DEFAULT_MODEL
    root = Path(workdir) if workdir is not None else cache_dir() / f"motion_v{TASK_VERSION}_{num_clips}_seed{seed}"
    list_file = root / "list.txt"
    if not list_file.exists():
        _logger.info("writing %d held-out clips to %s (once)", num_clips, root)
        write_motion_dataset(root, num_clips, seed=seed)
    samples = [(str(s.path), s.label) for s in read_video_list(list_file, root, label_names=MOTION_LABELS)]
    model = load(model_name, device="cpu")
    rows = []
    for runtime, int8 in runtimes:
        result = evaluate(runtime_model(model, runtime, int8), samples, views=views, progress=False)
        rows.append(
            {
                "runtime": runtime + ("-int8" if int8 else ""),
                "model": model_name,
                "clips": result["videos"],
                "views": views,
                "top1": round(result["top1"], 2),
                "mean_class_accuracy": round(result["mean_class_accuracy"], 2),
            }
        )
    for row in rows:
        row["top1_vs_eager"] = round(row["top1"] - rows[0]["top1"], 2)
    return rows

"""Every suite with the CLI's defaults (``tokshift-zoo benchmark``), and the text tables it prints."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from . import core
from .attention import attention_suite
from .core import default_models, environment, loadavg
from .decode import decode_suite
from .loader import loader_suite
from .memory import memory_suite
from .model import model_suite, op_breakdown
from .runtime import runtime_accuracy, runtime_suite
from .scale import scale_suite
from .shift import shift_suite

__all__ = ["SUITES", "DEFAULT_SUITES", "run_benchmarks", "format_table"]


SUITES = ("model", "breakdown", "shift", "attention", "decode", "loader", "memory", "runtime", "scale")
DEFAULT_SUITES = ("model", "breakdown", "shift", "attention")  # minutes on 2 CPU cores; "all" adds the rest


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
    dtype given (bf16 when it is among them on GPU). The runtime suite times the Base-224 8-frame model and
    scores the demo model per runtime; without the ``[onnx]`` extra it reports itself skipped.
    """
    device_t = torch.device(device)
    on_gpu = device_t.type == "cuda"
    if on_gpu and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
    from ..models.registry import list_models

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
            if not on_gpu and dtype != "fp32" and not core.cpu_has_native_bf16():
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
    if "runtime" in suites:
        try:
            results["runtime"] = {
                "speed": runtime_suite(
                    device=device_t, batch_size=batch_size, num_frames=num_frames, reps=max(reps, 3), warmup=warmup
                )
            }
            results["runtime"]["accuracy"] = runtime_accuracy(workdir=Path(workdir) / "held_out" if workdir else None)
        except ImportError as err:  # no [onnx] extra: the other suites still count
            results["runtime"] = {"skipped": str(err)}
        report("runtime", results["runtime"])
    if "scale" in suites:  # embed in 1 and 2 processes (torchrun), 10x3 decoding against the model
        scale_models = list_models(models) if models else ["tokshift_demo_motion", core.BASE_REFERENCE]
        scale_dir = Path(workdir) / "scale" if workdir else None
        results["scale"] = scale_suite(scale_models, rounds=reps or 3, workdir=scale_dir)
        report("scale", results["scale"])
    results["environment"]["loadavg_1min_end"] = loadavg()
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

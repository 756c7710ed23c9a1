"""What limits a zoo model's FLOP rate on a CPU.

For each thread count, three things are timed in the same interleaved rounds: the eager fp32 forward, the
``torch.compile`` forward (Inductor with weight freezing, which prepacks the weights for oneDNN and fuses each
linear layer's bias, and the GELU, into the matrix product), and the reference fp32 GEMM of the model's MLP
``fc1`` shape. Each model figure is a paired ratio against the GEMM of the same rounds. Then the operator
breakdown of one eager forward per thread count says which operators do not scale with the cores, and two
probes give the machine's copy bandwidth and its bf16 against fp32 GEMM rate.

    .venv/bin/python benchmarks/cpu_limits.py [--model tokshift_base16_224_8f] [--threads 2,1] [--reps 5]
        [--no-compile] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time

import torch

from tokshift_zoo import benchmark
from tokshift_zoo.flops import count_flops


def measure_threads(name: str, threads: int, reps: int, compile_model: bool) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = benchmark.build_model(name, torch.device("cpu"))
    clip = benchmark.random_clip(model, 1, model.num_frames, torch.device("cpu"))
    flops = 2 * count_flops(model)["gflops_full"] * 1e9
    m, k, n = benchmark.gemm_shape(model, 1, model.num_frames)
    fns = {"eager": lambda: model(clip), "gemm": benchmark.make_gemm(m, k, n, torch.float32, "cpu")}
    freezing = contextlib.nullcontext()
    compile_s = None
    if compile_model:
        import torch._inductor.config as inductor_config

        torch._dynamo.reset()  # Inductor's CPU kernels fix their thread count when compiled
        freezing = inductor_config.patch(freezing=True)
        compiled = torch.compile(model)
        fns["compiled"] = lambda: compiled(clip)
    with torch.inference_mode(), freezing:
        if compile_model:
            start = time.perf_counter()
            fns["compiled"]()
            compile_s = round(time.perf_counter() - start, 1)
        times = benchmark.measure(fns, reps=reps, warmup=1, min_seconds=1.0)
    gemm_rates = [2 * m * k * n / t for t in times["gemm"]]
    row = {
        "threads": threads,
        "gemm_gflops": round(statistics.median(gemm_rates) / 1e9, 1),
        "gemm_shape": f"({m}, {k}) x ({k}, {n})",
        "compile_s": compile_s,
        "reps": reps,
    }
    for key in ("eager", "compiled"):
        if key in times:
            rates = [flops / t for t in times[key]]
            row[f"{key}_s"] = round(statistics.median(times[key]), 2)
            row[f"{key}_gflops"] = round(statistics.median(rates) / 1e9, 1)
            row[f"{key}_frac_of_gemm"] = round(
                statistics.median(r / g for r, g in zip(rates, gemm_rates, strict=True)), 3
            )
    if "compiled" in times:
        row["compiled_speedup"] = round(benchmark.paired_ratio(times["eager"], times["compiled"]), 3)
    row["loadavg_1min"] = round(os.getloadavg()[0], 2)
    return row


def probes(threads: int, reps: int) -> dict:
    """Copy bandwidth on a buffer the size of an MLP activation, and the bf16 against the fp32 GEMM rate (a small
    shape: without bf16 matrix units a bf16 GEMM is slow)."""
    torch.set_num_threads(threads)
    src = torch.randn(1576 * 3072)  # the fc1 output of one 8x224 clip, 19 MB
    dst = torch.empty_like(src)
    m, k, n = 512, 768, 768
    fns = {
        "copy": lambda: dst.copy_(src),
        "gemm_fp32": benchmark.make_gemm(m, k, n, torch.float32, "cpu"),
        "gemm_bf16": benchmark.make_gemm(m, k, n, torch.bfloat16, "cpu"),
    }
    times = benchmark.measure(fns, reps=reps, warmup=1, min_seconds=0.2)
    return {
        "threads": threads,
        "copy_gb_s": round(2 * src.numel() * 4 / statistics.median(times["copy"]) / 1e9, 1),
        "gemm_shape": f"({m}, {k}) x ({k}, {n})",
        "fp32_gflops": round(2 * m * k * n / statistics.median(times["gemm_fp32"]) / 1e9, 1),
        "bf16_gflops": round(2 * m * k * n / statistics.median(times["gemm_bf16"]) / 1e9, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tokshift_base16_224_8f")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", default="2,1", help="comma list of torch thread counts")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="eager only")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    default_threads = torch.get_num_threads()
    rows, breakdowns, probe_rows = [], [], []
    for threads in [int(t) for t in args.threads.split(",")]:
        probe_rows.append(probes(threads, args.reps))
        print(benchmark.format_table([probe_rows[-1]]), flush=True)
        rows.append(measure_threads(args.model, threads, args.reps, args.compile))
        print(benchmark.format_table([rows[-1]]), flush=True)
        breakdown = benchmark.op_breakdown(args.model)
        breakdowns.append({"threads": threads} | {k: v for k, v in breakdown.items() if k != "share"})
        breakdowns[-1].update(breakdown["share"])
        print(benchmark.format_table([breakdowns[-1]]), flush=True)
    torch.set_num_threads(default_threads)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(
                {"environment": benchmark.environment(), "rows": rows, "breakdown": breakdowns, "probes": probe_rows},
                file,
                indent=2,
            )


if __name__ == "__main__":
    main()

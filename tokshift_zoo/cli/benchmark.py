"""The commands of ``benchmark``: the benchmark suites."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from ..benchmark import SUITES, format_table, run_benchmarks

    suites = [s.strip() for s in args.suite.split(",") if s.strip()]
    suites = list(SUITES) if "all" in suites else suites
    unknown = sorted(set(suites) - set(SUITES))
    dtypes = [d.strip() for d in args.dtypes.split(",")] if args.dtypes else None
    if unknown or any(d not in ("fp32", "bf16", "fp16") for d in dtypes or ()):
        message = f"suites are {','.join(SUITES)},all; dtypes fp32,bf16,fp16"
        print(f"tokshift-zoo benchmark: error: {message}", file=sys.stderr)
        return 2

    def report(suite: str, result: object) -> None:
        print(f"\n== {suite}")
        if isinstance(result, dict) and suite == "shift":
            print(format_table([result["models"]]))
            print(
                f"\nthe shift alone at {result['shift_shape']}; matches the authors' result: "
                f"{result['matches_authors']}; class-token channels moved: {result['class_token_channels']} "
                f"of {result['tokens_elements']} elements"
            )
            print(format_table(result["shift"]))
        elif isinstance(result, dict):
            for key, value in result.items():
                if isinstance(value, list) and value and isinstance(value[0], dict):
                    print(f"-- {key}\n{format_table(value)}")
                else:
                    print(f"{key}: {value}")
        else:
            print(format_table(result))
        sys.stdout.flush()

    try:
        results = run_benchmarks(
            suites,
            models=args.models,
            device=args.device,
            dtypes=dtypes,
            compile=args.compile,
            batch_size=args.batch_size,
            num_frames=args.frames,
            reps=args.reps,
            video=args.video,
            video_seconds=args.video_seconds,
            workers=[int(w) for w in args.workers.split(",")],
            workdir=args.workdir,
            report=report,
        )
    except (RuntimeError, ValueError) as err:
        print(f"tokshift-zoo benchmark: error: {err}", file=sys.stderr)
        return 1
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)
        print(f"\nwrote {args.json}")
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """The parser of ``benchmark``."""
    bench = commands.add_parser(
        "benchmark",
        help="speed, FLOP rate, the shift's cost, attention, decoding and memory, each against a same-run reference",
        description="Each figure is measured in rounds interleaved with its reference (a GEMM of the model's MLP "
        "shape, timm's plain ViT on the same frames, decoding every frame, ...) and reported as a ratio, so it "
        "survives a busy machine. Defaults: on CPU the Base-224 8-frame models in fp32, batch 1; on GPU all "
        "models, fp32 and bf16, batch 8.",
    )
    bench.add_argument("--models", help="glob on zoo model names (default: '*base16_224_8f' on CPU, '*' on GPU)")
    bench.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the models run")
    bench.add_argument("--dtypes", help="comma list of fp32, bf16, fp16 (default: fp32 on CPU, fp32,bf16 on GPU)")
    bench.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    bench.add_argument("--batch-size", type=int, help="clips per forward (default: 1 on CPU, 8 on GPU)")
    bench.add_argument("--frames", type=int, help="frames per clip (default: each model's own)")
    bench.add_argument("--reps", type=int, help="measurement rounds (default: 3 on CPU, 10 on GPU; 2 for decode)")
    bench.add_argument(
        "--suite",
        default="model,breakdown,shift,attention",  # benchmark.DEFAULT_SUITES (not imported: torch is slow to load)
        help="comma list of model,breakdown,shift,attention,decode,loader,memory,runtime,scale, or all (default: "
        "the first four; all takes 10-20 minutes on two CPU cores, the first time 3 more to write the synthetic "
        "videos, and scale 10-20 more; runtime needs the [onnx] extra)",
    )
    bench.add_argument("--video", help="decode suite: a long video file (default: write a synthetic 720p30 one)")
    bench.add_argument("--video-seconds", type=float, default=300.0, help="length of the synthetic video")
    bench.add_argument("--workdir", help="folder for the synthetic videos (default ~/.cache/tokshift_zoo/benchmark)")
    bench.add_argument("--workers", default="0,1,2", help="loader suite: comma list of worker counts")
    bench.add_argument("--json", metavar="OUT", help="also write every figure and the environment to this file")
    bench.set_defaults(func=_cmd_benchmark)

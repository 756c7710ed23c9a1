"""From one video to many: embed's videos/s in one process and in two under torchrun, the share of its time spent
decoding, and how a 10x3 evaluate's decoding compares with its model time.

    python benchmarks/scale.py [--models tokshift_base16_224_8f,tokshift_demo_motion] [--videos 8] [--rounds 3]

Inputs: Kinetics-like clips (10 s, 340x256, 30 fps, H.264 with x264's keyframe interval and B-frames, written
once into --workdir). Models have random weights (a checkpoint written here; speed does not depend on values).

- ``embed``: ``tokshift-zoo embed`` over the clips, views 1x1, no loader workers (so the time waiting for views is
  all decoding and cropping), as one process with torch using every core, one process with one thread, and two
  processes under ``torchrun --nproc-per-node 2`` (cores / 2 threads each); each round runs the three in rotated
  order, into fresh folders. videos/s counts the embedding loop (the slowest rank's), not process start-up and
  model loading; the decode share is the time spent waiting for decoded views over that plus the model's time,
  summed over ranks.
- ``evaluate_10x3``: per clip, the 30 views ``evaluate`` makes (``VideoPreprocess``: packet scan, seeks, decoding
  the 80 sampled frames, 3 crops each) against the model's time on them (3 views timed, times 10: the model's
  time is linear in views), alternating, with torch on every core and on one thread. A ratio below 1 means one
  decoding process keeps up with the model.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def _write_clips(folder: Path, count: int, seconds: float = 10.0, size: tuple[int, int] = (340, 256)) -> list[str]:
    """Kinetics-like clips: a textured scene panning with a square crossing it (every frame differs)."""
    import av

    width, height = size
    paths = []
    for index in range(count):
        path = folder / f"clip_{index:03d}.mp4"
        paths.append(str(path))
        if path.exists():
            continue
        rng = np.random.default_rng(index)
        canvas = rng.integers(0, 256, (height + 128, width + 256, 3), dtype=np.uint8)
        canvas = np.asarray(torch.nn.functional.avg_pool2d(torch.from_numpy(canvas).permute(2, 0, 1).float(), 9, 1, 4))
        canvas = canvas.transpose(1, 2, 0).astype(np.uint8)
        tmp = path.with_name(f".{path.stem}.incomplete.mp4")
        with av.open(str(tmp), mode="w") as container:
            stream = container.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"preset": "veryfast", "x264-params": "keyint=250:bframes=3"}
            for t in range(round(seconds * 30)):
                frame = canvas[t % 128 : t % 128 + height, (2 * t) % 256 : (2 * t) % 256 + width].copy()
                top, left = (7 * t) % (height - 40), (11 * t) % (width - 40)
                frame[top : top + 40, left : left + 40] = (40 * t) % 256
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        os.replace(tmp, path)
    return paths


def _checkpoint(name: str, folder: Path) -> Path:
    from safetensors.torch import save_file

    import tokshift_zoo

    path = folder / f"{name}_random.safetensors"
    if not path.exists():
        save_file(tokshift_zoo.create_model(name).state_dict(), path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _embed_run(
    name: str, checkpoint: Path, clips: list[str], output: Path, processes: int, threads: int
) -> dict[str, Any]:
    cli = ["-m", "tokshift_zoo.cli", "embed", *clips, "--output", str(output), "--model", name]
    cli += ["--checkpoint", str(checkpoint), "--device", "cpu", "--no-progress", "--num-workers", "0"]
    env = dict(os.environ, PYTHONPATH=str(REPO), GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS=str(threads))
    if processes == 1:
        cmd = [sys.executable, *cli]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={processes}"]
        cmd += ["--master-port", str(_free_port()), *cli]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    summary = json.loads(proc.stdout)
    busy = summary["decode_seconds"] + summary["model_seconds"]
    return {
        "videos_per_s": len(clips) / summary["seconds"],
        "decode_share": summary["decode_seconds"] / busy,
        "wall_s": wall,
    }


def embed_suite(names: list[str], clips: list[str], workdir: Path, rounds: int) -> list[dict[str, Any]]:
    """Per model: (processes, torch threads each) = (1, all cores), (1, 1), (2, cores / 2), each round running all
    three in rotated order; speedup is the median over rounds of videos/s against (1, all cores) in that round."""
    cores = os.cpu_count() or 1
    configs = [(1, cores), (1, 1), (2, max(1, cores // 2))]
    rows = []
    for name in names:
        checkpoint = _checkpoint(name, workdir)
        runs: dict[tuple[int, int], list[dict[str, Any]]] = {config: [] for config in configs}
        for r in range(rounds):
            for processes, threads in configs[r % 3 :] + configs[: r % 3]:
                with tempfile.TemporaryDirectory(dir=workdir) as out:
                    run = _embed_run(name, checkpoint, clips, Path(out) / "emb", processes, threads)
                runs[processes, threads].append(run)
        reference = runs[configs[0]]
        for (processes, threads), results in runs.items():
            ratios = [b["videos_per_s"] / a["videos_per_s"] for a, b in zip(reference, results, strict=True)]
            rows.append(
                {
                    "model": name,
                    "processes": processes,
                    "threads_each": threads,
                    "videos": len(clips),
                    "videos_per_s": round(statistics.median(r["videos_per_s"] for r in results), 3),
                    "decode_share": round(statistics.median(r["decode_share"] for r in results), 3),
                    "wall_s_with_startup": round(statistics.median(r["wall_s"] for r in results), 1),
                    "speedup": round(statistics.median(ratios), 2),
                }
            )
    return rows


def evaluate_10x3(name: str, clips: list[str], threads: int) -> dict[str, Any]:
    import tokshift_zoo
    from tokshift_zoo.inference import VideoPreprocess

    torch.set_num_threads(threads)
    model = tokshift_zoo.create_model(name).eval()
    preprocess = VideoPreprocess(tokshift_zoo.resolve_data_config(model), "10x3")
    decode, forward = [], []
    with torch.inference_mode():
        three = preprocess(clips[0])[:3]  # the model's input: its time does not depend on the pixels
        model(three[:1])  # warm-up
        for index, clip in enumerate(clips):
            for part in ("decode", "model") if index % 2 == 0 else ("model", "decode"):
                tick = time.perf_counter()
                if part == "decode":
                    preprocess(clip)  # (30, 3, T, H, W)
                    decode.append(time.perf_counter() - tick)
                else:
                    model(three)
                    forward.append(10 * (time.perf_counter() - tick))
    ratios = [d / m for d, m in zip(decode, forward, strict=True)]
    return {
        "model": name,
        "threads": threads,
        "clips": len(clips),
        "decode_30_views_s": round(statistics.median(decode), 3),
        "model_30_views_s": round(statistics.median(forward), 3),
        "decode_over_model": round(statistics.median(ratios), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="tokshift_base16_224_8f,tokshift_demo_motion")
    parser.add_argument("--videos", type=int, default=8, help="clips embedded per run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three process/thread settings")
    parser.add_argument("--eval-clips", type=int, default=4, help="clips timed for the 10x3 ratio")
    parser.add_argument("--workdir", default=os.path.expanduser("~/.cache/tokshift_zoo/benchmark/scale"))
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    clips = _write_clips(workdir, max(args.videos, args.eval_clips))
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "loadavg_1min_start": round(os.getloadavg()[0], 2),
    }
    result["embed"] = embed_suite(names, clips[: args.videos], workdir, args.rounds)
    print(json.dumps(result["embed"], indent=1), flush=True)
    result["evaluate_10x3"] = [
        evaluate_10x3(name, clips[: args.eval_clips], threads)
        for name in names
        for threads in sorted({os.cpu_count() or 1, 1}, reverse=True)
    ]
    result["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

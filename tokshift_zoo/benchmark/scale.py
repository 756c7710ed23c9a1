"""Many videos: embed's videos/s in one process and in two under torchrun, the share of its time spent decoding,
and how a 10x3 evaluate's decoding compares with its model time (``tokshift-zoo benchmark --suite scale``).

Inputs: Kinetics-like clips (10 s, 340x256, 30 fps, H.264 with x264's keyframe interval and B-frames, written
once by ``videos.write_long_video``, as the loader suite's). Models have random weights (a checkpoint written
beside the clips; speed does not depend on the values).

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

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .core import BASE_REFERENCE, cache_dir
from .videos import write_long_video

__all__ = ["scale_suite", "embed_suite", "evaluate_10x3"]

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding tokshift_zoo, for the processes started


def _write_clips(folder: Path, count: int, seconds: float = 10.0, size: tuple[int, int] = (340, 256)) -> list[str]:
    paths = []
    for index in range(count):
        path = folder / f"clip_{index:03d}.mp4"
        if not path.exists():
            write_long_video(path, seconds, 30, *size, seed=index)
        paths.append(str(path))
    return paths


def _checkpoint(name: str, folder: Path) -> Path:
    from safetensors.torch import save_file

    from ..factory import create_model

    path = folder / f"{name}_random.safetensors"
    if not path.exists():
        save_file(create_model(name).state_dict(), path)
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
    env = dict(os.environ, PYTHONPATH=str(SOURCE_ROOT), GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS=str(threads))
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
    from ..factory import create_model
    from ..inference import VideoPreprocess
    from ..models.registry import weights_of

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    model = create_model(name).eval()
    preprocess = VideoPreprocess(weights_of(model), "10x3")
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
    torch.set_num_threads(before)
    ratios = [d / m for d, m in zip(decode, forward, strict=True)]
    return {
        "model": name,
        "threads": threads,
        "clips": len(clips),
        "decode_30_views_s": round(statistics.median(decode), 3),
        "model_30_views_s": round(statistics.median(forward), 3),
        "decode_over_model": round(statistics.median(ratios), 4),
    }


def scale_suite(
    models: Sequence[str] = ("tokshift_demo_motion", BASE_REFERENCE),
    videos: int = 8,
    rounds: int = 3,
    eval_clips: int = 2,
    workdir: str | os.PathLike | None = None,
    seconds: float = 10.0,
    size: tuple[int, int] = (340, 256),
) -> dict[str, Any]:
    """Both parts for each model: ``{"embed": rows, "evaluate_10x3": rows}`` (see the module doc). ``videos``
    clips per embed run, ``rounds`` rounds of the three process settings, ``eval_clips`` clips timed for 10x3;
    the clips are ``seconds`` long at ``size`` (width, height), written once to ``workdir``."""
    width, height = size
    folder = Path(workdir) if workdir is not None else cache_dir() / f"scale_{width}x{height}_{seconds:g}s"
    folder.mkdir(parents=True, exist_ok=True)
    clips = _write_clips(folder, max(videos, eval_clips), seconds, size)
    threads = sorted({os.cpu_count() or 1, 1}, reverse=True)
    return {
        "embed": embed_suite(list(models), clips[:videos], folder, rounds),
        "evaluate_10x3": [evaluate_10x3(name, clips[:eval_clips], n) for name in models for n in threads],
    }

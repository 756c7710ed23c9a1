"""Start-up time of the ``tokshift-zoo`` command: what a user waits for before the first line.

Each command runs as a fresh process (``python -m tokshift_zoo.cli ...``), in rounds interleaved with two
references measured in the same run: the bare interpreter (``python -c pass``) and ``import torch`` alone. Prints
the median wall time of each and its ratio to ``import torch``, with the machine and its load average.

    python benchmarks/startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _commands(clip: str) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "tokshift_zoo.cli"]
    return {
        "python -c pass (reference)": [sys.executable, "-c", "pass"],
        "import torch (reference)": [sys.executable, "-c", "import torch"],
        "tokshift-zoo --help": [*cli, "--help"],
        "tokshift-zoo predict --help": [*cli, "predict", "--help"],
        "tokshift-zoo predict x.mp4 --topk 0 (usage error)": [*cli, "predict", clip, "--topk", "0"],
        "tokshift-zoo predict missing.mp4": [*cli, "predict", "missing.mp4"],
        "tokshift-zoo models": [*cli, "models"],
        "tokshift-zoo predict clip.mp4 (demo model, whole run)": [*cli, "predict", clip, "--device", "cpu"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "tokshift_zoo.cli", "demo", "--output", tmp],
            env=env,
            check=True,
            capture_output=True,
        )
        clip = str(Path(tmp) / "demo_clip.mp4")
        commands = _commands(clip)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):  # interleaved: a busy spell slows every command of the round alike
            for name, command in commands.items():
                start = time.perf_counter()
                subprocess.run(command, env=env, capture_output=True, cwd=tmp)
                times[name].append(time.perf_counter() - start)
    reference = statistics.median(times["import torch (reference)"])
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    print(
        f"{os.cpu_count()} CPUs ({cpu}); load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
        f"median of {args.rounds} rounds"
    )
    print(f"{'command':<56} {'median s':>9} {'x import torch':>15}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<56} {median:9.2f} {median / reference:15.2f}")


if __name__ == "__main__":
    main()

"""``TrainConfig``'s defaults that depend on the machine: the same rule in Python as on the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# In a process allowed one core: the library's default, and the one `train --help` shows.
_ONE_CORE = """
import os
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from tokshift_zoo.train import TrainConfig
print(TrainConfig(model="tokshift_demo_motion", train_list="t.txt", output="out").num_workers)
from tokshift_zoo.cli import main
main(["train", "--help"])
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity (Linux)")
def test_num_workers_defaults_to_4_at_most_the_cores_in_python_and_on_the_command_line():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), COLUMNS="200")
    proc = subprocess.run([sys.executable, "-c", _ONE_CORE], capture_output=True, text=True, env=env, timeout=120)
    first, *help_lines = proc.stdout.splitlines()
    assert first == "1", proc.stderr[-2000:]  # one loader process on one core, not 4
    assert "data-loading processes per training process (default: 1, at most this machine's 1 cores)" in " ".join(
        " ".join(help_lines).split()
    )
    from tokshift_zoo.train import TrainConfig

    cores = len(os.sched_getaffinity(0))
    assert TrainConfig(model="m", train_list="t.txt", output="o").num_workers == min(4, cores)
    assert TrainConfig(model="m", train_list="t.txt", output="o", num_workers=7).num_workers == 7  # asked: kept

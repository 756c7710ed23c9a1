"""The real ``tokshift-zoo`` command in a subprocess: one-line errors with their exit codes, --version, --help.

Each start of the command costs seconds on a busy machine, so the checks are grouped: argparse-level errors exit
before torch is imported, the others share one test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from videos import index_frames, write_video

import tokshift_zoo

REPO = Path(tokshift_zoo.__file__).resolve().parents[1]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "tokshift_zoo.cli", *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd
    )


def _one_line_error(proc: subprocess.CompletedProcess, command: str, code: int) -> str:
    """The error line, after checking it is the only line on stderr, its prefix and the exit code."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code and len(lines) == 1, (proc.returncode, proc.stderr)
    assert lines[0].startswith(f"tokshift-zoo {command}: error: "), lines[0]
    return lines[0]


def test_usage_errors_caught_by_argparse_are_one_line_and_exit_2(tmp_path):
    views = _one_line_error(_run("predict", "clip.mp4", "--views", "10"), "predict", 2)
    assert "--views: expected CLIPSxCROPS" in views and "'10'" in views
    crops = _one_line_error(_run("evaluate", "--list", "l.txt", "--views", "2x2"), "evaluate", 2)
    assert "crops: 1 or 3" in crops
    missing = _one_line_error(_run("predict", "clip.mp4", "--checkpoint", str(tmp_path / "no.pt")), "predict", 2)
    assert f"--checkpoint: no file at {tmp_path / 'no.pt'}" in missing
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.safetensors").write_bytes(b"")
    (run / "checkpoint-epoch002.pt").write_bytes(b"")
    folder = _one_line_error(_run("evaluate", "--list", "l.txt", "--checkpoint", str(run)), "evaluate", 2)
    assert "is a folder; give one of its weight files: best.safetensors, checkpoint-epoch002.pt" in folder


def test_version_and_help_written_for_users():
    version = _run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"tokshift-zoo {tokshift_zoo.__version__}"
    top = _run("--help").stdout
    assert "TokShift video transformers" in top and "tokshift-zoo demo" in top and "argument parsing" not in top
    predict = " ".join(_run("predict", "--help").stdout.split())
    for shown in ("(default: 1x1)", "(default: 8)", "(default: auto)", "(default: 5)", "default none"):
        assert shown in predict
    train = " ".join(_run("train", "--help").stdout.split())
    assert "without it: no validation" in train and "(default: 18)" in train and "(default: 0.01)" in train


def test_unknown_model_unavailable_device_and_no_matching_model(tmp_path):
    clip = str(write_video(tmp_path / "clip.mp4", index_frames(range(8)), fps=25))  # the videos are checked first
    typo = _one_line_error(_run("predict", clip, "--model", "tokshift_bse16_224_8f"), "predict", 2)
    assert "unknown model 'tokshift_bse16_224_8f': did you mean tokshift_base16_224_8f" in typo  # tags: test_factory
    device = _one_line_error(_run("predict", clip, "--device", "cuda:99"), "predict", 2)
    assert "cuda:99" in device and "CUDA device" in device
    models = _run("models", "--filter", "foo*")
    assert "no model matches 'foo*'" in _one_line_error(models, "models", 2) and models.stdout == ""


def test_views_beyond_a_short_clip_say_what_was_done(tmp_path):
    clip = write_video(tmp_path / "short.mp4", index_frames(range(64)), fps=25)
    model = "tokshift_demo_motion"
    # the 1000x3 says the same, in eight times the time
    proc = _run("predict", str(clip), "--model", model, "--views", "120x3", "--batch-size", "360", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "120 test clips per video were asked for, but a video of 64 frames has only 8 distinct ones" in proc.stderr
    assert proc.stderr.count("test clips per video") == 1

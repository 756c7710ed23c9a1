"""The real ``tokshift-zoo`` command in a subprocess: one-line errors with their exit codes, --version, --help.

Each start of the command costs seconds on a busy machine, so the checks are grouped: argparse-level errors exit
before torch is imported, the others share one test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import timm
import torch
from authors_format import save_authors_checkpoint
from videos import index_frames, write_video

import tokshift_zoo
from tokshift_zoo.inference import predict

REPO = Path(tokshift_zoo.__file__).resolve().parents[1]


def _run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **env or {})
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
    for shown in (
        "default: the weights' test protocol",
        "(default: 8)",
        "(default: auto)",
        "(default: 5)",
        "default none",
    ):
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


def test_labels_are_printed_escaped_and_stay_exact_in_json(tmp_path, capsys):
    import json

    from conftest import TINY_ARGS
    from safetensors.torch import save_file

    from tokshift_zoo.cli import main

    labels = ["\x1b[2J\x1b[31mred", "tab\there", "plain", "bell\x07"]
    model = tokshift_zoo.create_model("tokshift_base16_224_8f", **TINY_ARGS)
    path = tmp_path / "tiny.safetensors"
    meta = {"architecture": "tokshift_base16_224_8f", "model_kwargs": json.dumps(TINY_ARGS)}
    meta["pretrained_cfg"] = json.dumps({"num_classes": 4, "label_names": labels})
    save_file(model.state_dict(), path, metadata=meta)
    clip = write_video(tmp_path / "clip\x1b[0m.mp4", index_frames(range(20)), fps=25)
    argv = ["predict", str(clip), "--checkpoint", str(path), "--device", "cpu", "--topk", "4"]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "\x07" not in shown and "\t" not in shown
    assert "\\x1b[2J\\x1b[31mred" in shown and "tab\\there" in shown and "clip\\x1b[0m.mp4" in shown
    assert main([*argv, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert sorted(p["label"] for p in found["predictions"]) == sorted(labels) and found["video"] == str(clip)


# --- a new user's first hour (issue 26): no silent wrong answer, no traceback, output as it comes ------------

SHAPE = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)  # TINY_ARGS without a class count


@pytest.fixture(scope="module")
def four_class_file(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    """An authors'-format ``best_model.pth`` with a 4-class head, and the model it was written from."""
    torch.manual_seed(0)
    model = tokshift_zoo.create_model("tokshift_base16_224_8f", **SHAPE, num_classes=4).eval()
    return save_authors_checkpoint(model, tmp_path_factory.mktemp("authors") / "best_model.pth"), model


def _with_file(checkpoint: Path, *args: str) -> list[str]:
    model = ["--model", "tokshift_base16_224_8f", "--checkpoint", str(checkpoint), "--device", "cpu"]
    return [*args, *model, "--model-kwargs", json.dumps(SHAPE)]


def test_a_checkpoint_answers_with_its_own_head_or_is_refused(four_class_file, tmp_path):
    checkpoint, model = four_class_file
    clip = write_video(tmp_path / "clip.mp4", index_frames(range(300)), fps=25)
    stills = [write_video(tmp_path / f"still{i}.mp4", index_frames(range(16)), fps=25) for i in range(2)]
    proc = _run(*_with_file(checkpoint, "predict", str(clip), *map(str, stills), "--json", "--topk", "5"))
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.splitlines()[0]
    assert json.loads(line)["predictions"] == predict(model, clip, topk=5)  # the file's 4 classes, by index
    assert sorted(p["label"] for p in json.loads(line)["predictions"]) == ["0", "1", "2", "3"]
    # 16 frames at 8x32: every index is frame 0; said once, naming the file
    assert proc.stderr.count("the model sees a still image") == 1, proc.stderr
    assert f"{stills[0]}: a video of 16 frames gives 8-frame clips whose every index is frame 0" in proc.stderr
    # asking for another class count would give a random head: refused, for predict as for export
    kwargs = ["--model-kwargs", json.dumps(dict(SHAPE, num_classes=400))]
    refused = _one_line_error(_run(*_with_file(checkpoint, "predict", str(clip)), *kwargs), "predict", 2)
    assert "no head for 400 classes" in refused and "head.weight" in refused and "would be random" in refused
    # timm's own route to a file, in this process
    timm_model = timm.create_model(
        "tokshift_base16_224_8f", pretrained=True, pretrained_cfg_overlay=dict(file=str(checkpoint)), **SHAPE
    ).eval()
    assert timm_model.num_classes == 4 and timm_model.pretrained_cfg["label_names"] is None
    torch.testing.assert_close(timm_model.head.weight, model.head.weight)
    fresh = timm.create_model(
        "tokshift_base16_224_8f",
        pretrained=True,
        pretrained_cfg_overlay=dict(file=str(checkpoint)),
        num_classes=7,
        **SHAPE,
    )
    assert fresh.num_classes == 7 and fresh.load_report.reinitialised == ["head.weight", "head.bias"]


@pytest.mark.slow
def test_timeline_and_export_of_a_checkpoint_use_its_head(four_class_file, tmp_path):
    checkpoint, model = four_class_file
    clip = write_video(tmp_path / "clip.mp4", index_frames(range(310)), fps=25)  # 256-frame windows every 50
    proc = _run(*_with_file(checkpoint, "predict", str(clip), "--timeline", "2", "--topk", "9", "--no-progress"))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 2 and all(len(row["predictions"]) == 4 for row in rows)  # windows at 0 s and 2 s
    assert {p["label"] for p in rows[0]["predictions"]} == {"0", "1", "2", "3"}
    out = tmp_path / "m.pt2"
    proc = _run(
        "export",
        "tokshift_base16_224_8f",
        str(out),
        "--checkpoint",
        str(checkpoint),
        "--check-clips",
        "1",
        "--model-kwargs",
        json.dumps(SHAPE),
    )
    assert proc.returncode == 0, proc.stderr
    exported = torch.export.load(out).module()
    clips = torch.randn(3, 3, 8, 32, 32)  # three views: the batch is dynamic by default
    logits, _ = exported(clips)
    with torch.inference_mode():
        torch.testing.assert_close(logits, model(clips), atol=1e-5, rtol=1e-4)


def test_usage_errors_come_before_torch_loads_and_are_one_line(tmp_path):
    clip = str(write_video(tmp_path / "clip.mp4", index_frames(range(8)), fps=25))
    topk = _one_line_error(_run("predict", clip, "--topk", "0"), "predict", 2)
    assert "--topk: expected a whole number of at least 1, got '0'" in topk
    batch = _one_line_error(_run("predict", clip, "--batch-size", "0"), "predict", 2)
    assert "--batch-size: expected a whole number of at least 1" in batch
    # a missing video fails before the model loads, indeed before torch is imported
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    missing = str(tmp_path / "missing.mp4")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tokshift_zoo.cli", "predict", missing],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")]
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("import time")]
    assert proc.returncode == 1 and errors == [f"tokshift-zoo predict: error: no video at {missing}"], proc.stderr
    assert "tokshift_zoo.cli" in imported and not {"torch", "timm", "av"} & set(imported)
    train = " ".join(_run("train", "--help").stdout.split())
    assert "(default: True)" not in train and "--no-progress no progress bar" in train
    cores = len(os.sched_getaffinity(0))
    assert f"(default: {min(4, cores)}, at most this machine's {cores} cores)" in train
    package = subprocess.run(
        [sys.executable, "-m", "tokshift_zoo", "--version"], capture_output=True, text=True, env=env
    )
    assert package.returncode == 0 and package.stdout.strip() == f"tokshift-zoo {tokshift_zoo.__version__}"


def test_lists_and_folders_say_what_they_expect(tmp_path):
    (tmp_path / "bad.csv").write_text("file,class\nclip.mp4,a\n", encoding="utf-8")
    proc = _run("predict", "--list", str(tmp_path / "bad.csv"))
    assert proc.returncode == 2 and "a CSV list starts with the header line 'path,label'" in proc.stderr
    (tmp_path / "empty").mkdir()
    folder = _one_line_error(_run("predict", str(tmp_path / "empty")), "predict", 1)
    assert f"{tmp_path / 'empty'}: expected video files or frame folders" in folder
    (tmp_path / "train.txt").write_text("clip.mp4 moving_left\n", encoding="utf-8")  # relative to the cwd
    proc = _run("train", "--model", DEMO, "--train-list", str(tmp_path / "train.txt"), "--output", str(tmp_path))
    assert proc.returncode == 2 and "no video file at clip.mp4" in proc.stderr
    assert "relative to --data-root DIR, which was not given" in proc.stderr


DEMO = "tokshift_demo_motion.synthetic"  # the bundled model: no network


def _interrupt_after_first_line(*args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Start the command, wait for its first line of output, send it a real SIGINT (Ctrl-C); its output."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokshift_zoo.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    first = proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, first + out, err), (first + out).splitlines()


@pytest.mark.slow
def test_ctrl_c_keeps_the_videos_done_and_exits_130_in_one_line(tmp_path):
    folder = tmp_path / "many"  # a folder of videos, searched as embed does
    folder.mkdir()
    first = write_video(folder / "v000.mp4", index_frames(range(64)), fps=25)
    for i in range(1, 200):
        os.link(first, folder / f"v{i:03d}.mp4")
    proc, lines = _interrupt_after_first_line(
        "predict", str(folder), "--model", DEMO, "--views", "8x3", "--json", "--no-progress", "--device", "cpu"
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.splitlines() == ["tokshift-zoo predict: interrupted"]
    results = [json.loads(line) for line in lines]  # every line printed is a whole result
    assert 1 <= len(results) < 200 and results[0]["video"] == str(first)
    assert [r["video"] for r in results] == [str(folder / f"v{i:03d}.mp4") for i in range(len(results))]


@pytest.mark.slow
def test_timeline_rows_stream_with_a_progress_bar(tmp_path):
    long = write_video(tmp_path / "long.mp4", index_frames(range(1000)), fps=25)  # 40 s
    proc, lines = _interrupt_after_first_line(
        "predict", str(long), "--model", DEMO, "--timeline", "0.04", "--window", "0.32", "--device", "cpu"
    )
    assert proc.returncode == 130 and proc.stderr.rstrip().endswith("tokshift-zoo predict: interrupted")
    assert "window" in proc.stderr and "/993" in proc.stderr  # tqdm's bar: windows done of the 993
    rows = [json.loads(line) for line in lines]
    assert 1 <= len(rows) < 993 and rows[0]["window"] == 0 and rows[0]["start_s"] == 0.0


def test_convert_push_offline_writes_the_file_and_fails_in_one_line(tmp_path, four_class_file):
    # no network (a proxy host under .invalid never resolves): the converted file is written, the push is one line
    env = {
        "HTTPS_PROXY": "http://dns-fails.invalid:1",
        "HTTP_PROXY": "http://dns-fails.invalid:1",
        "HF_HUB_OFFLINE": "0",
    }
    checkpoint, _ = four_class_file
    kwargs = json.dumps(dict(SHAPE, num_classes=4))
    push = ["convert", str(checkpoint), str(tmp_path / "c.safetensors"), "--model-kwargs", kwargs, "--push", "o/r"]
    line = _one_line_error(_run(*push, env=env), "convert", 1)
    assert "could not connect" in line and (tmp_path / "c.safetensors").is_file(), line


def test_offline_failures_are_one_short_line(tmp_path, four_class_file):
    # a DNS failure (a proxy host under .invalid never resolves) is not Google Drive's quota
    env = {"HTTPS_PROXY": "http://dns-fails.invalid:1", "HTTP_PROXY": "http://dns-fails.invalid:1"}
    proc = _run("download", "tokshift_base16_224_8f.k400", env={**env, "HF_HUB_OFFLINE": "0"})
    line = _one_line_error(proc, "download", 1)
    assert "could not reach" in line and "quota" not in line and len(line) < 600, line
    # a pickle with code in it: what the unpickler found, never torch's advice to load it with weights_only=False
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "optimizer": Fraction(1, 3)}, evil)
    clip = write_video(tmp_path / "clip.mp4", index_frames(range(8)), fps=25)
    line = _one_line_error(_run(*_with_file(evil, "predict", str(clip))), "predict", 1)
    assert "holds a Python object" in line and "weights_only=False" not in line and "weights_only` set" not in line

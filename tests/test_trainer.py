"""The trainer on real mp4 files and a tiny model: outputs, exact resume, bad data, and two processes under
torchrun (gloo on CPU)."""

from __future__ import annotations

import dataclasses
import json
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_ARGS, link_clips
from safetensors import safe_open

import tokshift_zoo
from tokshift_zoo.cli import main as cli_main
from tokshift_zoo.train import TrainConfig, VideoListError, find_latest_checkpoint, train
from tokshift_zoo.train.trainer import _resolve_classes

REPO = Path(__file__).resolve().parents[1]
MODEL = "tokshift_base16_224_8f"
MODEL_KWARGS = {k: v for k, v in TINY_ARGS.items() if k != "num_classes"} | {"num_frames": 4}
CLASSES = ["jumping", "running", "sitting"]


@pytest.fixture(scope="module")
def video_dir(clip_folder, tmp_path_factory) -> Path:
    """The eight shared clips (conftest's ``clip_folder``, clip i of class i % 3) and lists: train.csv (class
    names), val.csv, train.txt and val.txt (indices)."""
    root = link_clips(clip_folder, tmp_path_factory.mktemp("videos"))
    rows = [(f"clip{i}.mp4", i % 3) for i in range(8)]
    (root / "train.csv").write_text("path,label\n" + "".join(f"{p},{CLASSES[y]}\n" for p, y in rows[:6]))
    (root / "val.csv").write_text("path,label\n" + "".join(f"{p},{CLASSES[y]}\n" for p, y in rows[6:]))
    (root / "train.txt").write_text("".join(f"{p} {y}\n" for p, y in rows[:6]))
    (root / "val.txt").write_text("".join(f"{p} {y}\n" for p, y in rows[6:]))
    return root


def _config(video_dir: Path, output: Path, **overrides) -> TrainConfig:
    settings = dict(
        model=MODEL,
        model_kwargs=dict(MODEL_KWARGS),
        train_list=str(video_dir / "train.csv"),
        val_list=str(video_dir / "val.csv"),
        data_root=str(video_dir),
        output=str(output),
        epochs=1,
        batch_size=2,
        lr=0.05,
        lr_steps=(1,),
        num_workers=0,
        device="cpu",
        progress=False,
        deterministic=True,
    )
    return TrainConfig(**(settings | overrides))


MODEL_FLAGS = dict(model=MODEL, model_kwargs=json.dumps(MODEL_KWARGS), device="cpu", num_workers=0)


def _flags(*options: dict, **more) -> list[str]:
    """``{"train_list": p}`` -> ``["--train-list", str(p)]``."""
    merged = {k: v for d in (*options, more) for k, v in d.items()}
    return [arg for key, value in merged.items() for arg in (f"--{key.replace('_', '-')}", str(value))]


def _metrics(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]


def test_train_writes_checkpoint_metrics_and_loadable_best_model(video_dir, tmp_path):
    result = train(_config(video_dir, tmp_path))
    (row,) = _metrics(tmp_path)
    assert row["epoch"] == 1 and row["world_size"] == 1 and row["train_samples"] == 6 and row["val_samples"] == 2
    assert row["skipped_train"] == row["skipped_val"] == 0
    assert result["val_top1"] == row["val_top1"] and Path(result["checkpoint"]).is_file()

    # the new task's class names (sorted from the CSV) travel with the weights
    best = tmp_path / "best.safetensors"
    with safe_open(best, framework="pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["pretrained_cfg"])
    assert cfg["num_classes"] == 3 and cfg["label_names"] == CLASSES and cfg["architecture"] == MODEL
    assert json.loads(meta["model_kwargs"]) == MODEL_KWARGS | {"num_classes": 3}

    state = torch.load(result["checkpoint"], weights_only=True)
    overlay = dict(label_names=cfg["label_names"])
    model = tokshift_zoo.create_model(
        MODEL, checkpoint_path=best, num_classes=3, pretrained_cfg_overlay=overlay, **MODEL_KWARGS
    )
    assert all(torch.equal(v, state["model"][k]) for k, v in model.state_dict().items())
    top = tokshift_zoo.predict(model.eval(), video_dir / "clip0.mp4", topk=3)
    assert sorted(t["label"] for t in top) == CLASSES


def test_fine_tuning_from_a_checkpoint_with_another_head(video_dir, tmp_path):
    """A 3-class best model fine-tuned on a 4-class integer-labelled task: the head restarts, the rest loads."""
    train(_config(video_dir, tmp_path / "first"))
    best = tmp_path / "first" / "best.safetensors"
    source = tokshift_zoo.create_model(MODEL, checkpoint_path=best, num_classes=3, **MODEL_KWARGS)
    config = _config(
        video_dir,
        tmp_path / "second",
        checkpoint=str(best),
        num_classes=4,
        lr=0.0,
        train_list=str(video_dir / "train.txt"),
        val_list=str(video_dir / "val.txt"),
    )
    train(config)
    state = torch.load(find_latest_checkpoint(tmp_path / "second"), weights_only=True)["model"]
    assert state["head.weight"].shape == (4, 32)
    assert torch.equal(state["blocks.1.mlp.fc2.weight"], source.state_dict()["blocks.1.mlp.fc2.weight"])  # lr 0


def test_resume_equals_uninterrupted_run(video_dir, tmp_path):
    """One epoch, then a resumed second epoch, ends bit-for-bit where two epochs in one go do."""
    straight = train(_config(video_dir, tmp_path / "straight", epochs=2))
    train(_config(video_dir, tmp_path / "resumed", epochs=1))
    resumed = train(_config(video_dir, tmp_path / "resumed", epochs=2, resume="auto"))

    a = torch.load(straight["checkpoint"], weights_only=True)
    b = torch.load(resumed["checkpoint"], weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    momentum = a["optimizer"]["state"]["head.weight"]["momentum_buffer"]
    assert torch.equal(momentum, b["optimizer"]["state"]["head.weight"]["momentum_buffer"])
    assert a["updates"] == b["updates"] == 6  # 3 steps per epoch
    assert b["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.005)  # the lr step after epoch 1
    untimed = [
        [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in _metrics(tmp_path / run)]
        for run in ("straight", "resumed")
    ]
    assert untimed[0] == untimed[1]
    assert [p.name for p in (tmp_path / "resumed").glob("checkpoint-*")] == ["checkpoint-epoch002.pt"]


def test_adamw_cosine_with_gradient_accumulation(video_dir, tmp_path):
    result = train(_config(video_dir, tmp_path, optimizer="adamw", lr=1e-3, accum_steps=2, clip_grad=0.5))
    state = torch.load(result["checkpoint"], weights_only=True)
    assert state["updates"] == 2  # 3 batches, 2 per step: 2 optimiser steps
    assert result["lr"] == pytest.approx(0.0)  # the cosine's end
    assert "exp_avg" in state["optimizer"]["state"]["head.weight"]


def test_classes_come_from_labels_file_weights_or_lists(video_dir, tmp_path):
    csv = tmp_path / "k400.csv"
    csv.write_text("path,label\nclip0.mp4,air drumming\nclip1.mp4,abseiling\n")
    k400 = _config(video_dir, tmp_path, model=f"{MODEL}.k400", train_list=str(csv), val_list=str(csv))
    count, names = _resolve_classes(k400)  # the names are the weights' classes: the head is kept
    assert count == 400 and names[:2] == ["abseiling", "air drumming"]
    assert _resolve_classes(_config(video_dir, tmp_path)) == (3, CLASSES)  # a new task: the CSV's names, sorted
    (tmp_path / "labels.txt").write_text("sitting\nrunning\njumping\nwaving\n")
    assert _resolve_classes(_config(video_dir, tmp_path, labels=str(tmp_path / "labels.txt")))[1][0] == "sitting"

    integer = dict(train_list=str(video_dir / "train.txt"), val_list=str(video_dir / "val.txt"))
    assert _resolve_classes(_config(video_dir, tmp_path, model=f"{MODEL}.k400", **integer))[0] == 400
    with pytest.raises(ValueError, match="--num-classes"):
        _resolve_classes(_config(video_dir, tmp_path, model=f"{MODEL}.in21k", **integer))
    assert _resolve_classes(_config(video_dir, tmp_path, num_classes=5, **integer)) == (5, None)


def test_a_fresh_run_into_a_used_output_is_refused(video_dir, tmp_path):
    train(_config(video_dir, tmp_path))
    with pytest.raises(ValueError, match="holds checkpoints of an earlier run"):
        train(_config(video_dir, tmp_path))


def test_unreadable_video_is_skipped_and_reported(video_dir, tmp_path, caplog):
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    lines = (video_dir / "train.csv").read_text() + f"{tmp_path / 'broken.mp4'},sitting\n"
    (tmp_path / "train.csv").write_text(lines)
    result = train(_config(video_dir, tmp_path / "out", train_list=str(tmp_path / "train.csv")))
    assert result["skipped_train"] == 1 and result["train_samples"] == 6
    assert result["skipped_videos"] == [str(tmp_path / "broken.mp4")]
    assert "skipped 1 unreadable video(s)" in caplog.text


def test_bad_labels_and_missing_files_are_refused_before_training(video_dir, tmp_path, capsys):
    (tmp_path / "train.txt").write_text("clip0.mp4 0\nclip1.mp4 5\nnot_there.mp4 1\n")
    config = _config(
        video_dir,
        tmp_path / "out",
        train_list=str(tmp_path / "train.txt"),
        val_list=str(video_dir / "val.txt"),
        num_classes=3,
    )
    with pytest.raises(VideoListError) as err:
        train(config)
    assert "train.txt:2: label 5 is outside the class range [0, 3)" in str(err.value)
    assert "train.txt:3: no video file at" in str(err.value)
    assert not list((tmp_path / "out").glob("*"))  # nothing written

    code = cli_main(
        [
            "train",
            *_flags(
                MODEL_FLAGS,
                num_classes=3,
                train_list=tmp_path / "train.txt",
                val_list=video_dir / "val.txt",
                data_root=video_dir,
                output=tmp_path / "out",
            ),
        ]
    )
    assert code == 2 and "train.txt:2: label 5 is outside" in capsys.readouterr().err


def test_mixed_label_kinds_and_labels_only_validation_has_are_refused(video_dir, tmp_path):
    mixed = _config(video_dir, tmp_path / "out", train_list=str(video_dir / "train.txt"), num_classes=3)
    with pytest.raises(VideoListError, match=r"mix class indices and class names.*train.txt has indices"):
        train(mixed)  # indices in train.txt, names in val.csv: the old way made five classes '0', '1', ...
    (tmp_path / "train.csv").write_text("path,label\nclip0.mp4,jumping\nclip1.mp4,running\n")
    (tmp_path / "val.csv").write_text("path,label\nclip2.mp4,sitting\nclip3.mp4,jumping\nclip5.mp4,waving\n")
    lists = dict(train_list=str(tmp_path / "train.csv"), val_list=str(tmp_path / "val.csv"))
    with pytest.raises(ValueError, match=r"val.csv has labels that no line of .*train.csv has: \['sitting', 'waving'"):
        train(_config(video_dir, tmp_path / "out", **lists))
    assert not (tmp_path / "out").exists()


def test_weights_that_cannot_be_had_leave_no_output_folder(video_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):  # offline here, and the cache is empty
        train(_config(video_dir, tmp_path / "out", model=f"{MODEL}.in21k"))
    assert not (tmp_path / "out").exists()


def test_no_validation_list_then_predict_from_the_trainers_own_checkpoint(video_dir, tmp_path, caplog):
    output = tmp_path / "run"
    config = _config(video_dir, output)
    result = train(dataclasses.replace(config, val_list=None))
    assert "no validation list (--val-list): no validation" in caplog.text
    (row,) = _metrics(output)
    assert result["best_val_top1"] is None and "val_top1" not in row and row["train_samples"] == 6
    umask = os.umask(0)
    os.umask(umask)
    for name in ("best.safetensors", "checkpoint-epoch001.pt", "metrics.jsonl"):
        assert (output / name).stat().st_mode & 0o777 == 0o666 & ~umask, name

    # the checkpoint names its architecture, model arguments and classes: no --model needed
    checkpoint = output / "checkpoint-epoch001.pt"
    model = tokshift_zoo.load(None, checkpoint_path=checkpoint, device="cpu")
    assert model.labels == CLASSES and not model.training and model.num_frames == 4
    state = torch.load(checkpoint, weights_only=True)["model"]
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    clip = str(video_dir / "clip0.mp4")
    proc = subprocess.run(
        [sys.executable, "-m", "tokshift_zoo.cli", "predict", clip, "--checkpoint", str(checkpoint), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    predictions, expected = json.loads(proc.stdout)["predictions"], tokshift_zoo.predict(model, clip, topk=5)
    assert [p["label"] for p in predictions] == [p["label"] for p in expected]
    assert np.allclose([p["score"] for p in predictions], [p["score"] for p in expected], atol=1e-5)
    assert sorted(p["label"] for p in predictions) == CLASSES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("sharding", ["ddp", "fsdp"])
def test_two_processes_under_torchrun(video_dir, tmp_path, sharding):
    output = tmp_path / sharding
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(_free_port())]
    cmd += ["-m", "tokshift_zoo.cli", "train", "--no-progress"] + (["--fsdp"] if sharding == "fsdp" else [])
    cmd += _flags(
        MODEL_FLAGS,
        train_list=video_dir / "train.csv",
        val_list=video_dir / "val.csv",
        data_root=video_dir,
        output=output,
        epochs=1,
        batch_size=2,
        lr=0.05,
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    if sys.platform == "linux":  # gloo otherwise binds to the hostname's address, unresolvable in some containers
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (row,) = _metrics(output)  # written once, by rank 0
    assert row["world_size"] == 2 and row["train_samples"] == 6 and row["val_samples"] == 2  # both shards counted
    assert json.loads(proc.stdout)["epoch"] == 1  # the result printed once
    state = torch.load(find_latest_checkpoint(output), weights_only=True)
    assert len(state["rng"]) == 2 and not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])
    model = tokshift_zoo.create_model(MODEL, checkpoint_path=output / "best.safetensors", num_classes=3, **MODEL_KWARGS)
    assert all(torch.equal(v, state["model"][k]) for k, v in model.state_dict().items())


# --- kills, full disks and bad resumes ------------------------------------------------------------------------


# A killed run: train(config) in a child process that SIGKILLs itself at POINT of epoch 2's writes ("inside best" /
# "inside checkpoint": the temporary file written, not yet renamed; "before metrics": best written, the line not), its
# files limited to FSIZE bytes if given (a write past it fails with EFBIG, as one on a full disk fails with ENOSPC).
# The children are forked from one parent that imported the trainer once (a fresh interpreter per run imports torch
# again): each is its own process, trains from the start and is really killed. The parent reads one request a line
# (point, settings, fsize, a file for the child's output) and answers with the child's exit code as subprocess gives
# it (-9: killed by SIGKILL; 3: an error).
_KILLING_PARENT = """
import json, os, resource, signal, sys
import tokshift_zoo.outputs as outputs
import tokshift_zoo.train.trainer as trainer
from tokshift_zoo.train import TrainConfig, train

def killed_run(point, settings, fsize):
    config = TrainConfig(**settings)
    atomic_write, append, best_writes = outputs.atomic_write, trainer._append_metrics, []

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def killing_write(path, write):
        if path.name == "best.safetensors":
            best_writes.append(path)  # one per epoch without validation
        epoch2 = len(best_writes) == 2 if path.name == "best.safetensors" else "epoch002" in path.name
        if point == "inside " + path.stem.split("-")[0] and epoch2:
            return atomic_write(path, lambda tmp: (write(tmp), die()))
        return atomic_write(path, write)

    def killing_append(path, row):
        if point == "before metrics" and row["epoch"] == 2:
            die()
        append(path, row)

    outputs.atomic_write, trainer._append_metrics = killing_write, killing_append
    if fsize:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    try:
        train(config)
    except Exception as err:
        print(f"child: {type(err).__name__}: {err}", file=sys.stderr)
        return 3
    return 0

for line in sys.stdin:
    point, settings, fsize, output = json.loads(line)
    pid = os.fork()
    if pid == 0:  # the child: its stdout and stderr go to its own file
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = killed_run(point, settings, fsize)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


@pytest.fixture(scope="module")
def killer(tmp_path_factory) -> Iterator[tuple[subprocess.Popen, Path]]:
    """The parent process of the killed runs (see ``_KILLING_PARENT``), and a folder for the children's output."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-c", _KILLING_PARENT]
    parent = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    yield parent, tmp_path_factory.mktemp("killed")
    parent.stdin.close()
    parent.wait(60)


def _killed_at(killer, point: str, config: TrainConfig, fsize: int = 0) -> subprocess.CompletedProcess:
    """``config`` trained in a child process killed at ``point`` (see ``_KILLING_PARENT``)."""
    parent, folder = killer
    output = folder / f"{len(list(folder.iterdir()))}.txt"
    parent.stdin.write(json.dumps([point, dataclasses.asdict(config), fsize, str(output)]) + "\n")
    parent.stdin.flush()
    ready, _, _ = select.select([parent.stdout], [], [], 600)
    assert ready and parent.poll() is None, "the killed run did not end in 600 s, or its parent died"
    code = int(parent.stdout.readline())
    return subprocess.CompletedProcess([point], code, "", output.read_text())


@pytest.fixture(scope="module")
def straight_run(video_dir, tmp_path_factory) -> Path:
    """Two epochs without validation in one go (best.safetensors: the last epoch's weights)."""
    output = tmp_path_factory.mktemp("straight")
    train(dataclasses.replace(_config(video_dir, output, epochs=2), val_list=None))
    return output


def _same_run(output: Path, reference: Path) -> None:
    """``output`` ended where ``reference`` did: metrics lines, best weights, checkpoints, no temporaries."""
    untimed = [
        [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in _metrics(d)] for d in (output, reference)
    ]
    assert untimed[0] == untimed[1]
    with safe_open(output / "best.safetensors", "pt") as a, safe_open(reference / "best.safetensors", "pt") as b:
        assert a.keys() == b.keys() and all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())
        assert json.loads(a.metadata()["epoch"]) == json.loads(b.metadata()["epoch"]) == 2
    assert sorted(p.name for p in output.iterdir() if not p.name.startswith(".tokshift-zoo.lock")) == [
        "best.safetensors",
        "checkpoint-epoch002.pt",
        "config.yaml",  # the run's settings, written at its start
        "metrics.jsonl",
    ]  # no .incomplete file left


@pytest.mark.slow
@pytest.mark.parametrize("point", ["inside best", "before metrics", "inside checkpoint"])
def test_a_kill_during_an_epochs_writes_then_resume_ends_as_an_unbroken_run(
    video_dir, tmp_path, straight_run, killer, point
):
    config = dataclasses.replace(_config(video_dir, tmp_path, epochs=2), val_list=None)
    child = _killed_at(killer, point, config)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    if point == "inside checkpoint":  # everything but the checkpoint that marks epoch 2 done is there
        assert len(_metrics(tmp_path)) == 2 and list(tmp_path.glob(".checkpoint-epoch002*incomplete*"))
    if point == "inside best":
        assert list(tmp_path.glob(".best*incomplete*"))
    result = train(dataclasses.replace(config, resume="auto"))
    assert result["best"] == str(tmp_path / "best.safetensors")
    _same_run(tmp_path, straight_run)


@pytest.mark.slow
def test_a_full_disk_at_the_checkpoint_then_resume_ends_as_an_unbroken_run(video_dir, tmp_path, straight_run, killer):
    config = dataclasses.replace(_config(video_dir, tmp_path, epochs=2), val_list=None)
    best, checkpoint = (straight_run / n for n in ("best.safetensors", "checkpoint-epoch002.pt"))
    assert best.stat().st_size < checkpoint.stat().st_size  # the limit lets best be written, not the checkpoint
    limit = (best.stat().st_size + checkpoint.stat().st_size) // 2
    child = _killed_at(killer, "none", config, fsize=limit)
    assert child.returncode == 3, child.stderr[-3000:]  # an error, not a crash
    assert "checkpoint-epoch001.pt" in child.stderr.splitlines()[-1], child.stderr[-3000:]
    assert (tmp_path / "best.safetensors").is_file() and len(_metrics(tmp_path)) == 1
    assert not list(tmp_path.glob("checkpoint-*.pt"))  # epoch 1 is not done: its line and best are redone
    assert train(dataclasses.replace(config, resume="auto"))["best"] == str(tmp_path / "best.safetensors")
    _same_run(tmp_path, straight_run)


def test_a_missing_best_is_written_again_from_the_checkpoint_of_its_epoch(video_dir, tmp_path, caplog):
    train(_config(video_dir, tmp_path))
    with safe_open(tmp_path / "best.safetensors", "pt") as f:
        wanted = {k: f.get_tensor(k) for k in f.keys()}
    (tmp_path / "best.safetensors").unlink()  # as an older zoo killed between the checkpoint and best left it
    result = train(_config(video_dir, tmp_path, resume="auto"))
    assert result["best"] == str(tmp_path / "best.safetensors") and "written again" in caplog.text
    with safe_open(tmp_path / "best.safetensors", "pt") as f:
        assert all(torch.equal(f.get_tensor(k), v) for k, v in wanted.items())
        assert (
            json.loads(f.metadata()["epoch"]) == 1 and json.loads(f.metadata()["val_top1"]) == result["best_val_top1"]
        )


@pytest.mark.slow
def test_with_ema_best_a_best_written_again_after_a_kill_holds_the_ema_weights(video_dir, tmp_path, killer, caplog):
    # killed inside epoch 2's checkpoint, then best.safetensors lost: the resumed run writes it again from the
    # checkpoint of epoch 1, its best; under ema_best those are the EMA weights, as the unbroken run keeps them
    config = _config(video_dir, tmp_path / "killed", epochs=2, ema_decay=0.9, ema_best=True)
    train(dataclasses.replace(config, output=str(tmp_path / "straight")))
    with safe_open(tmp_path / "straight" / "best.safetensors", "pt") as f:
        assert json.loads(f.metadata()["epoch"]) == 1  # epoch 2 does not beat it: the file written again stays
        wanted = {k: f.get_tensor(k) for k in f.keys()}
    assert _killed_at(killer, "inside checkpoint", config).returncode == -signal.SIGKILL
    killed = Path(config.output)
    state = torch.load(killed / "checkpoint-epoch001.pt", weights_only=True)
    assert not all(torch.equal(v, state["model"][k]) for k, v in wanted.items())  # the EMA is not the raw weights
    (killed / "best.safetensors").unlink()
    train(dataclasses.replace(config, resume="auto"))
    with safe_open(killed / "best.safetensors", "pt") as f:
        assert sorted(f.keys()) == sorted(wanted) and all(torch.equal(f.get_tensor(k), v) for k, v in wanted.items())
        assert json.loads(f.metadata()["epoch"]) == 1
    assert "written again from the checkpoint of epoch 1, its best epoch (its EMA weights" in caplog.text


def test_resume_from_a_pickle_is_refused_without_running_it(video_dir, tmp_path, capsys):
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    evil = tmp_path / "checkpoint-epoch001.pt"
    evil.write_bytes(pickle.dumps({"epoch": 1, "model": Payload()}, protocol=2))
    flags = _flags(MODEL_FLAGS, train_list=video_dir / "train.csv", val_list=video_dir / "val.csv")
    flags += _flags(data_root=video_dir, output=tmp_path / "out", epochs=1, resume=evil)
    assert cli_main(["train", "--no-progress", *flags]) == 1
    err = capsys.readouterr().err
    assert "expected a checkpoint-epochNNN.pt written by tokshift-zoo train" in err and "Traceback" not in err
    assert "weights_only=False" not in err and len(err.strip().splitlines()) == 1 and not marker.exists()
    evil.write_bytes(b"\x00" * 64)  # not a torch file at all
    assert cli_main(["train", "--no-progress", *flags]) == 1
    assert "is not a torch checkpoint that can be read" in capsys.readouterr().err


def test_a_second_train_into_a_folder_in_use_is_refused(video_dir, tmp_path):
    from tokshift_zoo.outputs import lock_output

    with lock_output(tmp_path, "embed"), pytest.raises(ValueError, match="another process is writing into"):
        train(_config(video_dir, tmp_path))
    assert not list(tmp_path.glob("checkpoint-*"))

"""Distributed helpers: the trainer's in a single process (two processes under torchrun: ``test_trainer.py``);
``tokshift_zoo.distributed`` alone and with predict, evaluate and embed in two processes under torchrun (gloo)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_ARGS
from safetensors import safe_open
from safetensors.torch import save_file
from videos import index_frames, write_video

import tokshift_zoo
from tokshift_zoo import read_embeddings
from tokshift_zoo.distributed import balanced_shards, gather_to_main, inference_device, process_group, share_of_items
from tokshift_zoo.embeddings import embed
from tokshift_zoo.inference import evaluate, predict_videos
from tokshift_zoo.train.datasets import read_video_list
from tokshift_zoo.train.distributed import (
    all_gather_objects,
    all_reduce_sum,
    barrier,
    cleanup_distributed,
    init_distributed,
)

REPO = Path(__file__).resolve().parents[1]
MODEL = "tokshift_base16_224_8f"


def test_single_process_without_torchrun_env(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = init_distributed("cpu")
    assert (info.rank, info.world_size, info.is_main, info.distributed) == (0, 1, True, False)
    assert info.device == torch.device("cpu")
    values = torch.tensor([1.0, 2.0])
    total = all_reduce_sum(values)
    assert torch.equal(total, values) and total is not values
    assert all_gather_objects({"a": 1}) == [{"a": 1}]
    barrier()
    cleanup_distributed()


def test_unknown_or_missing_device_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"):
        init_distributed("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="cuda:0 was asked for, but this machine has 0 CUDA device"):
        init_distributed("cuda")


# --- tokshift_zoo.distributed: predict, evaluate and embed under torchrun ------------------------------------


def test_balanced_shards_split_by_cost_and_keep_every_item_once():
    costs = [10.0, 1.0, 1.0, 1.0, 5.0, 5.0, 0.0, 2.0]
    shards = balanced_shards(costs, 2)
    assert sorted(i for shard in shards for i in shard) == list(range(8))
    assert all(shard == sorted(shard) for shard in shards)
    assert [sum(costs[i] for i in shard) for shard in shards] == [13.0, 12.0]  # 10+1+1+1 / 5+5+2+0
    assert balanced_shards(costs, 1) == [list(range(8))]
    assert balanced_shards([], 3) == [[], [], []]


def test_one_process_shares_everything_and_gathers_itself(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with process_group("cpu") as here:
        assert here.is_main and here.world_size == 1
        assert share_of_items(["a", "b", "c"]) == [0, 1, 2]
        assert gather_to_main({"x": 1}) == [{"x": 1}]
    assert inference_device("cpu") == torch.device("cpu")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Seven H.264 files of 20-140 frames, a broken one, a labelled list, and a tiny model's checkpoint."""
    root = tmp_path_factory.mktemp("corpus")
    names = []
    for i in range(7):
        names.append(f"v{i}.mp4")
        write_video(root / names[-1], index_frames(range(20 + 20 * i)), fps=25)
    (root / "broken.mp4").write_bytes(b"not a video")
    names.insert(3, "broken.mp4")
    (root / "val.txt").write_text("".join(f"{name} {i % 4}\n" for i, name in enumerate(names)))
    torch.manual_seed(0)
    model = tokshift_zoo.create_model(MODEL, **TINY_ARGS).eval()
    save_file(model.state_dict(), root / "tiny.safetensors")
    return root


def _model(corpus):
    return tokshift_zoo.load(MODEL, device="cpu", checkpoint_path=corpus / "tiny.safetensors", **TINY_ARGS)


def _model_flags(corpus, workers: int = 1) -> list[str]:
    """The tiny model, on CPU; each rank decodes in ``workers`` data-loader processes."""
    flags = ["--model", MODEL, "--checkpoint", str(corpus / "tiny.safetensors"), "--device", "cpu"]
    return flags + ["--model-kwargs", json.dumps(TINY_ARGS), "--no-progress", "--num-workers", str(workers)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of ``torchrun --nproc-per-node 2 -m tokshift_zoo.cli ARGS`` (gloo)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--master-port", str(_free_port())]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    if sys.platform == "linux":  # gloo otherwise binds to the hostname's address, unresolvable in some containers
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return cmd + ["-m", "tokshift_zoo.cli", *args], env


def _run(args: list[str]) -> subprocess.CompletedProcess:
    cmd, env = _torchrun(args)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_two_process_evaluate_reports_what_one_process_does(corpus):
    proc = _run(
        [
            "evaluate",
            *_model_flags(corpus),
            "--list",
            str(corpus / "val.txt"),
            "--data-root",
            str(corpus),
            "--views",
            "2x3",
        ]
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # broken.mp4 could not be read
    report = json.loads(proc.stdout)  # printed once, by rank 0
    samples = [(str(s.path), s.label) for s in read_video_list(corpus / "val.txt", corpus, num_classes=4)]
    expected = evaluate(_model(corpus), samples, views="2x3", progress=False)
    assert report == dict(expected, model=str(corpus / "tiny.safetensors"), runtime="eager") and report["videos"] == 7
    assert proc.stderr.count("could not read") == 1


def test_two_process_predict_over_a_list_answers_in_list_order(corpus):
    proc = _run(
        [
            "predict",
            *_model_flags(corpus),
            "--list",
            str(corpus / "val.txt"),
            "--data-root",
            str(corpus),
            "--json",
            "--topk",
            "2",
        ]
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    videos = [str(s.path) for s in read_video_list(corpus / "val.txt", corpus, num_classes=4)]
    assert [a["video"] for a in answers] == videos and "error" in answers[3]
    expected = predict_videos(_model(corpus), videos, topk=2, progress=False)
    for answer, wanted in zip(answers, expected, strict=True):
        assert [p["index"] for p in answer.get("predictions", [])] == [
            p["index"] for p in wanted.get("predictions", [])
        ]


def _same_embeddings(folder, reference) -> None:
    embeddings, index = read_embeddings(folder)
    wanted, wanted_index = read_embeddings(reference)
    assert [row["video"] for row in index] == [row["video"] for row in wanted_index]
    assert [row["frames"] for row in index] == [row["frames"] for row in wanted_index]
    torch.testing.assert_close(embeddings, wanted)


def test_two_process_embed_writes_one_index_equal_to_one_process(corpus, tmp_path):
    videos = [str(corpus / f"v{i}.mp4") for i in range(7)] + [str(corpus / "broken.mp4")]
    embed(videos, tmp_path / "one", model=_model(corpus), views="2x1", shard_size=2, progress=False)
    proc = _run(
        [
            "embed",
            *videos,
            *_model_flags(corpus),
            "--output",
            str(tmp_path / "two"),
            "--views",
            "2x1",
            "--shard-size",
            "2",
        ]
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # broken.mp4 could not be read
    assert json.loads(proc.stdout)["embedded"] == 7  # the summary printed once
    _same_embeddings(tmp_path / "two", tmp_path / "one")
    shards = {p.name.split("-")[2] for p in (tmp_path / "two" / "shards").iterdir()}
    assert shards == {"r0000", "r0001"}  # both ranks wrote their share
    lines = (tmp_path / "two" / "index.jsonl").read_text().splitlines()
    assert len(lines) == 8 and json.loads(lines[-1])["video"] == videos[-1]


def _children(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    return [int(p) for p in open(path).read().split()] if os.path.exists(path) else []


@pytest.mark.skipif(sys.platform != "linux", reason="finds torchrun's workers in /proc")
def test_a_dead_rank_leaves_whole_shards_and_a_rerun_completes(corpus, tmp_path):
    videos = [str(corpus / f"v{i}.mp4") for i in range(7)]
    stalled = write_video(tmp_path / "stalled.mp4", index_frames(range(50)), fps=25)
    inputs = [*videos[:3], str(stalled), *videos[3:]]
    cmd, env = _torchrun(
        ["embed", *inputs, *_model_flags(corpus, 0), "--output", str(tmp_path / "out"), "--shard-size", "1"]
    )
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        shards = tmp_path / "out" / "shards"
        deadline = time.monotonic() + 90
        workers = []
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(shards.glob("shard-*"))) >= 4:  # half the videos done: freeze both ranks mid-job
                workers = _children(proc.pid)
                for pid in workers:
                    os.kill(pid, signal.SIGSTOP)
                break
            time.sleep(0.02)
        # (a FIFO used to stall a rank here; the zoo now refuses anything but a regular file at once)
        assert len(workers) == 2, proc.stderr.read() if proc.poll() is not None else workers
        os.kill(workers[0], signal.SIGKILL)  # one rank dies
        os.kill(workers[1], signal.SIGCONT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0, stderr[-2000:]
    assert not (tmp_path / "out" / "index.jsonl").exists()  # nothing merged
    written = list(shards.glob("shard-*"))
    assert 4 <= len(written) < 8
    for shard in written:
        with safe_open(str(shard), framework="pt") as f:  # every visible shard is whole
            assert f.get_tensor("embeddings").shape == (1, 32)

    model = _model(corpus)
    result = embed(inputs, tmp_path / "out", model=model, shard_size=1, progress=False)
    assert result["skipped"] == len(written) and result["embedded"] == 8 and result["failed"] == 0
    embed(inputs, tmp_path / "reference", model=model, progress=False)
    _same_embeddings(tmp_path / "out", tmp_path / "reference")

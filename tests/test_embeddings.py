"""Clip embeddings on real video files: what is stored equals the model's own pre-logits, resuming, the CLI.

Two processes under torchrun and a killed run: ``test_distributed.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_ARGS
from safetensors.torch import save_file
from videos import index_frames, write_video

import tokshift_zoo
from tokshift_zoo import read_embeddings, resolve_data_config
from tokshift_zoo.cli import main
from tokshift_zoo.embeddings import clip_embeddings, embed, find_videos
from tokshift_zoo.inference import VideoPreprocess

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def videos(tmp_path) -> list[str]:
    """Three short H.264 files of different lengths, and one file that is not a video."""
    paths = [str(write_video(tmp_path / f"v{i}.mp4", index_frames(range(30 + 25 * i)), fps=25)) for i in range(3)]
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    return paths + [str(tmp_path / "broken.mp4")]


def _pre_logits(model, video, views):
    batch = VideoPreprocess(resolve_data_config(model), views)(video)
    with torch.no_grad():
        return model.forward_head(model.forward_features(batch), pre_logits=True)  # (V, D)


def test_embeddings_read_back_equal_the_models_pre_logits(tiny_model, videos, tmp_path):
    result = embed(videos, tmp_path / "out", model=tiny_model, views="2x3", shard_size=2, progress=False)
    assert (result["videos"], result["embedded"], result["failed"], result["shape"]) == (4, 3, 1, [32])
    embeddings, index = read_embeddings(tmp_path / "out")
    assert embeddings.shape == (3, 32) and embeddings.dtype == torch.float32
    assert [row["video"] for row in index] == videos[:3]  # input order, the paths as given
    for row, embedding in zip(index, embeddings, strict=True):
        torch.testing.assert_close(embedding, _pre_logits(tiny_model, row["video"], "2x3").mean(0))
    # clip 0 of 2 starts at frame 0 of the 8x32 dense clips; frames wrap around a 55-frame video
    assert index[1]["frames"][0] == [(32 * k) % 55 for k in range(8)] and index[1]["views"] == "2x3"
    lines = [json.loads(line) for line in (tmp_path / "out" / "index.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and lines[3]["shard"] is None and "broken.mp4" in lines[3]["error"]
    shards = sorted((tmp_path / "out" / "shards").iterdir())
    assert len(shards) == 2 and all(p.name.startswith("shard-") for p in shards)  # 4 videos, 2 per shard
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["preprocessing"]["test_clips"] == 2 and manifest["dim"] == 32 and manifest["layer"] is None
    assert manifest["architecture"] == "tokshift_base16_224_8f" and "zoo_version" in manifest


def test_per_view_float16_and_an_intermediate_layer(tiny_model, videos, tmp_path):
    embed(videos[:2], tmp_path / "views", model=tiny_model, views="1x3", per_view=True, dtype="float16", progress=False)
    embeddings, _ = read_embeddings(tmp_path / "views")
    assert embeddings.shape == (2, 3, 32) and embeddings.dtype == torch.float16
    expected = _pre_logits(tiny_model, videos[1], "1x3")
    torch.testing.assert_close(embeddings[1], expected.half())

    views = VideoPreprocess(resolve_data_config(tiny_model), "1x3")(videos[1])
    torch.testing.assert_close(clip_embeddings(tiny_model, views, layer=-1), expected)  # the last block: pre-logits
    kept = []
    hook = tiny_model.blocks[0].register_forward_hook(lambda m, args, out: kept.append(out))
    with torch.no_grad():
        tiny_model(views)
    hook.remove()
    first = tiny_model.norm(kept[0])[:, 0].reshape(3, 8, 32).mean(1)  # class token after block 0, over time
    torch.testing.assert_close(clip_embeddings(tiny_model, views, layer=0), first)
    assert not torch.allclose(first, expected)
    with pytest.raises(ValueError, match=r"block index in \[-2, 2\)"):
        clip_embeddings(tiny_model, views, layer=2)


def test_rerun_skips_done_videos_and_refuses_other_settings(tiny_model, videos, tmp_path):
    embed(videos[:2], tmp_path / "out", model=tiny_model, shard_size=1, progress=False)
    first = sorted(p.name for p in (tmp_path / "out" / "shards").iterdir())
    result = embed(videos, tmp_path / "out", model=tiny_model, shard_size=1, progress=False)
    assert result["skipped"] == 2 and result["embedded"] == 3 and result["failed"] == 1
    assert set(first) < {p.name for p in (tmp_path / "out" / "shards").iterdir()}  # old shards kept, not redone
    embeddings, index = read_embeddings(tmp_path / "out")
    assert [row["video"] for row in index] == videos[:3]
    torch.testing.assert_close(embeddings[2], _pre_logits(tiny_model, videos[2], "1x1")[0])
    with pytest.raises(ValueError, match=r"views: '1x1' there, '2x1' now"):
        embed(videos, tmp_path / "out", model=tiny_model, views="2x1", progress=False)


def test_an_unfinished_run_is_reported_not_read(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        read_embeddings(tmp_path / "out")
    (tmp_path / "out" / "manifest.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="has not finished; rerun"):
        read_embeddings(tmp_path / "out")


def test_find_videos_expands_folders(tmp_path):
    (tmp_path / "a" / "frames").mkdir(parents=True)
    (tmp_path / "a" / "frames" / "img_00001.jpg").write_bytes(b"")
    for name in ("b.mp4", "a/c.webm", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    found = find_videos([tmp_path, tmp_path / "b.mp4"])
    assert found == [str(tmp_path / "b.mp4"), str(tmp_path / "a" / "c.webm"), str(tmp_path / "a" / "frames")]


def test_cli_embed_a_folder_with_a_checkpoint(tiny_model, videos, tmp_path, capsys):
    checkpoint = tmp_path / "tiny.safetensors"
    save_file(tiny_model.state_dict(), checkpoint)
    folder = Path(videos[0]).parent
    argv = ["embed", str(folder), "--output", str(tmp_path / "out"), "--model", "tokshift_base16_224_8f"]
    argv += ["--checkpoint", str(checkpoint), "--model-kwargs", json.dumps(TINY_ARGS), "--device", "cpu"]
    assert main(argv + ["--no-progress", "--layer", "-1"]) == 1  # broken.mp4 is reported: exit 1
    result = json.loads(capsys.readouterr().out)
    assert result["embedded"] == 3 and result["failed"] == 1
    embeddings, index = read_embeddings(tmp_path / "out")
    torch.testing.assert_close(embeddings[0], _pre_logits(tiny_model, index[0]["video"], "1x1")[0])
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["weights_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert manifest["layer"] == -1 and manifest["weights"] == str(checkpoint)


def test_the_manifest_records_the_sha256_verified_at_load(hub, tiny_model, videos, tmp_path):
    from test_weights import REPO, safetensors_bytes, timm_config

    data = safetensors_bytes(tiny_model)
    hub.commit(REPO, {"model.safetensors": data, "config.json": timm_config()})  # a repo that pins nothing
    model = tokshift_zoo.load(f"hf-hub:{REPO}", device="cpu")
    embed(videos[:1], tmp_path / "out", model=model, progress=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["weights_sha256"] == hashlib.sha256(data).hexdigest()  # the hub's LFS id, checked at load


def test_the_package_names_are_the_functions():
    import tokshift_zoo
    import tokshift_zoo.embeddings as module

    assert tokshift_zoo.embed is module.embed and tokshift_zoo.read_embeddings is module.read_embeddings


def test_a_rerun_retries_failed_videos_and_embeds_changed_files_again(tiny_model, videos, tmp_path):
    half = tmp_path / "copying.mp4"
    half.write_bytes(Path(videos[2]).read_bytes()[:2000])  # a copy still under way
    inputs = [videos[0], str(half), videos[3]]  # videos[3]: broken.mp4, never a video
    first = embed(inputs, tmp_path / "out", model=tiny_model, shard_size=1, progress=False)
    assert (first["embedded"], first["failed"]) == (1, 2)

    shutil.copyfile(videos[2], half)  # the copy completes
    again = embed(inputs, tmp_path / "out", model=tiny_model, shard_size=1, progress=False)
    assert (again["skipped"], again["embedded"], again["failed"]) == (1, 2, 1)  # both failed ones were retried
    embeddings, index = read_embeddings(tmp_path / "out")
    assert [row["video"] for row in index] == inputs[:2]
    torch.testing.assert_close(embeddings[1], _pre_logits(tiny_model, videos[2], "1x1")[0])

    shutil.copyfile(videos[1], videos[0])  # a file replaced by another video: its old embedding is stale
    third = embed(inputs, tmp_path / "out", model=tiny_model, shard_size=1, progress=False)
    assert (third["skipped"], third["embedded"]) == (1, 2)
    embeddings, index = read_embeddings(tmp_path / "out")
    torch.testing.assert_close(embeddings[0], _pre_logits(tiny_model, videos[1], "1x1")[0])
    assert index[0]["size"] == os.path.getsize(videos[1]) and index[0]["mtime_ns"] == os.stat(videos[0]).st_mtime_ns
    lines = (tmp_path / "out" / "index.jsonl").read_text().splitlines()
    assert [json.loads(line)["video"] for line in lines] == inputs  # one row per video, the newest


# The first writer: embed (the CLI) that touches MARKER once it holds the folder, then stalls in the model.
_STALLED_EMBED = """
import pathlib, sys, time
import tokshift_zoo.embeddings as embeddings
from tokshift_zoo.cli import main

def stalled(*args, **kwargs):
    pathlib.Path(sys.argv[1]).touch()
    time.sleep(600)

embeddings.clip_embeddings = stalled
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_a_second_embed_into_a_folder_in_use_is_refused(tiny_model, videos, tmp_path):
    checkpoint = tmp_path / "tiny.safetensors"
    save_file(tiny_model.state_dict(), checkpoint)
    argv = ["embed", *videos, "--output", str(tmp_path / "out"), "--model", "tokshift_base16_224_8f"]
    argv += ["--checkpoint", str(checkpoint), "--model-kwargs", json.dumps(TINY_ARGS), "--device", "cpu"]
    argv += ["--no-progress", "--shard-size", "1"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    marker = tmp_path / "holding"
    first = subprocess.Popen([sys.executable, "-c", _STALLED_EMBED, str(marker), *argv], env=env, text=True)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), first.returncode
        second = subprocess.run(
            [sys.executable, "-m", "tokshift_zoo.cli", *argv], env=env, capture_output=True, text=True, timeout=300
        )
        assert second.returncode == 2, second.stderr[-3000:]
        assert "another process is writing into this folder" in second.stderr and "Traceback" not in second.stderr
        first.send_signal(signal.SIGKILL)  # the kernel drops a dead process's lock: the folder is free again
        first.wait(60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    model = dict(model="tokshift_base16_224_8f", checkpoint=checkpoint, device="cpu", **TINY_ARGS)
    result = embed(videos, tmp_path / "out", shard_size=1, progress=False, **model)
    assert (result["embedded"], result["failed"]) == (3, 1)
    assert len((tmp_path / "out" / "index.jsonl").read_text().splitlines()) == 4  # each video once

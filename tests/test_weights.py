"""Weights from a hub, a URL and the package: download, verification, cache, offline use, concurrency.

Every network test talks to the loopback servers of ``hub_server.py`` through the real clients (huggingface_hub
for the hub, requests for URLs), with an empty cache under ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import timm
import torch
from conftest import TINY_ARGS
from hub_server import Fault, FileServer, HubServer
from huggingface_hub import constants as hf_constants
from huggingface_hub import file_download
from safetensors.torch import save

import tokshift_zoo
from tokshift_zoo import weights
from tokshift_zoo.weights import ChecksumError, DownloadError, NotCachedError

REPO = "org/tiny"
ARCH = "tokshift_base16_224_8f"


def safetensors_bytes(model: torch.nn.Module) -> bytes:
    return save({k: v.contiguous() for k, v in model.state_dict().items()})


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def timm_config(**video: object) -> bytes:
    """A timm ``config.json`` for a tiny TokShift repo (what ``convert --push`` writes, minus labels)."""
    config = {
        "architecture": ARCH,
        "num_classes": TINY_ARGS["num_classes"],
        "model_args": TINY_ARGS,
        "pretrained_cfg": {
            "tag": "k400",
            "input_size": [3, 32, 32],
            "fixed_input_size": True,
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
            "num_classes": TINY_ARGS["num_classes"],
        },
    }
    if video:
        config["video_cfg"] = {"num_frames": 4, **video}
    return json.dumps(config).encode()


def load_from_hub(hub_id: str = REPO, **kwargs: object) -> torch.nn.Module:
    overlay = dict(hf_hub_id=hub_id)
    return tokshift_zoo.create_model(ARCH, pretrained=True, pretrained_cfg_overlay=overlay, **TINY_ARGS, **kwargs)


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)


def cached_blobs(cache: Path) -> list[Path]:
    return sorted(p for p in cache.glob("models--*/blobs/*"))


# --- the hub ----------------------------------------------------------------------------------------------------


def test_hub_download_is_verified_cached_and_logged_once(hub, hf_cache, tiny_model, caplog):
    data = safetensors_bytes(tiny_model)
    commit = hub.commit(REPO, {"model.safetensors": data})
    with caplog.at_level(logging.INFO, logger="tokshift_zoo.weights"):
        model = load_from_hub()
    assert_same_weights(model, tiny_model)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("tokshift_zoo.weights")]
    assert len(lines) == 1
    assert f"hf-hub:{REPO}/model.safetensors@{commit}" in lines[0]
    assert f"sha256 {sha256(data)} verified against hub LFS sha256" in lines[0]
    assert cached_blobs(hf_cache) == [hf_cache / "models--org--tiny" / "blobs" / sha256(data)]

    load_from_hub()  # from the cache (re-hashed), with no second transfer
    assert hub.gets(REPO, "model.safetensors") == 1


def test_registry_pin_is_checked_as_well_as_the_hub_hash(hub, hf_cache, tiny_model):
    data = safetensors_bytes(tiny_model)
    commit = hub.commit(REPO, {"model.safetensors": data})
    fetched = weights.fetch_hub_file(REPO, sha256=sha256(data).upper())
    assert fetched.verified_by == "registry pin, hub LFS sha256" and fetched.revision == commit

    wrong = "0" * 64
    with pytest.raises(ChecksumError) as err:
        weights.fetch_hub_file(REPO, sha256=wrong)
    assert wrong in str(err.value) and sha256(data) in str(err.value) and "registry pin" in str(err.value)
    assert cached_blobs(hf_cache) == [], "a file that fails its pin must not stay in the cache"

    model = tokshift_zoo.create_model(ARCH, pretrained_cfg_overlay=dict(hf_hub_id=REPO), **TINY_ARGS)
    model.weights = dataclasses.replace(model.weights, sha256=sha256(data))
    weights.load_pretrained(model)
    assert_same_weights(model, tiny_model)
    assert hub.gets(REPO, "model.safetensors") == 2  # the wrong pin met the cached copy, then evicted it


def test_tampered_file_is_refused_removed_and_fetched_again(hub, hf_cache, tiny_model):
    data = safetensors_bytes(tiny_model)
    hub.commit(REPO, {"model.safetensors": data})
    hub.set_fault(REPO, "model.safetensors", Fault("tamper", times=1))
    with pytest.raises(ChecksumError) as err:
        load_from_hub()
    message = str(err.value)
    blob = hf_cache / "models--org--tiny" / "blobs" / sha256(data)
    assert str(blob) in message and "model.safetensors" in message
    assert f"expected {sha256(data)} (hub LFS sha256)" not in message  # the wording names the kind once:
    assert f"hub LFS sha256: expected {sha256(data)}, got " in message
    assert not blob.exists() and not list(hf_cache.glob("models--org--tiny/snapshots/*/model.safetensors"))

    assert_same_weights(load_from_hub(), tiny_model)  # the next call downloads a good copy
    assert hub.gets(REPO, "model.safetensors") == 2


def test_hub_file_kept_in_git_is_checked_against_its_git_blob_sha1(hub, hf_cache, tiny_model):
    data = safetensors_bytes(tiny_model)
    hub.commit(REPO, {"model.safetensors": data}, lfs=False)  # small files live in git, with a sha1 ETag
    git_oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's id
    fetched = weights.fetch_hub_file(REPO)
    assert fetched.verified_by == "hub git blob sha1" and fetched.sha256 == sha256(data)
    assert cached_blobs(hf_cache) == [hf_cache / "models--org--tiny" / "blobs" / git_oid]

    fetched.path.unlink()  # the snapshot link, then the blob: a fresh download, tampered on the way
    cached_blobs(hf_cache)[0].unlink()
    hub.set_fault(REPO, "model.safetensors", Fault("tamper", times=1))
    with pytest.raises(ChecksumError, match=f"hub git blob sha1: expected {git_oid}, got "):
        weights.fetch_hub_file(REPO)
    assert cached_blobs(hf_cache) == []


def test_cache_without_symlinks_asks_the_hub_for_the_hash(hub, hf_cache, tiny_model, monkeypatch):
    """Where the file system has no symlinks, huggingface_hub keeps real files in ``snapshots/`` whose names
    say nothing of their hash: the hub is asked (a HEAD request), and offline only a registry pin can check."""
    data = safetensors_bytes(tiny_model)
    hub.commit(REPO, {"model.safetensors": data})
    pointer = weights.fetch_hub_file(REPO).path
    pointer.unlink()
    pointer.write_bytes(data)  # a copy where the link was
    hub.log.clear()
    fetched = weights.fetch_hub_file(REPO)
    assert fetched.path == pointer and fetched.verified_by == "hub LFS sha256"
    methods = [method for method, name, _ in hub.log if name == "model.safetensors"]
    assert methods == ["HEAD", "HEAD"]  # huggingface_hub's own freshness check, then the zoo's; no GET

    pointer.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ChecksumError, match=f"hub LFS sha256: expected {sha256(data)}"):
        weights.fetch_hub_file(REPO)
    assert not pointer.exists()

    weights.fetch_hub_file(REPO).path.unlink()
    pointer.write_bytes(data)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ChecksumError, match="no sha256 pin and no hash from the hub"):
        weights.fetch_hub_file(REPO)
    assert weights.fetch_hub_file(REPO, sha256=sha256(data)).verified_by == "registry pin"


@pytest.mark.parametrize("kind", ["truncate", "gone"])
def test_broken_transfer_keeps_nothing(hub, hf_cache, tiny_model, kind, monkeypatch):
    monkeypatch.setattr(file_download, "time", type("NoSleep", (), {"sleep": staticmethod(lambda s: None)}))
    hub.commit(REPO, {"model.safetensors": safetensors_bytes(tiny_model)})
    hub.set_fault(REPO, "model.safetensors", Fault(kind))
    with pytest.raises(DownloadError, match=f"(?s){REPO}/model.safetensors@main.*Nothing was kept"):
        load_from_hub()
    assert not [p for p in hf_cache.rglob("*") if p.is_file() and p.parent.name == "blobs"]


@pytest.mark.parametrize(
    "hub_id, filename, message",
    [
        ("org/missing", "model.safetensors", "no such repository"),
        (REPO, "other.safetensors", "no such file"),
        (REPO + "@v9", "model.safetensors", "no such revision"),
    ],
)
def test_not_found_on_the_hub(hub, tiny_model, hub_id, filename, message):
    hub.commit(REPO, {"model.safetensors": safetensors_bytes(tiny_model)})
    with pytest.raises(DownloadError, match=message):
        weights.fetch_hub_file(hub_id, filename)


def test_revision_pinning(hub, tiny_model):
    first = safetensors_bytes(tiny_model)
    old = hub.commit(REPO, {"model.safetensors": first})
    with torch.no_grad():
        tiny_model.head.bias.add_(1.0)
    hub.commit(REPO, {"model.safetensors": safetensors_bytes(tiny_model)})
    pinned = load_from_hub(f"{REPO}@{old}")
    torch.testing.assert_close(pinned.head.bias, tiny_model.head.bias - 1.0)
    assert weights.fetch_hub_file(REPO, revision=old).revision == old
    assert_same_weights(load_from_hub(), tiny_model)


def test_offline_uses_the_cache_and_says_when_a_file_is_missing(hub, tiny_model, monkeypatch):
    hub.commit(REPO, {"model.safetensors": safetensors_bytes(tiny_model)})
    load_from_hub()
    hub.stop()  # no network from here on
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    assert_same_weights(load_from_hub(), tiny_model)
    with pytest.raises(NotCachedError, match=r"HF_HUB_OFFLINE is set and org/other/model.safetensors@main"):
        load_from_hub("org/other")


def test_only_safetensors_come_from_the_network(hub, tiny_model):
    hub.commit(REPO, {"pytorch_model.bin": b"not loaded"})
    overlay = dict(hf_hub_id=REPO, hf_hub_filename="pytorch_model.bin")
    with pytest.raises(ValueError, match="only .safetensors files are loaded from a hub or URL"):
        tokshift_zoo.create_model(ARCH, pretrained=True, pretrained_cfg_overlay=overlay, **TINY_ARGS)
    assert hub.log == []


def test_in21k_tags_map_timm_image_vit_weights_with_resampled_position_embeddings(hub):
    """The in21k tags load timm's ImageNet-21k ViT repos; a 224 grid is resampled to the model's."""
    args = {k: v for k, v in TINY_ARGS.items() if k != "num_classes"}
    torch.manual_seed(0)
    image = timm.create_model("vit_base_patch16_224", num_classes=0, **args)
    repo = timm.models.get_pretrained_cfg("tokshift_base16_256_8f.in21k").hf_hub_id
    assert repo == "timm/vit_base_patch16_224.orig_in21k"
    hub.commit(repo, {"model.safetensors": safetensors_bytes(image)})

    model = tokshift_zoo.create_model("tokshift_base16_256_8f.in21k", pretrained=True, **dict(args, img_size=48))
    assert model.num_classes == 0 and model.pos_embed.shape == (1, 1 + 6 * 6, 32)
    torch.testing.assert_close(model.pos_embed[:, 0], image.pos_embed[:, 0])
    own, theirs = model.state_dict(), image.state_dict()
    for key in theirs.keys() - {"pos_embed"}:
        torch.testing.assert_close(own[key], theirs[key], msg=key)


def test_hf_hub_name_uses_the_repos_record_and_its_pin(hub, tiny_model):
    data = safetensors_bytes(tiny_model)
    hub.commit(REPO, {"model.safetensors": data, "config.json": timm_config(sha256=sha256(data), test_clips=2)})
    for create in (tokshift_zoo.create_model, timm.create_model):
        model = create(f"hf-hub:{REPO}", pretrained=True)
        assert_same_weights(model, tiny_model)
        assert (model.weights.sha256, model.weights.test_clips, model.weights.num_frames) == (sha256(data), 2, 4)

    hub.commit(REPO, {"config.json": timm_config(sha256="1" * 64)})  # a repo whose own pin is wrong
    with pytest.raises(ChecksumError, match="registry pin: expected 1111"):
        tokshift_zoo.create_model(f"hf-hub:{REPO}", pretrained=True)


def test_hf_hub_name_without_a_record_drops_the_registry_pin(hub, tiny_model, monkeypatch):
    hub.commit(REPO, {"model.safetensors": safetensors_bytes(tiny_model), "config.json": timm_config()})
    record = tokshift_zoo.models.registry.get_weights(f"{ARCH}.k400")
    pinned = dataclasses.replace(record, sha256="2" * 64)
    monkeypatch.setitem(tokshift_zoo.models.registry._RECORDS, f"{ARCH}.k400", pinned)
    model = tokshift_zoo.create_model(f"hf-hub:{REPO}", pretrained=True)
    # the registry pin (another source's) is dropped; the sha256 kept is the one the hub's LFS id verified
    assert model.weights.sha256 == sha256(safetensors_bytes(tiny_model)) and model.weights.num_frames == 8
    assert_same_weights(model, tiny_model)


def test_local_dir_name_loads_the_folders_weights(tiny_model, tmp_path):
    """``local-dir:PATH`` (timm's source for a folder holding a repo's files): the folder's weight file, checked
    against its config.json pin when it has one; without a record, timm's model.safetensors, unchecked."""
    data = safetensors_bytes(tiny_model)
    (tmp_path / "model.safetensors").write_bytes(data)
    (tmp_path / "config.json").write_bytes(timm_config())
    for create in (tokshift_zoo.create_model, timm.create_model):
        model = create(f"local-dir:{tmp_path}", pretrained=True)
        assert_same_weights(model, tiny_model)
        assert model.load_report.source == f"local-dir:{tmp_path}/model.safetensors (local file, no sha256 check)"
        assert model.weights.sha256 is None and model.weights.num_frames == 8

    (tmp_path / "weights.safetensors").write_bytes(data)
    (tmp_path / "config.json").write_bytes(timm_config(sha256=sha256(data), filename="weights.safetensors"))
    model = tokshift_zoo.load(f"local-dir:{tmp_path}", device="cpu")
    assert_same_weights(model, tiny_model)
    assert tokshift_zoo.download(f"local-dir:{tmp_path}").path == tmp_path / "weights.safetensors"
    assert model.weights.num_frames == 4 and "verified against the folder's config.json pin" in model.load_report.source
    (tmp_path / "config.json").write_bytes(timm_config(sha256="3" * 64, filename="weights.safetensors"))
    with pytest.raises(ChecksumError, match="weights.safetensors: sha256 .* does not match the pin"):
        tokshift_zoo.create_model(f"local-dir:{tmp_path}", pretrained=True)
    (tmp_path / "config.json").write_bytes(timm_config(filename="gone.safetensors"))
    with pytest.raises(FileNotFoundError, match="no gone.safetensors in the local-dir folder"):
        tokshift_zoo.create_model(f"local-dir:{tmp_path}", pretrained=True)


def test_download_command_prints_the_verified_path(hub, tiny_model, capsys, monkeypatch, tmp_path):
    from tokshift_zoo.cli import main

    data = safetensors_bytes(tiny_model)
    hub.commit(REPO, {"model.safetensors": data, "config.json": timm_config()})
    assert main(["download", f"hf-hub:{REPO}"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.name == "model.safetensors" and path.read_bytes() == data

    in21k = timm.models.get_pretrained_cfg(f"{ARCH}.in21k").hf_hub_id
    hub.commit(in21k, {"model.safetensors": data})
    assert main(["download", f"{ARCH}.in21k"]) == 0
    assert f"models--{in21k.replace('/', '--')}" in capsys.readouterr().out

    monkeypatch.setenv("TOKSHIFT_ZOO_AUTHORS_MIRROR", str(tmp_path))  # an empty mirror: no network call
    assert main(["download", f"{ARCH}.k400"]) == 1
    assert f"no {ARCH}.pth in that folder" in capsys.readouterr().err
    assert main(["download", "hf-hub:org/missing"]) == 1
    assert "no such repository" in capsys.readouterr().err


# --- plain URLs ------------------------------------------------------------------------------------------------


def test_url_download_is_verified_and_cached(file_server: FileServer, hf_cache, tiny_model):
    data = safetensors_bytes(tiny_model)
    url = file_server.add("tiny.safetensors", data)
    fetched = weights.fetch_url(url, sha256=sha256(data))
    assert fetched.path == hf_cache.parent / "tokshift-zoo" / "urls" / sha256(data) / "tiny.safetensors"
    assert fetched.path.read_bytes() == data and fetched.verified_by == "registry pin"
    assert weights.fetch_url(url, sha256=sha256(data)).path == fetched.path
    assert file_server.gets("tiny.safetensors") == 1

    model = tokshift_zoo.create_model(ARCH, pretrained_cfg_overlay=dict(url=url), **TINY_ARGS)
    model.weights = dataclasses.replace(model.weights, sha256=sha256(data))
    weights.load_pretrained(model)
    assert_same_weights(model, tiny_model)


def test_url_tampered_file_is_refused_and_removed(file_server, tiny_model):
    data = safetensors_bytes(tiny_model)
    url = file_server.add("tiny.safetensors", data)
    file_server.set_fault("tiny.safetensors", Fault("tamper", times=1))
    with pytest.raises(ChecksumError, match=f"expected {sha256(data)} \\(registry pin\\), got [0-9a-f]{{64}}"):
        weights.fetch_url(url, sha256=sha256(data))
    folder = weights.url_cache_dir() / sha256(data)
    assert list(folder.iterdir()) == []  # nothing kept, no lock file either
    assert weights.fetch_url(url, sha256=sha256(data)).path.read_bytes() == data
    assert [p.name for p in folder.iterdir()] == ["tiny.safetensors"]


def test_url_partial_download_is_resumed(file_server, tiny_model):
    data = safetensors_bytes(tiny_model)
    url = file_server.add("tiny.safetensors", data)
    file_server.set_fault("tiny.safetensors", Fault("drop", times=1))
    with pytest.raises(DownloadError, match="interrupted after .* is kept; the next call resumes it"):
        weights.fetch_url(url, sha256=sha256(data))
    partial = weights.url_cache_dir() / sha256(data) / "tiny.safetensors.incomplete"
    assert 0 < partial.stat().st_size < len(data)
    kept = partial.stat().st_size

    assert weights.fetch_url(url, sha256=sha256(data)).path.read_bytes() == data
    assert file_server.log[-1] == ("GET", "tiny.safetensors", f"bytes={kept}-")
    assert not partial.exists()


def test_url_server_that_ignores_range_gets_the_whole_file_again(file_server, tiny_model):
    data = safetensors_bytes(tiny_model)
    url = file_server.add("tiny.safetensors", data)
    file_server.set_fault("tiny.safetensors", Fault("drop", times=1))
    with pytest.raises(DownloadError, match="interrupted"):
        weights.fetch_url(url, sha256=sha256(data))
    partial = weights.url_cache_dir() / sha256(data) / "tiny.safetensors.incomplete"
    kept = partial.stat().st_size
    file_server.ranges = False  # answers the Range request with 200 and the whole file
    assert weights.fetch_url(url, sha256=sha256(data)).path.read_bytes() == data  # not kept + whole file
    assert file_server.log[-1] == ("GET", "tiny.safetensors", f"bytes={kept}-")


def test_url_complete_partial_file_gets_416_and_is_verified(file_server, tiny_model):
    data = safetensors_bytes(tiny_model)
    url = file_server.add("tiny.safetensors", data)
    partial = weights.url_cache_dir() / sha256(data) / "tiny.safetensors.incomplete"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data)  # every byte arrived, the rename did not happen
    fetched = weights.fetch_url(url, sha256=sha256(data))
    assert fetched.path.read_bytes() == data and not partial.exists()
    assert file_server.log == [("GET", "tiny.safetensors", f"bytes={len(data)}-")]  # answered 416, no body

    partial.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # complete in size, wrong in content
    fetched.path.unlink()
    with pytest.raises(ChecksumError, match="registry pin"):
        weights.fetch_url(url, sha256=sha256(data))
    assert not partial.exists()


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"TOKSHIFT_ZOO_DOWNLOAD_STALL_S": "1.5", "TOKSHIFT_ZOO_DOWNLOAD_MIN_RATE": "100"}, "abandoned as stalled"),
        ({"TOKSHIFT_ZOO_DOWNLOAD_DEADLINE_S": "1.5", "TOKSHIFT_ZOO_DOWNLOAD_MIN_RATE": "0"}, "1.5 s deadline"),
    ],
)
def test_url_trickling_server_is_abandoned_the_lock_released_and_the_next_call_resumes(
    file_server, tiny_model, monkeypatch, limits, message
):
    for name, value in limits.items():
        monkeypatch.setenv(name, value)
    data = safetensors_bytes(tiny_model)
    url = file_server.add("tiny.safetensors", data)
    file_server.set_fault("tiny.safetensors", Fault("trickle", times=1, interval=0.2))  # 5 bytes/s, never silent
    started = time.monotonic()
    with pytest.raises(DownloadError, match=f"{message}.* is kept; the next call resumes it"):
        weights.fetch_url(url, sha256=sha256(data))
    assert time.monotonic() - started < 10
    folder = weights.url_cache_dir() / sha256(data)
    assert [p.name for p in folder.iterdir()] == ["tiny.safetensors.incomplete"]  # no lock left held
    assert weights.fetch_url(url, sha256=sha256(data)).path.read_bytes() == data


def test_url_server_gone_mid_transfer_and_404(file_server, tiny_model):
    data = safetensors_bytes(tiny_model)
    url = file_server.add("tiny.safetensors", data)
    with pytest.raises(DownloadError, match="HTTP 404"):
        weights.fetch_url(url.replace("tiny", "other"), sha256=sha256(data))
    file_server.set_fault("tiny.safetensors", Fault("gone"))
    with pytest.raises(DownloadError, match="interrupted"):
        weights.fetch_url(url, sha256=sha256(data))
    with pytest.raises(DownloadError, match="could not reach"):
        weights.fetch_url(url, sha256=sha256(data))


def test_url_offline(file_server, tiny_model, monkeypatch):
    data = safetensors_bytes(tiny_model)
    url = file_server.add("tiny.safetensors", data)
    weights.fetch_url(url, sha256=sha256(data))
    file_server.stop()
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    assert weights.fetch_url(url, sha256=sha256(data)).path.read_bytes() == data
    with pytest.raises(NotCachedError, match="HF_HUB_OFFLINE is set"):
        weights.fetch_url(url.replace("tiny", "other"), sha256=sha256(b"other"))


def test_url_needs_a_pin_and_safetensors(file_server):
    url = file_server.add("tiny.safetensors", b"x")
    with pytest.raises(ValueError, match="needs a sha256 pin"):
        weights.fetch_url(url, sha256="")
    with pytest.raises(ValueError, match="only .safetensors"):
        weights.fetch_url(file_server.add("model.pth", b"x"), sha256=sha256(b"x"))
    with pytest.raises(ValueError, match="no sha256 pin in its weights record"):
        tokshift_zoo.create_model(ARCH, pretrained=True, pretrained_cfg_overlay=dict(url=url), **TINY_ARGS)
    assert file_server.log == []


def test_url_concurrent_callers_download_once(file_server, tiny_model):
    data = safetensors_bytes(tiny_model)
    url = file_server.add("tiny.safetensors", data)
    file_server.throttle = 0.01
    results, errors = [], []

    def fetch() -> None:
        try:
            results.append(weights.fetch_url(url, sha256=sha256(data)).path)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(set(results)) == 1 and len(results) == 3
    assert file_server.gets("tiny.safetensors") == 1


# --- the package -----------------------------------------------------------------------------------------------


def test_package_file_is_verified_against_its_pin(tmp_path, tiny_model, monkeypatch):
    package = tmp_path / "zoo_extra"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    data = safetensors_bytes(tiny_model)
    (package / "data" / "demo.safetensors").write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert weights.package_file("demo.safetensors") == "package://tokshift_zoo/data/demo.safetensors"

    model = tokshift_zoo.create_model(ARCH, **TINY_ARGS)
    model.weights = model.weights.replace(file="package://zoo_extra/data/demo.safetensors")
    for pin, message in [(None, f"must have a sha256 pin.*{sha256(data)}"), ("3" * 64, "sha256 mismatch")]:
        model.weights = dataclasses.replace(model.weights, sha256=pin)
        with pytest.raises(ChecksumError, match=message):
            weights.load_pretrained(model)
    model.weights = dataclasses.replace(model.weights, sha256=sha256(data))
    report = weights.load_pretrained(model)
    assert "package://zoo_extra/data/demo.safetensors" in report.source and "registry pin" in report.source
    assert_same_weights(model, tiny_model)


# --- processes -------------------------------------------------------------------------------------------------

_DRIVER = """
import sys, time, pathlib
from tokshift_zoo import weights
ready, go, url, pin = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3], sys.argv[4]
ready.touch()
deadline = time.time() + 120
while not go.exists() and time.time() < deadline:
    time.sleep(0.01)
print(weights.download("hf-hub:org/tiny").path)
print(weights.fetch_url(url, sha256=pin).path)
"""


@pytest.mark.slow
def test_two_processes_load_the_same_weights_with_one_download(hub, file_server, tiny_model, tmp_path):
    data = safetensors_bytes(tiny_model)
    hub.commit(REPO, {"model.safetensors": data, "config.json": timm_config()})
    url = file_server.add("tiny.safetensors", data)
    hub.throttle = file_server.throttle = 0.5  # ~1.5 s per transfer: the second process arrives mid-transfer
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _DRIVER, str(tmp_path / f"ready{i}"), str(go), url, sha256(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    deadline = time.time() + 180
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.time() < deadline:
        time.sleep(0.05)
    go.touch()
    outputs = [proc.communicate(timeout=180) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    assert outputs[0][0] == outputs[1][0]
    hub_path, url_path = (Path(line) for line in outputs[0][0].split())
    assert hub_path.read_bytes() == data and url_path.read_bytes() == data
    assert hub.gets(REPO, "model.safetensors") == 1 and file_server.gets("tiny.safetensors") == 1


_OFFLINE = """
import sys, timm, tokshift_zoo
from tokshift_zoo.cli import main
model = timm.create_model("hf-hub:org/tiny", pretrained=True)
print("params", sum(p.numel() for p in model.parameters()))
code = main(["download", sys.argv[1]])
print("uncached", main(["download", sys.argv[2]]))  # a repo the cache lacks: refused, offline
sys.exit(code)
"""


@pytest.mark.slow
def test_hf_hub_offline_in_a_fresh_process(hub: HubServer, tiny_model, hf_cache):
    data = safetensors_bytes(tiny_model)
    hub.commit(REPO, {"model.safetensors": data, "config.json": timm_config()})
    cached = weights.download(f"hf-hub:{REPO}").path
    hub.stop()
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-c", _OFFLINE, f"hf-hub:{REPO}", "hf-hub:org/other"]  # one fresh process, both
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[1] == str(cached)
    assert run.stdout.startswith(f"params {sum(p.numel() for p in tiny_model.parameters())}")
    assert run.stdout.splitlines()[-1] == "uncached 1"
    assert "HF_HUB_OFFLINE is set and org/other/config.json@main" in run.stderr


def test_no_network_fails_at_the_first_connection_error_with_the_offline_hint(hf_cache, monkeypatch, caplog):
    """hf_hub_download alone retries a refused connection with back-off for half a minute; one failure is enough."""
    import socket

    with socket.socket() as s:  # a port nothing listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(hf_constants, "ENDPOINT", dead)
    monkeypatch.setattr(hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", dead + "/{repo_id}/resolve/{revision}/{filename}")
    caplog.set_level(logging.INFO, logger="huggingface_hub")
    with pytest.raises(DownloadError, match=r"could not reach http://127.0.0.1:\d+ .*HF_HUB_OFFLINE=1") as err:
        tokshift_zoo.create_model("tokshift_base16_224_8f.in21k", pretrained=True, **TINY_ARGS)
    assert "timm/vit_base_patch16_224.orig_in21k/model.safetensors@main" in str(err.value)
    assert "Retrying" not in caplog.text


# --- hostile local files: one-line errors of the zoo's family, nothing built or unpickled -----------------------


def _lying_headers(good: bytes) -> dict[str, bytes]:
    length = int.from_bytes(good[:8], "little")
    header = json.loads(good[8 : 8 + length])
    name = next(k for k in header if k != "__metadata__")
    beyond = dict(header, **{name: dict(header[name], data_offsets=[0, 1 << 40])})
    beyond_text = json.dumps(beyond).encode()
    return {
        "length beyond the file": (1 << 40).to_bytes(8, "little") + good[8:],
        "header not JSON": length.to_bytes(8, "little") + b"[" + good[9:],
        "offsets beyond the data": len(beyond_text).to_bytes(8, "little") + beyond_text + good[8 + length :],
        "empty file": b"",
    }


@pytest.mark.parametrize("lie", ["length beyond the file", "header not JSON", "offsets beyond the data", "empty file"])
def test_a_safetensors_header_that_lies_is_a_one_line_weights_error(tiny_model, tmp_path, lie):
    path = tmp_path / "lying.safetensors"
    path.write_bytes(_lying_headers(safetensors_bytes(tiny_model))[lie])
    for read in (weights.load_state_dict_file, weights.read_safetensors_metadata):
        with pytest.raises(tokshift_zoo.WeightsError, match=r"lying.safetensors: not a valid safetensors file") as err:
            read(path)
        assert "\n" not in str(err.value)
    with pytest.raises(tokshift_zoo.WeightsError, match="lying.safetensors"):
        tokshift_zoo.create_model(ARCH, checkpoint_path=path, **TINY_ARGS)


class _NotATensor:
    """A Python object in a torch file: the zoo must refuse it, not pass on torch's advice to unpickle it."""


def test_a_torch_file_with_python_objects_is_refused_without_torchs_weights_only_false_advice(tmp_path):
    path = tmp_path / "objects.pth"
    torch.save({"state_dict": {}, "extra": _NotATensor()}, path)
    with pytest.raises(tokshift_zoo.WeightsError) as err:
        weights.load_state_dict_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not a plain tensor checkpoint: it holds a Python object of type ")
    assert "_NotATensor" in message and "reads only weights" in message and "\n" not in message
    assert "weights_only=False" not in message and "weights_only` set to `False" not in message


def test_a_non_jax_npz_is_a_one_line_weights_error(tiny_model, tmp_path):
    import numpy as np

    path = tmp_path / "features.npz"
    np.savez(path, features=np.zeros((4, 8), np.float32), labels=np.arange(4))
    with pytest.raises(tokshift_zoo.WeightsError, match=r"features.npz: not a Google ViT \(JAX\) .npz: .*'features'"):
        weights.load_weights_file(tiny_model, path)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(tokshift_zoo.WeightsError, match=r"features.npz: not a NumPy .npz archive"):
        weights.load_weights_file(tiny_model, path)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"depth": 200000}, "depth=200000"),
        ({"img_size": 2000000}, "img_size=2000000"),
        ({"img_size": [224, 2000000]}, "img_size=[224, 2000000]"),
        ({"embed_dim": 10**9}, "embed_dim=1000000000"),
        ({"num_frames": -3}, "num_frames=-3"),
        ({"patch_size": 0}, "patch_size=0"),
        ({"depth": "12"}, "depth=12"),
        ({"img_size": 4096, "patch_size": 1}, "16777216 patches per frame"),
    ],
)
def test_model_kwargs_from_a_file_out_of_bounds_are_refused_before_any_allocation(tiny_model, tmp_path, kwargs, named):
    path = tmp_path / "huge.safetensors"
    metadata = {"architecture": ARCH, "model_kwargs": json.dumps(dict(TINY_ARGS, **kwargs))}
    path.write_bytes(save({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, metadata=metadata))
    started = time.perf_counter()
    with pytest.raises(tokshift_zoo.WeightsError, match=rf"huge.safetensors: model_kwargs .*{re.escape(named)}"):
        tokshift_zoo.create_model(None, checkpoint_path=path)
    assert time.perf_counter() - started < 5  # refused, not built


@pytest.mark.parametrize("source", ["local-dir", "hf-hub"])
def test_model_args_of_a_config_json_out_of_bounds_are_refused_before_any_allocation(request, tmp_path, source):
    hostile = json.loads(timm_config())
    hostile["model_args"]["embed_dim"] = 10**9  # a 768 GB patch embedding, were it built
    if source == "local-dir":
        (tmp_path / "config.json").write_text(json.dumps(hostile))
        name, where = f"local-dir:{tmp_path}", f"{tmp_path}/config.json"
    else:
        request.getfixturevalue("hub").commit(REPO, {"config.json": json.dumps(hostile).encode()})
        name, where = f"hf-hub:{REPO}", f"hf-hub:{REPO} config.json"
    named = f"{where}: model_args embed_dim=1000000000 is out of bounds: expected an integer from 1 to 16384"
    for create in (tokshift_zoo.create_model, timm.create_model, tokshift_zoo.resolve_data_config):
        started = time.perf_counter()
        with pytest.raises(tokshift_zoo.WeightsError, match=re.escape(named)):
            create(name)
        assert time.perf_counter() - started < 5  # refused, not built


def test_the_registry_sizes_pass_the_model_kwargs_bounds():
    from tokshift_zoo.models.checkpoints import check_model_kwargs

    for kwargs in ({"img_size": 384, "patch_size": 16, "embed_dim": 1024, "depth": 24, "num_heads": 16},
                   {"img_size": (224, 320), "num_frames": 16, "num_classes": 0, "mlp_ratio": 4.0}):  # fmt: skip
        assert check_model_kwargs(kwargs, "f") is kwargs

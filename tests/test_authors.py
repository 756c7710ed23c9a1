"""The paper's Kinetics-400 releases in one call: mirror folder, mirror over HTTP, Google Drive (at gdown's
boundary), conversion and pins in the cache, offline reuse, refusals, concurrency, ``pretrained=False``, publish.

The release files are authors'-format checkpoints of a narrow, shallow model of the registry's image size and
patch (shape overrides ``embed_dim``, ``depth``, ``num_heads``), so every check runs on real files in seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from authors_format import authors_forward, save_authors_checkpoint
from hub_server import Fault
from huggingface_hub import constants as hf_constants

import tokshift_zoo
from tokshift_zoo import weights
from tokshift_zoo.cli import main
from tokshift_zoo.weights import authors

REPO = Path(__file__).resolve().parents[1]
ARCH = "tokshift_base16_224_8f"
SHAPES = dict(embed_dim=32, depth=2, num_heads=2)  # 224x224 in 16x16 patches, 400 classes: the release's head


@pytest.fixture
def release(tmp_path) -> Path:
    """A mirror folder holding ``ARCH.pth`` in the authors' format (a seeded model, 400 classes)."""
    torch.manual_seed(3)
    model = tokshift_zoo.create_model(ARCH, **SHAPES)
    folder = tmp_path / "mirror"
    folder.mkdir()
    save_authors_checkpoint(model, folder / f"{ARCH}.pth")
    return folder


@pytest.fixture
def mirror(release, hf_cache, monkeypatch) -> Path:
    """The release folder as ``TOKSHIFT_ZOO_AUTHORS_MIRROR``, online, with an empty cache."""
    monkeypatch.setenv(authors.MIRROR_ENV, str(release))
    return release


def cache_folder() -> Path:
    return authors.authors_cache_dir() / ARCH


def clip(batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, 8, 224, 224, generator=torch.Generator().manual_seed(0))


def assert_authors_logits(model: torch.nn.Module, release_file: Path) -> None:
    state = torch.load(release_file, weights_only=True)["state_dict"]
    x = clip(2).to(next(model.parameters()).dtype)
    with torch.no_grad():
        torch.testing.assert_close(model(x), authors_forward(state, x, SHAPES["num_heads"]), atol=1e-4, rtol=1e-4)


def test_first_load_from_a_mirror_folder_converts_pins_and_says_where_it_came_from(mirror, capsys):
    model = tokshift_zoo.load(ARCH, device="cpu", **SHAPES)
    assert not model.training and model.labels[0] == "abseiling"
    assert_authors_logits(model, mirror / f"{ARCH}.pth")
    source = hashlib_sha256(mirror / f"{ARCH}.pth")
    assert f"sha256 is {source}" in capsys.readouterr().err  # printed, as the authors publish none
    assert str(mirror / f"{ARCH}.pth") in model.load_report.source
    pins = json.loads((cache_folder() / "pins.json").read_text())
    converted = cache_folder() / f"{ARCH}.k400.safetensors"
    assert pins == {"source": str(mirror / f"{ARCH}.pth"), "source_sha256": source,
                    "converted_sha256": hashlib_sha256(converted)}  # fmt: skip
    assert sorted(p.name for p in cache_folder().iterdir()) == ["pins.json", converted.name]  # no source, no lock


def hashlib_sha256(path: Path) -> str:
    return weights.sha256_file(path)


def test_second_load_works_offline_and_a_tampered_cache_is_refused_and_removed(mirror, monkeypatch):
    first = tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    monkeypatch.delenv(authors.MIRROR_ENV)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    again = tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    assert "cache pin of the first download" in again.load_report.source
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in first.state_dict().items())

    converted = cache_folder() / f"{ARCH}.k400.safetensors"
    data = bytearray(converted.read_bytes())
    data[-5] ^= 0xFF
    converted.write_bytes(bytes(data))
    with pytest.raises(tokshift_zoo.ChecksumError, match=r"does not match the pin .* The file was removed"):
        tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    assert not converted.exists()
    with pytest.raises(tokshift_zoo.NotCachedError, match="HF_HUB_OFFLINE is set"):
        tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)  # online again: fetched, matching the source pin
    monkeypatch.setenv(authors.MIRROR_ENV, str(mirror))
    assert (
        "pinned at this first download" in tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES).load_report.source
    )


def test_a_new_download_must_match_the_pinned_source(mirror, tmp_path):
    tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    (cache_folder() / f"{ARCH}.k400.safetensors").unlink()
    torch.manual_seed(4)
    save_authors_checkpoint(tokshift_zoo.create_model(ARCH, **SHAPES), mirror / f"{ARCH}.pth")  # another file
    with pytest.raises(tokshift_zoo.ChecksumError, match="differs from .* the file first downloaded"):
        tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    assert sorted(p.name for p in cache_folder().iterdir()) == ["pins.json"]


def test_a_release_that_does_not_fit_is_refused_with_the_reason(mirror, capsys):
    torch.manual_seed(5)
    save_authors_checkpoint(tokshift_zoo.create_model(ARCH, num_classes=10, **SHAPES), mirror / f"{ARCH}.pth")
    with pytest.raises(tokshift_zoo.WeightsError, match="expected a 400-class head, found 10 classes"):
        tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    # the command line checks the registry's own architecture (ViT-B): this narrow file is refused, exit 1
    assert main(["download", f"{ARCH}.k400"]) == 1
    assert "width 32" in capsys.readouterr().err
    assert not (cache_folder() / "pins.json").exists()


def test_http_mirror_and_a_truncated_download(release, file_server, monkeypatch):
    file_server.add(f"{ARCH}.pth", (release / f"{ARCH}.pth").read_bytes())
    monkeypatch.setenv(authors.MIRROR_ENV, f"{file_server.url}/files/")
    file_server.set_fault(f"{ARCH}.pth", Fault("truncate", times=1))  # half the file, announced as complete
    with pytest.raises(tokshift_zoo.WeightsError, match="not a plain tensor checkpoint"):
        timm.create_model(ARCH, pretrained=True, **SHAPES)
    assert sorted(p.name for p in cache_folder().iterdir()) == []  # nothing half-written is kept

    model = timm.create_model(ARCH, pretrained=True, **SHAPES).eval()  # timm's own call takes the same path
    assert f"{file_server.url}/files/{ARCH}.pth" in model.load_report.source
    assert_authors_logits(model, release / f"{ARCH}.pth")
    assert file_server.gets(f"{ARCH}.pth") == 2


def test_two_processes_at_once_download_and_convert_once(release, file_server, hf_cache, tmp_path):
    file_server.add(f"{ARCH}.pth", (release / f"{ARCH}.pth").read_bytes())
    file_server.throttle = 0.02
    code = (
        "import tokshift_zoo, sys\n"
        f"m = tokshift_zoo.load({ARCH!r}, device='cpu', embed_dim=32, depth=2, num_heads=2)\n"
        "print(m.load_report.source)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env[authors.MIRROR_ENV] = f"{file_server.url}/files"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    assert file_server.gets(f"{ARCH}.pth") == 1
    sources = sorted(out.strip().splitlines()[-1] for out, _ in outputs)
    assert "cache pin of the first download" in sources[0] and "pinned at this first download" in sources[1]


class _DriveFile:
    def __init__(self, id: str, path: str) -> None:  # noqa: A002 - gdown's field name
        self.id, self.path, self.local_path = id, path, path


@pytest.fixture
def drive(release, hf_cache, monkeypatch):
    """gdown's folder listing and download replaced: the folder below, downloads served from ``release``."""
    import gdown

    calls = {"listed": [], "downloaded": []}
    folder = {"files": ["README.txt", "log/train.log", f"{ARCH}_last.pth", f"{ARCH}_best.pth.tar"]}

    def download_folder(id, output, quiet, skip_download):  # noqa: A002
        assert skip_download
        calls["listed"].append(id)
        if folder.get("refuse_listing"):
            raise gdown.exceptions.DownloadError("Failed to retrieve folder contents")
        return [_DriveFile(f"file{i}", path) for i, path in enumerate(folder["files"])]

    def download(id, output, quiet):  # noqa: A002
        calls["downloaded"].append(id)
        if folder.get("refuse"):
            raise gdown.exceptions.FileURLRetrievalError("Too many users have viewed or downloaded this file recently")
        Path(output).write_bytes((release / f"{ARCH}.pth").read_bytes())
        return output

    monkeypatch.setattr(gdown, "download_folder", download_folder)
    monkeypatch.setattr(gdown, "download", download)
    monkeypatch.delenv(authors.MIRROR_ENV, raising=False)
    return calls, folder


def test_google_drive_picks_the_best_checkpoint_of_the_folder(drive, release):
    calls, _ = drive
    model = tokshift_zoo.load(ARCH, device="cpu", **SHAPES)
    folder_id = "1ty6OqhZpUxSzokXmP1IUFpze5A0Gihuu"
    assert calls == {"listed": [folder_id], "downloaded": ["file3"]}  # the *_best.pth.tar
    assert f"https://drive.google.com/drive/folders/{folder_id} ({ARCH}_best.pth.tar)" in model.load_report.source
    assert_authors_logits(model, release / f"{ARCH}.pth")


def test_google_drive_ambiguous_folder_and_refusal_name_the_way_out(drive):
    calls, folder = drive
    folder["files"] = ["a.pth", "b.pth", "notes.txt"]
    with pytest.raises(tokshift_zoo.DownloadError, match=r"several checkpoints; files found: \['a.pth', 'b.pth'"):
        tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    folder["files"], folder["refuse"] = ["best.pth"], True
    with pytest.raises(tokshift_zoo.DownloadError) as err:
        tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    message = str(err.value)
    assert "Too many users" in message and "drive.google.com/drive/folders/1ty6OqhZpUxSzokXmP1IUFpze5A0Gihuu" in message
    assert authors.MIRROR_ENV in message and "checkpoint_path=" in message
    folder["refuse_listing"] = True
    with pytest.raises(tokshift_zoo.DownloadError, match=r"Failed to retrieve folder contents.*checkpoint_path="):
        tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    assert sorted(p.name for p in cache_folder().iterdir()) == []


def test_pretrained_false_through_load_and_torch_hub_needs_no_weights():
    model = tokshift_zoo.load(ARCH, device="cpu", pretrained=False, **SHAPES)
    assert model.training and model.weights.views == "10x3" and not hasattr(model, "load_report")
    hub_model = torch.hub.load(str(REPO), ARCH, source="local", device="cpu", pretrained=False, **SHAPES)
    assert hub_model.num_classes == 400 and hub_model.weights.sha256 is None  # nothing was loaded


def test_torch_hub_default_call_then_offline(mirror, monkeypatch):
    model = torch.hub.load(str(REPO), ARCH, source="local", device="cpu", **SHAPES)
    assert not model.training
    assert_authors_logits(model, mirror / f"{ARCH}.pth")
    monkeypatch.delenv(authors.MIRROR_ENV)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    again = torch.hub.load(str(REPO), ARCH, source="local", device="cpu", **SHAPES)
    assert_authors_logits(again, mirror / f"{ARCH}.pth")


def test_publish_pushes_the_releases_and_prints_the_registry_lines(mirror, hub, capsys, monkeypatch):
    tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)  # the release, converted, in the cache
    assert main(["publish", "zoo-org", "--models", ARCH]) == 0
    out = capsys.readouterr().out
    converted = cache_folder() / f"{ARCH}.k400.safetensors"
    line = f'    "{ARCH}": ("zoo-org/{ARCH}", "{hashlib_sha256(converted)}"),'
    assert line in out.splitlines()
    card = hub.file(f"zoo-org/{ARCH}", "README.md").decode()
    assert "license: other" in card and "not stated by the authors" in card
    assert hub.file(f"zoo-org/{ARCH}", "model.safetensors") == converted.read_bytes()

    # pasted into the registry, the hub copy is the first source, checked against its pin
    from tokshift_zoo.models import registry

    record = registry.get_weights(f"{ARCH}.k400")
    pinned = record.replace(hf_hub_id=f"zoo-org/{ARCH}", sha256=hashlib_sha256(converted))
    monkeypatch.setitem(registry._RECORDS, record.key, pinned)
    monkeypatch.delenv(authors.MIRROR_ENV)
    model = tokshift_zoo.create_model(ARCH, pretrained=True, pretrained_cfg_overlay=dict(hf_hub_id=f"zoo-org/{ARCH}"),
                                      **SHAPES)  # fmt: skip
    assert f"hf-hub:zoo-org/{ARCH}/model.safetensors" in model.load_report.source
    assert "registry pin" in model.load_report.source
    assert_authors_logits(model.eval(), mirror / f"{ARCH}.pth")


@pytest.mark.slow
def test_full_size_release_download_command_then_torch_hub_offline(tmp_path, hf_cache, monkeypatch, capsys):
    """The one full-size check (a 345 MB ViT-B/16 release): the command fills the cache against the registry's
    own architecture; torch.hub's default call then loads it offline, equal to the authors' forward."""
    torch.manual_seed(6)
    with torch.no_grad():
        release = save_authors_checkpoint(tokshift_zoo.create_model(ARCH), tmp_path / f"{ARCH}.pth")
    monkeypatch.setenv(authors.MIRROR_ENV, str(tmp_path))
    assert main(["download", f"{ARCH}.k400"]) == 0
    converted = Path(capsys.readouterr().out.strip())
    assert converted == cache_folder() / f"{ARCH}.k400.safetensors" and converted.is_file()

    monkeypatch.delenv(authors.MIRROR_ENV)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    model = torch.hub.load(str(REPO), ARCH, source="local", device="cpu")
    assert not model.training and model.num_classes == 400
    state = torch.load(release, weights_only=True)["state_dict"]
    x = torch.randn(1, 3, 2, 224, 224, generator=torch.Generator().manual_seed(0))  # 2 frames: any T runs
    with torch.no_grad():
        torch.testing.assert_close(model(x), authors_forward(state, x, num_heads=12), atol=1e-4, rtol=1e-4)

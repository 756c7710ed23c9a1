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
import time
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
    assert pins == {"model": f"{ARCH}.k400", "source": str(mirror / f"{ARCH}.pth"), "source_sha256": source,
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

    def download_folder(id, output, quiet, skip_download, timeout):  # noqa: A002
        assert skip_download
        calls["listed"].append(id)
        if folder.get("refuse_listing"):
            raise gdown.exceptions.DownloadError("Failed to retrieve folder contents")
        return [_DriveFile(f"file{i}", path) for i, path in enumerate(folder["files"])]

    def download(id, output, quiet, **limits):  # noqa: A002 - gdown's names; limits: timeout, progress, cancel
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
    assert model.training and model.preprocess is not None and not hasattr(model, "load_report")
    hub_model = torch.hub.load(str(REPO), ARCH, source="local", device="cpu", pretrained=False, **SHAPES)
    assert hub_model.num_classes == 400 and hub_model.preprocess.views == "1x1"


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

    entry = registry.get_entry(f"{ARCH}.k400")
    pinned = type(entry)(
        entry.name,
        entry.tag,
        dict(entry.pretrained_cfg, hf_hub_id=f"zoo-org/{ARCH}"),
        type(entry.video)(**dict(entry.video.to_dict(), sha256=hashlib_sha256(converted))),
        entry.default,
        entry.drive_folder,
    )
    monkeypatch.setitem(registry._ENTRIES, entry.key, pinned)
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


# --- hostile mirrors and caches -----------------------------------------------------------------------------------


def test_a_byte_flipped_in_transit_is_refused_nothing_converted_or_pinned_and_the_good_file_accepted_after(
    release, file_server, monkeypatch, capsys
):
    file_server.add(f"{ARCH}.pth", (release / f"{ARCH}.pth").read_bytes())
    monkeypatch.setenv(authors.MIRROR_ENV, f"{file_server.url}/files")
    file_server.set_fault(f"{ARCH}.pth", Fault("tamper", times=1))  # one byte of the tensor data, headers unchanged
    with pytest.raises(tokshift_zoo.WeightsError, match=r"damaged: .* does not match its CRC-32") as err:
        tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    assert "\n" not in str(err.value) and f"{ARCH}.pth" in str(err.value)
    assert sorted(p.name for p in cache_folder().iterdir()) == []
    assert "pinned" not in capsys.readouterr().err  # nothing is said to be pinned that was refused

    model = tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES).eval()
    assert_authors_logits(model, release / f"{ARCH}.pth")
    assert json.loads((cache_folder() / "pins.json").read_text())["source_sha256"] == hashlib_sha256(
        release / f"{ARCH}.pth"
    )


OTHER = "tokshift_base16_224_16f"  # the same shapes as ARCH: weights alone cannot tell them apart


def test_swapped_cache_folders_are_refused_not_loaded_as_verified(mirror):
    (mirror / f"{OTHER}.pth").write_bytes((mirror / f"{ARCH}.pth").read_bytes())
    torch.manual_seed(8)
    save_authors_checkpoint(tokshift_zoo.create_model(OTHER, **SHAPES), mirror / f"{OTHER}.pth")
    for name in (ARCH, OTHER):
        tokshift_zoo.create_model(name, pretrained=True, **SHAPES)
    root = authors.authors_cache_dir()
    (root / ARCH).rename(root / "swap")
    (root / OTHER).rename(root / ARCH)
    (root / "swap").rename(root / OTHER)
    for folder, was in ((root / ARCH, OTHER), (root / OTHER, ARCH)):  # each file under the other's name
        (folder / f"{was}.k400.safetensors").rename(folder / f"{folder.name}.k400.safetensors")
    with pytest.raises(tokshift_zoo.ChecksumError, match=rf"converted for {OTHER}.k400, not {ARCH}.k400"):
        tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    assert not (root / ARCH / f"{ARCH}.k400.safetensors").exists()
    # fetched again, it is ARCH's own release
    assert_authors_logits(tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES).eval(), mirror / f"{ARCH}.pth")


def test_a_pin_rewritten_beside_a_replaced_file_is_cross_checked_with_the_files_metadata(mirror, tmp_path):
    from tokshift_zoo.convert import convert

    tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    torch.manual_seed(9)
    other = save_authors_checkpoint(tokshift_zoo.create_model(ARCH, **SHAPES), tmp_path / "other.pth")
    converted = cache_folder() / f"{ARCH}.k400.safetensors"
    result = convert(other, converted, ARCH, model_kwargs=SHAPES, require_classes=400)  # another release's weights
    pins_file = cache_folder() / "pins.json"
    pins = json.loads(pins_file.read_text())
    pins_file.write_text(json.dumps(dict(pins, converted_sha256=result.sha256)))  # the pin made to match
    with pytest.raises(tokshift_zoo.ChecksumError, match=r"its metadata names the source sha256 [0-9a-f]{64}, its pin"):
        tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)


@pytest.mark.parametrize("broken", ["{not json", '["a list"]', '{"source": 1}'])
def test_a_broken_pins_file_is_reported_and_replaced_by_a_fresh_check(mirror, monkeypatch, capsys, broken):
    tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    (cache_folder() / "pins.json").write_text(broken)
    capsys.readouterr()
    model = tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)  # not stuck until removed by hand
    err = capsys.readouterr().err
    assert "pins.json: " in err and "cannot vouch for the cached files" in err and "now pinned" in err
    assert "pinned at this first download" in model.load_report.source
    assert authors.read_pins(cache_folder())["converted_sha256"] == hashlib_sha256(
        cache_folder() / f"{ARCH}.k400.safetensors"
    )
    (cache_folder() / "pins.json").write_text(broken)  # offline, it cannot be checked again: said so
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(tokshift_zoo.NotCachedError, match="HF_HUB_OFFLINE is set"):
        tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)


@pytest.fixture
def trickling_drive(release, file_server, hf_cache, monkeypatch):
    """The Drive folder listed, and its file served by the real gdown from the loopback server, one byte every
    0.2 s (gdown gets the zoo's timeout, progress callback and cancel event)."""
    import gdown

    data = (release / f"{ARCH}.pth").read_bytes()
    url = file_server.add(f"{ARCH}.pth", data)
    file_server.set_fault(f"{ARCH}.pth", Fault("trickle", times=1, interval=0.2))
    real_download = gdown.download

    def download_folder(id, output, quiet, skip_download, timeout):  # noqa: A002 - gdown's names
        return [_DriveFile("file0", f"{ARCH}_best.pth")]

    monkeypatch.setattr(gdown, "download_folder", download_folder)
    monkeypatch.setattr(gdown, "download", lambda id, **kwargs: real_download(url=url, **kwargs))  # noqa: A006
    monkeypatch.delenv(authors.MIRROR_ENV, raising=False)
    return file_server


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"TOKSHIFT_ZOO_DOWNLOAD_STALL_S": "1.5", "TOKSHIFT_ZOO_DOWNLOAD_MIN_RATE": "1000000"}, "abandoned as stalled"),
        ({"TOKSHIFT_ZOO_DOWNLOAD_DEADLINE_S": "1.5", "TOKSHIFT_ZOO_DOWNLOAD_MIN_RATE": "0"}, "1.5 s deadline"),
    ],
)
def test_a_trickling_drive_download_is_abandoned_and_the_cache_lock_released(
    trickling_drive, monkeypatch, limits, message
):
    for name, value in limits.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    with pytest.raises(tokshift_zoo.DownloadError, match=f"{message}.*The partial file was removed"):
        tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    assert time.monotonic() - started < 15
    assert sorted(p.name for p in cache_folder().iterdir()) == []  # no lock, no partial file
    model = tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)  # the next call gets the file
    assert "pinned at this first download" in model.load_report.source


def test_a_trickling_http_mirror_is_abandoned_and_its_partial_file_removed(release, file_server, monkeypatch):
    file_server.add(f"{ARCH}.pth", (release / f"{ARCH}.pth").read_bytes())
    file_server.set_fault(f"{ARCH}.pth", Fault("trickle", times=1, interval=0.2))
    monkeypatch.setenv(authors.MIRROR_ENV, f"{file_server.url}/files")
    monkeypatch.setenv("TOKSHIFT_ZOO_DOWNLOAD_STALL_S", "1.5")
    with pytest.raises(tokshift_zoo.DownloadError, match="abandoned as stalled.*The partial file was removed"):
        tokshift_zoo.create_model(ARCH, pretrained=True, **SHAPES)
    assert sorted(p.name for p in cache_folder().iterdir()) == []

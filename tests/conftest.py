"""Shared fixtures: tiny models, an isolated Hugging Face cache, and the loopback hub and file servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hub_server import FileServer, HubServer
from huggingface_hub import constants as hf_constants
from videos import write_video

import tokshift_zoo


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` are skipped, with the reason, where torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (make gpu-check runs the cuda-marked tests on one)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


# --- models -------------------------------------------------------------------------------------------------

# A 2-block, 32-wide zoo model on 32x32 frames in 8x8 patches (16 patches), 4 classes: any builder takes these.
TINY_ARGS = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=4)


@pytest.fixture
def tiny_model() -> torch.nn.Module:
    """A seeded tiny ``tokshift_base16_224_8f`` in eval mode, fresh for each test."""
    torch.manual_seed(0)
    return tokshift_zoo.create_model("tokshift_base16_224_8f", **TINY_ARGS).eval()


# --- videos: the clips the trainer, the fine-tuning kit and publishing train on -------------------------------


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 10-frame 40x48 mp4 files (libx264, a keyframe every 5 frames), ``clip0.mp4`` to ``clip7.mp4``: random
    pixels with a colour cast (channel ``i % 3`` darkened), so clip ``i`` is of class ``i % 3``. Written once."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    for i in range(8):
        frames = rng.integers(0, 256, (10, 40, 48, 3), dtype=np.uint8)
        frames[..., i % 3] //= 4
        write_video(root / f"clip{i}.mp4", frames, gop=5)
    return root


def link_clips(clip_folder: Path, folder: Path) -> Path:
    """``folder`` with the shared clips in it (hard links: the same files), for a module to write its lists beside."""
    for clip in sorted(clip_folder.glob("clip*.mp4")):
        os.link(clip, folder / clip.name)
    return folder


# --- weights: an isolated Hugging Face cache, the loopback hub and file servers ------------------------------


@pytest.fixture(autouse=True)
def _offline_and_isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test: no network (the hub offline unless a test asks for the loopback hub) and no user caches."""
    home = tmp_path_factory.mktemp("home")
    for name, value in {
        "HF_HOME": str(home / "hf"),
        "HF_HUB_CACHE": str(home / "hf" / "hub"),
        "HF_HUB_OFFLINE": True,
    }.items():
        monkeypatch.setattr(hf_constants, name, value)
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.setenv("TOKSHIFT_ZOO_CACHE", str(home / "tokshift-zoo"))


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face home under ``tmp_path``, no token, online, Xet off; set for subprocesses too.

    huggingface_hub reads its environment once, at import, into ``huggingface_hub.constants``; the
    constants are patched for this process and the variables for the processes a test starts.
    """
    home = tmp_path / "hf"
    cache = home / "hub"
    for name, value in {
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,  # the loopback hub speaks the LFS protocol, not Xet
    }.items():
        monkeypatch.setattr(hf_constants, name, value)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for name in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT", "TOKSHIFT_ZOO_CACHE"):
        monkeypatch.delenv(name, raising=False)
    return cache


@pytest.fixture
def hub(hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """A loopback hub that huggingface_hub (and timm's ``hf-hub:`` names) talk to, with an empty cache."""
    with HubServer() as server:
        monkeypatch.setattr(hf_constants, "ENDPOINT", server.url)
        monkeypatch.setattr(
            hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture
def file_server(hf_cache: Path) -> Iterator[FileServer]:
    """A loopback plain-HTTP file host, with an empty cache."""
    with FileServer() as server:
        yield server

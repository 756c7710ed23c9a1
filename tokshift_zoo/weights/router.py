"""Which source serves a registry entry's weights, and loading them into a built model.

Sources, in the order ``fetch_pretrained`` tries them for a model's ``pretrained_cfg``: ``file`` (a packaged
file, pinned, or the user's own path), ``hf_hub_id`` (``hub.py``), ``url`` (``url.py``). ``prepare_model`` is
the loader the model builders call back (installed in the registry by ``tokshift_zoo.weights``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import timm
import torch.nn as nn

from ..errors import ConfigError, DownloadError
from ..models.registry import PACKAGE_SCHEME, VideoCfg, get_video_cfg, list_models
from .hub import fetch_hub_file, hub_video_cfg, read_hub_config
from .local import LoadReport, load_local
from .package import fetch_package_file
from .pins import Fetched
from .url import fetch_url

__all__ = ["download", "fetch_pretrained", "load_pretrained", "prepare_model"]

_logger = logging.getLogger(__name__)


def route_error(name: str) -> DownloadError:
    return DownloadError(
        f"no downloadable weights for {name}. The paper's Kinetics-400 checkpoints are on the authors' Google "
        "Drive only (https://github.com/VideoNetworks/TokShift-Transformer). Download the .pth there, then "
        "either load it directly with create_model(NAME, checkpoint_path=FILE), or convert it with "
        "`tokshift-zoo convert FILE OUT.safetensors` (optionally `--push ORG/REPO` to publish it and load it "
        "as hf-hub:ORG/REPO)."
    )


def fetch_pretrained(
    pretrained_cfg: dict[str, Any],
    video_cfg: VideoCfg | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
) -> Fetched:
    """Get the weight file a ``pretrained_cfg`` names onto local disk, verified.

    Sources in order: ``file`` (``package://`` files are checked against ``video_cfg.sha256``; other paths are
    the user's own and load unchecked), ``hf_hub_id`` (``hf_hub_filename`` or ``video_cfg.filename``), ``url``.

    Raises:
        DownloadError: the entry names no source (the Kinetics-400 tags); the message gives the route.
        ChecksumError, NotCachedError, DownloadError: see ``fetch_hub_file`` and ``fetch_url``.
    """
    name = f"{pretrained_cfg.get('architecture')}.{pretrained_cfg.get('tag')}"
    pin = video_cfg.sha256 if video_cfg else None
    filename = video_cfg.filename if video_cfg else "model.safetensors"
    file = pretrained_cfg.get("file")
    if file and str(file).startswith(PACKAGE_SCHEME):
        return fetch_package_file(str(file), pin)
    if file:
        return Fetched(Path(file), str(file))
    if pretrained_cfg.get("hf_hub_id"):
        filename = pretrained_cfg.get("hf_hub_filename") or filename
        return fetch_hub_file(pretrained_cfg["hf_hub_id"], filename, sha256=pin, cache_dir=cache_dir)
    if isinstance(pretrained_cfg.get("url"), str) and pretrained_cfg["url"]:
        if not pin:
            raise ConfigError(
                f"{name}: refusing to download {pretrained_cfg['url']} with no sha256 pin in its VideoCfg. "
                "Download it yourself and load it with checkpoint_path=FILE."
            )
        return fetch_url(pretrained_cfg["url"], sha256=pin, cache_dir=cache_dir)
    raise route_error(name)


def load_pretrained(model: nn.Module, cache_dir: str | os.PathLike | None = None) -> LoadReport:
    """Load the weights named by ``model.pretrained_cfg``: fetched and verified, then loaded, logged in one line.

    The sha256 pin is ``model.video_cfg.sha256`` (for ``hf-hub:`` models, the repo's own ``video_cfg``).

    Raises:
        DownloadError: the entry has no weights that can be had (the paper's Kinetics-400 checkpoints live on
            the authors' Google Drive only); the message gives the route to load them.
        ChecksumError, NotCachedError, DownloadError: the weights could not be had intact.
    """
    fetched = fetch_pretrained(model.pretrained_cfg, getattr(model, "video_cfg", None), cache_dir=cache_dir)
    report = load_local(model, fetched.path)
    report.source = str(fetched)
    cfg = model.pretrained_cfg
    _logger.info("%s.%s: %s", cfg.get("architecture"), cfg.get("tag"), report)
    return report


def download(name: str, cache_dir: str | os.PathLike | None = None) -> Fetched:
    """Fetch and verify the weights of ``NAME[.TAG]`` or ``hf-hub:ORG/REPO[@REV]`` into the cache.

    Returns:
        The verified local file and its provenance (``Fetched.path`` is what ``tokshift-zoo download`` prints).

    Raises:
        ConfigError: not a zoo model or tag.
        DownloadError: the tag has no downloadable weights (the message gives the route).
        ChecksumError, NotCachedError, DownloadError: the weights could not be had intact.
    """
    if name.startswith("hf-hub:"):
        hub_id = name.removeprefix("hf-hub:")
        config = read_hub_config(hub_id, cache_dir)
        pretrained_cfg = config.get("pretrained_cfg", config)
        video = config.get("video_cfg") if isinstance(config.get("video_cfg"), dict) else {}
        filename = pretrained_cfg.get("hf_hub_filename") or video.get("filename") or "model.safetensors"
        return fetch_hub_file(hub_id, filename, sha256=video.get("sha256"), cache_dir=cache_dir)
    arch, _, tag = name.partition(".")
    if arch not in list_models():
        raise ConfigError(f"{arch!r} is not a tokshift-zoo model; known: {list_models()}")
    if tag and name not in list_models(pretrained=True):
        raise ConfigError(f"no tag {tag!r} for {arch}; known: {list_models(arch + '.*', pretrained=True)}")
    pretrained_cfg = timm.models.get_pretrained_cfg(name).to_dict()
    return fetch_pretrained(pretrained_cfg, get_video_cfg(name), cache_dir=cache_dir)


def prepare_model(model: nn.Module, pretrained: bool, cache_dir: str | os.PathLike | None = None) -> None:
    """The builders' callback: an ``hf-hub:`` model's own ``video_cfg`` first, then the weights if asked for."""
    model.video_cfg = hub_video_cfg(model, cache_dir) or model.video_cfg
    if pretrained:
        model.load_report = load_pretrained(model, cache_dir)

"""Which source serves a registry entry's weights, and loading them into a built model.

Sources, in the order ``fetch_pretrained`` tries them for a model's ``pretrained_cfg``: ``file`` (a packaged
file, pinned; a ``local-dir:`` folder's weight file, checked against the folder's own pin; or the user's own
path), ``hf_hub_id`` (``hub.py``), ``url`` (``url.py``). ``prepare_model`` is
the loader the model builders call back (installed in the registry by ``tokshift_zoo.weights``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn as nn

from ..errors import ConfigError, DownloadError
from ..models.registry import PACKAGE_SCHEME, VideoCfg, check_model_name, get_entry, get_video_cfg, list_models
from .authors import fetch_authors_release
from .hub import fetch_hub_file, hub_video_cfg, read_hub_config, saved_video_cfg
from .local import LoadReport, fetch_dir_file, load_local, read_dir_config
from .package import fetch_package_file
from .pins import Fetched
from .url import fetch_url

__all__ = ["download", "fetch_pretrained", "load_pretrained", "prepare_model"]

_logger = logging.getLogger(__name__)


def route_error(name: str) -> DownloadError:
    return DownloadError(
        f"no downloadable weights for {name}: its registry entry names no file, hub repo, URL or authors' release. "
        "Load a local file with create_model(NAME, checkpoint_path=FILE), or convert one with "
        "`tokshift-zoo convert FILE OUT.safetensors` (optionally `--push ORG/REPO`, then load hf-hub:ORG/REPO)."
    )


def fetch_pretrained(
    pretrained_cfg: dict[str, Any],
    video_cfg: VideoCfg | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> Fetched:
    """Get the weight file a ``pretrained_cfg`` names onto local disk, verified.

    Sources in order: ``file`` (``package://`` files are checked against ``video_cfg.sha256``; the folder of a
    ``local-dir:`` name, timm's ``source: local-dir``, gives its ``video_cfg.filename``, checked against its
    ``video_cfg.sha256`` when it has one; other paths are the user's own and load unchecked), ``hf_hub_id``
    (``hf_hub_filename`` or ``video_cfg.filename``), ``url``, then the authors' release of the registry entry (a
    mirror or their Google Drive, see ``authors.py``), checked against the architecture that ``model_kwargs``
    (shape overrides) describe.

    Raises:
        DownloadError: no source can serve the weights; the message gives the route.
        ChecksumError, NotCachedError, DownloadError: see ``fetch_hub_file`` and ``fetch_url``.
    """
    name = f"{pretrained_cfg.get('architecture')}.{pretrained_cfg.get('tag')}"
    pin = video_cfg.sha256 if video_cfg else None
    filename = video_cfg.filename if video_cfg else "model.safetensors"
    file = pretrained_cfg.get("file")
    if file and str(file).startswith(PACKAGE_SCHEME):
        return fetch_package_file(str(file), pin)
    if file and pretrained_cfg.get("source") == "local-dir":  # timm's file is then the folder
        return fetch_dir_file(file, filename, pin)
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
    arch = str(pretrained_cfg.get("architecture"))
    if name in list_models(pretrained=True) and get_entry(name).drive_folder:
        return fetch_authors_release(arch, model_kwargs, cache_dir=cache_dir)
    raise route_error(name)


def _shape_overrides(model: nn.Module) -> dict[str, Any]:
    """The builder arguments by which ``model``'s weight shapes differ from its registered architecture's."""

    def shapes(m: nn.Module) -> dict[str, Any]:
        return dict(
            embed_dim=m.embed_dim,
            depth=len(m.blocks),
            num_heads=m.blocks[0].attn.num_heads,
            patch_size=m.patch_embed.patch_size[0],
        )

    with torch.device("meta"):
        registered = timm.create_model(model.pretrained_cfg["architecture"])
    reference = shapes(registered)
    return {k: v for k, v in shapes(model).items() if v != reference[k]}


def load_pretrained(model: nn.Module, cache_dir: str | os.PathLike | None = None) -> LoadReport:
    """Load the weights named by ``model.pretrained_cfg``: fetched and verified, then loaded, logged in one line.

    The sha256 pin is ``model.video_cfg.sha256`` (for ``hf-hub:`` models, the repo's own ``video_cfg``).

    Raises:
        DownloadError: no source can serve the weights; the message gives the route to load them.
        ChecksumError, NotCachedError, DownloadError: the weights could not be had intact.
    """
    cfg = model.pretrained_cfg
    needs_shapes = not any(cfg.get(k) for k in ("file", "hf_hub_id", "url"))  # only the authors' release does
    fetched = fetch_pretrained(
        cfg,
        getattr(model, "video_cfg", None),
        cache_dir=cache_dir,
        model_kwargs=_shape_overrides(model) if needs_shapes else None,
    )
    report = load_local(model, fetched.path)
    report.source = str(fetched)
    _logger.info("%s.%s: %s", cfg.get("architecture"), cfg.get("tag"), report)
    return report


def download(name: str, cache_dir: str | os.PathLike | None = None) -> Fetched:
    """Fetch and verify the weights of ``NAME[.TAG]`` or ``hf-hub:ORG/REPO[@REV]`` into the cache (for a
    ``local-dir:PATH``, find and verify the folder's weight file).

    Returns:
        The verified local file and its provenance (``Fetched.path`` is what ``tokshift-zoo download`` prints).

    Raises:
        ConfigError: not a zoo model or tag.
        DownloadError: no source can serve the weights (the message gives the route).
        ChecksumError, NotCachedError, DownloadError: the weights could not be had intact.
    """
    if name.startswith("hf-hub:"):
        hub_id = name.removeprefix("hf-hub:")
        config = read_hub_config(hub_id, cache_dir)
        pretrained_cfg = config.get("pretrained_cfg", config)
        video = config.get("video_cfg") if isinstance(config.get("video_cfg"), dict) else {}
        filename = pretrained_cfg.get("hf_hub_filename") or video.get("filename") or "model.safetensors"
        return fetch_hub_file(hub_id, filename, sha256=video.get("sha256"), cache_dir=cache_dir)
    if name.startswith("local-dir:"):
        folder = name.removeprefix("local-dir:")
        video = read_dir_config(folder).get("video_cfg")
        video = video if isinstance(video, dict) else {}
        return fetch_dir_file(folder, video.get("filename") or "model.safetensors", video.get("sha256"))
    check_model_name(name)  # an unknown name or tag: the closest ones
    pretrained_cfg = timm.models.get_pretrained_cfg(name).to_dict()
    return fetch_pretrained(pretrained_cfg, get_video_cfg(name), cache_dir=cache_dir)


def source_video_cfg(model: nn.Module, cache_dir: str | os.PathLike | None = None) -> VideoCfg | None:
    """The ``VideoCfg`` an ``hf-hub:`` repo's or a ``local-dir:`` folder's ``config.json`` gives; None for a
    model built from a registry name."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if cfg.get("source") == "local-dir" and cfg.get("file"):
        return saved_video_cfg(read_dir_config(cfg["file"]), get_video_cfg(model))
    return hub_video_cfg(model, cache_dir)


def prepare_model(model: nn.Module, pretrained: bool, cache_dir: str | os.PathLike | None = None) -> None:
    """The builders' callback: an ``hf-hub:`` or ``local-dir:`` model's own ``video_cfg`` first, then the weights
    if asked for."""
    model.video_cfg = source_video_cfg(model, cache_dir) or model.video_cfg
    if pretrained:
        model.load_report = load_pretrained(model, cache_dir)

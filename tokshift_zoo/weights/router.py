"""Which source serves a registry entry's weights, and loading them into a built model.

Sources, in the order ``fetch_pretrained`` tries them for a weights record: ``file`` (a packaged file, pinned; a
``local-dir:`` folder's weight file, checked against the folder's own pin; or the user's own path),
``hf_hub_id`` (``hub.py``), ``url`` (``url.py``), the authors' release (``authors.py``). ``prepare_model`` is
the loader the model builders call back (installed in the registry by ``tokshift_zoo.weights``); it leaves the
sha256 it verified on ``model.weights``.
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
from ..models.registry import PACKAGE_SCHEME, Weights, check_model_name, get_weights, weights_of
from .authors import fetch_authors_release
from .hub import fetch_hub_file, hub_weights, read_hub_config, saved_weights
from .local import LoadReport, fetch_dir_file, load_local, read_dir_config
from .package import fetch_package_file
from .pins import Fetched
from .url import fetch_url

__all__ = ["download", "fetch_pretrained", "load_pretrained", "prepare_model"]

_logger = logging.getLogger(__name__)


def route_error(name: str) -> DownloadError:
    return DownloadError(
        f"no downloadable weights for {name}: its weights record names no file, hub repo, URL or authors' release. "
        "Load a local file with create_model(NAME, checkpoint_path=FILE), or convert one with "
        "`tokshift-zoo convert FILE OUT.safetensors` (optionally `--push ORG/REPO`, then load hf-hub:ORG/REPO)."
    )


def fetch_pretrained(
    record: Weights,
    *,
    cache_dir: str | os.PathLike | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> Fetched:
    """Get the weight file a weights record names onto local disk, verified against its sha256 pin.

    Sources in order: ``file`` (``package://`` files are checked against the pin; a folder, timm's ``file`` of a
    ``local-dir:`` name, gives the record's ``filename`` in it, checked against the pin when there is one; other
    paths are the user's own and load unchecked), ``hf_hub_id`` (the record's ``filename``), ``url``, then the
    authors' release (a mirror or their Google Drive, see ``authors.py``), checked against the architecture that
    ``model_kwargs`` (shape overrides) describe.

    Raises:
        DownloadError: no source can serve the weights; the message gives the route.
        ChecksumError, NotCachedError, DownloadError: see ``fetch_hub_file`` and ``fetch_url``.
    """
    if record.file and str(record.file).startswith(PACKAGE_SCHEME):
        return fetch_package_file(str(record.file), record.sha256)
    if record.file and Path(record.file).is_dir():  # a local-dir: name: timm's file is the folder
        return fetch_dir_file(record.file, record.filename, record.sha256)
    if record.file:
        return Fetched(Path(record.file), str(record.file))
    if record.hf_hub_id:
        return fetch_hub_file(record.hf_hub_id, record.filename, sha256=record.sha256, cache_dir=cache_dir)
    if record.url:
        if not record.sha256:
            raise ConfigError(
                f"{record.key}: refusing to download {record.url} with no sha256 pin in its weights record. "
                "Download it yourself and load it with checkpoint_path=FILE."
            )
        return fetch_url(record.url, sha256=record.sha256, cache_dir=cache_dir)
    if record.drive_folder:
        return fetch_authors_release(record.name, model_kwargs, cache_dir=cache_dir)
    raise route_error(record.key)


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
    """Load the weights ``model.weights`` names: fetched and verified, then loaded, logged in one line.

    The sha256 pin is the record's (for ``hf-hub:`` models, the repo's own record); ``model.weights`` then holds
    the sha256 that was verified (None for a file of the user's, which nothing pins).

    Raises:
        DownloadError: no source can serve the weights; the message gives the route to load them.
        ChecksumError, NotCachedError, DownloadError: the weights could not be had intact.
    """
    record = model.weights
    needs_shapes = not (record.file or record.hf_hub_id or record.url)  # only the authors' release does
    fetched = fetch_pretrained(
        record, cache_dir=cache_dir, model_kwargs=_shape_overrides(model) if needs_shapes else None
    )
    # a user's own file (timm's pretrained_cfg_overlay=dict(file=...)) gives its head, unless num_classes was asked
    cfg = model.pretrained_cfg
    own_file = bool(cfg.get("file")) and not str(cfg["file"]).startswith(PACKAGE_SCHEME)
    classes = model.num_classes
    report = load_local(model, fetched.path, fit_head=own_file and model.num_classes == cfg.get("num_classes"))
    report.source = str(fetched)
    model.weights = record.replace(sha256=fetched.sha256)
    if model.num_classes != classes:  # the file's head replaced the record's
        model.weights = model.weights.fit(model)
    _logger.info("%s: %s", record.key, report)
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
        found = config.get("weights", config.get("video_cfg"))
        found = found if isinstance(found, dict) else {}
        filename = pretrained_cfg.get("hf_hub_filename") or found.get("filename") or "model.safetensors"
        return fetch_hub_file(hub_id, filename, sha256=found.get("sha256"), cache_dir=cache_dir)
    if name.startswith("local-dir:"):
        folder = name.removeprefix("local-dir:")
        config = read_dir_config(folder)
        found = config.get("weights", config.get("video_cfg"))
        found = found if isinstance(found, dict) else {}
        return fetch_dir_file(folder, found.get("filename") or "model.safetensors", found.get("sha256"))
    check_model_name(name)  # an unknown name or tag: the closest ones
    return fetch_pretrained(get_weights(name), cache_dir=cache_dir)


def source_weights(model: nn.Module, cache_dir: str | os.PathLike | None = None) -> Weights | None:
    """The record an ``hf-hub:`` repo's or a ``local-dir:`` folder's ``config.json`` gives; None for a model built
    from a registry name."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if cfg.get("source") == "local-dir" and cfg.get("file"):
        return saved_weights(read_dir_config(cfg["file"]), weights_of(model))
    return hub_weights(model, cache_dir)


def prepare_model(model: nn.Module, pretrained: bool, cache_dir: str | os.PathLike | None = None) -> None:
    """The builders' callback: an ``hf-hub:`` or ``local-dir:`` model's own record first, then the weights if
    asked for."""
    model.weights = source_weights(model, cache_dir) or model.weights
    if pretrained:
        model.load_report = load_pretrained(model, cache_dir)

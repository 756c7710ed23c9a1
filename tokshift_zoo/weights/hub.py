"""Weights from a Hugging Face hub, through huggingface_hub (its cache, locks, revisions, ``HF_ENDPOINT``,
``HF_HUB_OFFLINE``), with what it lacks: every file checked against the registry's sha256 pin and the hub's own id
of the file (the ``X-Linked-Etag`` LFS sha256 the cached blob is named after, or the git blob sha1 of a small
file kept in git). A mismatching file is removed from the cache.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch.nn as nn
from huggingface_hub import constants as hf_constants
from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from ..errors import ChecksumError, DownloadError, NotCachedError
from ..models.registry import VideoCfg, get_video_cfg
from .pins import GIT_SHA1_HEX, SHA256_HEX, Fetched, git_blob_sha1, require_safetensors, sha256_file

__all__ = ["fetch_hub_file", "hub_video_cfg", "read_hub_config", "saved_video_cfg", "split_revision"]


def split_revision(hub_id: str) -> tuple[str, str | None]:
    """``ORG/REPO@REV`` (timm's form) -> (``ORG/REPO``, ``REV``)."""
    repo_id, _, revision = hub_id.partition("@")
    return repo_id, revision or None


def evict_hub_file(pointer: Path) -> Path:
    """Remove a cached hub file: the snapshot entry and the blob it points to. Returns the blob's path."""
    blob = pointer.resolve()
    for path in {pointer, blob}:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    return blob


def hub_reference(pointer: Path, url: str) -> tuple[str | None, str]:
    """What the hub says the cached file is: (hex id, kind), from the blob's name or, failing that, a HEAD call.

    huggingface_hub names each cached blob after the file's ETag: for an LFS file the ``X-Linked-Etag``, its
    sha256; for a file kept in git, its git blob sha1.
    """
    blob = pointer.resolve()
    etag = blob.name if blob.parent.name == "blobs" else None
    if etag is None and not hf_constants.is_offline_mode():  # a cache without symlinks: ask the hub
        etag = get_hf_file_metadata(url).etag
    if etag and SHA256_HEX.fullmatch(etag):
        return etag, "hub LFS sha256"
    if etag and GIT_SHA1_HEX.fullmatch(etag):
        return etag, "hub git blob sha1"
    return None, ""


def fetch_hub_file(
    repo_id: str,
    filename: str = "model.safetensors",
    *,
    revision: str | None = None,
    sha256: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Fetched:
    """Download (or find in the cache) one hub file and verify its sha256.

    The file is checked against ``sha256`` (a registry pin) when given and against the hub's own id of the file
    (LFS sha256, or git blob sha1 for small files kept in git); both must match. With ``HF_HUB_OFFLINE=1`` the
    cache is used with no network call.

    Args:
        repo_id: ``ORG/REPO``; ``ORG/REPO@REV`` also works when ``revision`` is None.
        filename: a ``.safetensors`` file in the repo.
        revision: branch, tag or commit; default ``main``.
        sha256: expected hex sha256, or None to rely on the hub's own hash.
        cache_dir: the hub cache; default ``HF_HUB_CACHE``.

    Raises:
        ChecksumError: the bytes do not match; the file was removed from the cache.
        NotCachedError: offline and not cached.
        DownloadError: not found on the hub, or the transfer failed; nothing was kept.
    """
    if revision is None:
        repo_id, revision = split_revision(repo_id)
    source = f"hf-hub:{repo_id}/{filename}"
    require_safetensors(filename, source)
    pointer = Path(hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir))
    commit = pointer.parents[filename.count("/")].name  # .../snapshots/COMMIT/FILENAME

    actual = sha256_file(pointer)
    checks = [(sha256.lower(), actual, "registry pin")] if sha256 else []
    hub_id, hub_kind = hub_reference(pointer, hf_hub_url(repo_id, filename, revision=commit))
    if hub_kind == "hub LFS sha256":
        checks.append((hub_id, actual, hub_kind))
    elif hub_kind == "hub git blob sha1":
        checks.append((hub_id, git_blob_sha1(pointer), hub_kind))
    if not checks:
        raise ChecksumError(f"{pointer}: cannot verify {source}@{commit}: no sha256 pin and no hash from the hub")
    for expected, got, kind in checks:
        if got != expected:
            blob = evict_hub_file(pointer)
            raise ChecksumError(
                f"{blob}: {source}@{commit} does not match the {kind}: expected {expected}, got {got}. "
                "The file was removed from the cache; a later call downloads it again."
            )
    verified_by = ", ".join(kind for _, _, kind in checks)
    return Fetched(pointer, source, revision=commit, sha256=actual, verified_by=verified_by)


def hub_download(repo_id: str, filename: str, *, revision: str | None, cache_dir: Any) -> str:
    """``hf_hub_download`` with errors that say what was asked for and what to do."""
    from .. import __version__

    what = f"{repo_id}/{filename}@{revision or 'main'}"
    _fail_fast_if_unreachable(repo_id, filename, revision, cache_dir, what)
    try:
        return hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=cache_dir,
            library_name="tokshift-zoo",
            library_version=__version__,
        )
    except LocalEntryNotFoundError as err:
        cache = cache_dir or hf_constants.HF_HUB_CACHE
        if hf_constants.is_offline_mode():
            raise NotCachedError(
                f"HF_HUB_OFFLINE is set and {what} is not in the cache {cache}. Fetch it once while online "
                "(`tokshift-zoo download ...`), or unset HF_HUB_OFFLINE."
            ) from err
        raise DownloadError(
            f"could not reach {hf_constants.ENDPOINT} for {what}, and it is not in the cache {cache}: {err}"
        ) from err
    except RepositoryNotFoundError as err:
        raise DownloadError(f"{what}: no such repository on {hf_constants.ENDPOINT} (or it is private)") from err
    except RevisionNotFoundError as err:
        raise DownloadError(f"{what}: no such revision in {repo_id}") from err
    except EntryNotFoundError as err:
        raise DownloadError(f"{what}: no such file in {repo_id}") from err
    except Exception as err:  # connection lost, short body (huggingface_hub's consistency check), 5xx
        raise DownloadError(
            f"download of {what} from {hf_constants.ENDPOINT} failed: {str(err).rstrip('.')}. "
            "Nothing was kept in the cache."
        ) from err


def _fail_fast_if_unreachable(repo_id: str, filename: str, revision: str | None, cache_dir: Any, what: str) -> None:
    """One HEAD call, no retries, before downloading a file the cache lacks.

    ``hf_hub_download`` retries a failed connection with back-off for about half a minute when the file is not
    cached; with no network, one failed connection is enough to say so.
    """
    if hf_constants.is_offline_mode() or isinstance(
        try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision), str
    ):
        return
    try:
        get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision), retry_on_errors=False)
    except HfHubHTTPError:  # the hub answered: hf_hub_download reports what it said
        return
    except Exception as err:  # no connection, DNS failure, timeout
        cache = cache_dir or hf_constants.HF_HUB_CACHE
        raise DownloadError(
            f"could not reach {hf_constants.ENDPOINT} for {what} ({type(err).__name__}: {err}), and it is not in "
            f"the cache {cache}. With no network: fetch it once on a machine that has one (`tokshift-zoo download "
            "NAME.TAG`) and copy the cache here, then set HF_HUB_OFFLINE=1 to use the cache only"
        ) from err


def read_hub_config(hub_id: str, cache_dir: Any = None) -> dict[str, Any]:
    """The ``config.json`` of ``ORG/REPO[@REV]`` (downloaded, or from the cache)."""
    repo_id, revision = split_revision(hub_id)
    with open(hub_download(repo_id, "config.json", revision=revision, cache_dir=cache_dir), encoding="utf-8") as f:
        return json.load(f)


def hub_video_cfg(model: nn.Module, cache_dir: str | os.PathLike | None = None) -> VideoCfg | None:
    """The ``VideoCfg`` of a model built from an ``hf-hub:`` name; None for any other model.

    See ``saved_video_cfg`` for what the repo's ``config.json`` gives.
    """
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if cfg.get("source") != "hf-hub" or not cfg.get("hf_hub_id"):
        return None
    return saved_video_cfg(read_hub_config(cfg["hf_hub_id"], cache_dir), get_video_cfg(model))


def saved_video_cfg(config: dict[str, Any], base: VideoCfg) -> VideoCfg:
    """The ``VideoCfg`` a repo's (or a ``local-dir:`` folder's) ``config.json`` gives.

    The config may carry one as a top-level ``video_cfg`` (``tokshift-zoo convert --push`` and ``publish-run``
    write it, with the sha256 of the repo's weights); timm ignores that key. Without it, ``base`` (the registry
    entry of the same ``architecture.tag``) is used with its sha256 pin dropped, as that pin belongs to another
    source, and timm's file name, ``model.safetensors``.
    """
    found = config.get("video_cfg")
    if not isinstance(found, dict):
        return dataclasses.replace(base, sha256=None, filename="model.safetensors")
    known = {f.name for f in dataclasses.fields(VideoCfg)}
    return VideoCfg(**{k: v for k, v in found.items() if k in known})

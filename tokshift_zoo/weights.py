"""Where weights come from and how they get into a model.

Sources, in the order ``load_pretrained`` tries them for a model's ``pretrained_cfg``:

- ``file``: a file inside the package (``package://tokshift_zoo/data/NAME.safetensors``, sha256-pinned), or a
  local path the user names (loaded as is: safetensors, an authors'-format ``.pth`` or a Google ViT ``.npz``).
- ``hf_hub_id`` (``ORG/REPO`` or ``ORG/REPO@REVISION``): downloaded through huggingface_hub, which brings its
  cache, file locks, revisions, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE``.
- ``url``: a plain HTTPS URL, fetched with requests into ``<cache root>/tokshift-zoo/urls/<sha256>/`` beside the
  hub cache: a ``.incomplete`` file under a file lock, resumed with a Range request, renamed when verified.

What this module adds to huggingface_hub is content checks: every network file is hashed after download and
compared with the registry's sha256 pin (``VideoCfg.sha256``) and, for hub files, with the hub's own LFS sha256
(the ``X-Linked-Etag`` that huggingface_hub names the cached blob after - it stores a tampered file without
complaint). On a mismatch the file is removed from the cache and ``ChecksumError`` names both hashes. Only
safetensors are loaded from the network; pickled formats load only from local paths, with ``weights_only=True``.

Local files of three kinds load into any zoo model: the zoo's own safetensors, the authors' release format
(``torch.save`` of ``{'epoch', 'state_dict', ...}``, read with ``weights_only=True``) and Google's ImageNet-21k
ViT ``.npz`` (through timm's npz loader). Every load reports which keys were loaded, which were re-initialised
and which were unused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
import timm
import torch
import torch.nn as nn
from filelock import FileLock
from huggingface_hub import constants as hf_constants
from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors.torch import load_file
from tqdm.auto import tqdm

from .models.registry import VideoCfg, get_video_cfg, list_models
from .models.tokshift import checkpoint_filter_fn

__all__ = [
    "ChecksumError",
    "DownloadError",
    "Fetched",
    "LoadReport",
    "NotCachedError",
    "download",
    "fetch_hub_file",
    "fetch_pretrained",
    "fetch_url",
    "hub_video_cfg",
    "load_pretrained",
    "load_state_dict_file",
    "load_weights_file",
    "package_file",
    "sha256_file",
    "url_cache_dir",
]

_logger = logging.getLogger(__name__)

_TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar")
_PACKAGE_SCHEME = "package://"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1 = re.compile(r"[0-9a-f]{40}")
_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A weight file's sha256 is not the one expected; the file has been removed from the cache."""


class DownloadError(OSError):
    """A download failed (not found, server error, connection lost, short body); no file was trusted."""


class NotCachedError(FileNotFoundError):
    """Offline (``HF_HUB_OFFLINE=1``) and the file is not in the cache."""


@dataclass
class LoadReport:
    """What a weight load did: the file, and the model keys loaded, re-initialised, and file keys unused."""

    source: str
    loaded: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"loaded {len(self.loaded)} tensors from {self.source}"
        if self.reinitialised:
            text += f"; re-initialised: {', '.join(self.reinitialised)}"
        if self.unused:
            text += f"; unused: {', '.join(self.unused)}"
        return text


@dataclass(frozen=True)
class Fetched:
    """A weight file on local disk and how it got there.

    Attributes:
        path: the local file (in the hub cache, the URL cache, the package, or where the user put it).
        source: where it came from: ``hf-hub:ORG/REPO/FILE``, the URL, ``package://...`` or the local path.
        revision: the hub commit the file belongs to; None for other sources.
        sha256: hex sha256 of the file's bytes (None for an unverified local file).
        verified_by: what the sha256 was checked against (e.g. "registry pin, hub LFS sha256"); empty if nothing.
    """

    path: Path
    source: str
    revision: str | None = None
    sha256: str | None = None
    verified_by: str = ""

    def __str__(self) -> str:
        where = f"{self.source}@{self.revision}" if self.revision else self.source
        if self.verified_by:
            return f"{where} (sha256 {self.sha256} verified against {self.verified_by})"
        return f"{where} (local file, no sha256 check)"


# --- local files ------------------------------------------------------------------------------------------


def load_state_dict_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a safetensors or ``torch.save`` file into a dict, never unpickling arbitrary objects.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the suffix is not one of .safetensors, .pth/.pt/.bin/.ckpt/.tar, or the file holds
            something other than tensors and plain containers.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weight file at {path}")
    if path.suffix == ".safetensors":
        return load_file(path)
    if path.suffix in _TORCH_SUFFIXES:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # UnpicklingError, RuntimeError: torch names the offending global
            raise ValueError(f"{path}: not a plain tensor checkpoint (read with weights_only=True): {err}") from err
    raise ValueError(f"{path}: expected a .safetensors, .npz or torch checkpoint ({', '.join(_TORCH_SUFFIXES)}) file")


def _load_mapped(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> LoadReport:
    """Load a state dict already in the model's names; a head of another shape is dropped and re-initialised."""
    own = model.state_dict()
    mismatched = [k for k, v in state_dict.items() if k in own and own[k].shape != v.shape]
    for key in mismatched:
        if not key.startswith("head."):
            raise ValueError(
                f"{source}: {key} has shape {tuple(state_dict[key].shape)}, the model expects {tuple(own[key].shape)}"
            )
        del state_dict[key]
    result = model.load_state_dict(state_dict, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("head.")]
    if missing:
        raise KeyError(f"{source}: these model weights are missing from the file: {missing}")
    return LoadReport(
        source=source,
        loaded=[k for k in state_dict if k not in result.unexpected_keys],
        reinitialised=list(result.missing_keys),
        unused=list(result.unexpected_keys),
    )


def _load_local(model: nn.Module, path: Path) -> LoadReport:
    if path.suffix == ".npz":
        if not path.is_file():
            raise FileNotFoundError(f"no weight file at {path}")
        head = {k: v.clone() for k, v in model.head.state_dict().items()}
        model.load_pretrained(str(path))  # timm's npz loader: resamples pos_embed, loads head only if it fits
        head_loaded = any(not torch.equal(v, model.head.state_dict()[k]) for k, v in head.items())
        own = [k for k in model.state_dict() if not k.startswith("head.")]
        head_keys = [f"head.{k}" for k in head]
        report = LoadReport(str(path), loaded=own + (head_keys if head_loaded else []))
        report.reinitialised = [] if head_loaded else head_keys
        return report
    state_dict = checkpoint_filter_fn(load_state_dict_file(path), model)
    return _load_mapped(model, state_dict, str(path))


def load_weights_file(model: nn.Module, path: str | os.PathLike) -> LoadReport:
    """Load a local weight file of any supported kind into ``model`` and log what happened.

    Args:
        model: a zoo ``VideoVisionTransformer``.
        path: ``.safetensors`` (zoo format or timm's), an authors'-format / timm torch checkpoint, or a Google
            ViT ``.npz``. A head whose class count differs from the model's is left re-initialised, as timm does.
    """
    report = _load_local(model, Path(path))
    _logger.info("%s", report)
    return report


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _git_blob_sha1(path: Path) -> str:
    """The git object id of a file (what the hub's ETag is for files kept in git rather than LFS)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())  # noqa: S324 - git's id, not a security hash
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _require_safetensors(filename: str, source: str) -> None:
    if not filename.endswith(".safetensors"):
        raise ValueError(
            f"{source}: refusing to load {filename!r} from the network: only .safetensors files are loaded from a "
            "hub or URL. Download it yourself and pass the local path (checkpoint_path=...), which reads torch "
            "files with weights_only=True."
        )


# --- package files ----------------------------------------------------------------------------------------


def package_file(filename: str) -> str:
    """The ``pretrained_cfg['file']`` value of a weight file shipped in ``tokshift_zoo/data/``.

    A registry entry declares a bundled file as ``file=package_file("NAME.safetensors")`` and pins its sha256
    in its ``VideoCfg``; ``load_pretrained`` checks the pin before loading.
    """
    return f"{_PACKAGE_SCHEME}tokshift_zoo/data/{filename}"


def _fetch_package_file(ref: str, sha256: str | None) -> Fetched:
    package, _, inner = ref.removeprefix(_PACKAGE_SCHEME).partition("/")
    traversable = resources.files(package).joinpath(inner)
    if not traversable.is_file():
        raise FileNotFoundError(f"{ref}: no such file in the installed package {package}")
    path = Path(str(traversable))  # the package is installed as files (setuptools, editable or not)
    actual = sha256_file(path)
    if not sha256:
        raise ChecksumError(
            f"{ref}: a packaged weight file must have a sha256 pin in its VideoCfg; this file's is {actual}"
        )
    if actual != sha256.lower():
        raise ChecksumError(
            f"{path}: sha256 mismatch for the packaged weights {ref}: expected {sha256.lower()} (registry pin), "
            f"got {actual}. Reinstall tokshift-zoo."
        )
    return Fetched(path, ref, sha256=actual, verified_by="registry pin")


# --- Hugging Face hub -------------------------------------------------------------------------------------


def _split_revision(hub_id: str) -> tuple[str, str | None]:
    """``ORG/REPO@REV`` (timm's form) -> (``ORG/REPO``, ``REV``)."""
    repo_id, _, revision = hub_id.partition("@")
    return repo_id, revision or None


def _evict_hub_file(pointer: Path) -> Path:
    """Remove a cached hub file: the snapshot entry and the blob it points to. Returns the blob's path."""
    blob = pointer.resolve()
    for path in {pointer, blob}:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    return blob


def _hub_reference(pointer: Path, url: str) -> tuple[str | None, str]:
    """What the hub says the cached file is: (hex id, kind), from the blob's name or, failing that, a HEAD call.

    huggingface_hub names each cached blob after the file's ETag: for an LFS file the ``X-Linked-Etag``, its
    sha256; for a file kept in git, its git blob sha1.
    """
    blob = pointer.resolve()
    etag = blob.name if blob.parent.name == "blobs" else None
    if etag is None and not hf_constants.is_offline_mode():  # a cache without symlinks: ask the hub
        etag = get_hf_file_metadata(url).etag
    if etag and _SHA256.fullmatch(etag):
        return etag, "hub LFS sha256"
    if etag and _GIT_SHA1.fullmatch(etag):
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
        repo_id, revision = _split_revision(repo_id)
    source = f"hf-hub:{repo_id}/{filename}"
    _require_safetensors(filename, source)
    pointer = Path(_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir))
    commit = pointer.parents[filename.count("/")].name  # .../snapshots/COMMIT/FILENAME

    actual = sha256_file(pointer)
    checks = [(sha256.lower(), actual, "registry pin")] if sha256 else []
    hub_id, hub_kind = _hub_reference(pointer, hf_hub_url(repo_id, filename, revision=commit))
    if hub_kind == "hub LFS sha256":
        checks.append((hub_id, actual, hub_kind))
    elif hub_kind == "hub git blob sha1":
        checks.append((hub_id, _git_blob_sha1(pointer), hub_kind))
    if not checks:
        raise ChecksumError(f"{pointer}: cannot verify {source}@{commit}: no sha256 pin and no hash from the hub")
    for expected, got, kind in checks:
        if got != expected:
            blob = _evict_hub_file(pointer)
            raise ChecksumError(
                f"{blob}: {source}@{commit} does not match the {kind}: expected {expected}, got {got}. "
                "The file was removed from the cache; a later call downloads it again."
            )
    verified_by = ", ".join(kind for _, _, kind in checks)
    return Fetched(pointer, source, revision=commit, sha256=actual, verified_by=verified_by)


def _hub_download(repo_id: str, filename: str, *, revision: str | None, cache_dir: Any) -> str:
    """``hf_hub_download`` with errors that say what was asked for and what to do."""
    from . import __version__

    what = f"{repo_id}/{filename}@{revision or 'main'}"
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


def _hub_config(hub_id: str, cache_dir: Any = None) -> dict[str, Any]:
    repo_id, revision = _split_revision(hub_id)
    with open(_hub_download(repo_id, "config.json", revision=revision, cache_dir=cache_dir), encoding="utf-8") as f:
        return json.load(f)


def hub_video_cfg(model: nn.Module, cache_dir: str | os.PathLike | None = None) -> VideoCfg | None:
    """The ``VideoCfg`` of a model built from an ``hf-hub:`` name; None for any other model.

    The repo's ``config.json`` may carry one as a top-level ``video_cfg`` (``tokshift-zoo convert --push`` writes
    it, with the sha256 of the repo's weights); timm ignores that key. Without it, the registry entry of the same
    ``architecture.tag`` is used with its sha256 pin dropped, as that pin belongs to another source.
    """
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if cfg.get("source") != "hf-hub" or not cfg.get("hf_hub_id"):
        return None
    base = get_video_cfg(model)
    found = _hub_config(cfg["hf_hub_id"], cache_dir).get("video_cfg")
    if not isinstance(found, dict):
        return dataclasses.replace(base, sha256=None)
    known = {f.name for f in dataclasses.fields(VideoCfg)}
    return VideoCfg(**{k: v for k, v in found.items() if k in known})


# --- plain URLs -------------------------------------------------------------------------------------------


def url_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where URL downloads are kept: ``$TOKSHIFT_ZOO_CACHE``, else ``tokshift-zoo/urls`` beside the hub cache."""
    if os.environ.get("TOKSHIFT_ZOO_CACHE"):
        return Path(os.environ["TOKSHIFT_ZOO_CACHE"]).expanduser() / "urls"
    hub_cache = Path(cache_dir or hf_constants.HF_HUB_CACHE).expanduser()
    return hub_cache.parent / "tokshift-zoo" / "urls"


def fetch_url(
    url: str,
    *,
    sha256: str,
    filename: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Fetched:
    """Download a URL into the URL cache (resuming a partial download) and verify it against ``sha256``.

    The file lives at ``url_cache_dir()/SHA256/FILENAME``. The transfer writes ``FILENAME.incomplete`` under a
    file lock, so concurrent callers download once; an interrupted transfer keeps the partial file and the
    next call resumes it with an HTTP Range request. The verified file is renamed into place.

    Raises:
        ChecksumError: the downloaded bytes do not match ``sha256``; the file was removed.
        NotCachedError: offline (``HF_HUB_OFFLINE=1``) and not cached.
        DownloadError: HTTP error or the connection was lost (the partial file is kept for resuming).
    """
    filename = filename or os.path.basename(urlparse(url).path)
    _require_safetensors(filename, url)
    if not sha256 or not _SHA256.fullmatch(sha256.lower()):
        raise ValueError(f"{url}: a URL download needs a sha256 pin (64 hex digits), got {sha256!r}")
    sha256 = sha256.lower()
    final = url_cache_dir(cache_dir) / sha256 / filename
    if final.is_file():
        return _verify_url_file(final, url, sha256)
    if hf_constants.is_offline_mode():
        raise NotCachedError(f"HF_HUB_OFFLINE is set and {url} is not in the cache ({final})")
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final) + ".lock"):
        if final.is_file():  # another process finished it while we waited
            return _verify_url_file(final, url, sha256)
        partial = final.with_name(final.name + ".incomplete")
        _http_download(url, partial)
        actual = sha256_file(partial)
        if actual != sha256:
            partial.unlink()
            raise ChecksumError(
                f"{final}: sha256 mismatch for {url}: expected {sha256} (registry pin), got {actual}. "
                "The download was removed."
            )
        os.replace(partial, final)
    return Fetched(final, url, sha256=sha256, verified_by="registry pin")


def _verify_url_file(path: Path, url: str, sha256: str) -> Fetched:
    actual = sha256_file(path)
    if actual != sha256:
        path.unlink(missing_ok=True)
        raise ChecksumError(
            f"{path}: sha256 mismatch for the cached {url}: expected {sha256} (registry pin), got {actual}. "
            "The file was removed; a later call downloads it again."
        )
    return Fetched(path, url, sha256=sha256, verified_by="registry pin")


def _http_download(url: str, partial: Path, _restarted: bool = False) -> None:
    """GET ``url`` into ``partial``, appending to what is there (Range request) when the server allows it."""
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        response = requests.get(url, headers=headers, stream=True, timeout=(10, 60))
    except requests.RequestException as err:
        raise DownloadError(f"could not reach {url}: {err}") from err
    with response:
        if response.status_code == 416 and have:  # nothing after `have`: complete already (the hash decides)
            return
        if response.status_code >= 400:
            raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")
        resumed = have > 0 and response.status_code == 206
        if have and not resumed:  # the server ignored the Range header: start over
            partial.unlink()
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with (
            open(partial, "ab" if resumed else "wb") as f,
            tqdm(
                total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=partial.stem, disable=None
            ) as bar,
        ):
            try:
                for chunk in response.iter_content(1 << 16):  # small reads: little is lost if the link drops
                    f.write(chunk)
                    bar.update(len(chunk))
            except requests.RequestException as err:
                f.flush()
                raise DownloadError(
                    f"download of {url} was interrupted after {f.tell()} of {total or '?'} bytes ({err}). "
                    f"The partial file {partial} is kept; the next call resumes it."
                ) from err
    size = partial.stat().st_size
    if total is not None and size != total:
        raise DownloadError(
            f"download of {url} ended after {size} of {total} bytes. The partial file {partial} is kept; "
            "the next call resumes it."
        )


# --- registry entries -------------------------------------------------------------------------------------


def _route_error(name: str) -> RuntimeError:
    return RuntimeError(
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
        RuntimeError: the entry names no source (the Kinetics-400 tags); the message gives the route.
        ChecksumError, NotCachedError, DownloadError: see ``fetch_hub_file`` and ``fetch_url``.
    """
    name = f"{pretrained_cfg.get('architecture')}.{pretrained_cfg.get('tag')}"
    pin = video_cfg.sha256 if video_cfg else None
    filename = video_cfg.filename if video_cfg else "model.safetensors"
    file = pretrained_cfg.get("file")
    if file and str(file).startswith(_PACKAGE_SCHEME):
        return _fetch_package_file(str(file), pin)
    if file:
        return Fetched(Path(file), str(file))
    if pretrained_cfg.get("hf_hub_id"):
        filename = pretrained_cfg.get("hf_hub_filename") or filename
        return fetch_hub_file(pretrained_cfg["hf_hub_id"], filename, sha256=pin, cache_dir=cache_dir)
    if isinstance(pretrained_cfg.get("url"), str) and pretrained_cfg["url"]:
        if not pin:
            raise ValueError(
                f"{name}: refusing to download {pretrained_cfg['url']} with no sha256 pin in its VideoCfg. "
                "Download it yourself and load it with checkpoint_path=FILE."
            )
        return fetch_url(pretrained_cfg["url"], sha256=pin, cache_dir=cache_dir)
    raise _route_error(name)


def load_pretrained(model: nn.Module, cache_dir: str | os.PathLike | None = None) -> LoadReport:
    """Load the weights named by ``model.pretrained_cfg``: fetched and verified, then loaded, logged in one line.

    The sha256 pin is ``model.video_cfg.sha256`` (for ``hf-hub:`` models, the repo's own ``video_cfg``).

    Raises:
        RuntimeError: the entry has no weights that can be had (the paper's Kinetics-400 checkpoints live on
            the authors' Google Drive only); the message gives the route to load them.
        ChecksumError, NotCachedError, DownloadError: the weights could not be had intact.
    """
    fetched = fetch_pretrained(model.pretrained_cfg, getattr(model, "video_cfg", None), cache_dir=cache_dir)
    report = _load_local(model, fetched.path)
    report.source = str(fetched)
    cfg = model.pretrained_cfg
    _logger.info("%s.%s: %s", cfg.get("architecture"), cfg.get("tag"), report)
    return report


def download(name: str, cache_dir: str | os.PathLike | None = None) -> Fetched:
    """Fetch and verify the weights of ``NAME[.TAG]`` or ``hf-hub:ORG/REPO[@REV]`` into the cache.

    Returns:
        The verified local file and its provenance (``Fetched.path`` is what ``tokshift-zoo download`` prints).

    Raises:
        KeyError: not a zoo model or tag.
        RuntimeError: the tag has no downloadable weights (the message gives the route).
        ChecksumError, NotCachedError, DownloadError: the weights could not be had intact.
    """
    if name.startswith("hf-hub:"):
        hub_id = name.removeprefix("hf-hub:")
        config = _hub_config(hub_id, cache_dir)
        pretrained_cfg = config.get("pretrained_cfg", config)
        video = config.get("video_cfg") if isinstance(config.get("video_cfg"), dict) else {}
        filename = pretrained_cfg.get("hf_hub_filename") or video.get("filename") or "model.safetensors"
        return fetch_hub_file(hub_id, filename, sha256=video.get("sha256"), cache_dir=cache_dir)
    arch, _, tag = name.partition(".")
    if arch not in list_models():
        raise KeyError(f"{arch!r} is not a tokshift-zoo model; known: {list_models()}")
    if tag and name not in list_models(pretrained=True):
        raise KeyError(f"no tag {tag!r} for {arch}; known: {list_models(arch + '.*', pretrained=True)}")
    pretrained_cfg = timm.models.get_pretrained_cfg(name).to_dict()
    return fetch_pretrained(pretrained_cfg, get_video_cfg(name), cache_dir=cache_dir)

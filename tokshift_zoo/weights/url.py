"""Weights from plain HTTPS URLs, with requests, into ``<cache root>/tokshift-zoo/urls/<sha256>/`` beside the hub
cache: a ``.incomplete`` file under a file lock, resumed with a Range request, renamed when verified.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

import requests
import urllib3
from huggingface_hub import constants as hf_constants
from tqdm.auto import tqdm

from ..errors import ChecksumError, ConfigError, DownloadError, NotCachedError, WriteError
from .pins import SHA256_HEX, Fetched, cache_lock, require_safetensors, sha256_file

__all__ = ["DownloadLimits", "TransferWatch", "fetch_url", "http_download", "url_cache_dir", "zoo_cache_root"]


def zoo_cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The zoo's own cache: ``$TOKSHIFT_ZOO_CACHE``, else ``tokshift-zoo`` beside the Hugging Face hub cache."""
    if os.environ.get("TOKSHIFT_ZOO_CACHE"):
        return Path(os.environ["TOKSHIFT_ZOO_CACHE"]).expanduser()
    hub_cache = Path(cache_dir or hf_constants.HF_HUB_CACHE).expanduser()
    return hub_cache.parent / "tokshift-zoo"


def url_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where URL downloads are kept: ``urls`` in the zoo's cache (``zoo_cache_root``)."""
    return zoo_cache_root(cache_dir) / "urls"


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
        DownloadError: HTTP error, the connection was lost, the deadline passed or the transfer stalled
            (``DownloadLimits``); the partial file is kept for resuming and the cache lock released.
    """
    filename = filename or os.path.basename(urlparse(url).path)
    require_safetensors(filename, url)
    if not sha256 or not SHA256_HEX.fullmatch(sha256.lower()):
        raise ConfigError(f"{url}: a URL download needs a sha256 pin (64 hex digits), got {sha256!r}")
    sha256 = sha256.lower()
    final = url_cache_dir(cache_dir) / sha256 / filename
    if final.is_file():
        return _verify_url_file(final, url, sha256)
    if hf_constants.is_offline_mode():
        raise NotCachedError(f"HF_HUB_OFFLINE is set and {url} is not in the cache ({final})")
    final.parent.mkdir(parents=True, exist_ok=True)
    with cache_lock(final):
        if final.is_file():  # another process finished it while we waited
            return _verify_url_file(final, url, sha256)
        partial = final.with_name(final.name + ".incomplete")
        http_download(url, partial)
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


@dataclass(frozen=True)
class DownloadLimits:
    """How long a transfer may take before it is abandoned (seconds, bytes per second); each is an environment
    variable, read when a download starts.

    Attributes:
        connect_s: to connect, and the longest silence (requests' connect and read timeouts; the read timeout
            is at most ``stall_s``): ``TOKSHIFT_ZOO_DOWNLOAD_TIMEOUT_S`` (60).
        deadline_s: the whole transfer: ``TOKSHIFT_ZOO_DOWNLOAD_DEADLINE_S`` (10800: 3 hours).
        stall_s: the window over which progress is measured: ``TOKSHIFT_ZOO_DOWNLOAD_STALL_S`` (60).
        min_rate: the fewest bytes per second, averaged over each ``stall_s`` window, below which the transfer
            is taken as stalled (a server trickling a byte every few seconds): ``TOKSHIFT_ZOO_DOWNLOAD_MIN_RATE``
            (1024).
    """

    connect_s: float = 60.0
    deadline_s: float = 10800.0
    stall_s: float = 60.0
    min_rate: float = 1024.0

    @classmethod
    def from_env(cls) -> DownloadLimits:
        """The limits, each from its environment variable where set (a number), else the default."""
        values = {}
        for field_name, env in _LIMIT_ENV.items():
            text = os.environ.get(env, "").strip()
            if not text:
                continue
            try:
                values[field_name] = float(text)
            except ValueError:
                raise ConfigError(f"{env}={text!r}: expected a number") from None
            if values[field_name] <= 0 and field_name != "min_rate":
                raise ConfigError(f"{env}={text!r}: expected a positive number")
        return cls(**values)


_LIMIT_ENV = {
    "connect_s": "TOKSHIFT_ZOO_DOWNLOAD_TIMEOUT_S",
    "deadline_s": "TOKSHIFT_ZOO_DOWNLOAD_DEADLINE_S",
    "stall_s": "TOKSHIFT_ZOO_DOWNLOAD_STALL_S",
    "min_rate": "TOKSHIFT_ZOO_DOWNLOAD_MIN_RATE",
}


class TransferWatch:
    """Progress of one transfer against its ``DownloadLimits``: ``update`` counts bytes as they come and raises
    when the deadline has passed or a window brought fewer bytes than ``min_rate`` allows."""

    def __init__(self, what: str, limits: DownloadLimits, window_s: float | None = None) -> None:
        self.what, self.limits = what, limits
        self.window_s = window_s or limits.stall_s
        self.started = self.window_started = time.monotonic()
        self.received = self.window_bytes = 0
        self.error: DownloadError | None = None  # set by whoever found the transfer failed (a watchdog)

    def add(self, count: int) -> None:
        """Count ``count`` more bytes."""
        self.received += count
        self.window_bytes += count

    def update(self, count: int) -> None:
        """Count ``count`` more bytes and check the limits.

        Raises:
            DownloadError: the deadline has passed, or the transfer stalled.
        """
        self.add(count)
        if error := self.failure():
            raise error

    def failure(self, now: float | None = None) -> DownloadError | None:
        """The error to abandon the transfer with, or None while it is within its limits."""
        now = time.monotonic() if now is None else now
        limits = self.limits
        if now - self.started > limits.deadline_s:
            return DownloadError(
                f"{self.what}: abandoned after {now - self.started:.0f} s ({self.received} bytes received): longer "
                f"than the {limits.deadline_s:g} s deadline (TOKSHIFT_ZOO_DOWNLOAD_DEADLINE_S)"
            )
        elapsed = now - self.window_started
        if elapsed >= self.window_s:
            if self.window_bytes < limits.min_rate * elapsed:
                return DownloadError(
                    f"{self.what}: abandoned as stalled: {self.window_bytes} bytes in the last {elapsed:.0f} s, "
                    f"below {limits.min_rate:g} bytes/s (TOKSHIFT_ZOO_DOWNLOAD_MIN_RATE over "
                    f"TOKSHIFT_ZOO_DOWNLOAD_STALL_S={limits.stall_s:g}); {self.received} bytes received in all"
                )
            self.window_started, self.window_bytes = now, 0
        return None


def http_download(url: str, partial: Path, keep_partial: bool = True) -> None:
    """GET ``url`` into ``partial``, appending to what is there (Range request) when the server allows it.

    The transfer is abandoned, with a ``DownloadError``, past ``DownloadLimits.from_env()``'s deadline or when it
    stalls. ``partial`` is opened without following a link (``O_NOFOLLOW``).

    Args:
        keep_partial: on failure, keep ``partial`` for the next call to resume (the caller holds a lock on it);
            False: remove it (and the message says so).

    Raises:
        DownloadError: HTTP error, connection lost, short body, deadline passed or stalled.
        WriteError: the disk is full.
    """
    try:
        _http_download(url, partial, DownloadLimits.from_env(), keep_partial)
    except (DownloadError, OSError):
        if not keep_partial:
            partial.unlink(missing_ok=True)
        raise


def _http_download(url: str, partial: Path, limits: DownloadLimits, keep_partial: bool) -> None:
    kept = (
        f"The partial file {partial} is kept; the next call resumes it."
        if keep_partial
        else "The partial file was removed."
    )
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    watch = TransferWatch(f"download of {url}", limits)
    try:
        response = requests.get(
            url, headers=headers, stream=True, timeout=(limits.connect_s, min(limits.connect_s, limits.stall_s))
        )
    except requests.RequestException as err:
        raise DownloadError(f"could not reach {url}: {err}") from err
    with response:
        if response.status_code == 416 and have:  # nothing after `have`: complete already (the hash decides)
            return
        if response.status_code >= 400:
            raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")
        resumed = have > 0 and response.status_code == 206
        length = response.headers.get("Content-Length")
        total = (have if resumed else 0) + int(length) if length is not None else None
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | (os.O_APPEND if resumed else os.O_TRUNC)
        with (
            _open_partial(partial, flags) as f,
            tqdm(
                total=total,
                initial=have if resumed else 0,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=partial.stem,
                disable=None,
            ) as bar,
        ):
            try:
                # read1: whatever has arrived (at most 64 KiB), so a trickling server is seen byte by byte
                while chunk := response.raw.read1(1 << 16, decode_content=True):
                    _write(f, chunk, partial)
                    bar.update(len(chunk))
                    watch.update(len(chunk))
            except WriteError:
                raise
            except DownloadError as err:  # the watch's: deadline passed or stalled
                raise DownloadError(f"{err}. {kept}") from None
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
                f.flush()
                raise DownloadError(
                    f"download of {url} was interrupted after {f.tell()} of {total or '?'} bytes ({err}). {kept}"
                ) from err
    size = partial.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"download of {url} ended after {size} of {total} bytes. {kept}")


def _open_partial(partial: Path, flags: int) -> BinaryIO:
    try:
        fd = os.open(partial, flags, 0o644)
    except OSError as err:
        raise DownloadError(
            f"{partial}: cannot write the download there ({err.strerror}; a link is not followed)"
        ) from err
    return os.fdopen(fd, "ab" if flags & os.O_APPEND else "wb")


def _write(f: BinaryIO, chunk: bytes, partial: Path) -> None:
    try:
        f.write(chunk)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            full = WriteError(f"{partial}: the disk is full; the download stopped after {f.tell()} bytes")
            full.errno = err.errno
            raise full from err
        raise

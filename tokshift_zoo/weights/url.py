"""Weights from plain HTTPS URLs, with requests, into ``<cache root>/tokshift-zoo/urls/<sha256>/`` beside the hub
cache: a ``.incomplete`` file under a file lock, resumed with a Range request, renamed when verified.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import requests
from huggingface_hub import constants as hf_constants
from tqdm.auto import tqdm

from ..errors import ChecksumError, ConfigError, DownloadError, NotCachedError
from .pins import SHA256_HEX, Fetched, cache_lock, require_safetensors, sha256_file

__all__ = ["fetch_url", "url_cache_dir"]


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

"""What a weight file is and how it is checked: its sha256, the hub's git blob id, its provenance, a cache lock.

huggingface_hub stores whatever it was sent; the zoo checks the bytes against pins (the registry's sha256, the
hub's LFS sha256 or git blob sha1) before anything is loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightsError

__all__ = ["CHUNK", "Fetched", "cache_lock", "git_blob_sha1", "require_safetensors", "sha256_file"]

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
GIT_SHA1_HEX = re.compile(r"[0-9a-f]{40}")
CHUNK = 1 << 20


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


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """The git object id of a file (what the hub's ETag is for files kept in git rather than LFS)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())  # noqa: S324 - git's id, not a security hash
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def require_safetensors(filename: str, source: str) -> None:
    if not filename.endswith(".safetensors"):
        raise WeightsError(
            f"{source}: refusing to load {filename!r} from the network: only .safetensors files are loaded from a "
            "hub or URL. Download it yourself and pass the local path (checkpoint_path=...), which reads torch "
            "files with weights_only=True."
        )


@contextlib.contextmanager
def cache_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``PATH.lock`` across processes, and remove the lock file when done.

    The lock file is removed while the lock is still held. A process that was waiting on the removed file, or
    one that locked a file that was then replaced, sees that its file is no longer the one at the path and
    locks again, so no two processes ever hold the lock at once and no ``.lock`` file is left behind.
    """
    lock_path = os.fspath(path) + ".lock"
    try:
        import fcntl
    except ImportError:  # Windows: filelock's lock, whose file stays
        from filelock import FileLock

        with FileLock(lock_path):
            yield
        return
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o664)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                try:
                    yield
                finally:
                    os.unlink(lock_path)
                return
        finally:
            os.close(fd)  # also releases the lock

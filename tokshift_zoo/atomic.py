"""Whole files or none: every file that matters (weights, checkpoints, lists, videos) is written through here.

The temporary file is made by ``tempfile.mkstemp`` in the target folder (``O_CREAT | O_EXCL``, mode 0600, an
unpredictable name), so a link planted in a writable output folder is never followed. A killed writer leaves its
``.NAME.XXXXXXXX.incomplete.EXT`` behind; the next write into that folder removes those older than
``STALE_AFTER_S`` (a live writer's file keeps a fresh mtime). A write that fails for want of space or permission
raises ``WriteError``, one line naming the file.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .errors import WriteError

__all__ = ["STALE_AFTER_S", "atomic_write", "remove_stale_incomplete"]

STALE_AFTER_S = 3600.0  # an .incomplete file untouched this long belongs to a writer that died
# this module's temporary names, and the PID-numbered ones of earlier versions (.STEM.PID.incomplete.EXT)
_INCOMPLETE = re.compile(r"\..+\.incomplete(\.[^/]*)?")
# writers' libraries do not all raise OSError(ENOSPC) on a full disk: safetensors raises SafetensorError with the
# OS's text, torch's zip writer a RuntimeError ("iostream error", "unexpected pos") that says nothing of space, so
# a failure with less than this free on the target's disk is taken for a full disk too
_FULL_DISK_TEXT = ("No space left on device", "os error 28")
_FULL_BELOW_BYTES = 1 << 20
_cleaned: set[Path] = set()  # folders swept by this process (once each: embed writes thousands of shards)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, flush it to disk, then rename it over ``path``.

    The temporary name keeps ``path``'s extension (writers such as FFmpeg pick the format from it); the file
    exists (empty, 0600) when ``write`` is called, so ``write`` opens it for writing, it does not create it. If
    ``write`` fails, the temporary file is removed and ``path`` is left as it was. The file gets the mode a plain
    ``open`` would give it (0666 less the umask), whatever mode the writer created it with (safetensors: 0600).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        WriteError: (an OSError) the disk is full, or the folder cannot be written; nothing was left behind.
    """
    path = Path(path)
    remove_stale_incomplete(path.parent)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".incomplete{path.suffix}", dir=path.parent)
    except OSError as err:
        raise _write_error(path, err) from err
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except Exception as err:
        error = _write_error(path, err)
        if error is None:
            raise
        raise error from err
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_stale_incomplete(folder: Path, max_age_s: float = STALE_AFTER_S, force: bool = False) -> list[Path]:
    """Remove the temporary files of killed writers from ``folder``: regular files named ``.*.incomplete*``
    untouched for ``max_age_s`` seconds. Links and folders are left alone. Without ``force``, a folder is swept
    once per process.

    Returns:
        The files removed.
    """
    folder = Path(folder)
    if folder in _cleaned and not force:
        return []
    _cleaned.add(folder)
    removed, now = [], time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no folder yet: nothing stale
        return []
    for entry in entries:
        if not _INCOMPLETE.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime >= max_age_s:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except FileNotFoundError:  # another process removed it first
            continue
    return removed


def _write_error(path: Path, err: BaseException) -> WriteError | None:
    """A one-line ``WriteError`` for a write that failed for want of space or access; None for other failures."""
    if isinstance(err, WriteError):
        return err
    code = err.errno if isinstance(err, OSError) else None
    free = shutil.disk_usage(path.parent).free
    if code in (errno.ENOSPC, errno.EDQUOT) or free < _FULL_BELOW_BYTES or any(t in str(err) for t in _FULL_DISK_TEXT):
        error = WriteError(
            f"{path}: the disk is full ({free} bytes free in {path.parent}); nothing was written (the partial "
            "file was removed). Free some space or write elsewhere."
        )
        error.errno = errno.ENOSPC
        return error
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        error = WriteError(f"{path}: could not be written ({err.strerror}); nothing was written.")
        error.errno = code
        return error
    return None


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

"""Run folders (``train --output``, ``embed --output``): one writer at a time, and the leftovers of killed writers.

A run that resumes trusts what its folder holds, so two processes must never write one folder at once (two
``embed`` runs would each embed every video and the index would hold each twice). The lock is an OS file lock
(``filelock``) on ``OUTPUT/.tokshift-zoo.lock``: the kernel drops it when its process dies, even by SIGKILL, so a
killed run never leaves the folder locked. It works across processes of one machine and on filesystems whose
locks the machines share (most NFS setups); not on filesystems without locks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from safetensors import SafetensorError

from .atomic import atomic_write
from .errors import ConfigError, WriteError

__all__ = ["OutputBusyError", "OutputWriteError", "LOCK_FILE", "lock_output", "remove_incomplete", "write_output"]

LOCK_FILE = ".tokshift-zoo.lock"


class OutputBusyError(ConfigError):
    """Another process is writing into the output folder."""


class OutputWriteError(WriteError):
    """A file of a run folder could not be written (a full disk, a file size limit, no permission): a
    ``WriteError`` (so an ``OSError``) that also says how the run goes on."""


@contextmanager
def lock_output(folder: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold ``folder``'s lock for the block (the folder is created); refuse at once if another process holds it.

    Raises:
        OutputBusyError: another run (of any command) is writing into ``folder``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OutputBusyError(
            f"{folder}: another process is writing into this folder (it holds {folder / LOCK_FILE}); one {command} "
            "per output folder: wait until it ends, or write to another folder"
        ) from None
    try:
        yield folder
    finally:
        lock.release()


def remove_incomplete(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files (``.NAME.*.incomplete*``, see ``atomic_write``) that killed writers left in
    ``folder``; call it holding ``folder``'s lock. Returns the paths removed."""
    removed = []
    for stale in Path(folder).glob(".*.incomplete*"):
        if stale.is_file() or stale.is_symlink():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def write_output(path: str | os.PathLike, write: Callable[[Path], object], then: str) -> Path:
    """``atomic_write(path, write)``, its failure (torch's and safetensors' own errors for a full disk included)
    one ``OutputWriteError`` that names the file and says what to do ``then``."""
    try:
        return atomic_write(path, write)
    except (OSError, RuntimeError, SafetensorError) as err:  # torch.save: RuntimeError; safetensors: its own
        reason = " ".join(str(err).split())[:300]
        raise OutputWriteError(f"could not write {path}: {reason} (a full disk?); {then}") from err

"""Warnings said once per run: a surprise that every video of a list shares is reported once, not per video.

"Once" holds across the data-loader workers a run forks (each would otherwise say it again): the first process
to say a key claims it with a marker file, created exclusively, named after the run's first process (pid and start
time); that process removes the markers when it exits.
"""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
import time
from pathlib import Path

__all__ = ["warn_once"]

_said: set[str] = set()
_PID = os.getpid()
_RUN = f"{_PID}-{time.time_ns()}"  # forked workers inherit this value: they belong to the same run
_mine: set[str] = set()  # keys this process claimed


def _marker(key: str) -> Path:
    return Path(tempfile.gettempdir()) / f"tokshift-zoo-notice-{_RUN}-{key}"


def _claim(key: str) -> bool:
    """Whether this process may say ``key``: it is the run's first to (a marker file shared with forked workers)."""
    if key in _mine:
        return True
    try:
        os.close(os.open(_marker(key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    except OSError:  # no writable temporary folder: once per process
        return True
    _mine.add(key)
    return True


@atexit.register
def _forget() -> None:
    if os.getpid() == _PID:  # the run's first process removes every marker, its workers' too
        for marker in Path(tempfile.gettempdir()).glob(f"tokshift-zoo-notice-{_RUN}-*"):
            marker.unlink(missing_ok=True)


def warn_once(logger: logging.Logger, key: str, message: str) -> bool:
    """Log ``message`` at WARNING on ``logger`` the first time ``key`` is seen in this run (this process and the
    data-loader workers it forks).

    Returns:
        Whether the message was logged now.
    """
    if key in _said:
        return False
    _said.add(key)
    if not _claim(key):
        return False
    logger.warning("%s", message)
    return True

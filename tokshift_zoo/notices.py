"""Warnings said once per process: a surprise that every video of a list shares is reported once, not per video."""

from __future__ import annotations

import logging

__all__ = ["warn_once"]

_said: set[str] = set()


def warn_once(logger: logging.Logger, key: str, message: str) -> bool:
    """Log ``message`` at WARNING on ``logger`` the first time ``key`` is seen in this process.

    Returns:
        Whether the message was logged now.
    """
    if key in _said:
        return False
    _said.add(key)
    logger.warning("%s", message)
    return True

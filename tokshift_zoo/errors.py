"""The errors a user of tokshift-zoo may want to catch, one family under ``TokShiftZooError``.

Each is also the built-in it stands for, so code written against the built-ins keeps working:
``except ValueError`` still catches a bad weight file, ``except OSError`` a failed download,
``except FileNotFoundError`` a file that is not in the offline cache.
"""

from __future__ import annotations

__all__ = [
    "TokShiftZooError",
    "ConfigError",
    "DeviceError",
    "WeightsError",
    "ChecksumError",
    "DownloadError",
    "NotCachedError",
    "VideoError",
    "WriteError",
]


class TokShiftZooError(Exception):
    """Base of every error tokshift-zoo raises on purpose."""


class ConfigError(TokShiftZooError, ValueError):
    """An argument, setting, name or list that the zoo cannot use (an unknown model or tag, a bad video list)."""


class DeviceError(TokShiftZooError, RuntimeError):
    """A device that was asked for is not available on this machine."""


class WeightsError(TokShiftZooError, ValueError):
    """A weight file that cannot be used: not a tensor file, keys with no place, missing weights, wrong shapes."""


class ChecksumError(WeightsError):
    """A weight file's sha256 is not the one expected; the file has been removed from the cache."""


class DownloadError(TokShiftZooError, OSError):
    """Weights could not be had: not found, server error, connection lost, short body; no file was trusted."""


class NotCachedError(DownloadError, FileNotFoundError):
    """Offline (``HF_HUB_OFFLINE=1``) and the file is not in the cache."""


class VideoError(TokShiftZooError, ValueError):
    """A video (file or frame folder) that cannot be read."""


class WriteError(TokShiftZooError, OSError):
    """A file could not be written (the disk is full, the folder is read-only); nothing half-written was left."""

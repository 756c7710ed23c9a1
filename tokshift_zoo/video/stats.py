"""The work ``decode_frames`` does, counted per process: calls, frames decoded, seeks, in-order decodes and
fallbacks (``io`` adds to the counters; benchmarks and tests read them)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields

__all__ = ["DecodeStats", "decode_stats", "count_work"]


@dataclass(frozen=True)
class DecodeStats:
    """Work done by ``decode_frames`` in this process (counters since it started; subtract two readings).

    Attributes:
        calls: ``decode_frames`` calls that decoded at least one frame.
        frames_decoded: frames that came out of the decoder (wanted or passed on the way).
        seeks: seeks to a keyframe.
        in_order: calls decoded in order from the start because the file's timestamps cannot number its frames
            (raw streams, MPEG-TS/PS, AVI with B-frames).
        fallbacks: calls whose seek path met something it could not be sure of (a decoder error, a corrupt
            frame, a timestamp that does not map, frames out of order or missing) and that restarted in order
            from the start.
    """

    calls: int = 0
    frames_decoded: int = 0
    seeks: int = 0
    in_order: int = 0
    fallbacks: int = 0

    def __sub__(self, other: DecodeStats) -> DecodeStats:
        return DecodeStats(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))


_stats = DecodeStats()
_stats_lock = threading.Lock()


def decode_stats() -> DecodeStats:
    """The process's ``decode_frames`` counters so far; ``decode_stats() - before`` gives a block's share."""
    return _stats


def count_work(**counts: int) -> None:
    """Add ``counts`` (``DecodeStats`` field names) to the process's counters."""
    global _stats
    with _stats_lock:
        _stats = DecodeStats(**{f.name: getattr(_stats, f.name) + counts.get(f.name, 0) for f in fields(_stats)})

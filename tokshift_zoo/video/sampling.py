"""Which frames of a video make a clip: pure functions from a frame count to frame indices.

Two samplers, as in the TokShift authors' loader (``data/dataset.py`` of VideoNetworks/TokShift-Transformer,
itself the TSM codebase's ``ops/dataset.py`` with ``dense_sample``):

- ``dense_indices``: "NxS" sampling, N frames every S-th frame (the paper's 8x32), from one start per clip.
- ``uniform_indices``: TSN-style, the video cut into N equal segments and one frame taken from each.

Indices are 0-based positions in presentation order, as ``tokshift_zoo.video.io.decode_frames`` takes them.
Randomness (training only) comes from an optional ``torch.Generator`` so that data-loader workers can seed it.
"""

from __future__ import annotations

import re

import torch

__all__ = ["START_RULES", "dense_indices", "uniform_indices", "parse_sampling", "parse_views"]


def _check_counts(num_video_frames: int, num_frames: int, num_clips: int, clip_index: int | None, training: bool):
    if num_video_frames < 1:
        raise ValueError(f"cannot sample frames from a video with {num_video_frames} frames")
    if num_frames < 1 or num_clips < 1:
        raise ValueError(f"num_frames and num_clips must be >= 1, got {num_frames} and {num_clips}")
    if clip_index is not None:
        if training:
            raise ValueError("clip_index selects one of the test clips; it has no meaning in training")
        if not 0 <= clip_index < num_clips:
            raise ValueError(f"clip_index must be in [0, {num_clips}), got {clip_index}")


START_RULES = ("authors", "even")


def _test_starts(num_video_frames: int, span: int, num_clips: int, start_rule: str) -> torch.Tensor:
    """Start frames of the ``num_clips`` test clips, int64 (num_clips,); see ``dense_indices``."""
    if start_rule == "authors":  # read_clip: tick = L / clips; int(k * tick), clipped to max_bound = L - span + 1
        max_bound = max(num_video_frames - span + 1, 1)
        if max_bound == 1:  # "st_idx = 0 if max_bound == 1": a video of at most one span starts every clip at 0
            return torch.zeros(num_clips, dtype=torch.int64)
        tick = 1.0 * num_video_frames / num_clips  # Python floats, as the authors' code: k * tick is rounded alike
        return torch.tensor([min(int(k * tick), max_bound) for k in range(num_clips)])
    max_start = max(num_video_frames - span, 0)
    if num_clips == 1:
        return torch.tensor([max_start // 2])
    return torch.arange(num_clips) * max_start // (num_clips - 1)


def dense_indices(
    num_video_frames: int,
    num_frames: int = 8,
    stride: int = 32,
    num_clips: int = 1,
    clip_index: int | None = None,
    training: bool = False,
    generator: torch.Generator | None = None,
    start_rule: str = "authors",
    authors_start: bool = False,
) -> torch.Tensor:
    """Frame indices of dense "NxS" clips: ``num_frames`` frames, ``stride`` frames apart.

    A clip starting at ``s`` takes frames ``(s + k * stride) % num_video_frames`` for ``k < num_frames``; the
    clip is taken to span ``num_frames * stride`` frames (256 at 8x32), as in the authors' ``read_random_clip`` /
    ``read_clip`` (``data/dataset.py`` of VideoNetworks/TokShift-Transformer).

    - training: each clip's start is drawn uniformly from ``[0, max(L - num_frames * stride, 0)]`` (``L`` the
      video's frame count; the authors draw from it without its last value: ``authors_start=True`` does so);
    - testing, ``start_rule="authors"`` (the default: how the paper's Kinetics-400 numbers were measured): the
      authors' ``read_clip`` verbatim. Clip ``k`` of ``num_clips`` starts at ``int(k * (L / num_clips))``
      clipped to ``L - num_frames * stride + 1`` (their ``max_bound``), and every clip starts at 0 when the
      video is at most one span long. On a 300-frame video at 8x32 the 10 starts are 0, 30, 45, 45, ..., 45:
      three distinct clips, weighted 1:1:8 in the mean; one test clip starts at 0.
    - testing, ``start_rule="even"``: ``num_clips`` distinct starts spread evenly from the first to the last
      possible start, ``start_i = floor(i * max_start / (num_clips - 1))`` with ``max_start = max(L -
      num_frames * stride, 0)``, which is TSM's ``_get_test_indices`` (``np.linspace(0, max_start, num_clips,
      dtype=int)``); a single clip starts at ``floor(max_start / 2)``, the centre (SlowFast's convention). It
      exists because the authors' rule repeats clips on any video shorter than about ``num_clips / 2`` spans
      (1276 frames at 8x32 with 10 clips, so every 10-second Kinetics clip): 10 forward passes for 2 or 3
      distinct clips, the last one weighted most. "even" keeps the clips distinct and covers the video evenly,
      for models of your own. It is not
      how the paper's numbers were measured: use "authors" to reproduce them.
    - short videos (fewer than ``num_frames * stride`` frames) still give ``num_frames`` frames: every clip
      starts at 0 and the indices wrap around the end of the video (the modulo above), under both rules, exactly
      as the authors' loader and TSM's dense sampling do; e.g. 100 frames at 8x32 give
      ``[0, 32, 64, 96, 28, 60, 92, 24]``.

    Args:
        num_video_frames: frames in the video (>= 1).
        num_frames: N, frames per clip.
        stride: S, the step between sampled frames, in frames.
        num_clips: clips to sample (test: placed by ``start_rule``; training: independent random starts).
        clip_index: test only: return just this clip of the ``num_clips`` test clips.
        training: random starts instead of the test starts.
        generator: the random source for training; ``None`` uses torch's global generator.
        start_rule: where the test clips start, ``"authors"`` or ``"even"`` (see above); unused in training.
        authors_start: training: draw starts as the authors' ``read_random_clip`` does, ``randint(0, L - N * S)``
            with its upper end excluded (0 when that range is empty), for their recipe.

    Returns:
        int64 tensor of shape (num_clips, num_frames), or (1, num_frames) when ``clip_index`` is given.
    """
    _check_counts(num_video_frames, num_frames, num_clips, clip_index, training)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if start_rule not in START_RULES:
        raise ValueError(f"start_rule must be one of {START_RULES}, got {start_rule!r}")
    span = num_frames * stride
    if training:
        max_start = max(num_video_frames - span, 0)
        high = max(max_start, 1) if authors_start else max_start + 1
        starts = torch.randint(0, high, (num_clips,), generator=generator)
    else:
        starts = _test_starts(num_video_frames, span, num_clips, start_rule)
    if clip_index is not None:
        starts = starts[clip_index : clip_index + 1]
    offsets = torch.arange(num_frames) * stride
    return (starts[:, None] + offsets[None, :]) % num_video_frames  # (clips, 1) + (1, N) -> (clips, N)


def uniform_indices(
    num_video_frames: int,
    num_frames: int,
    num_clips: int = 1,
    clip_index: int | None = None,
    training: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Frame indices of TSN-style clips: the video cut into ``num_frames`` equal segments, one frame from each.

    Segment ``k`` covers frames ``[k * L / N, (k + 1) * L / N)`` (``L = num_video_frames``, real-valued bounds);
    the frame taken from it is ``floor((k + u) * L / N)`` with:

    - testing: ``u = (c + 0.5) / num_clips`` for clip ``c``, so one test clip takes the middle of each segment
      (``int(tick / 2 + tick * k)`` of the authors' ``read_uniform_clip`` and TSM's ``_get_val_indices``) and
      more clips take evenly shifted positions inside the segments;
    - training: one frame drawn uniformly from the whole frames of segment ``k``, ``[ceil(k * L / N),
      ceil((k + 1) * L / N))``, per segment and clip (TSN's random offset per segment; the bounds are rounded up so
      the segments share no frame, so a video of at least ``N`` frames never repeats one, and the last ``L % N``
      frames can be drawn too).

    Videos shorter than ``num_frames`` repeat frames in order (3 frames, N=8, test:
    ``[0, 0, 0, 1, 1, 2, 2, 2]``), where TSM returns frame 0 ``N`` times.

    Args:
        num_video_frames: frames in the video (>= 1).
        num_frames: N, frames per clip (= segments).
        num_clips: clips to sample.
        clip_index: test only: return just this clip of the ``num_clips``.
        training: random positions inside the segments instead of the fixed test positions.
        generator: the random source for training; ``None`` uses torch's global generator.

    Returns:
        int64 tensor of shape (num_clips, num_frames), or (1, num_frames) when ``clip_index`` is given; every
        row is non-decreasing.
    """
    _check_counts(num_video_frames, num_frames, num_clips, clip_index, training)
    if training:
        u = torch.rand(num_clips, num_frames, generator=generator, dtype=torch.float64)
        if num_video_frames >= num_frames:
            bounds = -torch.div(-torch.arange(num_frames + 1) * num_video_frames, num_frames, rounding_mode="floor")
            starts, lengths = bounds[:-1], bounds.diff()  # whole frames of each segment, at least one
            return starts + torch.floor(u * lengths).long().clamp_(max=lengths - 1)
    else:
        u = ((torch.arange(num_clips, dtype=torch.float64) + 0.5) / num_clips)[:, None].expand(-1, num_frames)
        if clip_index is not None:
            u = u[clip_index : clip_index + 1]
    k = torch.arange(num_frames, dtype=torch.float64)
    indices = torch.floor((k + u) * num_video_frames / num_frames).long()  # (clips, N)
    return indices.clamp_(max=num_video_frames - 1)  # guards float rounding at the very end


_PAIR = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")


def _parse_pair(text: str, what: str, example: str) -> tuple[int, int]:
    match = _PAIR.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match[1]) < 1 or int(match[2]) < 1:
        raise ValueError(f"expected {what} as two positive integers joined by 'x', e.g. {example!r}, got {text!r}")
    return int(match[1]), int(match[2])


def parse_sampling(text: str) -> tuple[int, int]:
    """``"8x32"`` -> ``(8, 32)``: frames per clip N and frame stride S of dense "NxS" sampling.

    Raises:
        ValueError: when ``text`` is not two positive integers joined by ``x``.
    """
    return _parse_pair(text, "sampling 'NxS' (frames x stride)", "8x32")


def parse_views(text: str) -> tuple[int, int]:
    """``"10x3"`` -> ``(10, 3)``: temporal clips and spatial crops per video of the test protocol.

    Raises:
        ValueError: when ``text`` is not two positive integers joined by ``x``.
    """
    return _parse_pair(text, "views 'CLIPSxCROPS'", "10x3")

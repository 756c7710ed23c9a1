"""Decoding: the paper's 10x3 test views of a long 720p video (only the sampled frames decoded) against the
same views with no frame skipped, the same views with frame threads for every codec, and decoding every
frame."""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from .core import BASE_REFERENCE, cache_dir, measure, paired_ratio, significant
from .videos import write_long_video

__all__ = ["decode_suite"]

_logger = logging.getLogger(__name__)


def _decode_all(path: str | os.PathLike, to_rgb: bool) -> int:
    """Decode every frame of the video (PyAV, the same threading as ``decode_frames``), converting each to an
    RGB array when ``to_rgb`` - what a decode-everything reader does - without keeping them."""
    import av

    from ..video import codecs

    count = 0
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = codecs.thread_type(stream.codec_context.name)
        for frame in container.decode(stream):
            if to_rgb:
                frame.to_ndarray(format="rgb24")
            count += 1
    return count


@contextlib.contextmanager
def _nonref_frames_decoded() -> Iterator[None]:
    """Within the block ``decode_frames`` decodes the non-reference frames it passes, as it did before it
    learnt to skip them: the same-run reference for what the skipping saves."""
    from ..video import codecs

    skippable = codecs.NONREF_SKIPPABLE
    codecs.NONREF_SKIPPABLE = frozenset()
    try:
        yield
    finally:
        codecs.NONREF_SKIPPABLE = skippable


@contextlib.contextmanager
def _frame_threads_everywhere() -> Iterator[None]:
    """Within the block ``decode_frames`` uses frame threads for every codec (PyAV's ``"AUTO"``), as it did
    before issue 24 restricted them to the codecs where they are known to be exact: the same-run reference for
    what deterministic decoding costs."""
    from ..video import codecs

    policy = codecs.thread_type
    codecs.thread_type = lambda codec: "AUTO"
    try:
        yield
    finally:
        codecs.thread_type = policy


def decode_suite(
    video: str | os.PathLike | None = None,
    seconds: float = 300.0,
    views: str = "10x3",
    reps: int = 2,
    name: str = BASE_REFERENCE,
    workdir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The paper's test views of one long video, against decoding every frame of it.

    ``views`` time: ``VideoPreprocess(resolve_data_config(model), views)(video)`` - the packet scan, the seeks
    and decoding of only the sampled frames, and the crops - as ``predict`` and ``evaluate`` run it. The
    references: the same views with the non-reference frames between wanted ones decoded rather than skipped;
    decoding every frame and converting each to RGB (what a decode-everything reader such as ``load_video`` or
    ``torchvision.io.read_video`` must do, here without keeping the frames); and decoding every frame without
    even the conversion (the least any decode-everything approach can cost); and the same views with frame
    threads for every codec (``views_frame_threads_s``; ``cost_vs_frame_threads`` is the views' time over
    theirs: 1.0 for H.264, HEVC, VP8 and VP9, which keep frame threads; above 1 for a ``video`` of another
    codec, e.g. Theora, now decoded with one thread). ``decode_calls``,
    ``in_order_decodes`` and ``exact_fallbacks`` count, over all the suite's calls of ``decode_frames``
    (``tokshift_zoo.video.decode_stats``), those decoded in order from the start because the file's timestamps
    cannot number its frames, and those whose checks after a seek found a doubt and restarted in order.

    Args:
        video: a video file; by default a ``seconds``-long synthetic 720p30 H.264 file (keyframe every 250
            frames, 3 B-frames between references) is written once to ``workdir`` (default
            ``~/.cache/tokshift_zoo/benchmark``) and reused.
        views: ``"CLIPSxCROPS"``.

    The speed-up is bounded by the video's length: the 10 dense 8x32 clips span 10 x 225 frames, and each
    starts on average half a keyframe interval after the keyframe that decoding must start from, so about
    3,300 frames are passed whatever the length (a 5-minute 30 fps video has 9,000), of which the non-reference
    B-frames not sampled are skipped.
    """
    import timm

    from ..inference import VideoPreprocess
    from ..video.io import decode_stats, read_video_info
    from ..video.transforms import resolve_data_config

    with torch.device("meta"):
        model = timm.create_model(name)
    config = resolve_data_config(model)
    if video is None:
        folder = Path(workdir) if workdir is not None else cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        video = folder / f"synthetic_720p30_{seconds:g}s_gop250_bf3_v2.mp4"
        if not video.exists():
            _logger.info("writing %s (once; reused by later runs)", video)
            start = time.perf_counter()
            write_long_video(video.with_suffix(".part.mp4"), seconds=seconds).rename(video)
            _logger.info("wrote %s in %.0f s", video, time.perf_counter() - start)
    info = read_video_info(video)
    preprocess = VideoPreprocess(config, views)

    def views_without_skipping() -> torch.Tensor:
        with _nonref_frames_decoded():
            return preprocess(video)

    def views_frame_threads() -> torch.Tensor:
        with _frame_threads_everywhere():
            return preprocess(video)

    suite_start = decode_stats()
    out = preprocess(video)
    stats = decode_stats() - suite_start
    before = decode_stats()
    views_without_skipping()
    stats_no_skip = decode_stats() - before
    fns = {
        "views": lambda: preprocess(video),
        "views_no_skip": views_without_skipping,
        "views_frame_threads": views_frame_threads,
        "all_frames_rgb": lambda: _decode_all(video, to_rgb=True),
        "all_frames_no_rgb": lambda: _decode_all(video, to_rgb=False),
    }
    times = measure(fns, "cpu", reps=reps, warmup=0)
    suite = decode_stats() - suite_start  # every call above, untimed and timed
    views_s = statistics.median(times["views"])
    return {
        "video": f"{info.width}x{info.height} {info.codec} {info.fps:.0f} fps, {info.num_frames} frames "
        f"({info.duration_s:.0f} s), {len(info.keyframes)} keyframes",
        "views": views,
        "view_shape": list(out.shape[1:]),
        "frames_sampled": config.num_frames * int(views.split("x")[0]),
        "frames_decoded": stats.frames_decoded,
        "frames_decoded_no_skip": stats_no_skip.frames_decoded,
        "seeks": stats.seeks,
        "decode_calls": suite.calls,
        "in_order_decodes": suite.in_order,
        "exact_fallbacks": suite.fallbacks,
        "views_s": significant(views_s),
        "views_per_s": significant(out.shape[0] / views_s),
        "views_no_skip_s": significant(statistics.median(times["views_no_skip"])),
        "views_frame_threads_s": significant(statistics.median(times["views_frame_threads"])),
        "all_frames_rgb_s": significant(statistics.median(times["all_frames_rgb"])),
        "all_frames_no_rgb_s": significant(statistics.median(times["all_frames_no_rgb"])),
        "speedup_vs_no_skip": round(paired_ratio(times["views_no_skip"], times["views"]), 2),
        "cost_vs_frame_threads": round(paired_ratio(times["views"], times["views_frame_threads"]), 2),
        "speedup_vs_all_rgb": round(paired_ratio(times["all_frames_rgb"], times["views"]), 2),
        "speedup_vs_all_no_rgb": round(paired_ratio(times["all_frames_no_rgb"], times["views"]), 2),
        "reps": reps,
    }

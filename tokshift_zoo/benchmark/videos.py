"""Synthetic H.264 videos for the decode and loader suites, written with PyAV: smooth moving content a codec must
really code, with x264's keyframe interval and B-frames, as real videos have."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["write_long_video"]


def _moving_scene(width: int, height: int, seed: int = 0) -> Callable[[int], np.ndarray]:
    """yuv420p frames, (H * 3/2, W) uint8, of a smooth textured scene panning across a larger canvas with a
    square crossing it: content a codec must actually code (every frame differs), but noise-free so that it
    encodes fast. Drawn in YUV directly, so that writing needs no colour conversion."""
    rng = np.random.default_rng(seed)
    pad = 256

    def plane(h: int, w: int) -> np.ndarray:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        wave = sum(
            np.sin(rng.uniform(0.005, 0.04) * yy + rng.uniform(0.005, 0.04) * xx + rng.uniform(0, 2 * np.pi))
            for _ in range(3)
        )
        return ((wave - wave.min()) / (wave.max() - wave.min()) * 219 + 16).astype(np.uint8)

    luma = plane(height + pad, width + pad)
    chroma = [plane(height // 2 + pad // 2, width // 2 + pad // 2) for _ in range(2)]
    grain = rng.integers(-6, 7, (height + pad, width + pad), dtype=np.int16)  # texture moving the other way
    side = height // 6

    def frame(index: int) -> np.ndarray:
        dy, dx = (index * 2) % pad, (index * 4) % pad  # even: chroma moves with luma
        gy, gx = pad - 1 - (index * 3) % pad, pad - 1 - (index * 5) % pad
        y = luma[dy : dy + height, dx : dx + width] + grain[gy : gy + height, gx : gx + width]
        y = y.clip(0, 255).astype(np.uint8)
        top, left = (index * 7) % (height - side), (index * 11) % (width - side)
        y[top : top + side, left : left + side] = 16 + (index * 3) % 220
        u, v = (c[dy // 2 : dy // 2 + height // 2, dx // 2 : dx // 2 + width // 2] for c in chroma)
        return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(height * 3 // 2, width)

    return frame


def write_long_video(
    path: str | os.PathLike,
    seconds: float = 240.0,
    fps: int = 30,
    width: int = 1280,
    height: int = 720,
    gop: int = 250,
    preset: str = "ultrafast",
    bframes: int = 3,
    seed: int = 0,
) -> Path:
    """Write an H.264 mp4 of ``seconds`` of synthetic moving content (see ``_moving_scene``) with PyAV.

    ``gop`` is the keyframe interval (x264's default 250); ``preset`` trades encoding time for size (ultrafast:
    CAVLC, one reference frame), which keeps writing four minutes of 720p to a few minutes on two cores.
    ``bframes`` B-frames between reference frames, with x264's B-pyramid (the middle one is a reference), as
    x264's default presets write and most real videos have; 0 for none. ``seed`` varies the content.
    """
    import av

    scene = _moving_scene(width, height, seed)
    with av.open(os.fspath(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": preset, "x264-params": f"keyint={gop}:bframes={bframes}:b-pyramid=normal"}
        for index in range(round(seconds * fps)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(scene(index), format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)

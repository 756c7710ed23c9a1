"""Real test videos written with PyAV, and a frame pattern that tells which frame index a decoded frame is.

Import from tests as ``from videos import write_video, index_frames, read_index`` (pytest puts ``tests/`` on
``sys.path``). Nothing here is mocked: the files are encoded by FFmpeg's encoders and read back by the code under
test.

The index pattern: each frame is a grid of ``INDEX_BITS`` grey blocks, bright for a 1 bit of the frame index
and dark for a 0, so lossy codecs, chroma subsampling and limited-range YUV cannot flip a bit; ``read_index``
reads the mean of each block's inner half.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

__all__ = [
    "INDEX_BITS",
    "index_frames",
    "read_index",
    "write_video",
    "write_audio_only",
    "DEFAULT_CODECS",
    "set_theora_picture_offset",
]

INDEX_BITS = 10  # frame indices up to 1023
_GRID_ROWS, _GRID_COLS = 2, 5
_DARK, _BRIGHT = 40, 215

# container extension -> the codec write_video uses when not told otherwise
DEFAULT_CODECS = {
    ".mp4": "libx264",
    ".mov": "libx264",
    ".mkv": "libx264",
    ".h264": "libx264",
    ".webm": "libvpx-vp9",
    ".avi": "mjpeg",
}
_PIX_FMT = {"mjpeg": "yuvj420p"}  # the rest default to yuv420p
# keep the encoders quick on the test machine's two cores
_CODEC_OPTIONS = {"libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"}}


def _block_bounds(size: int, parts: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, size, parts + 1).round().astype(int)
    return list(zip(edges[:-1], edges[1:], strict=True))


def index_frames(indices: int | Sequence[int], height: int = 48, width: int = 64) -> np.ndarray:
    """Frames whose pixels encode their index.

    Args:
        indices: the index of each frame, or a count ``n`` for indices ``0..n-1``.
        height, width: frame size in pixels (at least 10 x 10).

    Returns:
        uint8 array (T, H, W, 3), grey (R = G = B).
    """
    indices = range(indices) if isinstance(indices, int) else indices
    rows, cols = _block_bounds(height, _GRID_ROWS), _block_bounds(width, _GRID_COLS)
    frames = np.empty((len(indices), height, width, 3), np.uint8)
    for t, index in enumerate(indices):
        if not 0 <= index < 2**INDEX_BITS:
            raise ValueError(f"index {index} does not fit in {INDEX_BITS} bits")
        for bit in range(INDEX_BITS):
            (y0, y1), (x0, x1) = rows[bit // _GRID_COLS], cols[bit % _GRID_COLS]
            frames[t, y0:y1, x0:x1] = _BRIGHT if (index >> bit) & 1 else _DARK
    return frames


def read_index(frames: torch.Tensor | np.ndarray) -> list[int]:
    """The index encoded by ``index_frames`` in each decoded frame of uint8 (T, H, W, 3) frames."""
    frames = np.asarray(frames, dtype=np.float32).mean(axis=-1)  # (T, H, W) luma-ish
    height, width = frames.shape[1:]
    rows, cols = _block_bounds(height, _GRID_ROWS), _block_bounds(width, _GRID_COLS)
    out = []
    for frame in frames:
        index = 0
        for bit in range(INDEX_BITS):
            (y0, y1), (x0, x1) = rows[bit // _GRID_COLS], cols[bit % _GRID_COLS]
            dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
            if frame[y0 + dy : y1 - dy, x0 + dx : x1 - dx].mean() > (_DARK + _BRIGHT) / 2:
                index |= 1 << bit
        out.append(index)
    return out


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | torch.Tensor,
    fps: int = 30,
    codec: str | None = None,
    pix_fmt: str | None = None,
    gop: int | None = None,
    timestamps_ms: Sequence[int] | None = None,
    options: Mapping[str, str] | None = None,
) -> Path:
    """Encode RGB frames into a video file; the container follows the extension.

    Args:
        path: output file; ``.mp4 .mov .mkv .h264 .webm .avi`` pick a codec from ``DEFAULT_CODECS``.
        frames: uint8 (T, H, W, 3) RGB; T may be 0 (a video stream with no frames, where the container keeps one:
            avi does, mp4 drops the empty track, mkv/webm write a file FFmpeg cannot open).
        fps: nominal frame rate (frames per second).
        codec: FFmpeg encoder, e.g. ``"libx264"``, ``"libvpx-vp9"``, ``"mpeg4"``, ``"mjpeg"``, ``"ffv1"``.
        pix_fmt: coded pixel format, e.g. ``"yuv420p"``, ``"yuv444p"`` (odd sizes), ``"gray"``,
            ``"yuv420p10le"``; frames are converted from RGB by FFmpeg.
        gop: keyframe interval in frames (small values make seeking matter).
        timestamps_ms: per-frame presentation times in milliseconds, increasing, for variable-frame-rate video;
            ``None`` gives evenly spaced frames at ``fps``.
        options: encoder options, added to the quick defaults, e.g. ``{"x264-params": "bframes=3"}``.

    Returns:
        ``Path(path)``.
    """
    path = Path(path)
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got shape {frames.shape}")
    codec = codec or DEFAULT_CODECS.get(path.suffix, "libx264")
    pix_fmt = pix_fmt or _PIX_FMT.get(codec, "yuv420p")
    if timestamps_ms is not None and len(timestamps_ms) != len(frames):
        raise ValueError(f"{len(timestamps_ms)} timestamps for {len(frames)} frames")
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options={**_CODEC_OPTIONS.get(codec, {}), **(options or {})})
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if gop is not None:
            stream.codec_context.gop_size = gop
        if timestamps_ms is not None:
            stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        container.start_encoding()
        for t, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if timestamps_ms is not None:
                frame.pts, frame.time_base = timestamps_ms[t], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_audio_only(path: str | os.PathLike, seconds: float = 0.5, rate: int = 8000) -> Path:
    """A silent AAC track with no video stream (``.mp4``/``.m4a``), ``seconds`` long."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        samples = 1024
        for i in range(max(1, int(seconds * rate) // samples)):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, samples), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, i * samples
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _ogg_crc(page: bytes) -> int:
    """Ogg's page checksum: CRC-32, polynomial 0x04C11DB7, not reflected, initial value and final xor 0."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        crc &= 0xFFFFFFFF
    return crc


def set_theora_picture_offset(path: str | os.PathLike, x: int) -> None:
    """Rewrite an Ogg Theora file's identification header to place the picture ``x`` pixels from the left of
    the coded frame (the header's PICX; ffmpeg's libtheora encoder writes 0, other encoders may not), and the
    checksum of the page that holds it. FFmpeg then outputs frames wider than the header's picture size: it
    crops only as far left as keeps the planes aligned."""
    data = bytearray(Path(path).read_bytes())
    header = data.find(b"\x80theora")
    page = data.rfind(b"OggS", 0, header)
    if header < 0 or page < 0:
        raise ValueError(f"{path}: no Theora identification header in an Ogg page")
    picture_width = int.from_bytes(data[header + 14 : header + 17], "big")
    coded_width = int.from_bytes(data[header + 10 : header + 12], "big") * 16
    if picture_width + x > coded_width:
        raise ValueError(f"{path}: a {picture_width}-pixel picture at {x} does not fit in {coded_width} pixels")
    data[header + 20] = x  # PICX: after "\x80theora", 3 version bytes, FMBW, FMBH (16 bits) and PICW, PICH (24)
    segments = data[page + 26]
    end = page + 27 + segments + sum(data[page + 27 : page + 27 + segments])
    data[page + 22 : page + 26] = bytes(4)
    data[page + 22 : page + 26] = _ogg_crc(bytes(data[page:end])).to_bytes(4, "little")
    Path(path).write_bytes(bytes(data))

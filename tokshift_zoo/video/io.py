"""Reading videos with PyAV: frame counts from a demux pass, and only the asked-for frames decoded.

The only module of the package that imports ``av``. A frame index is a position in presentation order: a
one-time pass over the video stream's packets (no decoding) collects their timestamps, and the sorted timestamps
number the frames, so variable-frame-rate video maps indices to the right frames. Decoding then seeks to the
keyframe before each run of wanted frames and decodes forward only to the last frame of the run. On the way,
frames that no other frame references (most B-frames) are skipped, not decoded, where the codec makes that safe.

Every failure to read a file raises ``VideoReadError`` naming the file and the reason.
"""

from __future__ import annotations

import bisect
import logging
import operator
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from ..atomic import atomic_write
from ..errors import VideoError

__all__ = [
    "VideoInfo",
    "VideoReadError",
    "read_video_info",
    "decode_frames",
    "load_video",
    "write_video",
    "FRAME_TEMPLATE",
    "frame_folder_length",
    "decode_frame_folder",
]

FRAME_TEMPLATE = "img_{:05d}.jpg"  # the TokShift authors' extracted frames, numbered from 1

logger = logging.getLogger(__name__)

# Codecs whose non-reference frames (FFmpeg's AVDISCARD_NONREF) no other frame reads and whose packets carry one
# frame each, so a packet's timestamp says which frame it holds: H.264 (a frame with nal_ref_idc 0). Not HEVC,
# where a sub-layer non-reference picture may be referenced by a picture of a higher temporal sub-layer; not
# MPEG-4 Part 2, whose AVI files may pack a B-frame into the packet of the frame before it; not VP8/VP9/AV1,
# whose decoders apply the setting differently.
_NONREF_SKIPPABLE = frozenset({"h264"})


class VideoReadError(VideoError):
    """A video file is missing, not a readable media file, has no video stream or no frames, or fails to
    decode."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, read from its headers and one pass over its packets (nothing decoded).

    Attributes:
        path: the file.
        num_frames: frames that can be decoded: the video stream's packets, counted by demuxing, not the
            container's header (which mp4 may overstate for a cut file and mkv/webm do not have). A packet
            that FFmpeg flags as corrupt (the last one of a truncated file) is not counted.
        fps: average frame rate in frames per second, measured from the timestamps (FFmpeg's stream rate for
            one-frame videos and raw streams, where it may be a guess).
        duration_s: duration in seconds.
        width, height: frame size in pixels, as decoded (before any rotation metadata).
        codec: FFmpeg's decoder name, e.g. ``"h264"``, ``"vp9"``, ``"mjpeg"``.
        pix_fmt: FFmpeg's pixel format of the coded frames, e.g. ``"yuv420p"``, ``"gray"``, ``"yuv420p10le"``.
        time_base: the unit of ``pts``, in seconds.
        pts: sorted presentation timestamps, one per frame, in ``time_base`` units; ``None`` where timestamps
            cannot number the frames (raw ``.h264``, MPEG-TS/PS): those frames are numbered in decoding output
            order and decoded from the start, without seeking.
        keyframes: indices of the frames that decoding can start from (sorted).
    """

    path: str
    num_frames: int
    fps: float
    duration_s: float
    width: int
    height: int
    codec: str
    pix_fmt: str
    time_base: Fraction
    pts: tuple[int, ...] | None = field(repr=False)
    keyframes: tuple[int, ...] = field(repr=False)


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    name = os.fspath(path)
    if not os.path.exists(name):
        raise VideoReadError(f"cannot read video {name!r}: no such file")
    if os.path.isdir(name):
        raise VideoReadError(f"cannot read video {name!r}: it is a directory")
    try:
        return av.open(name, metadata_errors="ignore")
    except av.FFmpegError as err:
        raise VideoReadError(f"cannot read video {name!r}: not a media file FFmpeg can open ({err})") from err


def _video_stream(container: av.container.InputContainer, path: str) -> av.VideoStream:
    if not container.streams.video:
        found = ", ".join(f"{s.type} ({s.codec_context.name})" for s in container.streams) or "no streams"
        raise VideoReadError(f"cannot read video {path!r}: it has no video stream (found: {found})")
    return container.streams.video[0]


def _scan_packets(
    container: av.container.InputContainer, stream: av.VideoStream, path: str
) -> tuple[list[int] | None, list[int], int]:
    """One demux pass, nothing decoded: (sorted unique pts or None, keyframe indices, frame count).

    The pts are ``None`` where they cannot number the frames: packets without timestamps (raw ``.h264``), and
    formats whose timestamps may jump and whose seeks are estimates (MPEG-TS and MPEG-PS, FFmpeg's
    ``AVFMT_TS_DISCONT``: after a seek their frames can come out with timestamps half a frame off).
    """
    packets: list[tuple[int | None, bool]] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_corrupt:  # the end-of-stream marker; a packet cut by truncation
                continue
            packets.append((packet.pts, packet.is_keyframe))
    except av.FFmpegError as err:  # damaged data: count what was read before it
        logger.warning("%s: stopped reading packets after %d frames: %s", path, len(packets), err)
    if any(pts is None for pts, _ in packets) or container.format.flags & av.format.Flags.ts_discont.value:
        return None, [i for i, (_, key) in enumerate(packets) if key], len(packets)
    is_key: dict[int, bool] = {}
    for pts, key in packets:
        is_key[pts] = is_key.get(pts, False) or key
    pts_sorted = sorted(is_key)
    return pts_sorted, [i for i, pts in enumerate(pts_sorted) if is_key[pts]], len(pts_sorted)


def read_video_info(path: str | os.PathLike) -> VideoInfo:
    """Read a video's frame count, rate, size and per-frame timestamps without decoding any frame.

    Args:
        path: a video file FFmpeg can read (mp4, mkv, webm, avi, mov, raw h264, ...).

    Returns:
        The ``VideoInfo`` of the file's first video stream.

    Raises:
        VideoReadError: the file is missing, not a media file, has no video stream or no frames.
    """
    name = os.fspath(path)
    with _open(name) as container:
        stream = _video_stream(container, name)
        pts, keyframes, num_frames = _scan_packets(container, stream, name)
        if num_frames == 0:
            raise VideoReadError(f"cannot read video {name!r}: its video stream has no frames")
        ctx = stream.codec_context
        time_base = stream.time_base or Fraction(1, 1)
        if pts is not None and num_frames > 1 and pts[-1] > pts[0]:
            fps = (num_frames - 1) / float((pts[-1] - pts[0]) * time_base)  # measured: right for VFR too
        else:
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
        if stream.duration:
            duration_s = float(stream.duration * time_base)
        elif container.duration:
            duration_s = container.duration / av.time_base
        else:
            duration_s = num_frames / fps if fps else 0.0
        return VideoInfo(
            path=name,
            num_frames=num_frames,
            fps=fps,
            duration_s=duration_s,
            width=ctx.width,
            height=ctx.height,
            codec=ctx.name,
            pix_fmt=ctx.pix_fmt or "",
            time_base=time_base,
            pts=None if pts is None else tuple(pts),
            keyframes=tuple(keyframes),
        )


def _plan_runs(wanted: list[int], keyframes: Sequence[int]) -> list[list[int]]:
    """Group sorted wanted indices into runs: a new run (a seek) only where seeking skips frames."""
    runs: list[list[int]] = []
    for index in wanted:
        if runs and _keyframe_before(keyframes, index) <= runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def _keyframe_before(keyframes: Sequence[int], index: int) -> int:
    pos = bisect.bisect_right(keyframes, index) - 1
    return keyframes[pos] if pos >= 0 else 0


class _Decoder:
    """Decodes the wanted frames of one open stream into the output array, counting the frames decoded."""

    def __init__(
        self, container: av.container.InputContainer, stream: av.VideoStream, info: VideoInfo, indices: list[int]
    ) -> None:
        self.container, self.stream, self.info = container, stream, info
        self.index_of = {pts: i for i, pts in enumerate(info.pts or ())}
        self.out = np.empty((len(indices), info.height, info.width, 3), np.uint8)  # (T, H, W, 3)
        self.slots: dict[int, list[int]] = {}  # frame index -> its positions in the output
        for slot, index in enumerate(indices):
            self.slots.setdefault(index, []).append(slot)
        self.kept: set[int] = set()
        self.decoded = self.seeks = 0

    def _keep(self, frame: av.VideoFrame, index: int) -> None:
        rgb = frame.to_ndarray(format="rgb24", width=self.info.width, height=self.info.height)
        self.out[self.slots[index]] = rgb
        self.kept.add(index)

    def run(self, run: list[int]) -> None:
        """Seek to the keyframe before ``run[0]`` and decode forward to ``run[-1]``, keeping the frames in
        ``run``; non-reference frames outside ``run`` are skipped where the codec allows it. A frame that does
        not come out (a damaged file) is left missing for the caller to report."""
        seek_to = _keyframe_before(self.info.keyframes, run[0])
        self.container.seek(self.info.pts[seek_to], stream=self.stream, backward=True, any_frame=False)
        self.seeks += 1
        wanted = set(run)
        wanted_pts = {self.info.pts[index] for index in run}
        codec = self.stream.codec_context
        skip_nonref = codec.name in _NONREF_SKIPPABLE
        for packet in self.container.demux(self.stream):
            if skip_nonref:  # read per packet, also by frame threads: a wanted frame is always decoded
                codec.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in wanted_pts else "NONREF"
            for frame in self.stream.decode(packet):
                self.decoded += 1
                index = self.index_of.get(frame.pts)
                if index is None:  # a frame whose packet was dropped as corrupt
                    continue
                if index in wanted:
                    self._keep(frame, index)
                if index >= run[-1]:
                    return

    def in_order(self) -> None:
        """Frames without usable timestamps: decode from the start, numbering frames in output order."""
        last = max(self.slots)
        for index, frame in enumerate(self.container.decode(self.stream)):
            self.decoded += 1
            if index in self.slots:
                self._keep(frame, index)
            if index >= last:
                return


def decode_frames(path: str | os.PathLike, indices: Iterable[int], info: VideoInfo | None = None) -> torch.Tensor:
    """Decode the frames at ``indices`` (0-based, presentation order), seeking instead of decoding everything.

    The sorted unique indices are grouped into runs; each run costs one seek to the keyframe before its first
    frame and decoding forward to its last frame, and a new run starts only where seeking skips frames. On the
    way, H.264 frames that no other frame references (B-frames, mostly) are skipped undecoded unless they are
    wanted; the frames returned are bit for bit those of decoding everything. A debug record
    on this module's logger (``logging.getLogger("tokshift_zoo.video.io")``) reports the work done, with
    ``frames_decoded`` (frames that came out of the decoder) and ``seeks`` as record attributes.

    Truncated files: frames are counted by demuxing (see ``VideoInfo.num_frames``), so a cut file has as many
    frames as it still holds and any index below that decodes. A frame the decoder fails on raises
    ``VideoReadError``; no frame is ever silently replaced by another.

    Args:
        path: the video file.
        indices: 1-D frame indices in ``[0, num_frames)``, any order, duplicates allowed (an int sequence,
            or a 1-D integer tensor or array).
        info: ``read_video_info(path)`` if already at hand, to skip the packet pass.

    Returns:
        uint8 tensor (T, H, W, 3), RGB, T = len(indices), frames in the order of ``indices``.

    Raises:
        VideoReadError: the file cannot be read or a wanted frame cannot be decoded.
        IndexError: an index is outside ``[0, num_frames)``.
    """
    name = os.fspath(path)
    indices = [operator.index(i) for i in indices]
    info = info if info is not None else read_video_info(name)
    bad = [i for i in indices if not 0 <= i < info.num_frames]
    if bad:
        raise IndexError(f"frame indices {bad[:5]} out of range for {name!r}, which has {info.num_frames} frames")
    if not indices:
        return torch.empty((0, info.height, info.width, 3), dtype=torch.uint8)
    with _open(name) as container:
        stream = _video_stream(container, name)
        stream.thread_type = "AUTO"
        decoder = _Decoder(container, stream, info, indices)
        try:
            if info.pts is None:
                decoder.in_order()
            else:
                for run in _plan_runs(sorted(decoder.slots), info.keyframes):
                    decoder.run(run)
        except av.FFmpegError as err:
            raise VideoReadError(f"cannot decode video {name!r}: {err}") from err
    missing = sorted(set(decoder.slots) - decoder.kept)
    if missing:
        raise VideoReadError(
            f"cannot decode video {name!r}: no frame came out of the decoder for indices {missing[:5]} "
            f"(of {info.num_frames} frames); the file may be damaged"
        )
    logger.debug(
        "%s: decoded %d frames with %d seeks for %d requested",
        name,
        decoder.decoded,
        decoder.seeks,
        len(indices),
        extra={"frames_decoded": decoder.decoded, "seeks": decoder.seeks},
    )
    return torch.from_numpy(decoder.out)


def load_video(path: str | os.PathLike) -> torch.Tensor:
    """Decode every frame of a video.

    Args:
        path: the video file.

    Returns:
        uint8 tensor (T, H, W, 3), RGB, T = ``read_video_info(path).num_frames``.

    Raises:
        VideoReadError: the file is missing, unreadable, has no video stream or no frames, or fails to decode.
    """
    info = read_video_info(path)
    return decode_frames(path, range(info.num_frames), info)


def frame_folder_length(folder: str | os.PathLike) -> int:
    """Frames in a folder of extracted frames (``img_00001.jpg``, ``img_00002.jpg``, ...: the authors' layout).

    Raises:
        VideoReadError: the folder does not exist or holds no ``img_00001.jpg``.
    """
    folder = os.fspath(folder)
    if not os.path.isfile(os.path.join(folder, FRAME_TEMPLATE.format(1))):
        raise VideoReadError(f"{folder!r}: expected a folder of frames {FRAME_TEMPLATE.format(1)}, ... ; none found")
    return sum(1 for name in os.listdir(folder) if name.startswith("img_") and name.endswith(".jpg"))


def decode_frame_folder(folder: str | os.PathLike, indices: Iterable[int]) -> torch.Tensor:
    """Frames ``indices`` (0-based) of a folder of extracted JPEG frames -> uint8 (T, H, W, 3), RGB.

    Raises:
        VideoReadError: a frame file is missing or is not a readable JPEG.
    """
    frames = []
    for index in indices:
        path = os.path.join(os.fspath(folder), FRAME_TEMPLATE.format(operator.index(index) + 1))
        try:
            with Image.open(path) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except OSError as err:  # missing file, or not an image (PIL.UnidentifiedImageError)
            raise VideoReadError(f"cannot read frame {path!r}: {err}") from err
    return torch.from_numpy(np.stack(frames))


def write_video(
    path: str | os.PathLike, frames: np.ndarray | torch.Tensor, fps: int = 25, codec: str = "libx264", crf: int = 18
) -> None:
    """Encode uint8 RGB frames (T, H, W, 3) into a video file, written to a temporary name and renamed.

    The container follows the extension (``.mp4``, ``.mkv``, ``.webm``, ``.avi``); pixels are stored as 4:2:0
    YUV, so H and W must be even for most codecs. On failure no file is left behind.
    """
    frames = np.ascontiguousarray(torch.as_tensor(frames).numpy())
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} of shape {frames.shape}")

    def encode(partial: Path) -> None:
        with av.open(str(partial), mode="w") as container:  # the extension tells FFmpeg the container
            stream = container.add_stream(codec, rate=fps)
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"  # MJPEG takes full-range YUV
            if codec in ("libx264", "h264"):
                stream.options = {"crf": str(crf), "preset": "medium"}
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())

    atomic_write(path, encode)

"""Reading videos with PyAV: frame counts from a demux pass, and only the asked-for frames decoded.

The only module of the package that imports ``av``. A frame index is a position in the in-order decode: the
frames that decoding every packet from the start gives, in the order they come out (what players, the ffmpeg
command and ``load_video`` show). ``decode_frames`` promises exactly those frames, pixel for pixel, and gets them
the fast way where it can be sure:

- A one-time pass over the first video stream's packets (decoding only up to the first frame, whose size is
  the size of every frame returned) counts the frames and collects their timestamps. Packets that are no frame
  are left out: 0-byte packets (Theora's "repeat the last frame"), packets FFmpeg flags as corrupt (the cut
  last one of a truncated file), packets an mp4 edit list discards (a ``-ss ... -c copy`` cut keeps the
  packets back to the keyframe before the cut; the decoder drops their frames) and H.264/HEVC packets with no
  picture in them. Where the sorted timestamps number the frames, an index maps to a timestamp, so
  variable-frame-rate video maps indices to the right frames.
- Decoding then seeks to the keyframe before each run of wanted frames and decodes forward only to the last
  frame of the run, skipping the H.264 frames that no other frame references. Before its first seek it decodes
  the stream's first packet, so that what only the first packets carry (parameter sets, an encoder's version
  SEI that changes how old x264 streams decode) is known to the decoder, as in the in-order decode.
- Every frame that comes out after a seek is checked: it must map to a known timestamp, come in display order
  starting at the keyframe sought, be neither corrupt nor follow a decoder error, and no wanted frame may be
  missing. On any doubt the call restarts in order from the start, so no frame is ever one the in-order decode
  would not give; ``decode_stats`` counts such fallbacks.
- Where timestamps cannot number the frames, frames are decoded in order from the start: raw elementary
  streams (``.h264``, ``.mpv``, ...: the parser's timestamps), MPEG-TS/PS (timestamps may jump, seeks are
  estimates), AVI with B-frames (AVI keeps no presentation times; Xvid/DivX may pack two frames into one
  packet), packets without timestamps or with repeated ones.

Decoding is deterministic: frame threads only for the codecs where they are known to be exact, slice threads
or one thread for the others (``codecs.thread_type``). Only regular files are opened (a FIFO would block), and
the decoded bytes a call would hold are checked against a budget before anything is allocated. Every failure
to read a file raises ``VideoReadError`` naming the file and the reason.
"""

from __future__ import annotations

import bisect
import logging
import operator
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from ..atomic import atomic_write
from ..errors import ConfigError, VideoError
from . import codecs
from .stats import DecodeStats, count_work, decode_stats

__all__ = [
    "VideoInfo",
    "VideoReadError",
    "VideoNotFoundError",
    "DecodeStats",
    "decode_stats",
    "MAX_BYTES_ENV",
    "DEFAULT_MAX_BYTES",
    "max_video_bytes",
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

# The bytes a video call may hold in decoded RGB frames unless told otherwise (``max_bytes=``, or this
# environment variable): room for the paper's 10x3 views of 4K video (80 frames of 3840x2160: 2 GB); an
# 8000x8000 frame at 10x3 views (15 GB) is refused before anything is allocated.
MAX_BYTES_ENV = "TOKSHIFT_ZOO_MAX_VIDEO_BYTES"
DEFAULT_MAX_BYTES = 4 * 2**30


class VideoReadError(VideoError):
    """A video file is missing, not a readable media file, has no video stream or no frames, or fails to
    decode."""


class VideoNotFoundError(VideoReadError, FileNotFoundError):
    """No file at the video's path: also a ``FileNotFoundError``, so ordinary handlers catch it."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file's first video stream holds, read from its headers and one pass over its packets (only
    the first frame decoded, for its size).

    Attributes:
        path: the file.
        num_frames: frames of the in-order decode, counted by demuxing, not from the container's header (which
            mp4 may overstate for a cut file and mkv/webm do not have): one per video packet, leaving out
            0-byte packets, packets FFmpeg flags as corrupt (the last one of a truncated file), packets an
            edit list discards and H.264/HEVC packets that hold no picture (an access unit of only delimiter
            or SEI NAL units).
        fps: average frame rate in frames per second, measured from the timestamps (FFmpeg's stream rate for
            one-frame videos and raw streams, where it may be a guess).
        duration_s: duration in seconds.
        width, height: the size in pixels of the first frame the decoder gives, before any rotation metadata
            (``decode_frames`` turns the frames as a player shows them); where the size changes mid-stream,
            every frame is scaled to this one. It may differ from the codec header's (a Theora picture offset
            makes FFmpeg output wider frames), never from the frames.
        codec: FFmpeg's decoder name, e.g. ``"h264"``, ``"vp9"``, ``"mjpeg"``.
        pix_fmt: FFmpeg's pixel format of the coded frames, e.g. ``"yuv420p"``, ``"gray"``, ``"yuv420p10le"``.
        time_base: the unit of ``pts``, in seconds.
        pts: sorted presentation timestamps, one per frame, in ``time_base`` units; ``None`` where timestamps
            cannot number the frames (raw streams, MPEG-TS/PS, AVI with B-frames): those frames are numbered
            in decoding output order and decoded from the start, without seeking.
        keyframes: indices of the frames that decoding can start from (sorted).
        rotation: counter-clockwise degrees (0, 90, 180, 270) of the first frame's display matrix (the
            container's rotation metadata, or an H.264 display orientation SEI), by which ``decode_frames``
            turns every frame, as a player keeps the first frame's orientation.
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
    rotation: int = 0


_NOT_REGULAR = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe), which would block until something writes to it",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _check_regular_file(name: str, what: str = "video") -> None:
    """Raise unless ``name`` is a regular file (after symlinks): opening a FIFO would block for ever."""
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise VideoNotFoundError(f"cannot read {what} {name!r}: no such file") from None
    except OSError as err:
        raise VideoReadError(f"cannot read {what} {name!r}: {err.strerror}") from err
    if not stat.S_ISREG(mode):
        kind = _NOT_REGULAR.get(stat.S_IFMT(mode), "not a regular file")
        raise VideoReadError(f"cannot read {what} {name!r}: expected a regular file, found {kind}")


def max_video_bytes(max_bytes: int | None = None) -> int:
    """The budget of decoded RGB bytes per call: ``max_bytes`` if given, else ``$TOKSHIFT_ZOO_MAX_VIDEO_BYTES``,
    else ``DEFAULT_MAX_BYTES`` (4 GiB).

    Raises:
        ConfigError: the environment variable is not a positive number of bytes.
    """
    if max_bytes is not None:
        return max_bytes
    value = os.environ.get(MAX_BYTES_ENV)
    if value is None:
        return DEFAULT_MAX_BYTES
    try:
        budget = int(float(value))
    except ValueError:
        budget = 0
    if budget <= 0:
        raise ConfigError(f"{MAX_BYTES_ENV}={value!r}: expected a positive number of bytes, e.g. 8e9")
    return budget


def _check_budget(name: str, frames: int, width: int, height: int, max_bytes: int | None) -> None:
    """Raise before allocating ``frames`` RGB frames of ``width`` x ``height`` if they exceed the budget."""
    need, budget = frames * width * height * 3, max_video_bytes(max_bytes)
    if need > budget:
        raise VideoReadError(
            f"cannot decode video {name!r}: {frames} frames of {width}x{height} would take {_size(need)} as RGB, "
            f"over the budget of {_size(budget)} per video (raise it with max_bytes= or {MAX_BYTES_ENV})"
        )


def _size(num_bytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes} bytes"


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    name = os.fspath(path)
    _check_regular_file(name)
    try:
        return av.open(name, metadata_errors="ignore")
    except av.FFmpegError as err:
        raise VideoReadError(f"cannot read video {name!r}: not a media file FFmpeg can open ({err})") from err


def _video_stream(container: av.container.InputContainer, path: str) -> av.VideoStream:
    """The file's first video stream (container order, ``ffmpeg -map 0:v:0``), its threading set by
    ``codecs.thread_type``: frame threads only where they are known to give the one-thread pixels."""
    if not container.streams.video:
        found = ", ".join(f"{s.type} ({s.codec_context.name})" for s in container.streams) or "no streams"
        raise VideoReadError(f"cannot read video {path!r}: it has no video stream (found: {found})")
    stream = container.streams.video[0]
    stream.thread_type = codecs.thread_type(stream.codec_context.name)
    return stream


def _is_frame(packet: av.Packet) -> bool:
    """Whether the decoder gets this packet: not the end-of-stream marker or a 0-byte packet (Theora's
    "repeat the last frame", which FFmpeg would take for end of stream), not a packet cut by truncation."""
    return packet.size > 0 and not packet.is_corrupt


def _packets(container: av.container.InputContainer, stream: av.VideoStream) -> Iterator[av.Packet | None]:
    """The packets the decoder gets, then ``None`` (flush the decoder's delayed frames)."""
    for packet in container.demux(stream):
        if _is_frame(packet):
            yield packet
    yield None


def _decode(stream: av.VideoStream, packet: av.Packet | None) -> list[av.VideoFrame]:
    """``stream.decode(packet)``, except that an H.264/HEVC packet holding no picture (only delimiter or SEI NAL
    units), which FFmpeg answers with an error ("no frame!"), gives no frame: the ffmpeg command goes on past
    it, and so does the in-order decode."""
    try:
        return stream.decode(packet)
    except av.FFmpegError:
        ctx = stream.codec_context
        holds_picture = codecs.picture_test(ctx.name, ctx.extradata)
        if packet is not None and holds_picture is not None and not holds_picture(memoryview(packet)):
            return []
        raise


def _untimed_reason(container: av.container.InputContainer) -> str | None:
    """Why this container's timestamps cannot number the frames whatever the packets say, or None."""
    flags = container.format.flags
    if flags & av.format.Flags.no_timestamps.value:
        return "a raw elementary stream (timestamps are the parser's guesses)"
    if flags & av.format.Flags.ts_discont.value:
        return f"{container.format.name} (timestamps may jump; seeks are estimates)"
    return None


class _FirstFrame:
    """Decodes a stream's first packets until the first frame comes out, for its size: the size of every frame
    ``decode_frames`` returns. A codec header may say otherwise (a Theora picture offset makes FFmpeg output
    wider frames than the header's picture size)."""

    def __init__(self, stream: av.VideoStream) -> None:
        self.stream, self.size, self.rotation = stream, None, 0

    def feed(self, packet: av.Packet | None) -> None:
        if self.size is not None:
            return
        try:
            for frame in self.stream.decode(packet):
                self.size = frame.width, frame.height
                self.rotation = round(frame.rotation / 90) % 4 * 90
                return
        except av.FFmpegError:  # the in-order decode meets the same error; the next packets may still decode
            pass


def _scan_packets(
    container: av.container.InputContainer, stream: av.VideoStream, path: str
) -> tuple[list[int] | None, list[int], int, _FirstFrame]:
    """One demux pass, decoding only up to the first frame: (sorted pts or None, keyframe indices, frame count,
    the first frame).

    The pts are ``None`` where they cannot number the frames (see ``_untimed_reason``; AVI with a reordering
    codec unless its MPEG-4 Part 2 packets prove to hold no B-frame; missing or repeated timestamps). H.264 and
    HEVC packets that hold no picture (only delimiter or SEI NAL units: the decoder outputs nothing) are no
    frames.
    """
    packets: list[tuple[int | None, bool]] = []
    first = _FirstFrame(stream)
    holds_picture = codecs.picture_test(stream.codec_context.name, stream.codec_context.extradata)
    untimed = _untimed_reason(container)
    # AVI stores no presentation times: only a codec that never reorders frames, or MPEG-4 Part 2 whose
    # packets prove to hold no B-frame, keeps FFmpeg's guessed ones in display order
    guessed_pts = container.format.name in codecs.NO_PRESENTATION_TIMES and stream.codec_context.codec.reorder
    check_vops = guessed_pts and stream.codec_context.name == "mpeg4"
    if guessed_pts and not check_vops:
        untimed = untimed or f"AVI with {stream.codec_context.name}, which may reorder frames"
    try:
        for packet in container.demux(stream):
            if not _is_frame(packet):
                continue
            first.feed(packet)
            if packet.is_discard:  # an edit list's discarded packet is no frame
                continue
            if holds_picture is not None and not holds_picture(memoryview(packet)):
                continue
            packets.append((packet.pts, packet.is_keyframe))
            if check_vops and codecs.mpeg4_reorders(bytes(packet)):
                untimed, check_vops = untimed or "AVI with B-frames", False
    except av.FFmpegError as err:  # damaged data: count what was read before it
        logger.warning("%s: stopped reading packets after %d frames: %s", path, len(packets), err)
    first.feed(None)  # the decoder's delayed frames, if none came out yet
    pts = [p for p, _ in packets]
    if untimed is None and (None in pts or len(set(pts)) < len(pts)):
        untimed = "packets without timestamps or with repeated ones"
    if untimed is not None:
        logger.debug("%s: frames numbered in decoding order: %s", path, untimed)
        return None, [i for i, (_, key) in enumerate(packets) if key], len(packets), first
    order = sorted(range(len(packets)), key=lambda i: pts[i])
    keyframes = [rank for rank, i in enumerate(order) if packets[i][1]]
    return [pts[i] for i in order], keyframes, len(packets), first


def read_video_info(path: str | os.PathLike) -> VideoInfo:
    """Read a video's frame count, rate, size and per-frame timestamps, decoding only up to its first frame.

    Args:
        path: a video file FFmpeg can read (mp4, mkv, webm, avi, mov, ogg, ts, raw h264/mpv, ...).

    Returns:
        The ``VideoInfo`` of the file's first video stream (container order, as ``ffmpeg -map 0:v:0``; other
        video streams are ignored).

    Raises:
        VideoReadError: the file is missing, not a media file, has no video stream or no frames.
    """
    name = os.fspath(path)
    with _open(name) as container:
        stream = _video_stream(container, name)
        pts, keyframes, num_frames, first = _scan_packets(container, stream, name)
        if num_frames == 0:
            raise VideoReadError(f"cannot read video {name!r}: its video stream has no frames")
        ctx = stream.codec_context
        time_base = stream.time_base or Fraction(1, 1)
        width, height = first.size or (ctx.width, ctx.height)
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
            width=width,
            height=height,
            codec=ctx.name,
            pix_fmt=ctx.pix_fmt or "",
            time_base=time_base,
            pts=None if pts is None else tuple(pts),
            keyframes=tuple(keyframes),
            rotation=first.rotation,
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


class _Doubt(Exception):
    """The seek path cannot be sure of a frame; the message says why."""


class _Decoder:
    """Decodes the wanted frames of one file into the output array, counting the work done."""

    def __init__(self, path: str, info: VideoInfo, indices: list[int]) -> None:
        self.path, self.info, self.count = path, info, len(indices)
        self.out: np.ndarray | None = None  # (T, H, W, 3), allocated at the first frame kept
        self.slots: dict[int, list[int]] = {}  # frame index -> its positions in the output
        for slot, index in enumerate(indices):
            self.slots.setdefault(index, []).append(slot)
        self.kept: set[int] = set()
        self.index_of = {pts: i for i, pts in enumerate(info.pts or ())}
        self.decoded = self.seeks = 0

    def _keep(self, frame: av.VideoFrame, index: int) -> None:
        """Convert a frame to RGB at the first frame's size, turned as the first frame's display matrix says."""
        rgb = frame.to_ndarray(format="rgb24", width=self.info.width, height=self.info.height)
        if self.info.rotation:
            rgb = np.rot90(rgb, self.info.rotation // 90)  # counter-clockwise quarter turns
        if self.out is None:
            self.out = np.empty((self.count, *rgb.shape), np.uint8)
        self.out[self.slots[index]] = rgb
        self.kept.add(index)

    def seeking(self) -> None:
        """Seek to the keyframe before each run of wanted frames and decode forward; raises ``_Doubt``."""
        runs = _plan_runs(sorted(self.slots), self.info.keyframes)
        with _open(self.path) as container:
            stream = _video_stream(container, self.path)
            for number, run in enumerate(runs):
                seek_to = _keyframe_before(self.info.keyframes, run[0])
                if number > 0 or seek_to > 0:  # a first run from frame 0 decodes from the start, without a seek
                    if number == 0:
                        self._prime(container, stream)
                    container.seek(self.info.pts[seek_to], stream=stream, backward=True, any_frame=False)
                    self.seeks += 1
                try:
                    self._run(container, stream, run, seek_to)
                except av.FFmpegError as err:
                    raise _Doubt(f"the decoder failed after a seek ({err})") from err

    def _prime(self, container: av.container.InputContainer, stream: av.VideoStream) -> None:
        """Decode the stream's first packet, whose in-band headers the frames after a seek may need."""
        for packet in container.demux(stream):
            if _is_frame(packet):
                try:
                    for _ in stream.decode(packet):
                        self.decoded += 1
                except av.FFmpegError:  # the in-order decode meets the same error: the checks will see to it
                    pass
                return

    def _run(
        self, container: av.container.InputContainer, stream: av.VideoStream, run: list[int], seek_to: int
    ) -> None:
        """Decode from the keyframe ``seek_to`` to ``run[-1]``, keeping the frames in ``run``; non-reference
        frames outside ``run`` are skipped where the codec allows it. Raises ``_Doubt`` on anything the
        in-order decode might not agree with."""
        wanted = set(run)
        wanted_pts = {self.info.pts[index] for index in run}
        index_of = self.index_of
        codec = stream.codec_context
        skip_nonref = codec.name in codecs.NONREF_SKIPPABLE
        last = -1  # the index of the last frame out at or after the keyframe
        for packet in _packets(container, stream):
            if skip_nonref:  # read per packet, also by frame threads: a wanted frame is always decoded
                wanted_packet = packet is None or packet.pts is None or packet.pts in wanted_pts
                codec.skip_frame = "DEFAULT" if wanted_packet else "NONREF"
            for frame in _decode(stream, packet):
                self.decoded += 1
                index = index_of.get(frame.pts)
                if index is None:
                    raise _Doubt(f"a frame came out with timestamp {frame.pts}, which no packet has")
                if index < seek_to and last < 0:
                    continue  # a leading picture of an open GOP, shown before the keyframe: not ours
                if last < 0 and index != seek_to:
                    raise _Doubt(f"the seek to frame {seek_to} gave frame {index} first")
                if index <= last:
                    raise _Doubt(f"frame {index} came out after frame {last}")
                passed = range(last + 1, index) if last >= 0 else range(0)
                if passed and (not skip_nonref or any(i in wanted for i in passed)):
                    raise _Doubt(f"frames {passed.start}-{passed.stop - 1} did not come out")
                if frame.is_corrupt:
                    raise _Doubt(f"frame {index} came out flagged corrupt")
                last = index
                if index in wanted:
                    self._keep(frame, index)
                if index >= run[-1]:
                    return
        raise _Doubt(f"frames up to {run[-1]} did not come out (the last was {last})")

    def in_order(self) -> None:
        """Decode from the start, numbering frames in the order they come out: the in-order decode itself."""
        last = max(self.slots)
        index = 0
        with _open(self.path) as container:
            stream = _video_stream(container, self.path)
            for packet in _packets(container, stream):
                for frame in _decode(stream, packet):
                    self.decoded += 1
                    if index in self.slots:
                        self._keep(frame, index)
                    if index >= last:
                        return
                    index += 1


def decode_frames(
    path: str | os.PathLike,
    indices: Iterable[int],
    info: VideoInfo | None = None,
    *,
    max_bytes: int | None = None,
) -> torch.Tensor:
    """Decode the frames at ``indices`` (0-based, in-order decode), seeking instead of decoding everything.

    The frames are exactly those of decoding every frame in order (same count as ``read_video_info``, same
    pixels): the sorted unique indices are grouped into runs, each run costs one seek to the keyframe before
    its first frame and decoding forward to its last frame (H.264 frames that no other frame references are
    skipped on the way unless wanted), every frame after a seek is checked, and on any doubt the call decodes
    in order from the start instead (see the module docstring; ``decode_stats`` counts the work and the
    fallbacks). A debug record on this module's logger (``logging.getLogger("tokshift_zoo.video.io")``) reports
    the work done, with ``frames_decoded``, ``seeks`` and ``fallback`` (the reason, or ``None``) as record
    attributes.

    Frames come out as a player shows them: converted to RGB at the size of the first frame the decoder gives
    (``VideoInfo.width``/``height``; a stream whose size changes mid-way is scaled to it) and turned by the
    first frame's rotation metadata (``VideoInfo.rotation``: a quarter turn swaps H and W; mirror flags are
    not applied). The same call gives the same pixels every time, whatever the machine's load: frame threads
    decode only the codecs where they are known to be exact (``codecs.thread_type``); the others use slice
    threads or one thread.

    Memory: before anything is decoded, T x H x W x 3 bytes are checked against a budget (``max_bytes``, else
    ``$TOKSHIFT_ZOO_MAX_VIDEO_BYTES``, else 4 GiB); a video over it raises ``VideoReadError``, so a caller
    looping over many videos can go on with the next one.

    Truncated files: frames are counted by demuxing (see ``VideoInfo.num_frames``), so a cut file has as many
    frames as it still holds and any index below that decodes. A frame the decoder fails on raises
    ``VideoReadError``; no frame is ever silently replaced by another.

    Args:
        path: the video file.
        indices: 1-D frame indices in ``[0, num_frames)``, any order, duplicates allowed (an int sequence,
            or a 1-D integer tensor or array).
        info: ``read_video_info(path)`` if already at hand, to skip the packet pass.
        max_bytes: the most bytes the returned frames may take; ``None`` for ``max_video_bytes()``.

    Returns:
        uint8 tensor (T, H, W, 3), RGB, T = len(indices), frames in the order of ``indices``.

    Raises:
        VideoReadError: the file cannot be read (or is no regular file), a wanted frame cannot be decoded, or
            the frames would exceed the budget.
        IndexError: an index is outside ``[0, num_frames)``.
    """
    name = os.fspath(path)
    indices = [operator.index(i) for i in indices]
    info = info if info is not None else read_video_info(name)
    bad = [i for i in indices if not 0 <= i < info.num_frames]
    if bad:
        raise IndexError(f"frame indices {bad[:5]} out of range for {name!r}, which has {info.num_frames} frames")
    if not indices:
        shown = (info.width, info.height) if info.rotation % 180 else (info.height, info.width)
        return torch.empty((0, *shown, 3), dtype=torch.uint8)
    _check_budget(name, len(indices), info.width, info.height, max_bytes)
    decoder = _Decoder(name, info, indices)
    fallback = None
    try:
        if info.pts is None:
            decoder.in_order()
        else:
            try:
                decoder.seeking()
            except _Doubt as doubt:
                fallback = str(doubt)
                logger.info("%s: decoding in order from the start: %s", name, fallback)
                decoder.kept.clear()
                decoder.in_order()
    except av.FFmpegError as err:
        raise VideoReadError(f"cannot decode video {name!r}: {err}") from err
    count_work(
        calls=1,
        frames_decoded=decoder.decoded,
        seeks=decoder.seeks,
        in_order=info.pts is None,
        fallbacks=fallback is not None,
    )
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
        extra={"frames_decoded": decoder.decoded, "seeks": decoder.seeks, "fallback": fallback},
    )
    return torch.from_numpy(decoder.out)


def load_video(path: str | os.PathLike, *, max_bytes: int | None = None) -> torch.Tensor:
    """Decode every frame of a video.

    Args:
        path: the video file.
        max_bytes: the budget of decoded bytes (T x H x W x 3), as for ``decode_frames``.

    Returns:
        uint8 tensor (T, H, W, 3), RGB, T = ``read_video_info(path).num_frames``.

    Raises:
        VideoReadError: the file is missing, unreadable, has no video stream or no frames, or fails to decode.
    """
    info = read_video_info(path)
    return decode_frames(path, range(info.num_frames), info, max_bytes=max_bytes)


def frame_folder_length(folder: str | os.PathLike) -> int:
    """Frames in a folder of extracted frames (``img_00001.jpg``, ``img_00002.jpg``, ...: the authors' layout).

    Raises:
        VideoReadError: the folder does not exist or holds no ``img_00001.jpg``.
    """
    folder = os.fspath(folder)
    if not os.path.isfile(os.path.join(folder, FRAME_TEMPLATE.format(1))):
        raise VideoReadError(f"{folder!r}: expected a folder of frames {FRAME_TEMPLATE.format(1)}, ... ; none found")
    return sum(1 for name in os.listdir(folder) if name.startswith("img_") and name.endswith(".jpg"))


def decode_frame_folder(
    folder: str | os.PathLike, indices: Iterable[int], *, max_bytes: int | None = None
) -> torch.Tensor:
    """Frames ``indices`` (0-based) of a folder of extracted JPEG frames -> uint8 (T, H, W, 3), RGB.

    ``max_bytes`` is the budget of T x H x W x 3 bytes (the first frame's size), as for ``decode_frames``.

    Raises:
        VideoReadError: a frame file is missing, is not a regular file or not a readable JPEG, or the frames
            would exceed the budget.
    """
    indices = [operator.index(index) for index in indices]
    frames = []
    for index in indices:
        path = os.path.join(os.fspath(folder), FRAME_TEMPLATE.format(index + 1))
        _check_regular_file(path, "frame")
        try:
            with Image.open(path) as image:
                if not frames:  # the header's size, before the pixels are decoded
                    _check_budget(os.fspath(folder), len(indices), *image.size, max_bytes)
                frames.append(np.asarray(image.convert("RGB")))
        except OSError as err:  # missing file, or not an image (PIL.UnidentifiedImageError)
            raise VideoReadError(f"cannot read frame {path!r}: {err}") from err
    return torch.from_numpy(np.stack(frames))


# The codec write_video picks for a container when none is given: what the container's players expect.
_CONTAINER_CODECS = {".webm": "libvpx-vp9", ".mp4": "libx264", ".mkv": "libx264", ".mov": "libx264"}


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | torch.Tensor,
    fps: int = 25,
    codec: str | None = None,
    crf: int = 18,
) -> None:
    """Encode uint8 RGB frames (T, H, W, 3) into a video file, written to a temporary name and renamed.

    The container follows the extension (``.mp4``, ``.mkv``, ``.webm``, ``.avi``), and so does the codec unless
    ``codec`` names one: VP9 (``libvpx-vp9``) for ``.webm``, H.264 (``libx264``) for the others. ``crf`` is
    the quality of H.264 and VP9 (lower is better). Pixels are stored as 4:2:0 YUV, so H and W must be even for
    most codecs. On failure no file is left behind.
    """
    codec = codec or _CONTAINER_CODECS.get(Path(path).suffix.lower(), "libx264")
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
            elif codec == "libvpx-vp9":  # constant quality (b:v 0); realtime keeps short test clips quick
                stream.options = {"crf": str(crf), "b:v": "0", "deadline": "realtime", "cpu-used": "8"}
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())

    atomic_write(path, encode)

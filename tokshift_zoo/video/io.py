"""Reading videos with PyAV: frame counts from a demux pass, and only the asked-for frames decoded.

The only module of the package that imports ``av``. A frame index is a position in the in-order decode: the
frames that decoding every packet from the start gives, in the order they come out (what players, the ffmpeg
command and ``load_video`` show). ``decode_frames`` promises exactly those frames, pixel for pixel, and gets them
the fast way where it can be sure:

- A one-time pass over the video stream's packets (no decoding) counts the frames and collects their
  timestamps. Packets that are no frame are left out: 0-byte packets (Theora's "repeat the last frame"),
  packets FFmpeg flags as corrupt (the cut last one of a truncated file), and packets an mp4 edit list discards
  (a ``-ss ... -c copy`` cut keeps the packets back to the keyframe before the cut; the decoder drops their
  frames). Where the sorted timestamps number the frames, an index maps to a timestamp, so variable-frame-rate
  video maps indices to the right frames.
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

Every failure to read a file raises ``VideoReadError`` naming the file and the reason.
"""

from __future__ import annotations

import bisect
import logging
import operator
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
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
    "VideoNotFoundError",
    "DecodeStats",
    "decode_stats",
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

# Containers that store no presentation times: FFmpeg guesses them from the decoding order, which is wrong for a
# codec that reorders frames (B-frames).
_NO_PRESENTATION_TIMES = frozenset({"avi"})
_MPEG4_VOP_START = b"\x00\x00\x01\xb6"
_MPEG4_B_VOP = 2  # vop_coding_type, the two bits after the VOP start code: I 0, P 1, B 2, S 3


class VideoReadError(VideoError):
    """A video file is missing, not a readable media file, has no video stream or no frames, or fails to
    decode."""


class VideoNotFoundError(VideoReadError, FileNotFoundError):
    """No file at the video's path: also a ``FileNotFoundError``, so ordinary handlers catch it."""


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


def _count(**counts: int) -> None:
    global _stats
    with _stats_lock:
        _stats = DecodeStats(**{f.name: getattr(_stats, f.name) + counts.get(f.name, 0) for f in fields(_stats)})


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, read from its headers and one pass over its packets (nothing decoded).

    Attributes:
        path: the file.
        num_frames: frames of the in-order decode, counted by demuxing, not from the container's header (which
            mp4 may overstate for a cut file and mkv/webm do not have): one per video packet, leaving out
            0-byte packets, packets FFmpeg flags as corrupt (the last one of a truncated file) and packets an
            edit list discards.
        fps: average frame rate in frames per second, measured from the timestamps (FFmpeg's stream rate for
            one-frame videos and raw streams, where it may be a guess).
        duration_s: duration in seconds.
        width, height: frame size in pixels as coded, before any rotation metadata (``decode_frames`` turns
            the frames as a player shows them); the first size where the size changes mid-stream.
        codec: FFmpeg's decoder name, e.g. ``"h264"``, ``"vp9"``, ``"mjpeg"``.
        pix_fmt: FFmpeg's pixel format of the coded frames, e.g. ``"yuv420p"``, ``"gray"``, ``"yuv420p10le"``.
        time_base: the unit of ``pts``, in seconds.
        pts: sorted presentation timestamps, one per frame, in ``time_base`` units; ``None`` where timestamps
            cannot number the frames (raw streams, MPEG-TS/PS, AVI with B-frames): those frames are numbered
            in decoding output order and decoded from the start, without seeking.
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
        raise VideoNotFoundError(f"cannot read video {name!r}: no such file")
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


def _mpeg4_reorders(data: bytes) -> bool:
    """Whether an MPEG-4 Part 2 packet holds a B-VOP or more than one VOP (a packed B-frame)."""
    first = data.find(_MPEG4_VOP_START)
    if first < 0 or first + 4 >= len(data):
        return False
    return data.find(_MPEG4_VOP_START, first + 4) >= 0 or data[first + 4] >> 6 == _MPEG4_B_VOP


def _untimed_reason(container: av.container.InputContainer) -> str | None:
    """Why this container's timestamps cannot number the frames whatever the packets say, or None."""
    flags = container.format.flags
    if flags & av.format.Flags.no_timestamps.value:
        return "a raw elementary stream (timestamps are the parser's guesses)"
    if flags & av.format.Flags.ts_discont.value:
        return f"{container.format.name} (timestamps may jump; seeks are estimates)"
    return None


def _scan_packets(
    container: av.container.InputContainer, stream: av.VideoStream, path: str
) -> tuple[list[int] | None, list[int], int]:
    """One demux pass, nothing decoded: (sorted pts or None, keyframe indices, frame count).

    The pts are ``None`` where they cannot number the frames (see ``_untimed_reason``; AVI with a reordering
    codec unless its MPEG-4 Part 2 packets prove to hold no B-frame; missing or repeated timestamps).
    """
    packets: list[tuple[int | None, bool]] = []
    untimed = _untimed_reason(container)
    # AVI stores no presentation times: only a codec that never reorders frames, or MPEG-4 Part 2 whose
    # packets prove to hold no B-frame, keeps FFmpeg's guessed ones in display order
    guessed_pts = container.format.name in _NO_PRESENTATION_TIMES and stream.codec_context.codec.reorder
    check_vops = guessed_pts and stream.codec_context.name == "mpeg4"
    if guessed_pts and not check_vops:
        untimed = untimed or f"AVI with {stream.codec_context.name}, which may reorder frames"
    try:
        for packet in container.demux(stream):
            if not _is_frame(packet) or packet.is_discard:  # an edit list's discarded packet is no frame
                continue
            packets.append((packet.pts, packet.is_keyframe))
            if check_vops and _mpeg4_reorders(bytes(packet)):
                untimed, check_vops = untimed or "AVI with B-frames", False
    except av.FFmpegError as err:  # damaged data: count what was read before it
        logger.warning("%s: stopped reading packets after %d frames: %s", path, len(packets), err)
    pts = [p for p, _ in packets]
    if untimed is None and (None in pts or len(set(pts)) < len(pts)):
        untimed = "packets without timestamps or with repeated ones"
    if untimed is not None:
        logger.debug("%s: frames numbered in decoding order: %s", path, untimed)
        return None, [i for i, (_, key) in enumerate(packets) if key], len(packets)
    order = sorted(range(len(packets)), key=lambda i: pts[i])
    return [pts[i] for i in order], [rank for rank, i in enumerate(order) if packets[i][1]], len(packets)


def read_video_info(path: str | os.PathLike) -> VideoInfo:
    """Read a video's frame count, rate, size and per-frame timestamps without decoding any frame.

    Args:
        path: a video file FFmpeg can read (mp4, mkv, webm, avi, mov, ogg, ts, raw h264/mpv, ...).

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


class _Doubt(Exception):
    """The seek path cannot be sure of a frame; the message says why."""


class _Decoder:
    """Decodes the wanted frames of one file into the output array, counting the work done."""

    def __init__(self, path: str, info: VideoInfo, indices: list[int]) -> None:
        self.path, self.info, self.count = path, info, len(indices)
        self.out: np.ndarray | None = None  # (T, H, W, 3), allocated at the first frame (rotation sets H, W)
        self.slots: dict[int, list[int]] = {}  # frame index -> its positions in the output
        for slot, index in enumerate(indices):
            self.slots.setdefault(index, []).append(slot)
        self.kept: set[int] = set()
        self.index_of = {pts: i for i, pts in enumerate(info.pts or ())}
        self.decoded = self.seeks = 0

    def _keep(self, frame: av.VideoFrame, index: int) -> None:
        """Convert a frame to RGB at the stream's size, turned as a player shows it (rotation metadata)."""
        rgb = frame.to_ndarray(format="rgb24", width=self.info.width, height=self.info.height)
        turns = round(frame.rotation / 90) % 4  # the display matrix: counter-clockwise quarter turns
        if turns:
            rgb = np.rot90(rgb, turns)
        if self.out is None:
            self.out = np.empty((self.count, *rgb.shape), np.uint8)
        self.out[self.slots[index]] = rgb
        self.kept.add(index)

    def seeking(self) -> None:
        """Seek to the keyframe before each run of wanted frames and decode forward; raises ``_Doubt``."""
        runs = _plan_runs(sorted(self.slots), self.info.keyframes)
        with _open(self.path) as container:
            stream = _video_stream(container, self.path)
            stream.thread_type = "AUTO"
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
        skip_nonref = codec.name in _NONREF_SKIPPABLE
        last = -1  # the index of the last frame out at or after the keyframe
        for packet in _packets(container, stream):
            if skip_nonref:  # read per packet, also by frame threads: a wanted frame is always decoded
                wanted_packet = packet is None or packet.pts is None or packet.pts in wanted_pts
                codec.skip_frame = "DEFAULT" if wanted_packet else "NONREF"
            for frame in stream.decode(packet):
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
            stream.thread_type = "AUTO"
            for packet in _packets(container, stream):
                for frame in stream.decode(packet):
                    self.decoded += 1
                    if index in self.slots:
                        self._keep(frame, index)
                    if index >= last:
                        return
                    index += 1


def decode_frames(path: str | os.PathLike, indices: Iterable[int], info: VideoInfo | None = None) -> torch.Tensor:
    """Decode the frames at ``indices`` (0-based, in-order decode), seeking instead of decoding everything.

    The frames are exactly those of decoding every frame in order (same count as ``read_video_info``, same
    pixels): the sorted unique indices are grouped into runs, each run costs one seek to the keyframe before
    its first frame and decoding forward to its last frame (H.264 frames that no other frame references are
    skipped on the way unless wanted), every frame after a seek is checked, and on any doubt the call decodes
    in order from the start instead (see the module docstring; ``decode_stats`` counts the work and the
    fallbacks). A debug record on this module's logger (``logging.getLogger("tokshift_zoo.video.io")``) reports
    the work done, with ``frames_decoded``, ``seeks`` and ``fallback`` (the reason, or ``None``) as record
    attributes.

    Frames come out as a player shows them: converted to RGB at the stream's first size (a stream whose size
    changes mid-way is scaled to it) and turned by the rotation metadata (a quarter turn swaps H and W; mirror
    flags are not applied).

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
    _count(
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

"""What decoding must know about codecs and containers, as pure functions of FFmpeg's names and packet bytes.

``io`` (the only module that imports ``av``) asks this one which threading decodes a codec exactly, which
frames it may skip, which packets hold no picture and which containers store no presentation times. Each
answer is written here once, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

__all__ = [
    "FRAME_THREADED",
    "NONREF_SKIPPABLE",
    "NO_PRESENTATION_TIMES",
    "thread_type",
    "picture_test",
    "mpeg4_reorders",
]

# Decoders whose frame threading is known to give the pixels of a one-thread decode. FFmpeg's frame threading
# decodes several frames at once, each waiting on the rows of the frames it references; that is bit-exact only
# where the decoder announces every shared state in order, which these do: the zoo's corpus
# (tests/test_video_corpus.py) and a survey of 109 real files compared them with one-thread decodes, and 10
# frame-threaded decodes at 16 threads beside a busy process matched every time (issue 24). Not VP3/Theora: with
# frame threads FFmpeg's decoder returns different pixels from run to run (GNOME's help videos: 12 of 20
# decodes wrong at 16 threads, max difference 255; the ffmpeg command shows the same race). Every other
# decoder gets slice threading, which splits one frame's independently coded slices and so cannot race between
# frames; decoders that offer no slice threading (Theora, MPEG-4 Part 2, ...) then use one thread.
FRAME_THREADED = frozenset({"h264", "hevc", "vp8", "vp9"})


def thread_type(codec: str) -> str:
    """PyAV's ``thread_type`` for FFmpeg decoder ``codec``: ``"AUTO"`` (frame and slice threads) where frame
    threading is known to be exact (``FRAME_THREADED``), else ``"SLICE"``."""
    return "AUTO" if codec in FRAME_THREADED else "SLICE"


# Codecs whose non-reference frames (FFmpeg's AVDISCARD_NONREF) no other frame reads and whose packets carry one
# frame each, so a packet's timestamp says which frame it holds: H.264 (a frame with nal_ref_idc 0). Not HEVC,
# where a sub-layer non-reference picture may be referenced by a picture of a higher temporal sub-layer; not
# MPEG-4 Part 2, whose AVI files may pack a B-frame into the packet of the frame before it; not VP8/VP9/AV1,
# whose decoders apply the setting differently.
NONREF_SKIPPABLE = frozenset({"h264"})

# Containers that store no presentation times: FFmpeg guesses them from the decoding order, which is wrong for a
# codec that reorders frames (B-frames).
NO_PRESENTATION_TIMES = frozenset({"avi"})

_MPEG4_VOP_START = b"\x00\x00\x01\xb6"
_MPEG4_B_VOP = 2  # vop_coding_type, the two bits after the VOP start code: I 0, P 1, B 2, S 3


def mpeg4_reorders(data: bytes) -> bool:
    """Whether an MPEG-4 Part 2 packet holds a B-VOP or more than one VOP (a packed B-frame)."""
    first = data.find(_MPEG4_VOP_START)
    if first < 0 or first + 4 >= len(data):
        return False
    return data.find(_MPEG4_VOP_START, first + 4) >= 0 or data[first + 4] >> 6 == _MPEG4_B_VOP


# H.264 and HEVC packets may hold only NAL units that are no picture (an access unit delimiter, SEI, parameter
# sets, end of stream): the decoder outputs nothing for them. The NAL unit types that carry a picture's slices:
_SLICE_NAL_TYPES: dict[str, Callable[[int], bool]] = {
    "h264": lambda header: (header & 0x1F) in (1, 2, 3, 4, 5, 20, 21),  # coded slices, incl. SVC/MVC ones
    "hevc": lambda header: (header >> 1) & 0x3F < 32,  # VCL NAL unit types 0-31
}
# Where the avcC / hvcC configuration record (mp4, mkv: length-prefixed NAL units) keeps its length size - 1
_LENGTH_SIZE_BYTE = {"h264": 4, "hevc": 21}


def picture_test(codec: str, extradata: bytes | None) -> Callable[[memoryview], bool] | None:
    """A test of whether a packet's bytes hold a picture, for codecs whose packets may hold none (H.264, HEVC:
    an access unit of only delimiter or SEI NAL units); ``None`` for the others, whose packets all count.

    ``extradata`` is the stream's codec extradata: a configuration record (first byte 1) means length-prefixed
    NAL units (mp4, mkv), anything else start codes (Annex B: raw streams, MPEG-TS). A packet the test cannot
    parse counts as a picture, so the test only ever leaves out packets it has read to the end.
    """
    is_slice = _SLICE_NAL_TYPES.get(codec)
    if is_slice is None:
        return None
    at = _LENGTH_SIZE_BYTE[codec]
    if extradata and extradata[0] == 1 and len(extradata) > at:
        return partial(_length_prefixed_has_slice, length_size=(extradata[at] & 3) + 1, is_slice=is_slice)
    return partial(_start_coded_has_slice, is_slice=is_slice)


def _length_prefixed_has_slice(data: memoryview, length_size: int, is_slice: Callable[[int], bool]) -> bool:
    pos, end = 0, len(data)
    while pos < end:
        if pos + length_size >= end:
            return True  # not a whole NAL unit: count it
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if size == 0 or pos + size > end:
            return True
        if is_slice(data[pos]):
            return True
        pos += size
    return False


def _start_coded_has_slice(data: memoryview, is_slice: Callable[[int], bool]) -> bool:
    raw = bytes(data)
    pos = raw.find(b"\x00\x00\x01")
    if pos < 0:
        return True  # no start code at all: not Annex B after all, count it
    while pos >= 0:
        if pos + 3 < len(raw) and is_slice(raw[pos + 3]):
            return True
        pos = raw.find(b"\x00\x00\x01", pos + 3)
    return False

"""A regression corpus of real-world video kinds: ``decode_frames`` against an in-order decode, pixel for pixel.

The files are written once per session by the ``ffmpeg`` command (Debian's package; the tests that need it skip
with the reason when it is absent) and by PyAV: the five causes of wrong frames found on real files (mp4 edit
lists, AVI with packed B-frames, a decoder that needs the first packets after a seek, Theora's 0-byte packets,
raw MPEG-1 streams) and the kinds around them (HEVC, AV1, VP9 with alt-ref frames, open-GOP B-pyramids,
fragmented mp4, MPEG-TS, VFR, interlaced, rotation metadata, a size change, raw elementary streams) and the
odd files of issue 24 (Theora with duplicated frames, a Theora picture offset that makes frames wider than the
header says, a display orientation SEI, two video streams, a trailing access unit with no picture, an odd size
coded larger). Each file is compared with the in-order decode (every packet decoded from the start with one
decoder thread, the frames in the order they come out) over the index sets that predict, evaluate and training
take from the zoo's samplers, and the count with ``ffprobe -count_frames``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from videos import index_frames, read_index, set_theora_picture_offset, write_video

from tokshift_zoo.video import codecs
from tokshift_zoo.video.io import decode_frames, decode_stats, load_video, read_video_info
from tokshift_zoo.video.sampling import dense_indices, uniform_indices

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
needs_ffmpeg = pytest.mark.skipif(
    FFMPEG is None or FFPROBE is None,
    reason="the ffmpeg command is not installed (Debian: apt-get install ffmpeg; .ci/run installs it as root)",
)
FRAMES, HEIGHT, WIDTH, FPS = 48, 48, 64, 25
QUIET = ["-hide_banner", "-loglevel", "error", "-y"]


def _encoders() -> str:
    if FFMPEG is None:
        return ""
    return subprocess.run([FFMPEG, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout


def ffmpeg(*args: str | Path, frames: np.ndarray | None = None, rate: int = FPS) -> None:
    """Run the ffmpeg command; ``frames`` (T, H, W, 3) RGB go in on stdin as raw video at ``rate`` fps."""
    head = []
    if frames is not None:
        size = f"{frames.shape[2]}x{frames.shape[1]}"
        head = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", size, "-r", str(rate), "-i", "-"]
    stdin = None if frames is None else np.ascontiguousarray(frames).tobytes()
    subprocess.run([FFMPEG, *QUIET, *head, *map(str, args)], input=stdin, check=True, capture_output=True)


# --- the files ------------------------------------------------------------------------------------------------
X264_GOP12 = "-c:v libx264 -pix_fmt yuv420p -x264-params keyint=12:min-keyint=12:scenecut=0:bframes=3"
VP9_ALT_REF = "-c:v libvpx-vp9 -g 12 -auto-alt-ref 1 -lag-in-frames 12 -deadline good -cpu-used 8"


def make_edit_list_cut(path: Path) -> None:
    """Cause 1: ``-ss ... -c copy`` starts at the keyframe before the cut and writes an edit list that
    discards the packets up to the cut (1.3 s = frame 32.5; the keyframe is frame 24)."""
    full = path.with_name("uncut.mp4")
    ffmpeg(*X264_GOP12.split(), full, frames=index_frames(FRAMES))
    ffmpeg("-ss", "1.3", "-i", full, "-c", "copy", path)


def make_packed_b_frames(path: Path) -> None:
    """Cause 2: Xvid (libxvid) packs each B-frame into the packet of the P-frame after it in AVI."""
    ffmpeg("-c:v", "libxvid", "-bf", "2", "-g", "12", path, frames=index_frames(FRAMES))


def make_old_x264_build(path: Path) -> None:
    """Cause 3: lossless 4:4:4 intra H.264 whose version SEI (only in the first packet) names x264 core 150:
    FFmpeg then predicts some 8x8 blocks the way those old x264 builds did. A decoder that starts at a later
    IDR frame never sees the SEI and decodes those blocks differently, with no error."""
    raw = path.with_suffix(".h264")
    noise = f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS},noise=alls=40:allf=t"
    lossless_intra_444 = "-frames:v 30 -c:v libx264 -pix_fmt yuv444p -qp 0 -g 1 -f h264".split()
    ffmpeg("-f", "lavfi", "-i", noise, *lossless_intra_444, raw)
    data, count = re.subn(rb"x264 - core \d+", b"x264 - core 150", raw.read_bytes(), count=1)
    assert count == 1, "libx264 wrote no version SEI"
    raw.write_bytes(data)
    ffmpeg("-r", str(FPS), "-i", raw, "-c", "copy", path)


def make_theora_zero_byte_packets(path: Path) -> None:
    """Cause 4: Theora in Ogg with 0-byte packets (the encoder's "repeat the last frame"), put in by a PyAV
    remux after every 5th packet."""
    plain = path.with_name("plain.ogv")
    ffmpeg("-c:v", "libtheora", "-g", "12", "-q:v", "5", plain, frames=index_frames(FRAMES))
    with av.open(str(plain)) as source, av.open(str(path), "w", format="ogg") as target:
        stream_in = source.streams.video[0]
        stream_out = target.add_stream_from_template(stream_in, opaque=True)
        shift = 0
        for packet in source.demux(stream_in):
            if packet.size == 0:
                continue
            packet.pts, packet.dts, packet.stream = packet.pts + shift, packet.dts + shift, stream_out
            target.mux(packet)
            if packet.pts % 5 == 4 and not packet.is_keyframe:
                empty = av.Packet(0)
                empty.pts = empty.dts = packet.pts + 1
                empty.time_base, empty.stream = packet.time_base, stream_out
                target.mux(empty)
                shift += 1


def make_rotated(path: Path) -> None:
    """An iPhone-like portrait video: coded 64x48, shown turned a quarter (display matrix 90 degrees)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"bf": "2", "g": "12"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.set_display_rotation(90)
        for rgb in index_frames(24):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())


def make_size_change(path: Path) -> None:
    """H.264 whose size changes at a keyframe mid-stream (two raw streams joined, remuxed into mkv; no B-frames,
    whose raw timestamps the remux could not fill in)."""
    first, second = path.with_name("first.h264"), path.with_name("second.h264")
    x264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-x264-params", "keyint=12:scenecut=0:bframes=0", "-f", "h264"]
    ffmpeg(*x264, first, frames=index_frames(range(24)))
    ffmpeg(*x264, second, frames=index_frames(range(24, 48), height=32, width=48))
    joined = path.with_name("joined.h264")
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    ffmpeg("-r", str(FPS), "-i", joined, "-c", "copy", path)


def make_vfr(path: Path) -> None:
    """Variable frame rate with B-frames, written by PyAV with per-frame timestamps."""
    gaps_ms = [40, 10, 250, 40, 100, 20, 500, 40] * 6
    timestamps = np.concatenate([[0], np.cumsum(gaps_ms)[: FRAMES - 1]]).tolist()
    write_video(path, index_frames(FRAMES), timestamps_ms=timestamps, gop=12, options={"bf": "3"})


def make_theora_duplicates(path: Path) -> None:
    """Theora from the ffmpeg command with 0-byte packets of its own: ``-vf fps`` turns 5 fps into 25 by
    duplicating frames, and libtheora writes some duplicates as 0-byte packets ("repeat the last frame")."""
    ffmpeg("-vf", "fps=25", "-c:v", "libtheora", "-q:v", "6", "-g", "12", path, frames=index_frames(16), rate=5)


def make_theora_picture_offset(path: Path) -> None:
    """Theora at an odd 214x150 (coded 224x160) whose header then places the picture 4 pixels from the left:
    FFmpeg crops the left only as far as keeps the planes aligned, so frames come out 218 wide."""
    frames = index_frames(FRAMES, height=150, width=214)
    ffmpeg("-c:v", "libtheora", "-q:v", "6", "-g", "12", path, frames=frames)
    set_theora_picture_offset(path, 4)


def make_rotation_sei(path: Path) -> None:
    """H.264 turned by a display orientation SEI (the h264_metadata bitstream filter), which only the first
    access unit carries: every frame is turned as the first one says."""
    orientation = "h264_metadata=display_orientation=insert:rotate=90"
    ffmpeg(*X264_GOP12.split(), "-bsf:v", orientation, path, frames=index_frames(FRAMES))


def make_two_video_streams(path: Path) -> None:
    """Two video streams: the index frames first (not flagged default), a larger one flagged default second.
    ``decode_frames`` reads the first, as ``ffmpeg -map 0:v:0``."""
    first, second = path.with_name("first.mkv"), path.with_name("second.mkv")
    ffmpeg(*X264_GOP12.split(), first, frames=index_frames(FRAMES))
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=96x64:rate={FPS}", "-frames:v", "30", "-c:v", "libx264", second)
    maps = ["-map", "0:v", "-map", "1:v", "-c", "copy", "-disposition:v:0", "0", "-disposition:v:1", "default"]
    ffmpeg("-i", first, "-i", second, *maps, path)


def make_trailing_aud(path: Path) -> None:
    """H.264 whose last access unit is only an access unit delimiter NAL (decodes to no picture), appended to
    the Annex B stream; ``.mp4`` remuxes that stream, keeping the delimiter as a sample of its own."""
    raw = path.with_name("body.h264")
    x264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-x264-params", "keyint=4:scenecut=0:bframes=0", "-f", "h264"]
    ffmpeg(*x264, raw, frames=index_frames(11))
    delimiter = b"\x00\x00\x00\x01\x09\xf0"  # nal_unit_type 9, primary_pic_type 7, stop bit
    if path.suffix == ".h264":
        path.write_bytes(raw.read_bytes() + delimiter)
    else:
        raw.write_bytes(raw.read_bytes() + delimiter)
        ffmpeg("-r", str(FPS), "-i", raw, "-c", "copy", path)


def make_odd_size(path: Path) -> None:
    """H.264 4:4:4 at 97x61, coded as 112x64 macroblocks and cropped by the SPS."""
    ffmpeg(*X264_GOP12.replace("yuv420p", "yuv444p").split(), path, frames=index_frames(FRAMES, height=61, width=97))


def encode(args: str) -> Callable[[Path], None]:
    """A maker that encodes the index frames with these ffmpeg output options (space-separated)."""
    return lambda path: ffmpeg(*args.split(), path, frames=index_frames(FRAMES))


@dataclass(frozen=True)
class Kind:
    name: str  # the file name: its extension picks the container
    make: Callable[[Path], None]
    seeks: bool  # the fast path (seeking) serves it; otherwise it is decoded in order from the start
    encoder: str | None = None  # an ffmpeg encoder that must be present


CAUSES = [
    Kind("edit_list_cut.mp4", make_edit_list_cut, True, "libx264"),
    Kind("xvid_packed.avi", make_packed_b_frames, False, "libxvid"),
    Kind("x264_core150_444.mp4", make_old_x264_build, True, "libx264"),
    Kind("theora_zero_byte.ogv", make_theora_zero_byte_packets, False, "libtheora"),  # Ogg: timestamps may jump
    Kind("mpeg1.mpv", encode("-c:v mpeg1video -bf 2 -g 12 -f mpeg1video"), False),
]
X265 = "-c:v libx265 -x265-params log-level=error:keyint=12:min-keyint=12:scenecut=0:bframes=3"
KINDS = [
    *CAUSES,
    Kind("hevc_open_gop.mp4", encode(X265 + ":open-gop=1"), True, "libx265"),
    Kind("av1.mkv", encode("-c:v libaom-av1 -cpu-used 8 -g 12"), True, "libaom-av1"),
    Kind("vp9_alt_ref.webm", encode(VP9_ALT_REF), True, "libvpx-vp9"),
    Kind("x264_open_gop_pyramid.mkv", encode(X264_GOP12 + ":b-pyramid=normal:open-gop=1"), True, "libx264"),
    Kind("fragmented.mp4", encode(X264_GOP12 + " -movflags frag_keyframe+empty_moov"), True, "libx264"),
    Kind("mpegts.ts", encode(X264_GOP12 + " -f mpegts"), False, "libx264"),
    Kind("vfr.mp4", make_vfr, True),
    Kind("interlaced_x264.mp4", encode(X264_GOP12 + ":tff=1 -flags +ildct+ilme"), True, "libx264"),
    Kind("interlaced_mpeg2.mkv", encode("-c:v mpeg2video -flags +ildct+ilme -top 1 -bf 2 -g 12"), True),
    Kind("rotated.mp4", make_rotated, True),
    Kind("size_change.mkv", make_size_change, True, "libx264"),
    Kind("raw.h264", encode(X264_GOP12 + " -f h264"), False, "libx264"),
    Kind("raw.hevc", encode(X265 + " -f hevc"), False, "libx265"),
    Kind("raw.m4v", encode("-c:v mpeg4 -bf 2 -g 12 -f m4v"), False),
    Kind("mpeg4_b_frames.avi", encode("-c:v mpeg4 -vtag xvid -bf 2 -g 12"), False),
    Kind("mpeg4_no_b_frames.avi", encode("-c:v mpeg4 -vtag xvid -bf 0 -g 12"), True),
]
ODD = [  # issue 24
    Kind("theora_duplicates.ogv", make_theora_duplicates, False, "libtheora"),
    Kind("theora_picture_offset.ogv", make_theora_picture_offset, False, "libtheora"),
    Kind("rotation_sei.mp4", make_rotation_sei, True, "libx264"),
    Kind("two_video_streams.mkv", make_two_video_streams, True, "libx264"),
    Kind("trailing_aud.h264", make_trailing_aud, False, "libx264"),
    Kind("trailing_aud.mp4", make_trailing_aud, True, "libx264"),
    Kind("odd_size_444.mp4", make_odd_size, True, "libx264"),
]
KINDS += ODD


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every kind's file, written once per session (kinds whose encoder this ffmpeg lacks are left out)."""
    encoders = _encoders()
    files = {}
    for kind in KINDS:
        if kind.encoder is not None and not re.search(rf"\s{re.escape(kind.encoder)}\s", encoders):
            continue
        folder = tmp_path_factory.mktemp(Path(kind.name).stem)
        kind.make(folder / kind.name)
        files[kind.name] = folder / kind.name
    return files


def corpus_file(corpus: dict[str, Path], kind: Kind) -> Path:
    if kind.name not in corpus:
        pytest.skip(f"this ffmpeg has no {kind.encoder} encoder")
    return corpus[kind.name]


# --- the reference --------------------------------------------------------------------------------------------
def in_order_decode(path: Path) -> np.ndarray:
    """Every frame of the first video stream, decoding every packet from the start with one decoder thread, in
    the order frames come out (as players do: 0-byte and corrupt packets are not sent to the decoder, which
    drops the frames of edit-list-discarded packets; a packet the decoder refuses is passed over), at the first
    frame's size, turned as the first frame's display matrix says: uint8 (T, H, W, 3)."""
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type, stream.thread_count = "SLICE", 1
        packets = [p for p in container.demux(stream) if p.size > 0 and not p.is_corrupt]
        size = turns = None
        for packet in [*packets, None]:
            try:
                decoded = stream.decode(packet)
            except av.InvalidDataError:  # the ffmpeg command reports it and goes on (an AU with no picture)
                continue
            for frame in decoded:
                if size is None:
                    size, turns = (frame.width, frame.height), round(frame.rotation / 90) % 4
                rgb = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
                frames.append(np.rot90(rgb, turns))
    return np.stack(frames)


def ffprobe_frame_count(path: Path) -> int:
    args = ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames"]
    out = subprocess.run([FFPROBE, *args, "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0].strip(","))  # MPEG-TS lists the stream again under its program


def index_sets(n: int) -> dict[str, list[int]]:
    """The frame indices predict (10 clips), evaluate (1 clip) and training (random clips) take, dense and
    uniform, plus a second half that makes the first seek land past the first keyframe."""
    generator = torch.Generator().manual_seed(0)
    sets = {
        "predict dense 8x4, 10 clips": dense_indices(n, 8, 4, num_clips=10),
        "predict dense 8x32, 10 clips": dense_indices(n, 8, 32, num_clips=10),
        "evaluate dense 8x2": dense_indices(n, 8, 2),
        "evaluate uniform 8, 3 clips": uniform_indices(n, 8, num_clips=3),
        "train dense 8x2": dense_indices(n, 8, 2, training=True, generator=generator),
        "train uniform 8": uniform_indices(n, 8, training=True, generator=generator),
    }
    sets = {name: indices.flatten().tolist() for name, indices in sets.items()}
    sets["second half"] = list(range(n // 2, n))
    sets["last, middle, first"] = [n - 1, n // 2, 0, n // 2]
    return sets


@needs_ffmpeg
@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_frames_are_those_of_the_in_order_decode(corpus, kind):
    path = corpus_file(corpus, kind)
    reference = in_order_decode(path)
    info = read_video_info(path)
    assert info.num_frames == len(reference) == ffprobe_frame_count(path)
    assert (info.pts is not None) == kind.seeks  # where the timestamps number the frames
    before = decode_stats()
    for name, indices in index_sets(info.num_frames).items():
        frames = decode_frames(path, indices, info)
        assert np.array_equal(frames.numpy(), reference[indices]), f"{kind.name}: {name} {indices}"
    work = decode_stats() - before
    assert work.fallbacks == 0  # the fast path was sure on every set
    assert work.in_order == (0 if kind.seeks else work.calls)
    if kind.seeks:
        assert work.seeks > 0


# --- each file has the property it stands for -----------------------------------------------------------------
def _packets(path: Path) -> list[av.Packet]:
    with av.open(str(path)) as container:
        return [p for p in container.demux(container.streams.video[0]) if p.size > 0 or p.pts is not None]


@needs_ffmpeg
def test_edit_list_cut_shows_from_the_cut(corpus):
    path = corpus_file(corpus, CAUSES[0])
    discarded = [p for p in _packets(path) if p.is_discard]
    assert len(discarded) >= 5  # back to the keyframe before the cut, each once counted as a frame
    info = read_video_info(path)
    assert info.num_frames == FRAMES - 33  # frames 33..47 of the source: what players show
    assert read_index(decode_frames(path, [0, info.num_frames - 1], info)) == [33, FRAMES - 1]


@needs_ffmpeg
def test_packed_b_frames_come_out_in_display_order(corpus):
    path = corpus_file(corpus, CAUSES[1])
    packed = [p for p in _packets(path) if bytes(p).count(b"\x00\x00\x01\xb6") == 2]
    assert packed, "libxvid packed no B-frame"
    reference = in_order_decode(path)
    frames = decode_frames(path, [10, 11, 12, 13])
    assert np.array_equal(frames.numpy(), reference[10:14])


@needs_ffmpeg
def test_first_packet_state_survives_a_seek(corpus):
    path = corpus_file(corpus, CAUSES[2])
    reference = in_order_decode(path)
    with av.open(str(path)) as container:  # a fresh decoder sought to a later IDR frame decodes other pixels
        stream = container.streams.video[0]
        container.seek(read_video_info(path).pts[15], stream=stream)
        fresh = [f.to_ndarray(format="rgb24") for _, f in zip(range(15), container.decode(stream), strict=False)]
    assert any(not np.array_equal(a, b) for a, b in zip(fresh, reference[15:], strict=True))
    assert np.array_equal(decode_frames(path, range(15, 30)).numpy(), reference[15:])


@needs_ffmpeg
def test_zero_byte_packets_are_no_frames(corpus):
    path = corpus_file(corpus, CAUSES[3])
    assert sum(p.size == 0 for p in _packets(path)) >= 5
    info = read_video_info(path)
    assert info.num_frames == FRAMES
    assert read_index(decode_frames(path, [FRAMES - 1, 20, 0], info)) == [FRAMES - 1, 20, 0]


@needs_ffmpeg
def test_raw_mpeg1_first_frame(corpus):
    path = corpus_file(corpus, CAUSES[4])
    assert read_index(decode_frames(path, [0, 1, FRAMES - 1])) == [0, 1, FRAMES - 1]
    info = read_video_info(path)
    assert info.num_frames == FRAMES and info.pts is None  # the parser's timestamps are not used


@needs_ffmpeg
def test_rotation_metadata_turns_frames_as_a_player_shows_them(corpus, tmp_path):
    path = corpus_file(corpus, next(k for k in KINDS if k.name == "rotated.mp4"))
    info = read_video_info(path)
    assert (info.width, info.height) == (WIDTH, HEIGHT)  # as coded
    frames = decode_frames(path, [3, 7], info).numpy()
    assert frames.shape == (2, WIDTH, HEIGHT, 3)  # portrait, as shown
    assert read_index(np.rot90(frames, -1, axes=(1, 2))) == [3, 7]
    shown = tmp_path / "shown.rgb"  # the ffmpeg command turns frames by the display matrix, as players do
    ffmpeg("-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", shown)
    by_ffmpeg = np.fromfile(shown, np.uint8).reshape(-1, WIDTH, HEIGHT, 3)[[3, 7]]
    assert np.abs(frames.astype(int) - by_ffmpeg).mean() < 2  # the same picture, up to RGB rounding


@needs_ffmpeg
def test_size_change_is_scaled_to_the_first_size(corpus):
    path = corpus_file(corpus, next(k for k in KINDS if k.name == "size_change.mkv"))
    frames = decode_frames(path, [30, 5])
    assert frames.shape == (2, HEIGHT, WIDTH, 3)
    assert read_index(frames) == [30, 5]


def test_packets_without_pts_order_are_decoded_in_order(tmp_path):
    """MPEG-4 in AVI without B-frames seeks; with them (native ffmpeg encoder via PyAV) it decodes in order."""
    plain = write_video(tmp_path / "plain.avi", index_frames(30), codec="mpeg4", gop=10)
    b_frames = write_video(tmp_path / "b.avi", index_frames(30), codec="mpeg4", gop=10, options={"bf": "2"})
    assert read_video_info(plain).pts is not None
    assert read_video_info(b_frames).pts is None
    assert read_index(decode_frames(b_frames, [29, 11, 12, 0])) == [29, 11, 12, 0]


def test_decode_stats_count_the_work(tmp_path):
    path = write_video(tmp_path / "clip.mp4", index_frames(40), gop=10)
    raw = write_video(tmp_path / "clip.h264", index_frames(40), gop=10)
    before = decode_stats()
    decode_frames(path, [35, 5])
    decode_frames(raw, [3])
    work = decode_stats() - before
    assert (work.calls, work.in_order, work.fallbacks) == (2, 1, 0)
    assert work.seeks >= 1 and work.frames_decoded >= 3
    assert decode_stats().calls >= 2


def test_a_doubt_after_a_seek_falls_back_to_the_in_order_decode(tmp_path, monkeypatch, caplog):
    """Timestamps that do not map (here: the stream's are shifted under the decoder's feet) make the call
    decode in order from the start, counted as a fallback, and still return the right frames."""
    path = write_video(tmp_path / "clip.mp4", index_frames(40), gop=10)
    info = read_video_info(path)
    shifted = type(info)(**{**info.__dict__, "pts": tuple(p + 1 for p in info.pts)})
    before = decode_stats()
    with caplog.at_level("INFO", logger="tokshift_zoo.video.io"):
        frames = decode_frames(path, [35, 5], shifted)
    assert read_index(frames) == [35, 5]
    assert (decode_stats() - before).fallbacks == 1
    assert "decoding in order from the start" in caplog.text


# --- issue 24: the odd files, each against what it stands for ---------------------------------------------------
def odd_file(corpus: dict[str, Path], name: str) -> Path:
    return corpus_file(corpus, next(k for k in ODD if k.name == name))


def ffmpeg_rgb(path: Path, width: int, height: int, *args: str) -> np.ndarray:
    """The ffmpeg command's own decode (``-map 0:v:0``, one thread) as RGB frames (T, height, width, 3)."""
    out = path.with_name(path.name + ".rgb")
    ffmpeg("-threads", "1", "-i", path, "-map", "0:v:0", *args, "-f", "rawvideo", "-pix_fmt", "rgb24", out)
    return np.fromfile(out, np.uint8).reshape(-1, height, width, 3)


def ffprobe_stream(path: Path, entries: str) -> list[str]:
    args = ["-v", "error", "-select_streams", "v:0", "-show_entries", f"stream={entries}", "-of", "csv=p=0"]
    return subprocess.run([FFPROBE, *args, str(path)], capture_output=True, text=True, check=True).stdout.split(",")


@needs_ffmpeg
def test_theora_decodes_the_same_every_time_beside_a_busy_process(corpus):
    """FFmpeg's Theora decoder races with frame threads (GNOME's help videos: wrong pixels in 12 of 20 decodes
    at 16 threads); the zoo decodes it without them, so every call beside a busy process gives the one-thread
    decode."""
    path = odd_file(corpus, "theora_duplicates.ogv")
    assert sum(p.size == 0 for p in _packets(path)) >= 3  # ffmpeg's libtheora wrote 0-byte packets
    assert codecs.thread_type("theora") == "SLICE"  # which the Theora decoder lacks: one thread
    reference = in_order_decode(path)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        results = [load_video(path).numpy() for _ in range(10)]
    finally:
        busy.kill()
        busy.wait()
    assert all(np.array_equal(frames, reference) for frames in results)


@needs_ffmpeg
def test_frames_have_the_decoded_size_not_the_header_size(corpus):
    path = odd_file(corpus, "theora_picture_offset.ogv")
    assert ffprobe_stream(path, "width,height,coded_width") == ["214", "150", "224\n"]  # the header's sizes
    info = read_video_info(path)
    assert (info.width, info.height) == (218, 150)  # what FFmpeg's decoder outputs
    frames = decode_frames(path, [0, 5, FRAMES - 1], info)
    assert frames.shape == (3, 150, 218, 3)
    assert read_index(frames) == [0, 5, FRAMES - 1]
    by_ffmpeg = ffmpeg_rgb(path, 218, 150)  # the ffmpeg command gives frames of that size too
    assert len(by_ffmpeg) == info.num_frames
    assert np.abs(frames.numpy().astype(int) - by_ffmpeg[[0, 5, FRAMES - 1]]).mean() < 2  # up to RGB rounding


@needs_ffmpeg
def test_a_display_orientation_sei_turns_every_frame(corpus):
    path = odd_file(corpus, "rotation_sei.mp4")
    with av.open(str(path)) as container:  # the SEI is in the first access unit only
        rotations = [frame.rotation for frame in container.decode(video=0)]
    assert rotations[0] == 90 and set(rotations[1:]) == {0}
    info = read_video_info(path)
    assert (info.width, info.height, info.rotation) == (WIDTH, HEIGHT, 90)
    frames = decode_frames(path, [30, 3, 40], info).numpy()  # the first seek lands past the SEI
    assert frames.shape == (3, WIDTH, HEIGHT, 3)
    assert read_index(np.rot90(frames, -1, axes=(1, 2))) == [30, 3, 40]


@needs_ffmpeg
def test_the_first_video_stream_is_read(corpus):
    path = odd_file(corpus, "two_video_streams.mkv")
    with av.open(str(path)) as container:
        sizes = [(s.width, s.height, bool(s.disposition & av.stream.Disposition.default)) for s in container.streams]
    assert sizes == [(WIDTH, HEIGHT, False), (96, 64, True)]  # the second is larger and flagged default
    info = read_video_info(path)
    assert (info.num_frames, info.width, info.height) == (FRAMES, WIDTH, HEIGHT)
    frames = decode_frames(path, [40, 2], info)
    assert read_index(frames) == [40, 2]
    by_ffmpeg = ffmpeg_rgb(path, WIDTH, HEIGHT)  # -map 0:v:0
    assert np.abs(frames.numpy().astype(int) - by_ffmpeg[[40, 2]]).mean() < 2


@needs_ffmpeg
@pytest.mark.parametrize("name", ["trailing_aud.h264", "trailing_aud.mp4"])
def test_a_trailing_access_unit_without_a_picture_is_no_frame(corpus, name):
    path = odd_file(corpus, name)
    assert sum(p.size > 0 for p in _packets(path)) == 12  # 11 pictures and the delimiter
    info = read_video_info(path)
    assert info.num_frames == 11 == ffprobe_frame_count(path)
    assert read_index(decode_frames(path, [10, 0], info)) == [10, 0]
    assert read_index(decode_frames(path, dense_indices(11, 8, 2)[0], info)) == dense_indices(11, 8, 2)[0].tolist()
    assert len(load_video(path)) == 11


@needs_ffmpeg
def test_an_odd_size_is_the_display_size_not_the_coded_size(corpus):
    path = odd_file(corpus, "odd_size_444.mp4")
    with av.open(str(path)) as container:  # whole macroblocks, cropped by the SPS
        stream = container.streams.video[0]
        next(container.decode(stream))
        assert (stream.codec_context.coded_width, stream.codec_context.coded_height) == (112, 64)
    info = read_video_info(path)
    assert (info.width, info.height) == (97, 61)
    frames = decode_frames(path, [FRAMES - 1, 13], info)
    assert frames.shape == (2, 61, 97, 3) and read_index(frames) == [FRAMES - 1, 13]
    assert np.abs(frames.numpy().astype(int) - ffmpeg_rgb(path, 97, 61)[[FRAMES - 1, 13]]).mean() < 2

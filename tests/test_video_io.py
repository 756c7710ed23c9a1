import logging
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from videos import index_frames, read_index, write_audio_only, write_video

from tokshift_zoo.errors import ConfigError
from tokshift_zoo.video import codecs
from tokshift_zoo.video import io as video_io
from tokshift_zoo.video.io import VideoReadError, decode_frames, load_video, read_video_info
from tokshift_zoo.video.sampling import dense_indices

SCRAMBLED = [37, 3, 3, 12, 0, 25, 39, 38]  # unsorted, duplicated, first and last frames


@pytest.mark.parametrize(
    "name, codec",
    [
        ("h264.mp4", "libx264"),  # B-frames: decoding order differs from presentation order
        ("vp9.webm", "libvpx-vp9"),
        ("h264.mkv", "libx264"),
        ("mjpeg.avi", "mjpeg"),  # every frame a keyframe
        ("mpeg4.avi", "mpeg4"),
        ("mpeg4.mp4", "mpeg4"),
        ("h264.h264", "libx264"),  # raw stream, no timestamps: decoded in order
        ("h264.ts", "libx264"),  # MPEG-TS: timestamps may jump, seeks are estimates: decoded in order
    ],
)
def test_decoded_frames_are_the_written_ones(tmp_path, name, codec):
    path = write_video(tmp_path / name, index_frames(40), codec=codec, gop=10)
    info = read_video_info(path)
    assert (info.num_frames, info.width, info.height) == (40, 64, 48)
    frames = decode_frames(path, SCRAMBLED, info)
    assert frames.dtype == torch.uint8 and frames.shape == (len(SCRAMBLED), 48, 64, 3)
    assert read_index(frames) == SCRAMBLED
    assert read_index(decode_frames(path, torch.tensor(SCRAMBLED))) == SCRAMBLED  # tensor indices, no info


def test_video_info_fields(tmp_path):
    path = write_video(tmp_path / "clip.mp4", index_frames(45), fps=15)
    info = read_video_info(path)
    assert info.path == str(path)
    assert (info.num_frames, info.codec, info.pix_fmt) == (45, "h264", "yuv420p")
    assert info.fps == pytest.approx(15)
    assert info.duration_s == pytest.approx(3.0, abs=0.07)
    assert len(info.pts) == 45 and list(info.pts) == sorted(info.pts)
    assert info.keyframes[0] == 0
    assert "clip.mp4" in repr(info) and "pts=" not in repr(info)  # the per-frame tuples stay out of the repr


def test_only_the_requested_frames_are_decoded(tmp_path, caplog):
    path = write_video(tmp_path / "long.mp4", index_frames(600), gop=30)
    indices = dense_indices(600, num_frames=8, stride=2, num_clips=3).flatten()  # 3 spans of 16 frames
    with caplog.at_level(logging.DEBUG, logger="tokshift_zoo.video.io"):
        frames = decode_frames(path, indices)
    assert read_index(frames) == indices.tolist()
    (record,) = [r for r in caplog.records if hasattr(r, "frames_decoded")]
    # at most a keyframe interval before each clip (x264 adds keyframes at scene cuts: a few more seeks)
    assert 24 <= record.frames_decoded <= 3 * (30 + 16)
    assert 3 <= record.seeks <= 24


@pytest.mark.parametrize("name", ["h264.mp4", "h264.mkv"])
def test_non_reference_frames_are_skipped_on_the_way(tmp_path, caplog, name):
    options = {"x264-params": "scenecut=0:bframes=3:b-pyramid=normal"}  # the middle B-frame is a reference
    path = write_video(tmp_path / name, index_frames(60), gop=60, options=options)
    assert read_video_info(path).keyframes == (0,)  # so reaching frame 50 means going through frames 0-49
    wanted = [50, 13, 14]
    with caplog.at_level(logging.DEBUG, logger="tokshift_zoo.video.io"):
        frames = decode_frames(path, wanted)
    (record,) = [r for r in caplog.records if hasattr(r, "frames_decoded")]
    assert record.frames_decoded <= 40  # of the 51 frames up to frame 50: the B-frames not wanted are skipped
    assert torch.equal(frames, load_video(path)[wanted])  # bit for bit what decoding every frame gives


def test_load_video_decodes_everything_in_order(tmp_path):
    path = write_video(tmp_path / "clip.webm", index_frames(20))
    frames = load_video(path)
    assert frames.shape == (20, 48, 64, 3)
    assert read_index(frames) == list(range(20))


@pytest.mark.parametrize("name", ["vfr.mp4", "vfr.mkv", "vfr.webm"])
def test_variable_frame_rate_maps_indices_by_timestamp(tmp_path, name):
    gaps_ms = [33, 10, 250, 33, 100, 33, 500, 20, 33, 33] * 3
    timestamps = np.concatenate([[0], np.cumsum(gaps_ms)[:-1]]).tolist()
    path = write_video(tmp_path / name, index_frames(30), timestamps_ms=timestamps, gop=5)
    info = read_video_info(path)
    assert info.num_frames == 30
    seconds = [float(p * info.time_base) for p in info.pts]
    np.testing.assert_allclose(seconds, np.array(timestamps) / 1000, atol=1e-3)
    assert info.fps == pytest.approx(29 / (timestamps[-1] / 1000), rel=1e-3)  # measured, not nominal
    assert read_index(decode_frames(path, [29, 7, 6, 0, 15], info)) == [29, 7, 6, 0, 15]


def test_odd_size(tmp_path):
    path = write_video(tmp_path / "odd.mp4", index_frames(12, height=61, width=97), pix_fmt="yuv444p")
    frames = load_video(path)
    assert frames.shape == (12, 61, 97, 3)
    assert read_index(frames) == list(range(12))


def test_grayscale(tmp_path):
    path = write_video(tmp_path / "gray.mkv", index_frames(12), codec="ffv1", pix_fmt="gray")
    assert read_video_info(path).pix_fmt == "gray"
    frames = decode_frames(path, [11, 2])
    assert frames.shape == (2, 48, 64, 3)
    assert torch.equal(frames[..., 0], frames[..., 2])  # grey comes out as R = G = B
    assert read_index(frames) == [11, 2]


def test_ten_bit(tmp_path):
    try:
        path = write_video(tmp_path / "10bit.mp4", index_frames(12), pix_fmt="yuv420p10le")
    except av.FFmpegError as err:
        pytest.skip(f"this FFmpeg's libx264 cannot encode yuv420p10le: {err}")
    assert read_video_info(path).pix_fmt == "yuv420p10le"
    frames = decode_frames(path, [5, 11])
    assert frames.dtype == torch.uint8 and read_index(frames) == [5, 11]


def test_one_frame_video(tmp_path):
    path = write_video(tmp_path / "one.mp4", index_frames([7]))
    info = read_video_info(path)
    assert info.num_frames == 1 and info.fps > 0
    assert read_index(load_video(path)) == [7]
    assert read_index(decode_frames(path, dense_indices(1, 8, 32)[0])) == [7] * 8


def test_empty_index_list(tmp_path):
    path = write_video(tmp_path / "clip.mp4", index_frames(5))
    assert decode_frames(path, []).shape == (0, 48, 64, 3)


def test_out_of_range_index_names_the_file(tmp_path):
    path = write_video(tmp_path / "clip.mp4", index_frames(5))
    with pytest.raises(IndexError, match=r"clip\.mp4.*5 frames"):
        decode_frames(path, [0, 5])
    with pytest.raises(IndexError, match="clip.mp4"):
        decode_frames(path, [-1])


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(VideoReadError, match=r"nope\.mp4.*no such file"):
        read_video_info(tmp_path / "nope.mp4")
    with pytest.raises(FileNotFoundError, match=r"nope\.mp4.*no such file"):  # what ordinary handlers catch
        load_video(tmp_path / "nope.mp4")
    with pytest.raises(VideoReadError, match="directory"):
        load_video(tmp_path)


def test_text_file_is_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not frames\n")
    with pytest.raises(VideoReadError, match=r"notes\.mp4.*not a media file"):
        decode_frames(path, [0])


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = write_audio_only(tmp_path / "sound.m4a")
    with pytest.raises(VideoReadError, match=r"sound\.m4a.*no video stream.*audio \(aac\)"):
        read_video_info(path)


def test_zero_frame_video(tmp_path):
    path = write_video(tmp_path / "empty.avi", np.zeros((0, 48, 64, 3), np.uint8))
    with pytest.raises(VideoReadError, match=r"empty\.avi.*no frames"):
        load_video(path)


def test_truncated_mp4_without_its_index_is_unreadable(tmp_path):
    path = write_video(tmp_path / "cut.mp4", index_frames(30))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # the moov index is at the end
    with pytest.raises(VideoReadError, match=r"cut\.mp4"):
        read_video_info(path)


@pytest.mark.parametrize("name", ["cut.mkv", "cut.avi"])
def test_truncated_file_has_the_frames_it_still_holds(tmp_path, name):
    path = write_video(tmp_path / name, index_frames(60), gop=10)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    info = read_video_info(path)
    assert 0 < info.num_frames < 60  # avi's header still says 60; the cut last packet is not counted
    last = info.num_frames - 1
    assert read_index(decode_frames(path, [last, 0], info)) == [last, 0]
    with pytest.raises(IndexError, match=name):
        decode_frames(path, [info.num_frames], info)


@pytest.mark.parametrize("name, codec", [("out.mp4", "libx264"), ("out.webm", "libvpx-vp9"), ("out.avi", "mjpeg")])
def test_library_writer_round_trips_and_leaves_no_partial_file(tmp_path, name, codec):
    frames = index_frames(range(12))
    video_io.write_video(tmp_path / name, frames, fps=12, codec=codec)
    assert read_index(load_video(tmp_path / name)) == list(range(12))
    assert [p.name for p in tmp_path.iterdir()] == [name]
    with pytest.raises(ValueError, match=r"uint8 frames \(T, H, W, 3\)"):
        video_io.write_video(tmp_path / "bad.mp4", frames.astype(np.float32))


def test_library_writer_picks_the_codec_the_container_suits(tmp_path):
    frames = index_frames(range(6))
    for name, codec in [("a.webm", "vp9"), ("a.mp4", "h264"), ("a.mkv", "h264")]:
        video_io.write_video(tmp_path / name, frames, fps=12)
        assert read_video_info(tmp_path / name).codec == codec
        assert read_index(load_video(tmp_path / name)) == list(range(6))


def _within(seconds: float, fn):
    """Call ``fn`` in a thread and return what it raised, failing if it is still running after ``seconds``."""
    outcome = []

    def run():
        try:
            fn()
            outcome.append(None)
        except Exception as err:  # noqa: BLE001 - the caller checks what was raised
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_fifo_named_like_a_video_fails_at_once(tmp_path):
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came
    for read in (read_video_info, load_video, lambda path: decode_frames(path, [0])):
        err = _within(30, lambda read=read: read(fifo))
        assert isinstance(err, VideoReadError) and not isinstance(err, FileNotFoundError)
        assert re.search(r"clip\.mp4.*expected a regular file, found a FIFO", str(err))
    folder = tmp_path / "frames"
    folder.mkdir()
    os.mkfifo(folder / "img_00001.jpg")
    err = _within(30, lambda: video_io.decode_frame_folder(folder, [0]))
    assert isinstance(err, VideoReadError) and "img_00001.jpg" in str(err) and "FIFO" in str(err)


@pytest.fixture(scope="module")
def huge_frame(tmp_path_factory) -> Path:
    """One 8000x8000 frame of one colour, H.264 written by the ffmpeg command (about 200 KB on disk)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg command is not installed")
    path = tmp_path_factory.mktemp("huge") / "huge.mp4"
    args = ["-f", "lavfi", "-i", "color=c=0x3366cc:s=8000x8000", "-frames:v", "1", "-c:v", "libx264"]
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", *args, "-preset", "ultrafast", str(path)]
    subprocess.run(command, check=True, capture_output=True)
    return path


@pytest.mark.slow  # writes and decodes an 8000x8000 frame: about 8 s on 2 shared cores
def test_a_video_over_the_byte_budget_fails_before_allocating(huge_frame, monkeypatch):
    info = read_video_info(huge_frame)
    assert (info.width, info.height, info.num_frames) == (8000, 8000, 1)
    views = dense_indices(1, 8, 32, num_clips=10).flatten()  # the paper's 10 clips: 80 frames, 14.3 GiB
    with pytest.raises(VideoReadError, match=r"huge\.mp4.*80 frames of 8000x8000 would take 14\.3 GiB.*4\.0 GiB"):
        decode_frames(huge_frame, views, info)
    monkeypatch.setenv(video_io.MAX_BYTES_ENV, "1e8")  # one frame is 192 MB
    with pytest.raises(VideoReadError, match=r"1 frames of 8000x8000 would take 183\.1 MiB.*95\.4 MiB"):
        load_video(huge_frame)
    frames = decode_frames(huge_frame, [0], info, max_bytes=200_000_000)  # an explicit budget wins
    assert frames.shape == (1, 8000, 8000, 3)
    assert torch.allclose(frames[0, ::1000, ::1000].float().mean((0, 1)), torch.tensor([51.0, 102, 204]), atol=3)


def test_the_byte_budget_applies_to_frame_folders_and_is_checked(tmp_path, monkeypatch):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(1, 4):
        Image.fromarray(index_frames([index], height=480, width=640)[0]).save(folder / f"img_{index:05d}.jpg")
    assert video_io.decode_frame_folder(folder, [0, 2]).shape == (2, 480, 640, 3)
    with pytest.raises(VideoReadError, match=r"frames.*3 frames of 640x480 would take 2\.6 MiB"):
        video_io.decode_frame_folder(folder, [0, 1, 2], max_bytes=2_000_000)
    monkeypatch.setenv(video_io.MAX_BYTES_ENV, "lots")
    with pytest.raises(ConfigError, match=r"TOKSHIFT_ZOO_MAX_VIDEO_BYTES='lots': expected a positive number"):
        video_io.decode_frame_folder(folder, [0])


def test_frame_threads_only_where_they_are_known_to_be_exact():
    assert {codec: codecs.thread_type(codec) for codec in ("h264", "hevc", "vp9", "theora", "mpeg4", "mjpeg")} == {
        "h264": "AUTO",
        "hevc": "AUTO",
        "vp9": "AUTO",
        "theora": "SLICE",  # frame-threaded Theora races (issue 24); it has no slice threads: one thread
        "mpeg4": "SLICE",
        "mjpeg": "SLICE",
    }

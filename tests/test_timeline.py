"""Timelines of a long video: the windows, their scores against the model on the same frames, CSV, the plot."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest
import torch
from conftest import TINY_ARGS
from PIL import Image
from safetensors.torch import save_file
from videos import index_frames, read_index, write_video

import tokshift_zoo
from tokshift_zoo import resolve_data_config
from tokshift_zoo.cli import main
from tokshift_zoo.errors import VideoError
from tokshift_zoo.inference import VideoPreprocess, predict_logits
from tokshift_zoo.timeline import plot_timeline, timeline, timeline_windows, window_row
from tokshift_zoo.video import load_video

KWARGS = dict(TINY_ARGS, num_frames=4)  # 4x32 clips: a 128-frame window, 5.12 s at 25 fps


@pytest.fixture
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return tokshift_zoo.create_model("tokshift_base16_224_8f", **KWARGS).eval()


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """A 16-second (400-frame) 25 fps H.264 file whose frames encode their index."""
    return write_video(tmp_path_factory.mktemp("long") / "long.mp4", index_frames(range(400)), fps=25)


def test_windows_cover_the_video_and_score_like_the_model_on_their_frames(model, long_video):
    line = timeline(model, long_video, stride_s=2.0, crops=3, windows_per_decode=3)
    # windows of 128 frames start every 50 frames while they fit in 400: 0, 50, ..., 250
    assert line.starts_s == pytest.approx([0, 2, 4, 6, 8, 10]) and line.ends_s == pytest.approx(
        [5.12 + 2 * i for i in range(6)]
    )
    assert line.frames.tolist() == [[s + 32 * k for k in range(4)] for s in range(0, 300, 50)]
    frames = load_video(long_video)  # every frame, to check that only the right ones were decoded per window
    preprocess = VideoPreprocess(resolve_data_config(model), "1x3")
    for w, start in enumerate(range(0, 300, 50)):
        window = frames[start : start + 128]  # the window alone: the model's own sampler picks the same frames
        assert read_index(window[preprocess.sample(window)[0][0]]) == line.frames[w].tolist()
        expected = predict_logits(model, preprocess(window)).softmax(-1)
        torch.testing.assert_close(line.scores[w], expected)
    rows = line.rows(topk=2)
    assert rows[1]["window"] == 1 and rows[1]["start_s"] == 2.0 and len(rows[1]["predictions"]) == 2
    assert rows[1]["predictions"][0]["index"] == int(line.scores[1].argmax())


def test_a_short_video_gives_one_window_and_bad_settings_are_refused(model, tmp_path):
    short = write_video(tmp_path / "short.mp4", index_frames(range(40)), fps=25)
    line = timeline(model, short, stride_s=1.0)
    assert len(line.starts_s) == 1 and line.frames.tolist() == [[0, 32, 24, 16]]  # wraps, as dense sampling does
    with pytest.raises(ValueError, match="positive number of seconds"):
        timeline(model, short, stride_s=0)
    demo = tokshift_zoo.create_model("tokshift_demo_motion")  # samples uniformly: no fixed clip span
    with pytest.raises(ValueError, match="no fixed clip span.*--window"):
        timeline(demo, short, stride_s=1.0)
    assert len(timeline(demo.eval(), short, stride_s=0.4, window_s=0.8).starts_s) == 3  # 20-frame windows
    folder = tmp_path / "frames"  # a frame folder: predict takes it, but it has no time to place windows in
    folder.mkdir()
    for i, frame in enumerate(index_frames(range(40))):
        Image.fromarray(frame).save(folder / f"img_{i + 1:05d}.jpg")
    with pytest.raises(VideoError, match="frame folder, with no frame rate.*expected a video file"):
        timeline(model, folder, stride_s=1.0)


def test_a_model_run_by_onnx_runtime_gives_the_same_timeline(tmp_path):
    pytest.importorskip("onnxruntime", reason="needs the [onnx] extra: pip install 'tokshift-zoo[onnx]'")
    pytest.importorskip("onnxscript", reason="needs the [onnx] extra: pip install 'tokshift-zoo[onnx]'")
    from tokshift_zoo.export import runtime_model

    video = write_video(tmp_path / "short.mp4", index_frames(range(40)), fps=25)
    demo = tokshift_zoo.create_model("tokshift_demo_motion", pretrained=True).eval()
    eager = timeline(demo, video, stride_s=0.4, window_s=0.8)
    exported = timeline(runtime_model(demo, "onnxruntime"), video, stride_s=0.4, window_s=0.8)
    assert exported.starts_s == eager.starts_s and exported.frames.tolist() == eager.frames.tolist()
    torch.testing.assert_close(exported.scores, eager.scores, atol=1e-5, rtol=1e-4)
    assert exported.rows(2)[1]["predictions"][0]["label"] == eager.rows(2)[1]["predictions"][0]["label"]


def test_plot_file_and_a_clear_error_without_matplotlib(model, long_video, tmp_path, monkeypatch):
    line = timeline(model, long_video, stride_s=4.0)
    path = plot_timeline(line, tmp_path / "timeline.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob(".*incomplete*"))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match=r"tokshift-zoo\[plot\]"):
        plot_timeline(line, tmp_path / "again.png")


def test_cli_timeline_as_json_lines_and_csv_with_a_plot(model, long_video, tmp_path, capsys):
    checkpoint = tmp_path / "tiny.safetensors"
    save_file(model.state_dict(), checkpoint)
    argv = ["predict", str(long_video), "--model", "tokshift_base16_224_8f", "--checkpoint", str(checkpoint)]
    argv += ["--model-kwargs", json.dumps(KWARGS), "--device", "cpu", "--timeline", "5", "--topk", "3"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["start_s"] for row in rows] == [0.0, 5.0, 10.0] and len(rows[0]["predictions"]) == 3
    assert main(argv + ["--csv", "--plot", str(tmp_path / "t.png")]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == 9 and table[3]["window"] == "1" and table[3]["rank"] == "1"
    assert float(table[3]["score"]) == rows[1]["predictions"][0]["score"]
    assert (tmp_path / "t.png").stat().st_size > 0
    assert main(argv[:-4] + ["--timeline", "5", "--views", "2x3"]) == 2
    assert "--views 1x1 or 1x3" in capsys.readouterr().err


def test_a_few_frames_whose_timestamps_span_ten_hours_give_one_window_per_frame(model, tmp_path):
    hours = 10 * 3600 * 1000
    video = write_video(
        tmp_path / "sparse.mkv", index_frames(range(20)), fps=25, timestamps_ms=[i * hours // 19 for i in range(20)]
    )
    assert video.stat().st_size < 20_000  # a small file; its header says 10 hours
    windows = list(timeline_windows(model, video, stride_s=2.0, window_s=8.0))  # 18,000 windows at 2 s a frame
    assert [w.index for w in windows] == list(range(20)) and [w.frames[0].item() for w in windows] == list(range(20))
    assert windows[-1].start_s == pytest.approx(36000.0, abs=1)  # each window at its frame's own time
    line = timeline(model, video, stride_s=2.0, window_s=8.0)
    assert line.starts_s == [w.start_s for w in windows] and line.rows(2)[5] == window_row(
        str(video), windows[5], None, 2
    )

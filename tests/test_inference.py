"""Multi-view prediction and evaluation on real video files, through the library and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_ARGS
from safetensors.torch import save_file
from videos import index_frames, read_index, write_video

import tokshift_zoo
from tokshift_zoo import resolve_data_config
from tokshift_zoo.cli import main
from tokshift_zoo.inference import VideoPreprocess, evaluate, predict, predict_logits, predict_videos

TINY_KWARGS = json.dumps(TINY_ARGS)


@pytest.fixture
def clip_file(tmp_path):
    """A 300-frame 64x48 H.264 file whose frames encode their index."""
    return write_video(tmp_path / "clip.mp4", index_frames(range(300)), fps=30)


def test_preprocess_samples_the_frames_of_each_view_from_the_file(tiny_model, clip_file):
    config = resolve_data_config(tiny_model)
    preprocess = VideoPreprocess(config, views="3x1")
    frames = preprocess.frames(clip_file)  # (clips, T, 3, H, W)
    assert frames.shape == (3, 8, 3, 48, 64)
    decoded = [read_index(clip.permute(0, 2, 3, 1)) for clip in frames]
    # 3 clips of 8x32, the authors' rule: int(k * 300 / 3) clipped to 300 - 255
    assert decoded == [[start + 32 * k for k in range(8)] for start in (0, 45, 45)]
    views = preprocess(clip_file)
    assert views.shape == (3, 3, 8, 32, 32) and views.dtype == torch.float32
    assert -1.0 <= views.min() and views.max() <= 1.0


def test_preprocess_accepts_decoded_frames_in_both_layouts(tiny_model):
    frames = torch.from_numpy(index_frames(range(40)))  # (T, H, W, 3)
    preprocess = VideoPreprocess(resolve_data_config(tiny_model), views="2x3")
    thwc = preprocess(frames)
    assert thwc.shape == (6, 3, 8, 32, 32)
    torch.testing.assert_close(preprocess(frames.permute(0, 3, 1, 2)), thwc)
    torch.testing.assert_close(preprocess(frames.numpy()), thwc)
    with pytest.raises(ValueError, match=r"uint8 frames \(T, H, W, 3\)"):
        preprocess(frames.float())


def test_views_are_averaged_logits(tiny_model, clip_file):
    preprocess = VideoPreprocess(resolve_data_config(tiny_model), views="2x3")
    views = preprocess(clip_file)
    with torch.no_grad():
        expected = tiny_model(views).mean(0)
    torch.testing.assert_close(predict_logits(tiny_model, views, batch_size=4), expected)
    top = predict(tiny_model, clip_file, views="2x3", topk=4)
    torch.testing.assert_close(
        torch.tensor([p["score"] for p in top]), expected.softmax(-1).sort(descending=True)[0], atol=1e-6, rtol=0
    )
    assert [p["index"] for p in top] == expected.argsort(descending=True).tolist()
    assert top[0]["label"] == str(top[0]["index"])  # 4 classes: the K400 names do not apply


def test_evaluate_reports_accuracy_and_goes_on_after_a_bad_file(tiny_model, tmp_path):
    videos = [write_video(tmp_path / f"v{i}.mp4", index_frames(range(20 + i)), fps=25) for i in range(3)]
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with torch.no_grad():
        predicted = [int(predict(tiny_model, v, views="1x1", topk=1)[0]["index"]) for v in videos]
    samples = [(str(v), p) for v, p in zip(videos, predicted, strict=True)]
    samples.append((str(videos[0]), (predicted[0] + 1) % 4))  # one wrong on purpose
    samples.append((str(tmp_path / "broken.mp4"), 0))
    result = evaluate(tiny_model, samples, views="1x1", progress=False)
    assert result["videos"] == 4 and result["top1"] == pytest.approx(75.0) and result["top5"] == 100.0
    assert len(result["failed"]) == 1 and "broken.mp4" in result["failed"][0]


@pytest.mark.cuda
def test_evaluate_and_predict_videos_on_cuda_agree_with_cpu(tiny_model, tmp_path):
    """Logits come back from the GPU for the merge: the same report and answers as on the CPU."""
    from tokshift_zoo.inference import predict_videos

    videos = [write_video(tmp_path / f"v{i}.mp4", index_frames(range(20 + i)), fps=25) for i in range(3)]
    samples = [(str(v), i % 4) for i, v in enumerate(videos)]
    on_cpu = evaluate(tiny_model, samples, views="1x3", progress=False)
    on_cuda = evaluate(tiny_model.to("cuda"), samples, views="1x3", progress=False)
    for key in ("top1", "top5", "mean_class_accuracy"):
        assert on_cuda[key] == pytest.approx(on_cpu[key]), key
    assert (on_cuda["videos"], on_cuda["failed"]) == (on_cpu["videos"], on_cpu["failed"]) == (3, [])
    answers = predict_videos(tiny_model, videos, views="1x3", topk=1, progress=False)
    assert [a["predictions"][0]["index"] for a in answers] == [
        p[0]["index"] for p in predict(tiny_model.to("cpu"), videos, views="1x3", topk=1)
    ]


def test_evaluate_metrics_equal_numbers_computed_here(tmp_path):
    """8 classes (top-5 is not trivial), each label chosen at a given rank of its video's scores, one video listed
    twice (its class counts twice), so that top-1, top-5 and mean per-class accuracy all differ; each is
    recomputed here from the model's own outputs."""
    torch.manual_seed(1)
    model = tokshift_zoo.create_model("tokshift_base16_224_8f", **dict(TINY_ARGS, num_classes=8)).eval()
    config = resolve_data_config(model)
    videos = [write_video(tmp_path / f"v{i}.mp4", index_frames(range(16 + 3 * i)), fps=25) for i in range(6)]
    videos.append(videos[3])
    ranks = [0, 0, 0, 3, 6, 7, 3]  # the label is the class at this rank of the video's averaged logits
    samples = []
    for video, rank in zip(videos, ranks, strict=True):
        with torch.no_grad():
            logits = model(VideoPreprocess(config, views="2x1")(video)).mean(0)
        samples.append((str(video), int(logits.argsort(descending=True)[rank])))
    top1 = 100 * sum(r == 0 for r in ranks) / len(ranks)
    top5 = 100 * sum(r < 5 for r in ranks) / len(ranks)
    per_class: dict[int, list[bool]] = {}
    for (_, label), rank in zip(samples, ranks, strict=True):
        per_class.setdefault(label, []).append(rank == 0)
    mean_class = 100 * sum(sum(hits) / len(hits) for hits in per_class.values()) / len(per_class)
    assert len({round(top1, 3), round(top5, 3), round(mean_class, 3)}) == 3  # a case where each metric differs

    result = evaluate(model, samples, views="2x1", batch_size=1, progress=False)
    assert result["top1"] == pytest.approx(top1) and result["top5"] == pytest.approx(top5)
    assert result["mean_class_accuracy"] == pytest.approx(mean_class)


def test_predict_runs_in_the_models_dtype_unless_autocast_is_asked_for(tiny_model, clip_file):
    views = VideoPreprocess(resolve_data_config(tiny_model), views="1x3")(clip_file)
    with torch.no_grad():
        expected = tiny_model(views).mean(0)
    assert torch.equal(predict_logits(tiny_model, views), expected)  # no autocast: the float32 result exactly
    mixed = predict_logits(tiny_model, views, amp="bf16")
    assert mixed.dtype == torch.float32 and not torch.equal(mixed, expected)
    torch.testing.assert_close(mixed, expected, atol=0.1, rtol=0.1)
    with pytest.raises(ValueError, match="amp must be one of"):
        predict_logits(tiny_model, views, amp="int8")


def test_frame_folder_of_the_authors_layout(tiny_model, tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(index_frames(range(70))):
        Image.fromarray(frame).save(folder / f"img_{i + 1:05d}.jpg", quality=95)
    frames = VideoPreprocess(resolve_data_config(tiny_model)).frames(folder)
    assert read_index(frames[0].permute(0, 2, 3, 1)) == [(k * 32) % 70 for k in range(8)]


def _tiny_checkpoint(model, path):
    save_file(model.state_dict(), path)
    return str(path)


def test_cli_predict_json_matches_the_library(tiny_model, clip_file, tmp_path, capsys):
    checkpoint = _tiny_checkpoint(tiny_model, tmp_path / "tiny.safetensors")
    argv = ["predict", str(clip_file), "--model", "tokshift_base16_224_8f", "--checkpoint", checkpoint]
    assert (
        main(argv + ["--model-kwargs", TINY_KWARGS, "--views", "2x3", "--topk", "2", "--json", "--device", "cpu"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["video"] == str(clip_file) and out["model"] == checkpoint
    expected = predict(tiny_model, clip_file, views="2x3", topk=2)
    assert [p["index"] for p in out["predictions"]] == [p["index"] for p in expected]
    assert np.allclose([p["score"] for p in out["predictions"]], [p["score"] for p in expected], atol=1e-5)


def test_cli_predict_goes_on_after_a_bad_file_and_fails_at_the_end(tiny_model, clip_file, tmp_path, capsys):
    checkpoint = _tiny_checkpoint(tiny_model, tmp_path / "tiny.safetensors")
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    argv = ["predict", str(bad), str(clip_file), "--model", "tokshift_base16_224_8f", "--checkpoint", checkpoint]
    assert main(argv + ["--model-kwargs", TINY_KWARGS, "--json"]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert "error" in lines[0] and "notes.txt" in lines[0]["error"]
    assert lines[1]["video"] == str(clip_file) and len(lines[1]["predictions"]) == 4
    assert "notes.txt" in captured.err


def test_cli_evaluate_prints_a_json_summary(tiny_model, tmp_path, capsys):
    checkpoint = _tiny_checkpoint(tiny_model, tmp_path / "tiny.safetensors")
    for i in range(2):
        write_video(tmp_path / f"v{i}.mp4", index_frames(range(30)), fps=25)
    (tmp_path / "val.txt").write_text("v0.mp4 1\nv1.mp4 2\n")
    argv = ["evaluate", "--model", "tokshift_base16_224_8f", "--checkpoint", checkpoint, "--model-kwargs", TINY_KWARGS]
    assert main(argv + ["--list", str(tmp_path / "val.txt"), "--data-root", str(tmp_path), "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["videos"] == 2 and set(result) >= {"top1", "top5", "mean_class_accuracy", "failed"}


def test_cli_evaluate_refuses_a_list_with_missing_files(tiny_model, tmp_path, capsys):
    checkpoint = _tiny_checkpoint(tiny_model, tmp_path / "tiny.safetensors")
    (tmp_path / "val.txt").write_text("missing.mp4 1\n")
    argv = ["evaluate", "--model", "tokshift_base16_224_8f", "--checkpoint", checkpoint, "--model-kwargs", TINY_KWARGS]
    assert main(argv + ["--list", str(tmp_path / "val.txt"), "--data-root", str(tmp_path)]) == 2
    assert "missing.mp4" in capsys.readouterr().err


def test_predict_takes_a_list_of_videos(tiny_model, clip_file, tmp_path):
    other = write_video(tmp_path / "other.webm", index_frames(range(40)), fps=25)
    results = tokshift_zoo.predict(tiny_model, [str(clip_file), other], topk=2)
    assert results == [predict(tiny_model, clip_file, topk=2), predict(tiny_model, other, topk=2)]


@pytest.fixture
def fresh_notices(monkeypatch):
    """Warnings said once per process: start from none said."""
    from tokshift_zoo import notices

    monkeypatch.setattr(notices, "_said", set())


def test_short_videos_and_other_frame_counts_are_said_once(tiny_model, tmp_path, caplog, fresh_notices):
    short = write_video(tmp_path / "short.mp4", index_frames(range(64)), fps=25)  # 8x32 clips span 256 frames
    predict(tiny_model, short, views="3x1")
    predict(tiny_model, short, views="3x1")
    text = caplog.text
    assert text.count("a video of 64 frames is shorter than the 8x32 clip spans 256 frames") == 1
    assert "wrap around to the start" in text
    assert text.count("3 test clips per video were asked for, but a video of 64 frames has only 1 distinct") == 1

    caplog.clear()
    uniform = tokshift_zoo.create_model("tokshift_demo_motion", num_classes=4).eval()
    predict(uniform, write_video(tmp_path / "five.mp4", index_frames(range(5)), fps=25))
    assert "a video of 5 frames has fewer than the 8 frames a clip needs: frames are repeated" in caplog.text

    caplog.clear()
    with torch.inference_mode():
        tiny_model(torch.zeros(1, 3, 4, 32, 32))
        tiny_model(torch.zeros(2, 3, 4, 32, 32))
    assert caplog.text.count("trained on 8-frame clips and is given 4 frames: it runs on them as they are") == 1


def test_predict_and_evaluate_default_to_the_records_views_and_say_which_ran(tiny_model, clip_file):
    assert tiny_model.weights.views == "10x3"  # the k400 record's test protocol
    assert predict(tiny_model, clip_file, topk=4) == predict(tiny_model, clip_file, views="10x3", topk=4)
    tiny_model.weights = tiny_model.weights.with_views(2, 1)  # what load(..., views="2x1") does
    assert predict(tiny_model, clip_file, topk=4) == predict(tiny_model, clip_file, views="2x1", topk=4)
    assert predict(tiny_model, clip_file, topk=4) != predict(tiny_model, clip_file, views="1x3", topk=4)
    result = evaluate(tiny_model, [(str(clip_file), 0)], progress=False)
    ran = {"views": "2x1", "sampling": "dense 8x32", "start_rule": "authors"}
    assert result["views"] == "2x1" and result["protocol"] == dict(ran, weights=tiny_model.weights.key, sha256=None)
    [row] = predict_videos(tiny_model, [clip_file], topk=4, progress=False)
    assert row["protocol"] == result["protocol"] and row["predictions"] == predict(tiny_model, clip_file, topk=4)


# A process whose address space has 400 MiB to spare once the model is loaded: a 4000x4000 video (366 MiB for
# its 8 decoded frames alone) runs out of memory, the small ones do not. Prints what each loop returned.
_SHORT_OF_MEMORY = """
import json, resource, sys
import torch
torch.set_num_threads(1)
import tokshift_zoo
from tokshift_zoo.embeddings import embed
from tokshift_zoo.inference import evaluate, predict_videos

small, big, output = sys.argv[1], sys.argv[2], sys.argv[3]
model = tokshift_zoo.load("tokshift_demo_motion", device="cpu")
predict_videos(model, [small], progress=False)  # warm: thread pools and caches exist before the limit
size = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + 400 * 2**20, resource.RLIM_INFINITY))
videos = [small, big, small.replace("small", "other")]
print(json.dumps({
    "predict": predict_videos(model, videos, progress=False),
    "evaluate": evaluate(model, [(v, 0) for v in videos], progress=False),
    "embed": embed(videos, output, model=model, progress=False),
}))
"""


@pytest.mark.slow
def test_a_video_that_runs_out_of_memory_fails_alone(tmp_path):
    """The MemoryError of one huge video is that video's error; predict, evaluate and embed go on with the rest."""
    big = tmp_path / "big.avi"
    colour = ["-f", "lavfi", "-i", "color=c=red:s=4000x4000:d=0.4:r=25", "-c:v", "mjpeg", "-q:v", "10"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *colour, str(big)], check=True, timeout=120)
    small = write_video(tmp_path / "small.mp4", index_frames(range(40)), fps=25)
    write_video(tmp_path / "other.mp4", index_frames(range(50)), fps=25)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
    )
    cmd = [sys.executable, "-c", _SHORT_OF_MEMORY, str(small), str(big), str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.splitlines()[-1])
    first, failed, last = found["predict"]
    assert "predictions" in first and "predictions" in last
    assert failed["video"] == str(big) and str(big) in failed["error"]
    assert found["evaluate"]["videos"] == 2 and len(found["evaluate"]["failed"]) == 1
    assert (found["embed"]["embedded"], found["embed"]["failed"]) == (2, 1)
    rows = [json.loads(line) for line in (tmp_path / "out" / "index.jsonl").read_text().splitlines()]
    assert [row["error"] is None for row in rows] == [True, False, True] and str(big) in rows[1]["error"]


def test_predict_on_a_list_gives_each_unreadable_video_its_error_in_place(tiny_model, tmp_path):
    good = write_video(tmp_path / "good.mp4", index_frames(range(40)), fps=25)
    missing = tmp_path / "missing.mp4"
    results = predict(tiny_model, [good, missing, good], topk=2)
    assert results[0] == results[2] == predict(tiny_model, good, topk=2)  # the good results are kept
    assert isinstance(results[1], tokshift_zoo.VideoError) and str(missing) in str(results[1])
    with pytest.raises(tokshift_zoo.VideoError, match="no such file"):
        predict(tiny_model, missing)  # one video: its error is raised

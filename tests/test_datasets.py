"""Video lists (three formats, checked line by line) and the clip dataset on real files."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from videos import index_frames, write_video

from tokshift_zoo.models.registry import Weights
from tokshift_zoo.train.datasets import (
    SkippedVideo,
    VideoClipDataset,
    VideoListError,
    class_names_from_lists,
    collate_skipping,
    read_label_names,
    read_video_list,
)

DATA_CONFIG = Weights("tiny", "test", input_size=(3, 32, 32), num_frames=4, frame_stride=2, interpolation="bilinear")


def _touch(root, *names):
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_mmaction_list_with_spaces_and_data_root(tmp_path):
    _touch(tmp_path, "a.mp4", "sub/my clip.mp4")
    (tmp_path / "list.txt").write_text("# comment\na.mp4 1\n\nsub/my clip.mp4 0\n")
    samples = read_video_list(tmp_path / "list.txt", tmp_path, num_classes=2)
    assert [(s.path.name, s.label, s.num_frames) for s in samples] == [("a.mp4", 1, None), ("my clip.mp4", 0, None)]
    assert samples[1].source.endswith("list.txt:4")


def test_csv_with_names_and_indices(tmp_path):
    _touch(tmp_path, "x.mp4", "y.mp4", "z.mp4")
    (tmp_path / "list.csv").write_text("path,label\nx.mp4,dog\ny.mp4,cat\nz.mp4,1\n")
    with pytest.raises(VideoListError, match=r"mix class indices and class names.*indices \['1'\].*names \['cat'"):
        class_names_from_lists(tmp_path / "list.csv")  # a new task would get a class '1' beside 'cat' and 'dog'
    samples = read_video_list(tmp_path / "list.csv", tmp_path, label_names=["cat", "dog"])
    assert [s.label for s in samples] == [1, 0, 1]


def test_integer_lists_have_no_names(tmp_path):
    _touch(tmp_path, "a.mp4")
    (tmp_path / "list.txt").write_text("a.mp4 3\n")
    assert class_names_from_lists(tmp_path / "list.txt") is None


def test_frame_folder_list(tmp_path):
    (tmp_path / "vid1").mkdir()
    (tmp_path / "list.txt").write_text("vid1 30 2\n")
    (sample,) = read_video_list(tmp_path / "list.txt", tmp_path, num_classes=3)
    assert (sample.path, sample.num_frames, sample.label) == (tmp_path / "vid1", 30, 2)


def test_bad_lines_are_all_named(tmp_path):
    _touch(tmp_path, "a.mp4", "b.mp4")
    (tmp_path / "list.txt").write_text("a.mp4 0\nb.mp4 7\nmissing.mp4 1\nb.mp4 walking\nb.mp4 -1\n")
    with pytest.raises(VideoListError) as err:
        read_video_list(tmp_path / "list.txt", tmp_path, num_classes=4)
    text = str(err.value)
    assert "4 bad line(s)" in text
    assert "list.txt:2: label 7 is outside the class range [0, 4)" in text
    assert "list.txt:3: no video file at" in text and "missing.mp4" in text
    assert "list.txt:4: label 'walking' is not a class index or a known class name" in text
    assert "list.txt:5: label -1 is outside" in text


def test_malformed_lines_and_csv(tmp_path):
    (tmp_path / "list.txt").write_text("lonely\n")
    with pytest.raises(VideoListError, match=r"list.txt:1: expected 'path label'"):
        read_video_list(tmp_path / "list.txt", tmp_path)
    (tmp_path / "list.csv").write_text("path,label\na.mp4,1,extra\n")
    with pytest.raises(VideoListError, match=r"list.csv:2: expected 2 CSV fields, found 3"):
        read_video_list(tmp_path / "list.csv", tmp_path)
    with pytest.raises(VideoListError, match="no video list"):
        read_video_list(tmp_path / "nope.txt", tmp_path)


def test_label_names_file(tmp_path):
    (tmp_path / "labels.txt").write_text("cat\n\ndog\n")
    assert read_label_names(tmp_path / "labels.txt") == ["cat", "dog"]
    (tmp_path / "dup.txt").write_text("cat\ncat\n")
    with pytest.raises(ValueError, match="repeat"):
        read_label_names(tmp_path / "dup.txt")


def test_clip_dataset_reads_videos_and_skips_unreadable(tmp_path):
    write_video(tmp_path / "good.mp4", index_frames(12, height=40, width=48), gop=4)
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 10)
    (tmp_path / "list.txt").write_text("good.mp4 1\nbroken.mp4 0\n")
    samples = read_video_list(tmp_path / "list.txt", tmp_path, num_classes=2)
    for training in (True, False):
        dataset = VideoClipDataset(samples, DATA_CONFIG, is_training=training)
        clip, label = dataset[0]
        assert clip.shape == (3, 4, 32, 32) and clip.dtype == torch.float32 and label == 1
        assert isinstance(dataset[1], SkippedVideo) and dataset[1].path.endswith("broken.mp4")
        clips, labels, skipped = collate_skipping([dataset[0], dataset[1], dataset[0]])
        assert clips.shape == (2, 3, 4, 32, 32) and labels.tolist() == [1, 1]
        assert [s.path for s in skipped] == [str(tmp_path / "broken.mp4")]
    assert collate_skipping([dataset[1]])[:2] == (None, None)


def test_clip_dataset_reads_frame_folders(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(index_frames(10, height=40, width=48)):
        Image.fromarray(frame).save(folder / f"img_{i + 1:05d}.jpg", quality=95)
    (tmp_path / "list.txt").write_text("frames 10 0\nframes 12 0\n")  # the second claims frames that are not there
    samples = read_video_list(tmp_path / "list.txt", tmp_path, num_classes=1)
    dataset = VideoClipDataset(samples, replace(DATA_CONFIG, sampling="uniform"), is_training=False)
    clip, label = dataset[0]
    assert clip.shape == (3, 4, 32, 32) and label == 0
    assert np.isfinite(clip.numpy()).all()
    assert isinstance(dataset[1], SkippedVideo)  # uniform sampling of 12 frames asks for img_00011.jpg


def test_clip_dataset_reads_the_sampled_frames_of_a_folder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(10):  # frame i (img_{i+1}) is a flat grey of level 20 * (i + 1)
        Image.fromarray(np.full((40, 48, 3), 20 * (i + 1), np.uint8)).save(folder / f"img_{i + 1:05d}.jpg")
    (tmp_path / "list.txt").write_text("frames 10 0\n")
    samples = read_video_list(tmp_path / "list.txt", tmp_path, num_classes=1)
    clip, _ = VideoClipDataset(samples, replace(DATA_CONFIG, sampling="uniform"), is_training=False)[0]
    levels = (clip.mean(dim=(0, 2, 3)) * 0.5 + 0.5) * 255  # mean 0.5, std 0.5 undone: (T,) grey levels
    # 4 of 10 frames, the middle of each of 4 equal segments: floor((k + 0.5) * 10 / 4)
    assert (levels / 20 - 1).round().int().tolist() == [1, 3, 6, 8]


def test_a_label_with_spaces_is_explained(tmp_path):
    _touch(tmp_path, "a.mp4")
    (tmp_path / "list.txt").write_text("a.mp4 abseiling down\n")
    with pytest.raises(VideoListError, match=r"is the video 'a.mp4' with the label 'abseiling down'\?.*CSV format"):
        read_video_list(tmp_path / "list.txt", tmp_path, label_names=["down"])


def test_mixed_label_kinds_across_lists_are_refused_naming_each(tmp_path):
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (tmp_path / "val.txt").write_text("c.mp4 left\nd.mp4 right\n")
    with pytest.raises(VideoListError, match=r"train.txt has indices \['0', '1'\]; .*val.txt has names \['left'"):
        class_names_from_lists(tmp_path / "train.txt", tmp_path / "val.txt")


def test_a_list_that_is_not_utf8_names_the_file_line_and_byte(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    listing = tmp_path / "train.txt"
    listing.write_bytes("a.mp4 0\ncaf\u00e9.mp4 1\n".encode("latin-1"))  # é as Latin-1: byte 0xe9
    with pytest.raises(VideoListError, match=r"train.txt:2: expected UTF-8 text, found byte 0xe9 at offset 11"):
        read_video_list(listing, tmp_path)
    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"\xef\xbb\xbfrunning\nsitting\xff\n")  # a BOM is fine, 0xff is not
    with pytest.raises(ValueError, match=r"labels.txt:2: expected UTF-8 text, found byte 0xff at offset 18"):
        read_label_names(labels)

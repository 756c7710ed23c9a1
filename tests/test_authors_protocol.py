"""The k400 tags' 30 test views against the authors' own data code, transcribed.

Transcribed from VideoNetworks/TokShift-Transformer (HEAD): ``data/dataset.py`` ``read_clip`` (the test/val
branch of ``DataRepo.fetch_rgb_clip`` with ``DENSE_OR_UNIFORM: "dense"``) and ``data/augmentation.py``
``short_side_resize``, ``image_crop``, ``clip_center_crop``, ``clip_crop`` and ``Test_ClipAug`` with ``mode=3``, as
``main_ddp_shift_v3.py`` composes them for the Kinetics-400 configs: ``T_SIZE 8``, ``T_STEP 32``,
``VAL_SAMPLE_TIMES`` set to 10 for evaluation, ``VAL_TEST_AUG 3``, ``VAL_SHORT_SIDE == VAL_PATCH_SIZE``,
``PIXEL_MEAN 127.5``, ``PIXEL_STD 0.5``, ``VAL_FLIP False``, frames ``img_{:05d}.jpg`` numbered from 1. The frames
are real JPEG folders written here with PIL and read by the zoo's own frame-folder loader; the crop size is the
tiny test model's 32 (the authors' arithmetic takes any patch size).

Crop pairing: ``Test_ClipAug`` stacks (centre, left, right); the zoo gives (left, centre, right). Zoo crop k is
compared with the authors' crop ``AUTHORS_CROP_OF_ZOO_CROP[k]``; the view mean does not depend on the order.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_ARGS
from PIL import Image
from safetensors.torch import save_file
from torchvision import transforms
from videos import write_video

from tokshift_zoo import resolve_data_config
from tokshift_zoo.cli import main
from tokshift_zoo.inference import VideoPreprocess, evaluate, predict_videos
from tokshift_zoo.train.datasets import read_video_list
from tokshift_zoo.video.transforms import VideoEvalTransform, crop_size, frame_indices

FRAME_FORMAT = "img_{:05d}.jpg"
T_SIZE, T_STEP, SAMPLE_TIMES = 8, 32, 10
PIXEL_MEAN, PIXEL_STD = [127.5 / 255] * 3, [0.5] * 3
AUTHORS_CROP_OF_ZOO_CROP = [1, 0, 2]  # zoo (left, centre, right) -> authors' (centre, left, right)
SHAPES = {"landscape": (45, 60), "portrait": (56, 40), "square": (24, 24)}  # (H, W): down, down, up to 32


# --- the authors' code, transcribed (tabs -> spaces; the image reads kept) ----------------------------------------


def read_clip_frame_numbers(frame_cnt, t_size, t_step, sample_times):
    """read_clip's arithmetic: the 1-based frame numbers of each clip."""
    max_bound = max(frame_cnt - t_size * t_step + 1, 1)
    tick = 1.0 * frame_cnt / sample_times
    if tick == 0:
        tick == 1  # noqa: B015 (theirs: a comparison, not an assignment; tick is never 0 anyway)
    st_idxs = np.array([int(x * tick) for x in range(sample_times)])
    st_idxs = np.clip(st_idxs, 0, max_bound)
    idxs_repo = []
    for st_idx in st_idxs:
        st_idx = 0 if max_bound == 1 else st_idx
        idxs = [(idx * t_step + st_idx) % frame_cnt + 1 for idx in range(t_size)]
        idxs_repo.append([int(i) for i in idxs])
    return idxs_repo


def read_clip(frame_vid_folder, frame_cnt, frame_format, t_size, t_step, sample_times):
    """read_clip: the PIL clips, with their frame numbers (added, to compare)."""
    idxs_repo = read_clip_frame_numbers(frame_cnt, t_size, t_step, sample_times)
    pil_clip_repo = []
    for idxs in idxs_repo:
        pil_clip = [Image.open(str(frame_vid_folder / frame_format.format(idx))).convert("RGB") for idx in idxs]
        pil_clip_repo.append(pil_clip)
    return pil_clip_repo, idxs_repo


def short_side_resize(pil_img, short_side):
    width, height = pil_img.size
    if width > height:
        new_height = short_side
        new_width = int(math.floor(1.0 * width / height * new_height))
    else:
        new_width = short_side
        new_height = int(math.floor(1.0 * height / width * new_width))
    return pil_img.resize((new_width, new_height), Image.BICUBIC)


def image_crop(pil_img, x_offset, y_offset, patch_size):
    return pil_img.crop((x_offset, y_offset, x_offset + patch_size, y_offset + patch_size))


def center_offsets(width, height, patch_size):  # clip_center_crop, after the resize
    y_offset = 0
    if height > patch_size:
        y_offset = int((height - patch_size) / 2.0)
    x_offset = 0
    if width > patch_size:
        x_offset = int((width - patch_size) / 2.0)
    return x_offset, y_offset


def crop_offsets(width, height, patch_size, cp_type):  # clip_crop, after the resize
    if cp_type == 1:  # Left-Center Crop
        x_offset = 0
        y_offset = int((height - patch_size) / 2.0)
    if cp_type == 2:  # Right-Center Crop
        x_offset = width - patch_size
        y_offset = int((height - patch_size) / 2.0)
    return max(x_offset, 0), max(y_offset, 0)


def test_clip_aug(pil_clip, patch_size, short_side):
    """Test_ClipAug(patch_size, short_side, mode=3) -> (Test_clips (3, T, C, H, W), [(x, y) of each crop])."""
    base_norm = transforms.Compose([transforms.ToTensor(), transforms.Normalize(PIXEL_MEAN, PIXEL_STD)])
    resized = [short_side_resize(x, short_side) for x in pil_clip]
    width, height = resized[0].size
    offsets = [center_offsets(width, height, patch_size)]
    offsets += [crop_offsets(width, height, patch_size, cp_type) for cp_type in (1, 2)]
    clips = [torch.stack([base_norm(image_crop(x, *xy, patch_size)) for x in resized]) for xy in offsets]
    return torch.stack(clips), offsets


test_clip_aug.__test__ = False  # the authors' name, not a pytest test


# --- frame folders ------------------------------------------------------------------------------------------------


def write_frame_folder(folder: Path, num_frames: int, height: int, width: int) -> Path:
    """``num_frames`` textured JPEG frames (noise over a moving pattern, different in every frame)."""
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:height, 0:width]
    noise = 0.6 * np.random.default_rng(0).integers(0, 256, (height, width, 3))
    for i in range(num_frames):
        wave = 100 * np.sin((xx + 3 * i) / 2.5) * np.cos(yy / 3.5)
        frame = (np.roll(noise, i, axis=(0, 1)) + wave[..., None] + 60).clip(0, 255).astype(np.uint8)
        Image.fromarray(frame).save(folder / FRAME_FORMAT.format(i + 1), quality=95)
    return folder


def levels(x: torch.Tensor) -> torch.Tensor:
    """Normalised pixels -> uint8 levels (undoes mean 0.5, std 0.5)."""
    return (x * 0.5 + 0.5) * 255


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("num_frames", [7, 20, 100, 250, 257, 300])
def test_the_30_views_are_the_authors(tiny_model, tmp_path, num_frames, shape):
    height, width = SHAPES[shape]
    folder = write_frame_folder(tmp_path / "video", num_frames, height, width)
    config = resolve_data_config(tiny_model)  # the k400 tag's protocol
    assert (config.num_frames, config.frame_stride, config.interpolation) == (T_SIZE, T_STEP, "bicubic")
    patch = crop_size(config)[0]
    indices, views = VideoPreprocess(config, views="10x3").sampled_views(folder)
    views = views.reshape(SAMPLE_TIMES, 3, 3, T_SIZE, patch, patch)  # clip-major: (clips, crops, C, T, H, W)

    pil_clips, frame_numbers = read_clip(folder, num_frames, FRAME_FORMAT, T_SIZE, T_STEP, SAMPLE_TIMES)
    assert (indices + 1).tolist() == frame_numbers  # frame indices exact (theirs count from 1)

    transform = VideoPreprocess(config, views="10x3").transform
    zoo_origins = transform.crop_origins(*transform.resized_size(height, width))
    worst = 0.0
    for clip, pil_clip in enumerate(pil_clips):
        theirs, offsets = test_clip_aug(pil_clip, patch, patch)  # (3, T, C, H, W), [(x, y)] * 3
        for crop, authors_crop in enumerate(AUTHORS_CROP_OF_ZOO_CROP):
            assert zoo_origins[crop][::-1] == offsets[authors_crop]  # (top, left) vs (x, y): the same places
            ours = views[clip, crop].transpose(0, 1)  # (C, T, H, W) -> (T, C, H, W)
            worst = max(worst, float((levels(ours) - levels(theirs[authors_crop])).abs().max()))
    assert worst <= 2.0 + 1e-3, f"{shape} {num_frames} frames: {worst:.2f} levels from PIL"


def test_starts_on_a_300_frame_video_repeat_as_theirs(tiny_model):
    # the example: 3 distinct clips, weighted 1:1:8 in the view mean
    config = resolve_data_config(tiny_model)
    assert frame_indices(config, 300)[:, 0].tolist() == [0, 30] + [45] * 8
    assert [clip[0] - 1 for clip in read_clip_frame_numbers(300, T_SIZE, T_STEP, SAMPLE_TIMES)] == [0, 30] + [45] * 8


def test_every_length_up_to_1500_frames_starts_as_theirs(tiny_model):
    config = resolve_data_config(tiny_model)  # past 1276 frames the 10 clips are distinct under their rule too
    for num_frames in range(1, 1501):
        theirs = read_clip_frame_numbers(num_frames, T_SIZE, T_STEP, SAMPLE_TIMES)
        assert (frame_indices(config, num_frames) + 1).tolist() == theirs, num_frames


class SizeOnly:
    """Stands for a PIL image in ``short_side_resize``: ``resize`` returns the size it is asked for."""

    def __init__(self, size):
        self.size = size

    def resize(self, size, resample):
        return size


def test_resize_rounds_the_long_side_as_theirs():
    # floor(long / short * side) in floats: one pixel short of torchvision's int(side * long / short) at times
    for side in (224, 256, 384):
        transform = VideoEvalTransform((side, side), side, 3, PIXEL_MEAN, PIXEL_STD)
        for short in range(100, 500, 3):
            for long in range(short, 2 * short):
                for width, height in ((long, short), (short, long)):
                    theirs = short_side_resize(SizeOnly((width, height)), side)
                    assert transform.resized_size(height, width)[::-1] == theirs, (side, width, height)
    assert VideoEvalTransform((224, 224), 224, 3, PIXEL_MEAN, PIXEL_STD).resized_size(244, 224) == (243, 224)


def test_portrait_224_frame_matches_pil_where_torchvision_would_not_resize(tmp_path):
    # a 224x244 portrait frame: the authors resize to 224x243 (torchvision's own rounding keeps 244 rows)
    folder = write_frame_folder(tmp_path / "tall", 1, 244, 224)
    image = Image.open(folder / FRAME_FORMAT.format(1)).convert("RGB")
    theirs, offsets = test_clip_aug([image], 224, 224)
    transform = VideoEvalTransform((224, 224), 224, 3, PIXEL_MEAN, PIXEL_STD)
    frames = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]  # (T=1, 3, H, W)
    ours = transform(frames).transpose(1, 2)  # (crops, C, T, H, W) -> (crops, T, C, H, W)
    assert offsets == [(0, 9)] * 3  # three crops in one place on a portrait frame resized to the crop
    for crop, authors_crop in enumerate(AUTHORS_CROP_OF_ZOO_CROP):
        assert float((levels(ours[crop]) - levels(theirs[authors_crop])).abs().max()) <= 2.0 + 1e-3


def test_evaluate_samples_a_listed_folder_from_the_lists_frame_count(tiny_model, tmp_path):
    # the list says 257 frames; the folder holds 300 files, the last 43 unreadable: the authors' loader samples
    # from 257 (starts 0 and 2, frames up to 227); counting the folder's files would start clips at 30 and 45
    folder = write_frame_folder(tmp_path / "data" / "clip", 257, 40, 40)
    for i in range(258, 301):
        (folder / FRAME_FORMAT.format(i)).write_bytes(b"not a jpeg")
    (tmp_path / "val.txt").write_text("clip 257 1\n")
    samples = read_video_list(tmp_path / "val.txt", tmp_path / "data", num_classes=4)
    listed = evaluate(tiny_model, [(str(s.path), s.label, s.num_frames) for s in samples], "10x1", progress=False)
    assert listed["videos"] == 1 and listed["failed"] == []
    counted = evaluate(tiny_model, [(str(s.path), s.label) for s in samples], "10x1", progress=False)
    assert counted["videos"] == 0 and "img_00" in counted["failed"][0]


def test_cli_evaluate_passes_the_lists_frame_count(tiny_model, tmp_path, capsys):
    folder = write_frame_folder(tmp_path / "clip", 257, 40, 40)
    for i in range(258, 301):
        (folder / FRAME_FORMAT.format(i)).write_bytes(b"not a jpeg")
    (tmp_path / "val.txt").write_text("clip 257 1\n")
    checkpoint = tmp_path / "tiny.safetensors"
    save_file(tiny_model.state_dict(), checkpoint)
    argv = ["evaluate", "--model", "tokshift_base16_224_8f", "--checkpoint", str(checkpoint), "--views", "10x1"]
    argv += ["--model-kwargs", json.dumps(TINY_ARGS), "--list", str(tmp_path / "val.txt"), "--data-root", str(tmp_path)]
    assert main(argv + ["--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["failed"] == []


def test_cli_predict_samples_a_listed_folder_from_the_lists_frame_count(tiny_model, tmp_path, capsys):
    # the frames of a real mp4 (ffmpeg's JPEGs), listed with 257 of them and followed by 43 unreadable files, as in
    # evaluate's test: predict --list samples from the list's count as evaluate does, not from the folder's files
    frames = np.random.default_rng(0).integers(0, 256, (257, 40, 40, 3), dtype=np.uint8)
    write_video(tmp_path / "clip.mp4", frames)
    folder = tmp_path / "clip"
    folder.mkdir()
    ffmpeg = ["ffmpeg", "-loglevel", "error", "-i", str(tmp_path / "clip.mp4"), "-start_number", "1", "-q:v", "2"]
    subprocess.run([*ffmpeg, str(folder / "img_%05d.jpg")], check=True)
    assert len(list(folder.iterdir())) == 257
    for i in range(258, 301):
        (folder / FRAME_FORMAT.format(i)).write_bytes(b"not a jpeg")
    (tmp_path / "val.txt").write_text("clip 257 1\n")
    checkpoint = tmp_path / "tiny.safetensors"
    save_file(tiny_model.state_dict(), checkpoint)
    argv = ["predict", "--model", "tokshift_base16_224_8f", "--checkpoint", str(checkpoint), "--views", "10x1"]
    argv += ["--model-kwargs", json.dumps(TINY_ARGS), "--json", "--no-progress", str(tmp_path / "clip.mp4")]
    assert main([*argv, "--list", str(tmp_path / "val.txt"), "--data-root", str(tmp_path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["video"] for row in rows] == [str(tmp_path / "clip.mp4"), str(folder)]  # a VIDEO, then the list's
    assert all("error" not in row for row in rows), rows
    (listed,) = predict_videos(tiny_model, [folder], "10x1", topk=5, progress=False, frame_counts=[257])
    assert [p["label"] for p in rows[1]["predictions"]] == [p["label"] for p in listed["predictions"]]
    assert [p["score"] for p in rows[1]["predictions"]] == pytest.approx([p["score"] for p in listed["predictions"]])

"""The synthetic motion task: the object moves the stated way, either polarity occurs, and single frames carry no
direction."""

from __future__ import annotations

import numpy as np
import pytest

from tokshift_zoo import load_video
from tokshift_zoo.synthetic import DIAGONAL_LABELS, MOTION_LABELS, make_motion_clip, write_motion_dataset

# small objects on long paths over a steady camera: every pixel shows the background in most frames, so the
# per-pixel median over time is the background and the object is what differs from it, brighter or darker
STEADY = dict(plain=True, size=(0.1, 0.16), travel=(0.5, 0.75))


def object_mask(clip: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """(T, H, W) bool: where a frame differs from the background (default: the clip's per-pixel median over
    time)."""
    frames = clip.astype(float)
    background = np.median(frames, axis=0) if background is None else background
    return np.abs(frames - background).sum(axis=-1) > 40


def object_centres(clip: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """(T, 2) centroid (y, x) of the object in each frame."""
    ys, xs = np.mgrid[0 : clip.shape[1], 0 : clip.shape[2]]
    return np.stack([[ys[m].mean(), xs[m].mean()] for m in object_mask(clip, background)])


@pytest.mark.parametrize("darker", [0.0, 1.0])
@pytest.mark.parametrize("label, axis, sign", [(0, 1, -1), (1, 1, 1), (2, 0, -1), (3, 0, 1)])
def test_the_object_moves_the_stated_direction(label, axis, sign, darker):
    for seed in range(6):
        clip = make_motion_clip(
            MOTION_LABELS[label], num_frames=8, height=48, width=64, rng=seed, darker=darker, **STEADY
        )
        assert clip.shape == (8, 48, 64, 3) and clip.dtype == np.uint8
        steps = np.diff(object_centres(clip), axis=0)
        assert np.all(sign * steps[:, axis] > 0), (seed, steps)
        assert np.all(np.abs(steps[:, 1 - axis]) < 1.0)
        # the polarity asked for: the object's pixels are brighter (darker) than the background's
        mask = object_mask(clip)[0]
        background = np.median(clip.astype(float), axis=0)[mask].sum()
        assert (clip[0].astype(float)[mask].sum() < background) == (darker == 1.0)


@pytest.mark.parametrize("label, signs", list(zip(DIAGONAL_LABELS, [(-1, -1), (-1, 1), (1, -1), (1, 1)], strict=True)))
def test_a_diagonal_covers_the_same_pixels_along_both_axes(label, signs):
    for seed in range(6):
        clip = make_motion_clip(label, num_frames=8, height=48, width=64, rng=seed, **STEADY)
        travelled = object_centres(clip)[-1] - object_centres(clip)[0]
        assert np.all(np.sign(travelled) == signs) and np.all(np.abs(travelled) > 10), (seed, travelled)
        assert abs(abs(travelled[0]) - abs(travelled[1])) < 1.5, (seed, travelled)


@pytest.mark.parametrize("label", ["moving_right", "moving_up", "moving_down_left"])
def test_a_speed_profile_changes_the_pace_not_the_path(label):
    for seed in range(6):
        clips = {
            profile: make_motion_clip(label, num_frames=8, height=48, width=64, rng=seed, profile=profile, **STEADY)
            for profile in ("constant", "accelerating", "decelerating")
        }
        # the same draws, so the same background (the constant clip's per-pixel median), start and end
        background = np.median(clips["constant"].astype(float), axis=0)
        pace = {}
        for profile, clip in clips.items():
            assert (clip[[0, -1]] != clips["constant"][[0, -1]]).any(axis=-1).sum() <= 4, (seed, profile)
            pace[profile] = np.hypot(*np.diff(object_centres(clip, background), axis=0).T)
        assert pace["accelerating"][4:].sum() > 2 * pace["accelerating"][:3].sum(), (seed, pace)
        assert pace["decelerating"][:3].sum() > 2 * pace["decelerating"][4:].sum(), (seed, pace)
        assert np.ptp(pace["constant"]) < 1.5, (seed, pace)


@pytest.mark.parametrize("label", ["moving_left", "moving_down", "moving_up_right"])
def test_growth_scales_the_object_about_its_path(label):
    for seed in range(6):
        clips = {
            growth: make_motion_clip(label, num_frames=8, height=96, width=128, rng=seed, growth=growth, **STEADY)
            for growth in (1.0, 2.0, 0.5)
        }
        # the same draws: the drawn size is the larger one, so an approaching object ends and a receding one
        # starts exactly as the constant-size object does
        assert np.array_equal(clips[2.0][-1], clips[1.0][-1]) and np.array_equal(clips[0.5][0], clips[1.0][0])
        background = np.median(clips[1.0].astype(float), axis=0)
        area = {growth: object_mask(clip, background).sum(axis=(1, 2)) for growth, clip in clips.items()}
        # twice the size is four times the area; pixels sampled at sub-pixel positions alias by up to ~12%
        assert 2.5 < area[2.0][-1] / area[2.0][0] < 6 and 2.5 < area[0.5][0] / area[0.5][-1] < 6, (seed, area)
        assert (np.diff(area[2.0]) > -0.12 * area[2.0][:-1]).all(), (seed, area)
        assert (np.diff(area[0.5]) < 0.12 * area[0.5][:-1]).all(), (seed, area)
        assert np.ptp(area[1.0]) <= 0.15 * area[1.0].mean(), (seed, area)
        # the object grows about its centre, which follows the constant-size object's path
        centres = {growth: object_centres(clip, background) for growth, clip in clips.items()}
        assert np.abs(centres[2.0] - centres[1.0]).max() < 2.0 and np.abs(centres[0.5] - centres[1.0]).max() < 2.0


def test_the_full_task_mixes_both_polarities_and_never_saturates_its_range():
    darker = []
    for seed in range(40):
        clip = make_motion_clip(
            seed % 4, num_frames=8, height=40, width=40, rng=seed, size=(0.1, 0.16), travel=(0.5, 0.75)
        )
        mask = object_mask(clip)[0]
        darker.append(clip[0].astype(float)[mask].mean() < np.median(clip.astype(float), axis=0)[mask].mean())
    assert 10 < sum(darker) < 30


def test_pooled_frame_positions_do_not_depend_on_the_class():
    # what a per-frame classifier that averages over the clip sees: every frame's object position, pooled
    pooled = {}
    for label in MOTION_LABELS:
        centres = [object_centres(make_motion_clip(label, rng=seed, **STEADY)) for seed in range(150)]
        pooled[label] = np.concatenate(centres)
    means = {label: c.mean(axis=0) for label, c in pooled.items()}
    stds = {label: c.std(axis=0) for label, c in pooled.items()}
    for label in MOTION_LABELS:
        np.testing.assert_allclose(means[label], [15.5, 15.5], atol=0.8)  # the frame's centre (pixels 0..31)
        np.testing.assert_allclose(stds[label], stds["moving_left"], atol=0.8)


def test_bad_directions_and_sizes_are_refused():
    with pytest.raises(ValueError, match="moving_left"):
        make_motion_clip("sideways")
    with pytest.raises(ValueError, match="8x8"):
        make_motion_clip(0, height=4)
    with pytest.raises(ValueError, match="accelerating"):
        make_motion_clip(0, profile="jerky")
    with pytest.raises(ValueError, match="positive ratio"):
        make_motion_clip(0, growth=0.0)


def test_dataset_is_written_as_mp4_files_with_a_list(tmp_path):
    list_file = write_motion_dataset(tmp_path, 8, seed=3)
    lines = list_file.read_text().splitlines()
    assert len(lines) == 8 and sorted(int(line.split()[1]) for line in lines) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert (tmp_path / "labels.txt").read_text().split() == list(MOTION_LABELS)
    first = tmp_path / lines[0].split()[0]
    frames = load_video(first)
    assert 8 <= len(frames) <= 24 and min(frames.shape[1:3]) >= 32
    assert write_motion_dataset(tmp_path / "again", 8, seed=3).read_text() == list_file.read_text()

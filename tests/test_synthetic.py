"""The synthetic motion task: the object moves the stated way, and single frames carry no direction."""

from __future__ import annotations

import numpy as np
import pytest

from tokshift_zoo import load_video
from tokshift_zoo.synthetic import MOTION_LABELS, make_motion_clip, write_motion_dataset


def object_centres(clip: np.ndarray) -> np.ndarray:
    """(T, 2) centroid (y, x) of the bright object in each frame (the background is darker by construction)."""
    brightness = clip.astype(float).max(axis=-1)
    mask = brightness > 0.5 * 255  # the object's darker colour is at least 0.75 * 0.55 of full brightness
    ys, xs = np.mgrid[0 : clip.shape[1], 0 : clip.shape[2]]
    return np.stack([[ys[m].mean(), xs[m].mean()] for m in mask])


@pytest.mark.parametrize("label, axis, sign", [(0, 1, -1), (1, 1, 1), (2, 0, -1), (3, 0, 1)])
def test_the_object_moves_the_stated_direction(label, axis, sign):
    for seed in range(10):
        clip = make_motion_clip(MOTION_LABELS[label], num_frames=8, height=48, width=64, rng=seed)
        assert clip.shape == (8, 48, 64, 3) and clip.dtype == np.uint8
        steps = np.diff(object_centres(clip), axis=0)
        assert np.all(sign * steps[:, axis] > 0), (seed, steps)
        assert np.all(np.abs(steps[:, 1 - axis]) < 0.5)


def test_pooled_frame_positions_do_not_depend_on_the_class():
    # what a per-frame classifier that averages over the clip sees: every frame's object position, pooled
    pooled = {}
    for label in MOTION_LABELS:
        centres = [object_centres(make_motion_clip(label, rng=seed)) for seed in range(150)]
        pooled[label] = np.concatenate(centres)
    means = {label: c.mean(axis=0) for label, c in pooled.items()}
    stds = {label: c.std(axis=0) for label, c in pooled.items()}
    for label in MOTION_LABELS:
        np.testing.assert_allclose(means[label], [16, 16], atol=0.8)
        np.testing.assert_allclose(stds[label], stds["moving_left"], atol=0.8)


def test_bad_directions_and_sizes_are_refused():
    with pytest.raises(ValueError, match="moving_left"):
        make_motion_clip("sideways")
    with pytest.raises(ValueError, match="8x8"):
        make_motion_clip(0, height=4)


def test_dataset_is_written_as_mp4_files_with_a_list(tmp_path):
    list_file = write_motion_dataset(tmp_path, 8, seed=3)
    lines = list_file.read_text().splitlines()
    assert len(lines) == 8 and sorted(int(line.split()[1]) for line in lines) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert (tmp_path / "labels.txt").read_text().split() == list(MOTION_LABELS)
    first = tmp_path / lines[0].split()[0]
    frames = load_video(first)
    assert 8 <= len(frames) <= 16 and min(frames.shape[1:3]) >= 32
    assert write_motion_dataset(tmp_path / "again", 8, seed=3).read_text() == list_file.read_text()

import pytest
import torch

from tokshift_zoo.video.sampling import dense_indices, parse_sampling, parse_views, uniform_indices


def test_dense_authors_test_starts_are_read_clips():
    # the authors' read_clip: int(k * 300 / 10) clipped to 300 - 256 + 1 = 45
    idx = dense_indices(300, 8, 32, num_clips=10)
    assert idx.dtype == torch.int64 and idx.shape == (10, 8)
    assert idx.tolist() == [[s + 32 * k for k in range(8)] for s in [0, 30] + [45] * 8]
    assert dense_indices(257, 8, 32, num_clips=10)[:, 0].tolist() == [0] + [2] * 9  # clipped to 257 - 255
    assert dense_indices(3000, 8, 32, num_clips=10)[:, 0].tolist() == list(range(0, 3000, 300))
    assert dense_indices(300, 8, 32).tolist() == [[32 * k for k in range(8)]]  # one clip: int(0 * tick) = 0
    assert torch.equal(dense_indices(300, 8, 32, num_clips=10, start_rule="authors"), idx)  # the default


def test_dense_even_test_clips_spread_from_first_to_last_start():
    # 300 frames at 8x32: starts 0..44, ten clips at floor(i * 44 / 9)
    idx = dense_indices(300, 8, 32, num_clips=10, start_rule="even")
    starts = [0, 4, 9, 14, 19, 24, 29, 34, 39, 44]
    assert idx.dtype == torch.int64 and idx.shape == (10, 8)
    assert idx.tolist() == [[s + 32 * k for k in range(8)] for s in starts]


def test_dense_even_single_test_clip_is_centred():
    assert dense_indices(300, 8, 32, start_rule="even").tolist() == [[22 + 32 * k for k in range(8)]]
    assert dense_indices(20, 4, 2, start_rule="even").tolist() == [[6, 8, 10, 12]]


@pytest.mark.parametrize("rule", ["authors", "even"])
def test_dense_clip_index_selects_one_clip(rule):
    all_clips = dense_indices(300, 8, 32, num_clips=10, start_rule=rule)
    assert torch.equal(dense_indices(300, 8, 32, num_clips=10, clip_index=3, start_rule=rule), all_clips[3:4])


@pytest.mark.parametrize("rule", ["authors", "even"])
def test_dense_short_video_wraps_around_like_the_authors_loader(rule):
    # (start + k * S) % L with start 0: the authors' read_clip / TSM dense_sample on a 100-frame video
    assert dense_indices(100, 8, 32, start_rule=rule).tolist() == [[0, 32, 64, 96, 28, 60, 92, 24]]
    # every test clip of a short video is the same clip
    assert dense_indices(100, 8, 32, num_clips=3, start_rule=rule).tolist() == [[0, 32, 64, 96, 28, 60, 92, 24]] * 3
    assert dense_indices(1, 8, 32, start_rule=rule).tolist() == [[0] * 8]


@pytest.mark.parametrize("rule", ["authors", "even"])
def test_dense_exactly_one_span_long_has_one_start(rule):
    assert dense_indices(256, 8, 32, num_clips=2, start_rule=rule).tolist() == [list(range(0, 256, 32))] * 2


def test_dense_training_random_start_in_range():
    gen = torch.Generator().manual_seed(0)
    idx = dense_indices(300, 8, 32, num_clips=500, training=True, generator=gen)
    starts = idx[:, 0]
    assert idx.shape == (500, 8)
    assert starts.min() >= 0 and starts.max() <= 44
    assert len(set(starts.tolist())) > 30  # all 45 starts are possible; 500 draws hit most of them
    assert {0, 44} <= set(starts.tolist())
    assert bool((idx - starts[:, None] == torch.arange(8) * 32).all())  # (clips, N) - (clips, 1)


def test_dense_training_follows_the_generator():
    def draw(seed):
        return dense_indices(1000, 8, 8, training=True, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(1), draw(1))
    assert any(not torch.equal(draw(1), draw(seed)) for seed in range(2, 6))


def test_uniform_test_takes_segment_middles():
    # tick = 2: int(1 + 2k), the authors' read_uniform_clip
    assert uniform_indices(16, 8).tolist() == [[1, 3, 5, 7, 9, 11, 13, 15]]
    assert uniform_indices(300, 8).tolist() == [[int(37.5 / 2 + 37.5 * k) for k in range(8)]]


def test_uniform_test_clips_shift_inside_segments():
    assert uniform_indices(16, 4, num_clips=2).tolist() == [[1, 5, 9, 13], [3, 7, 11, 15]]
    assert uniform_indices(16, 4, num_clips=2, clip_index=1).tolist() == [[3, 7, 11, 15]]


def test_uniform_short_video_repeats_frames_in_order():
    assert uniform_indices(3, 8).tolist() == [[0, 0, 0, 1, 1, 2, 2, 2]]
    assert uniform_indices(1, 4).tolist() == [[0, 0, 0, 0]]


def test_uniform_training_one_frame_per_segment():
    gen = torch.Generator().manual_seed(0)
    idx = uniform_indices(96, 8, num_clips=200, training=True, generator=gen)
    assert torch.equal(idx // 12, torch.arange(8).expand(200, 8))  # segment k is frames [12k, 12k + 12)
    assert set(idx[:, 0].tolist()) == set(range(12))  # any frame of a segment can be drawn
    odd = uniform_indices(100, 8, num_clips=200, training=True, generator=gen)
    assert bool((odd.diff(dim=1) >= 0).all()) and odd.max() == 99  # the segments reach the last frame
    for length in range(8, 40):  # segments of a non-integer length share no frame: none is drawn twice
        drawn = uniform_indices(length, 8, num_clips=300, training=True, generator=gen)
        assert bool((drawn.diff(dim=1) > 0).all()), length
        assert set(drawn.flatten().tolist()) == set(range(length)), length  # and every frame can be drawn
    short = uniform_indices(3, 8, num_clips=50, training=True, generator=gen)
    assert short.min() >= 0 and short.max() <= 2 and bool((short.diff(dim=1) >= 0).all())


@pytest.mark.parametrize("sampler", [dense_indices, uniform_indices])
def test_bad_arguments(sampler):
    with pytest.raises(ValueError, match="0 frames"):
        sampler(0, 8)
    with pytest.raises(ValueError, match="num_frames"):
        sampler(10, 0)
    with pytest.raises(ValueError, match="clip_index"):
        sampler(10, 4, num_clips=2, clip_index=2)
    with pytest.raises(ValueError, match="training"):
        sampler(10, 4, clip_index=0, training=True)


def test_dense_bad_stride_and_start_rule():
    with pytest.raises(ValueError, match="stride"):
        dense_indices(10, 4, 0)
    with pytest.raises(ValueError, match="start_rule must be one of.*'linspace'"):
        dense_indices(10, 4, 2, start_rule="linspace")


def test_parse_sampling_and_views():
    assert parse_sampling("8x32") == (8, 32)
    assert parse_sampling(" 16X4 ") == (16, 4)
    assert parse_views("10x3") == (10, 3)
    assert parse_views("1x1") == (1, 1)


@pytest.mark.parametrize("text", ["8", "8x", "x32", "8x32x2", "0x32", "8x0", "-8x32", "8*32", "eightx32", "", None])
def test_parse_rejects_bad_strings(text):
    with pytest.raises(ValueError, match="8x32"):
        parse_sampling(text)
    with pytest.raises(ValueError, match="10x3"):
        parse_views(text)

from dataclasses import replace
from functools import partial

import pytest
import torch

from tokshift_zoo.models.registry import Weights
from tokshift_zoo.video.transforms import (
    VideoEvalTransform,
    VideoTrainTransform,
    create_transform,
    frame_indices,
    train_short_side,
)

HALF = (0.5, 0.5, 0.5)
record = partial(Weights, "tiny", "test", interpolation="bilinear")  # a weights record: what the pipeline reads


def bands(height: int, width: int, values: list[int], frames: int = 2, vertical: bool = False) -> torch.Tensor:
    """uint8 video (T, 3, H, W) cut into equal bands along the width (or height), one grey value each."""
    video = torch.empty(frames, 3, height, width, dtype=torch.uint8)
    size = (height if vertical else width) // len(values)
    for i, value in enumerate(values):
        if vertical:
            video[..., i * size : (i + 1) * size, :] = value
        else:
            video[..., i * size : (i + 1) * size] = value
    return video


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """Undo the (0.5, 0.5) normalisation: [-1, 1] -> [0, 255]."""
    return (x * 0.5 + 0.5) * 255


def test_three_crops_left_centre_right_landscape():
    config = record(input_size=(3, 32, 32), mean=HALF, std=HALF)
    out = create_transform(config)(bands(32, 96, [0, 128, 255], frames=4))  # short side = crop: no resize
    assert out.shape == (3, 3, 4, 32, 32)  # (crops, C, T, H, W)
    assert out.dtype == torch.float32
    for crop, value in zip(out, [0, 128, 255], strict=True):
        torch.testing.assert_close(to_pixels(crop), torch.full_like(crop, value), atol=1e-3, rtol=0)


def test_three_crops_left_centre_right_centred_vertically_on_portrait_frames():
    # the authors' clip_crop: x = 0 / (W - crop) // 2 / W - crop, y = (H - crop) // 2, whatever the shape; a
    # portrait frame resized to the crop width gives three middle crops
    config = record(input_size=(3, 32, 32), mean=HALF, std=HALF)
    out = create_transform(config)(bands(96, 32, [10, 100, 200], vertical=True))
    assert [round(float(to_pixels(c).mean())) for c in out] == [100, 100, 100]
    wide = create_transform(replace(config, crop_pct=0.5))  # short side 64: the crops spread across the width
    video = bands(192, 64, [10, 200])  # portrait, two bands side by side
    assert [round(float(to_pixels(c).mean())) for c in wide(video)] == [10, 105, 200]
    assert wide.crop_origins(192, 64) == [(80, 0), (80, 16), (80, 32)]


def test_short_side_resize_keeps_aspect_ratio():
    # 64x192 -> short side 32 -> 32x96: the three crops are the original thirds, halved
    config = record(input_size=(3, 32, 32), mean=HALF, std=HALF)
    out = to_pixels(create_transform(config)(bands(64, 192, [0, 128, 255])))
    assert out.shape == (3, 3, 2, 32, 32)
    for crop, value in zip(out, [0, 128, 255], strict=True):
        inner = crop[..., 2:-2]  # columns next to a band edge are blended by the resize
        torch.testing.assert_close(inner, torch.full_like(inner, value), atol=0.5, rtol=0)


def test_centre_crop_offsets_floor_like_the_authors():
    # width 35, crop 32: centre offset (35 - 32) // 2 = 1, right offset 3
    video = torch.arange(35, dtype=torch.uint8).expand(1, 3, 32, 35).clone()
    t = VideoEvalTransform((32, 32), 32, 3, mean=(0.0,) * 3, std=(1 / 255,) * 3)
    first_columns = t(video)[:, 0, 0, 0, 0]
    assert first_columns.tolist() == [0, 1, 3]
    one = create_transform(record(input_size=(3, 32, 32), mean=(0.0,) * 3, std=(1 / 255,) * 3), num_crops=1)
    assert one(video).shape == (1, 3, 1, 32, 32) and one(video)[0, 0, 0, 0, 0] == 1


def test_crop_pct_resizes_short_side_to_crop_over_pct():
    config = record(input_size=(3, 32, 32), crop_pct=0.5)
    t = create_transform(config, num_crops=1)
    assert t.resize_size == 64
    assert t(torch.zeros(1, 3, 100, 200, dtype=torch.uint8)).shape == (1, 3, 1, 32, 32)


def test_normalisation_values():
    config = record(input_size=(3, 8, 8), mean=HALF, std=HALF)
    t = create_transform(config, num_crops=1)
    assert bool((t(torch.zeros(2, 3, 8, 8, dtype=torch.uint8)) == -1).all())
    assert bool((t(torch.full((2, 3, 8, 8), 255, dtype=torch.uint8)) == 1).all())
    imagenet = record(input_size=(3, 8, 8), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    out = create_transform(imagenet, num_crops=1)(torch.full((1, 3, 8, 8), 255, dtype=torch.uint8))
    torch.testing.assert_close(
        out[0, :, 0, 0, 0], torch.tensor([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, 0.594 / 0.225])
    )


def test_batched_clips_keep_leading_dims():
    t = create_transform(record(input_size=(3, 16, 16)))
    assert t(torch.zeros(5, 4, 3, 20, 30, dtype=torch.uint8)).shape == (5, 3, 3, 4, 16, 16)


def test_training_output_and_randomness():
    config = record(input_size=(3, 32, 32), mean=HALF, std=HALF)
    t = create_transform(config, is_training=True)
    assert isinstance(t, VideoTrainTransform)
    assert t.short_side == (32, round(32 * 330 / 224))
    video = torch.arange(48 * 64, dtype=torch.int64).reshape(48, 64).remainder(251).to(torch.uint8)
    video = video.expand(6, 3, 48, 64).clone()  # T=6 identical frames with texture
    torch.manual_seed(0)
    outs = [t(video) for _ in range(8)]
    assert all(o.shape == (3, 6, 32, 32) for o in outs)  # (C, T, H, W)
    assert all(bool((o == o[:, :1]).all()) for o in outs)  # one crop for all frames of the clip
    assert len({tuple(o[0, 0, 0, :4].tolist()) for o in outs}) > 1  # the crops differ between calls


def test_training_flip_is_random_and_horizontal():
    # short side range (32, 32) and a 32x32 video: no resize or crop freedom, only the flip is random
    config = record(input_size=(3, 32, 32), mean=HALF, std=HALF, train_scale=(32, 32))
    t = create_transform(config, is_training=True)
    video = bands(32, 32, [0, 255])
    torch.manual_seed(0)
    left_columns = {round(float(to_pixels(t(video))[0, 0, 0, 0])) for _ in range(20)}
    assert left_columns == {0, 255}


def test_train_short_side_scales_the_paper_range():
    assert train_short_side(record(input_size=(3, 224, 224))) == (224, 330)
    assert train_short_side(record(input_size=(3, 384, 384))) == (384, 566)
    assert train_short_side(record(train_scale=(256, 320))) == (256, 320)


def test_frame_indices_follow_the_config():
    dense = record(num_frames=8, frame_stride=32, test_clips=10)
    assert frame_indices(dense, 300).shape == (10, 8)
    assert frame_indices(dense, 300)[:, 0].tolist() == [0, 30] + [45] * 8  # the authors' read_clip starts
    assert frame_indices(replace(dense, start_rule="even"), 300)[9, 0] == 44  # the even spread, kept by name
    assert frame_indices(dense, 300, training=True, generator=torch.Generator().manual_seed(0)).shape == (1, 8)
    uniform = record(num_frames=4, sampling="uniform", test_clips=2)
    assert frame_indices(uniform, 16).tolist() == [[1, 5, 9, 13], [3, 7, 11, 15]]
    assert frame_indices(uniform, 16, clip_index=1).tolist() == [[3, 7, 11, 15]]


def test_repr_is_readable():
    config = record(input_size=(3, 224, 224), interpolation="bicubic")
    text = repr(create_transform(config))
    assert text.startswith("VideoEvalTransform(")
    assert "resize_short_side=224" in text and "3 of 224x224" in text and "left, centre, right" in text
    assert "mean=[0.5, 0.5, 0.5]" in text and "bicubic" in text
    train = repr(create_transform(config, is_training=True))
    assert "random in [224, 330]" in train and "horizontal flip" in train


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sampling="random"), "sampling"),
        (dict(start_rule="linspace"), "start_rule"),
        (dict(test_crops=2), "test_crops"),
        (dict(interpolation="cubic-ish"), "cubic-ish"),
        (dict(mean=(0.5, 0.5)), "mean"),
        (dict(start_rule="tsm"), "start_rule"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        record(**kwargs)


def test_transform_rejects_bad_input_and_arguments():
    t = create_transform(record(input_size=(3, 16, 16)))
    with pytest.raises(ValueError, match=r"permute\(0, 3, 1, 2\)"):
        t(torch.zeros(4, 20, 30, 3, dtype=torch.uint8))  # decoded (T, H, W, 3) not permuted
    with pytest.raises(ValueError, match="uint8"):
        t(torch.zeros(4, 3, 20, 30))
    with pytest.raises(ValueError, match="num_crops"):
        create_transform(record(), num_crops=2)
    with pytest.raises(ValueError, match="num_crops"):
        create_transform(record(), is_training=True, num_crops=1)
    with pytest.raises(ValueError, match="short side"):
        create_transform(record(train_scale=(100, 300)), is_training=True)


def test_training_flips_can_be_turned_off_for_direction_classes():
    video = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    video[..., 16:] = 255  # dark left half, bright right half
    config = record(input_size=(3, 32, 32), train_scale=(32, 32))
    flipped = [create_transform(config, is_training=True)(video)[0, 0, 0, 0].item() > 0 for _ in range(40)]
    assert any(flipped) and not all(flipped)
    no_flip = replace(config, train_hflip=False)
    assert "p=0.0" in repr(create_transform(no_flip, is_training=True))
    assert all(create_transform(no_flip, is_training=True)(video)[0, 0, 0, 0].item() < 0 for _ in range(40))

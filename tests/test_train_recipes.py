"""``--recipe paper`` against the authors' code: their augmentation transcribed from ``data/augmentation.py`` of
VideoNetworks/TokShift-Transformer (with their numpy draws fed from one script that ours is fed from too), their
clip starts (``data/dataset.py``), their loss (``main_ddp_shift_v3.py``) and their schedule values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from tokshift_zoo.train import TrainConfig
from tokshift_zoo.train.optim import scaled_lr
from tokshift_zoo.train.recipes import RECIPES
from tokshift_zoo.video import dense_indices
from tokshift_zoo.video import transforms as zoo_transforms
from tokshift_zoo.video.transforms import PaperClipAugment, VideoTrainTransform


class Script:
    """A random source that hands out scripted values and records every call: (kind, bounds). A scripted int is
    an offset from the range's low end (clamped to the range), a scripted unit a position in [0, 1]."""

    def __init__(self, ints: list[int], units: list[float]) -> None:
        self.ints, self.units, self.calls = list(ints), list(units), []

    def randint(self, low: int, high: int | None = None) -> int:
        low, high = (0, low) if high is None else (low, high)
        self.calls.append(("randint", low, high))
        return low + min(self.ints.pop(0), high - 1 - low)

    def uniform(self, low: float, high: float) -> float:
        self.calls.append(("uniform", low, high))
        return low + (high - low) * self.units.pop(0)


# --- the authors' Train_ClipAug, transcribed (``random`` is their ``from numpy import random``) -----------------


def _authors_train_clip_aug(pil_clip, random, patch_size, short_side_range):
    """clip_random_hflip(2), clip_random_crop, clip_random_brightness(10), clip_random_saturation(10),
    clip_random_gamma(10), clip_random_hue(10), in that order, as their Compose_func runs them."""
    if not random.randint(2):  # clip_random_hflip: "if random.randint(self.prob): return" else flip
        pil_clip = [TF.hflip(x) for x in pil_clip]
    short_side = random.randint(short_side_range[0], short_side_range[1])  # clip_random_crop
    pil_clip = [_short_side_resize(x, short_side) for x in pil_clip]
    width, height = pil_clip[0].size
    y_offset = int(random.randint(0, height - patch_size)) if height > patch_size else 0
    x_offset = int(random.randint(0, width - patch_size)) if width > patch_size else 0
    pil_clip = [x.crop((x_offset, y_offset, x_offset + patch_size, y_offset + patch_size)) for x in pil_clip]
    for value, adjust in (
        ([0.5, 1 + 1], TF.adjust_brightness),  # clip_random_brightness(prob, brightness=1)
        ([0.5, 1 + 2], TF.adjust_saturation),  # clip_random_saturation(prob, saturation=2)
        ([1 - 0.2, 1 + 0.2], TF.adjust_gamma),  # clip_random_gamma(prob, gamma=0.2)
        ([-0.5, 0.5], TF.adjust_hue),  # clip_random_hue
    ):
        if not random.randint(10):
            factor = random.uniform(value[0], value[1])
            pil_clip = [adjust(x, factor) for x in pil_clip]
    return pil_clip


def _short_side_resize(pil_img, short_side):
    width, height = pil_img.size
    if width > height:
        new_height, new_width = short_side, int(math.floor(1.0 * width / height * short_side))
    else:
        new_width, new_height = short_side, int(math.floor(1.0 * height / width * short_side))
    return pil_img.resize((new_width, new_height), Image.BICUBIC)


def _authors_read_random_clip_starts(frame_cnt, t_size, t_step, random):
    """``read_random_clip``'s indices, 0-based (theirs add 1 for img_00001.jpg)."""
    max_bound = max(frame_cnt - t_size * t_step + 1, 1)
    st_idx = 0 if max_bound == 1 else random.randint(0, max_bound - 1)
    return [(idx * t_step + st_idx) % frame_cnt for idx in range(t_size)]


# --- ours, fed from the same script ---------------------------------------------------------------------------


def _patch_torch_random(monkeypatch, script: Script) -> None:
    def randint(low, high, size, generator=None):
        return torch.tensor(script.randint(low, high))

    def rand(size, generator=None):
        low_high = ("uniform",)
        script.calls.append(low_high)  # the unit draw; ours scales it to the bounds (checked through the result)
        return torch.tensor(script.units.pop(0))

    monkeypatch.setattr(zoo_transforms.torch, "randint", randint)
    monkeypatch.setattr(zoo_transforms.torch, "rand", rand)


def _clip(rng: np.random.Generator, height: int = 30, width: int = 44, frames: int = 3) -> np.ndarray:
    """Smooth colourful frames (bicubic resizes of smooth content agree across PIL and torchvision)."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    out = []
    for t in range(frames):
        phase = rng.uniform(0, 6, 3)
        rgb = [0.5 + 0.4 * np.sin(3 * xx + 2 * yy + phase[c] + t) for c in range(3)]
        out.append((np.stack(rgb, -1) * 255).round().astype(np.uint8))
    return np.stack(out)


@pytest.mark.parametrize(
    "ints, units",
    [
        ([0, 5, 3, 7, 0, 1, 0, 0], [0.3, 0.9, 0.1]),  # flip, brightness, gamma, hue
        ([1, 0, 0, 9, 0, 5, 2], [0.6]),  # no flip, the smallest short side (no top offset drawn), saturation
        ([1, 99, 99, 99, 0, 0, 0, 0], [0.0, 1.0, 0.5, 0.25]),  # the largest short side and offsets, every colour
    ],
)
def test_paper_augmentation_draws_and_applies_what_the_authors_do(monkeypatch, ints, units):
    """The same scripted draws give the same calls (kind, range, order) and the same pixels (up to the
    PIL-vs-tensor bicubic and colour rounding) as their Train_ClipAug on 30x44 frames, patch 24, short side
    randint(24, 36)."""
    frames = _clip(np.random.default_rng(len(units)))
    theirs_script, ours_script = Script(ints, units), Script(ints, units)
    theirs = _authors_train_clip_aug([Image.fromarray(f) for f in frames], theirs_script, 24, [24, 36])
    theirs = np.stack([np.asarray(x) for x in theirs])

    _patch_torch_random(monkeypatch, ours_script)
    augment = PaperClipAugment((24, 24), (24, 36))
    ours = augment(torch.from_numpy(frames).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()

    their_calls = [c[:3] if c[0] == "randint" else ("uniform",) for c in theirs_script.calls]
    assert ours_script.calls == their_calls  # the same draws, from the same ranges, in the same order
    assert ours.shape == theirs.shape == (3, 24, 24, 3)
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    assert diff.mean() < 3.0, diff.mean()


def test_paper_augmentation_ranges_and_probabilities_on_many_draws():
    """Ours, drawn 4000 times from a seeded generator: flips half the time, short sides 224-329 (330 never),
    crop offsets up to extent - crop - 1, each colour step one time in ten, factors inside the authors' ranges."""
    augment = PaperClipAugment((224, 224), (224, 330))
    generator = torch.Generator().manual_seed(0)
    draws = [augment.draw(256, 340, generator) for _ in range(4000)]
    assert abs(np.mean([d["flip"] for d in draws]) - 0.5) < 0.03
    shorts = {d["size"][0] for d in draws}
    assert shorts == set(range(224, 330))
    assert all(d["size"][1] == 340 * d["size"][0] // 256 for d in draws)
    assert all(d["top"] == 0 for d in draws if d["size"][0] == 224)
    for key, side in (("top", 0), ("left", 1)):  # randint(0, extent - crop): the last offset is never drawn
        slack = [d["size"][side] - 224 - 1 - d[key] for d in draws if d["size"][side] > 224]
        assert min(slack) == 0 and all(s >= 0 for s in slack), key
    for name, (low, high) in dict(brightness=(0.5, 2), saturation=(0.5, 3), gamma=(0.8, 1.2), hue=(-0.5, 0.5)).items():
        applied = [d[name] for d in draws if d[name] is not None]
        assert abs(len(applied) / len(draws) - 0.1) < 0.02, name
        assert low <= min(applied) and max(applied) <= high
        assert min(applied) < low + 0.1 * (high - low) and max(applied) > high - 0.1 * (high - low), name


def test_paper_clip_starts_exclude_the_last_start_as_the_authors():
    """dense_indices(authors_start=True) draws from the same starts as their read_random_clip: 300 frames at
    8x32 start at 0..43 (their randint(0, 44)), never 44; 256 and 257 frames start at 0 only."""
    for frames, expected in ((300, set(range(44))), (257, {0}), (256, {0}), (100, {0})):
        generator = torch.Generator().manual_seed(frames)
        ours = {
            int(dense_indices(frames, 8, 32, training=True, generator=generator, authors_start=True)[0, 0])
            for _ in range(3000)
        }
        rs = np.random.RandomState(0)
        theirs = {_authors_read_random_clip_starts(frames, 8, 32, rs)[0] for _ in range(3000)}
        assert ours == theirs == expected, frames
    indices = dense_indices(100, 8, 32, training=True, authors_start=True)[0].tolist()
    assert indices == _authors_read_random_clip_starts(100, 8, 32, np.random.RandomState(0))  # the wrap-around


def test_paper_loss_is_their_label_smoothing_cross_entropy():
    """Their LabelSmoothingCrossEntropy() (smoothing 0.1) equals the trainer's loss at the recipe's smoothing."""
    logits, target = torch.randn(6, 5, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 3, 4, 0])
    logprobs = torch.log_softmax(logits, dim=-1)
    nll = -logprobs.gather(dim=-1, index=target.unsqueeze(1)).squeeze(1)
    theirs = ((1 - 0.1) * nll + 0.1 * -logprobs.mean(dim=-1)).mean()
    ours = torch.nn.CrossEntropyLoss(label_smoothing=RECIPES["paper"]["label_smoothing"])(logits, target)
    assert torch.allclose(ours, theirs)


def test_paper_recipe_values_and_the_linear_scaling_rule():
    """SGD momentum 0.9, no weight decay, steps [10, 15, 18] of 18, clipping 1.0, accumulation 10; lr 0.1 at
    their 2 x 21 clips per step, scaled for others; the augmentation is theirs."""
    config = TrainConfig.from_recipe("paper", model="m", train_list="l", output="o")
    assert (config.optimizer, config.sched, config.momentum, config.weight_decay) == ("sgd", "step", 0.9, 0.0)
    assert (config.epochs, config.lr_steps, config.lr_gamma, config.clip_grad) == (18, (10, 15, 18), 0.1, 1.0)
    assert (config.label_smoothing, config.accum_steps, config.augment, config.recipe) == (0.1, 10, "paper", "paper")
    assert scaled_lr(config, world_size=2) == pytest.approx(0.1)  # their 2 GPUs x 21
    assert scaled_lr(config, world_size=1) == pytest.approx(0.05)
    assert scaled_lr(TrainConfig.from_recipe("paper", model="m", train_list="l", output="o", batch_size=8), 4) == (
        pytest.approx(0.1 * 32 / 42)
    )
    assert TrainConfig.from_recipe("paper", model="m", train_list="l", output="o", epochs=3).epochs == 3
    preset = VideoTrainTransform((224, 224), (224, 330), (0.5,) * 3, (0.5,) * 3, augment="paper")
    assert isinstance(preset.pipeline.transforms[0], PaperClipAugment)
    assert preset.pipeline.transforms[0].short_side == (224, 330)  # randint(224, 330): 330 excluded

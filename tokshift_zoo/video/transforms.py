"""From decoded frames to model input: which frames make the clips, and the preset transforms.

Everything here reads a model's settings from a weights record (``tokshift_zoo.Weights``, ``model.weights``),
typed by the ``ClipSpec`` protocol below, so this module knows nothing of models.

The paper's protocol (and the authors' ``data/augmentation.py`` and configs): testing resizes the short side
to the crop size (bicubic, as PIL's ``BICUBIC``) and takes three crops, left, centre and right, centred
vertically, whatever the frame's shape (``Test_ClipAug``); training resizes the short
side to a random length in ``[crop, crop * 330 / 224]`` (224-330 for 224 crops), takes a random crop and flips
horizontally half the time. Pixels are scaled to [0, 1], then normalised with the model's mean and std.

Built on ``torchvision.transforms.v2`` with the frames wrapped as ``tv_tensors.Video``, so one clip shares one
set of random parameters across its frames.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Protocol

import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from ..notices import warn_once
from .sampling import dense_indices, uniform_indices

__all__ = [
    "ClipSpec",
    "create_transform",
    "crop_size",
    "frame_indices",
    "train_short_side",
    "VideoEvalTransform",
    "VideoTrainTransform",
    "PaperClipAugment",
]

_PAPER_SCALE = 330 / 224  # the paper's training short side is 224-330 for 224 crops

_logger = logging.getLogger(__name__)


class ClipSpec(Protocol):
    """The settings a video pipeline reads: the fields of a weights record (``tokshift_zoo.Weights``).

    Attributes:
        input_size: (C, H, W) of each frame the model takes; (H, W) is the crop size.
        num_frames: frames per clip.
        frame_stride: step between sampled frames of dense sampling, in frames.
        sampling: ``"dense"`` (``num_frames`` x ``frame_stride``) or ``"uniform"`` (one frame per segment).
        start_rule: where dense test clips start: ``"authors"`` (their ``read_clip``, the paper's numbers) or
            ``"even"`` (distinct clips spread evenly); see ``sampling.dense_indices``.
        mean, std: per-channel normalisation of pixels scaled to [0, 1].
        interpolation: resize interpolation, a torchvision mode name (``"bicubic"``, the authors' PIL filter;
            ``"bilinear"``, ...).
        crop_pct: crop size / resized short side at test time (1.0: the paper's resize to the crop size).
        test_clips: clips per video at test time, placed by ``start_rule`` (dense) or inside the segments.
        test_crops: crops per clip at test time: 3 (left, centre, right) or 1 (centre).
        train_hflip: flip training clips horizontally half the time.
        train_scale: (min, max) short side in pixels for training, inclusive; ``None`` scales the paper's
            224-330 to the crop size (see ``train_short_side``).
    """

    input_size: tuple[int, int, int]
    num_frames: int
    frame_stride: int
    sampling: str
    start_rule: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    crop_pct: float
    test_clips: int
    test_crops: int
    train_hflip: bool
    train_scale: tuple[int, int] | None


def crop_size(spec: ClipSpec) -> tuple[int, int]:
    """(H, W) of the crops, in pixels."""
    return spec.input_size[1], spec.input_size[2]


def train_short_side(spec: ClipSpec) -> tuple[int, int]:
    """(min, max) training short side in pixels: ``spec.train_scale``, or ``crop * (1, 330 / 224)`` rounded.

    The paper's 224-330 for 224 crops (the k400 records carry the authors' own ranges: 256-380, 384-512).
    """
    if spec.train_scale is not None:
        return tuple(spec.train_scale)
    crop = max(crop_size(spec))
    return crop, round(crop * _PAPER_SCALE)


def frame_indices(
    spec: ClipSpec,
    num_video_frames: int,
    training: bool = False,
    clip_index: int | None = None,
    generator: torch.Generator | None = None,
    source: str | None = None,
) -> torch.Tensor:
    """Frame indices of ``spec``'s clips for a video of ``num_video_frames`` frames.

    Testing gives ``spec.test_clips`` clips (or clip ``clip_index`` of them), their starts placed by
    ``spec.start_rule``; training one random clip. See ``dense_indices`` and ``uniform_indices`` for the rules.
    ``source``: the video's name, for the warnings.

    Returns:
        int64 tensor (clips, num_frames).
    """
    num_clips = 1 if training else spec.test_clips
    if spec.sampling == "dense":
        indices = dense_indices(
            num_video_frames,
            spec.num_frames,
            spec.frame_stride,
            num_clips,
            clip_index,
            training,
            generator,
            start_rule=spec.start_rule,
        )
    else:
        indices = uniform_indices(num_video_frames, spec.num_frames, num_clips, clip_index, training, generator)
    _warn_if_short(spec, num_video_frames, indices, clip_index is None and not training, source)
    return indices


def _warn_if_short(
    spec: ClipSpec, num_video_frames: int, indices: torch.Tensor, all_test_clips: bool, source: str | None = None
) -> None:
    """Say once (per run) when a video is too short for a clip or for the test clips asked for."""
    steps = indices.diff(dim=1)  # (clips, T - 1)
    spans = f"{spec.num_frames}x{spec.frame_stride} clip spans {spec.num_frames * spec.frame_stride}"
    video = f"{source + ': ' if source else ''}a video of {_frames(num_video_frames)}"
    still = (steps == 0).all(dim=1)  # (clips,): a clip of one frame, repeated
    if spec.num_frames > 1 and bool(still.any()):
        warn_once(
            _logger,
            "still",
            f"{video} gives {spec.num_frames}-frame clips whose every index is frame {int(indices[still][0, 0])}: "
            f"the model sees a still image, not motion (the {spans} frames); further such videos are not reported",
        )
    elif bool((steps < 0).any()):
        warn_once(
            _logger,
            "wrap",
            f"{video} is shorter than the {spans} frames: its frame indices wrap around to the start (as the "
            "authors' loader does); further videos shorter than a clip's span are not reported",
        )
    elif bool((steps == 0).any()):
        warn_once(
            _logger,
            "repeat",
            f"{video} has fewer than the {spec.num_frames} frames a clip needs: frames are repeated to fill the "
            "clip; further videos with too few frames are not reported",
        )
    distinct = len(torch.unique(indices, dim=0)) if all_test_clips else len(indices)
    if distinct < len(indices):
        warn_once(
            _logger,
            "views",
            f"{len(indices)} test clips per video were asked for, but a video of {_frames(num_video_frames)} has "
            f"only {distinct} distinct ones: the others repeat them (fewer clips give the same scores faster); "
            "further such videos are not reported",
        )


def _frames(count: int) -> str:
    return f"{count} frame" if count == 1 else f"{count} frames"


def _check_video(video: torch.Tensor) -> None:
    if video.dtype != torch.uint8 or video.ndim < 4 or video.shape[-3] != 3:
        raise ValueError(
            f"expected a uint8 video of shape (..., T, 3, H, W), got {video.dtype} of shape {tuple(video.shape)}; "
            "decoded frames (T, H, W, 3) need .permute(0, 3, 1, 2)"
        )


class VideoEvalTransform(nn.Module):
    """Test-time preset: resize the short side, take 1 or 3 crops, scale to [0, 1] and normalise.

    The authors' ``Test_ClipAug`` (``data/augmentation.py``), on frames of any shape:

    - resize: the short side to ``resize_size``, the long side to ``floor(long / short * resize_size)``
      (``short_side_resize``'s float arithmetic, which is sometimes one pixel short of torchvision's own
      rounding), with ``interpolation``; bicubic on uint8 CPU frames is within 2 levels of PIL's ``BICUBIC``
      (torch's uint8 kernel resizes in two passes rounded to uint8 between them, as PIL does; other devices
      resize in float in one pass, and differ from PIL by more on fine texture);
    - crops: left ``x = 0``, centre ``x = (W - crop) // 2`` and right ``x = W - crop``, each centred
      vertically at ``y = (H - crop) // 2``, on landscape and portrait frames alike (``clip_crop`` types 1 and 2,
      ``clip_center_crop``): on a portrait or square frame resized to the crop size the three crops coincide.
      One crop: the centre one. Crops come in the order left, centre, right (the authors': centre, left, right;
      the view mean is the same).

    Input: uint8 (..., T, 3, H, W). Output: float32 (..., num_crops, 3, T, crop_h, crop_w).
    """

    def __init__(
        self,
        crop_size: tuple[int, int],
        resize_size: int,
        num_crops: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        interpolation: str = "bicubic",
    ) -> None:
        super().__init__()
        if num_crops not in (1, 3):
            raise ValueError(f"num_crops must be 1 (centre) or 3 (left, centre, right), got {num_crops}")
        if resize_size < max(crop_size):
            raise ValueError(f"resize_size {resize_size} is smaller than the crop {crop_size}")
        self.crop_size, self.resize_size, self.num_crops = tuple(crop_size), resize_size, num_crops
        self.mean, self.std = list(mean), list(std)
        self.interpolation = InterpolationMode(interpolation)

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(H, W) of a ``height`` x ``width`` frame after the short-side resize, as the authors compute it."""
        if width > height:
            return self.resize_size, int(math.floor(1.0 * width / height * self.resize_size))
        return int(math.floor(1.0 * height / width * self.resize_size)), self.resize_size

    def crop_origins(self, height: int, width: int) -> list[tuple[int, int]]:
        """(top, left) of each crop of a resized ``height`` x ``width`` frame: left, centre, right (or centre)."""
        crop_h, crop_w = self.crop_size
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        if self.num_crops == 1:
            return [(top, left)]
        return [(top, 0), (top, left), (top, width - crop_w)]

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        _check_video(video)
        height, width = self.resized_size(*video.shape[-2:])
        video = F.resize(tv_tensors.Video(video), [height, width], interpolation=self.interpolation, antialias=True)
        crop_h, crop_w = self.crop_size
        crops = [F.crop(video, top, left, crop_h, crop_w) for top, left in self.crop_origins(height, width)]
        x = torch.stack([c.as_subclass(torch.Tensor) for c in crops], dim=-5)  # (..., crops, T, 3, h, w)
        x = F.normalize(F.to_dtype(x, torch.float32, scale=True), self.mean, self.std)
        return x.transpose(-4, -3)  # (..., crops, T, 3, h, w) -> (..., crops, 3, T, h, w)

    def __repr__(self) -> str:
        where = "centre" if self.num_crops == 1 else "left, centre, right; centred vertically"
        return (
            f"{type(self).__name__}(\n"
            f"    resize_short_side={self.resize_size}, interpolation={self.interpolation.value}\n"
            f"    crops={self.num_crops} of {self.crop_size[0]}x{self.crop_size[1]} ({where})\n"
            f"    mean={self.mean}, std={self.std}\n"
            f"    output=(..., {self.num_crops}, 3, T, {self.crop_size[0]}, {self.crop_size[1]}) float32\n"
            ")"
        )


_AUTO_AUGMENTS = {"rand": v2.RandAugment, "trivial": v2.TrivialAugmentWide}


class PaperClipAugment(nn.Module):
    """The TokShift authors' training augmentation (``Train_ClipAug`` of their ``data/augmentation.py``), in their
    order and with their ranges, on a uint8 clip; one draw per clip, shared by its frames.

    1. horizontal flip with probability 1/2 (``clip_random_hflip(2)``: ``randint(2) == 0``);
    2. short side resized (bicubic) to ``randint(low, high)`` (``high`` excluded, as numpy's ``randint``: 224-329
       for their ``[224, 330]``), the long side ``floor(long * short / old_short)``; then a crop whose top and left
       are ``randint(0, extent - crop)`` (the last offset excluded; 0 when the extent equals the crop);
    3. brightness x U[0.5, 2], 4. saturation x U[0.5, 3], 5. gamma U[0.8, 1.2], 6. hue shift U[-0.5, 0.5], each
       applied with probability 1/10 (``randint(10) == 0``), in that order.

    Input: uint8 (T, 3, H, W). Output: uint8 (T, 3, crop_h, crop_w).
    """

    BRIGHTNESS, SATURATION, GAMMA, HUE = (0.5, 2.0), (0.5, 3.0), (0.8, 1.2), (-0.5, 0.5)
    COLOUR_PROB = 0.1

    def __init__(self, crop_size: tuple[int, int], short_side: tuple[int, int], hflip: bool = True) -> None:
        super().__init__()
        low, high = short_side
        if not max(crop_size) <= low < high:
            raise ValueError(f"the short side range {short_side} must start at or above the crop {crop_size}")
        self.crop_size, self.short_side, self.hflip = tuple(crop_size), (low, high), hflip

    def draw(self, height: int, width: int, generator: torch.Generator | None = None) -> dict[str, Any]:
        """The random choices for a clip of ``height`` x ``width`` frames, in the authors' order; a colour
        factor is ``None`` when that step is skipped."""

        def randint(high: int, low: int = 0) -> int:
            return int(torch.randint(low, high, (), generator=generator))

        def maybe(bounds: tuple[float, float]) -> float | None:
            if randint(round(1 / self.COLOUR_PROB)) != 0:
                return None
            return bounds[0] + (bounds[1] - bounds[0]) * float(torch.rand((), generator=generator))

        flip = randint(2) == 0 and self.hflip
        short = randint(self.short_side[1], self.short_side[0])
        size = (short, width * short // height) if width > height else (height * short // width, short)
        crop_h, crop_w = self.crop_size
        top = randint(size[0] - crop_h) if size[0] > crop_h else 0
        left = randint(size[1] - crop_w) if size[1] > crop_w else 0
        return dict(
            flip=flip,
            size=size,
            top=top,
            left=left,
            brightness=maybe(self.BRIGHTNESS),
            saturation=maybe(self.SATURATION),
            gamma=maybe(self.GAMMA),
            hue=maybe(self.HUE),
        )

    def apply(self, video: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        """The augmentation of ``params`` (from ``draw``) on uint8 (T, 3, H, W) frames."""
        video = tv_tensors.Video(video)
        if params["flip"]:
            video = F.horizontal_flip(video)
        video = F.resize(video, list(params["size"]), interpolation=InterpolationMode.BICUBIC, antialias=True)
        video = F.crop(video, params["top"], params["left"], *self.crop_size)
        for name, adjust in (
            ("brightness", F.adjust_brightness),
            ("saturation", F.adjust_saturation),
            ("gamma", F.adjust_gamma),
            ("hue", F.adjust_hue),
        ):
            if params[name] is not None:
                video = adjust(video, params[name])
        return video.as_subclass(torch.Tensor)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.apply(video, self.draw(*video.shape[-2:]))

    def extra_repr(self) -> str:
        low, high = self.short_side
        return (
            f"flip p={0.5 if self.hflip else 0.0}, short side randint({low}, {high}) bicubic, random crop "
            f"{self.crop_size[0]}x{self.crop_size[1]}, brightness {self.BRIGHTNESS} saturation {self.SATURATION} "
            f"gamma {self.GAMMA} hue {self.HUE} each p={self.COLOUR_PROB}"
        )


class VideoTrainTransform(nn.Module):
    """Training preset: random short side, random crop, random horizontal flip, scale to [0, 1], normalise.

    ``augment="paper"`` replaces the first three with the authors' ``PaperClipAugment`` (flip, bicubic resize and
    crop with their exclusive ranges, colour jitter); ``auto_augment`` (``"rand"``: torchvision's RandAugment,
    ``"trivial"``: TrivialAugmentWide) then follows the crop. The random parameters are drawn from torch's global
    generator, once per call: all frames of a clip (and all clips of a batched input) share them.

    Input: uint8 (..., T, 3, H, W). Output: float32 (..., 3, T, crop_h, crop_w).
    """

    def __init__(
        self,
        crop_size: tuple[int, int],
        short_side: tuple[int, int],
        mean: tuple[float, ...],
        std: tuple[float, ...],
        interpolation: str = "bilinear",
        hflip: bool = True,
        augment: str = "zoo",
        auto_augment: str | None = None,
    ) -> None:
        super().__init__()
        low, high = short_side
        if not max(crop_size) <= low <= high:
            raise ValueError(f"the short side range {short_side} must start at or above the crop {crop_size}")
        if augment not in ("zoo", "paper") or auto_augment not in (None, *_AUTO_AUGMENTS):
            raise ValueError(
                f"augment must be 'zoo' or 'paper' and auto_augment None, 'rand' or 'trivial', got {augment!r} "
                f"and {auto_augment!r}"
            )
        self.crop_size, self.short_side, self.hflip = tuple(crop_size), (low, high), hflip
        self.augment, self.auto_augment = augment, auto_augment
        self.mean, self.std = list(mean), list(std)
        self.interpolation = InterpolationMode(interpolation)
        if augment == "paper":
            geometry = [PaperClipAugment(self.crop_size, (low, high), hflip=hflip)]
        else:
            geometry = [
                v2.RandomResize(low, high + 1, interpolation=self.interpolation, antialias=True),  # short side
                v2.RandomCrop(self.crop_size),
                v2.RandomHorizontalFlip(0.5 if hflip else 0.0),
            ]
        policy = [_AUTO_AUGMENTS[auto_augment]()] if auto_augment else []
        self.pipeline = v2.Compose(
            [*geometry, *policy, v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)]
        )

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        _check_video(video)
        x = self.pipeline(tv_tensors.Video(video)).as_subclass(torch.Tensor)
        return x.transpose(-4, -3)  # (..., T, 3, h, w) -> (..., 3, T, h, w)

    def __repr__(self) -> str:
        low, high = self.short_side
        if self.augment == "paper":
            geometry = f"    {self.pipeline.transforms[0]!r}\n"
        else:
            geometry = (
                f"    resize_short_side=random in [{low}, {high}], interpolation={self.interpolation.value}\n"
                f"    random crop {self.crop_size[0]}x{self.crop_size[1]}, horizontal flip "
                f"p={0.5 if self.hflip else 0.0}\n"
            )
        policy = f"    auto_augment={self.auto_augment} (one draw per clip)\n" if self.auto_augment else ""
        return (
            f"{type(self).__name__}(\n{geometry}{policy}"
            f"    mean={self.mean}, std={self.std}\n"
            f"    output=(..., 3, T, {self.crop_size[0]}, {self.crop_size[1]}) float32\n"
            ")"
        )


def create_transform(
    spec: ClipSpec, is_training: bool = False, num_crops: int | None = None
) -> VideoEvalTransform | VideoTrainTransform:
    """The preset transform of a weights record (``spec``), for evaluation or training.

    Args:
        spec: the model's weights record (``model.weights``, ``tokshift_zoo.get_weights(NAME)``).
        is_training: the training preset instead of the test one.
        num_crops: test crops per clip, 1 or 3; ``None`` uses ``spec.test_crops``. Not for training.

    Returns:
        A module taking uint8 frames (..., T, 3, H, W) (decoded frames ``.permute(0, 3, 1, 2)``) and returning
        float32 (..., num_crops, 3, T, crop_h, crop_w) for evaluation, (..., 3, T, crop_h, crop_w) for training.
    """
    if is_training:
        if num_crops is not None:
            raise ValueError("num_crops is a test-time setting; the training transform takes one random crop")
        return VideoTrainTransform(
            crop_size(spec),
            train_short_side(spec),
            spec.mean,
            spec.std,
            spec.interpolation,
            hflip=spec.train_hflip,
        )
    resize_size = int(max(crop_size(spec)) / spec.crop_pct)
    return VideoEvalTransform(
        crop_size(spec),
        resize_size,
        spec.test_crops if num_crops is None else num_crops,
        spec.mean,
        spec.std,
        spec.interpolation,
    )

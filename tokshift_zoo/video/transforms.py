"""From decoded frames to model input: the data config and the preset transforms built from it.

The paper's protocol (and the authors' ``data/augmentation.py`` and configs): testing resizes the short side
to the crop size and takes three crops along the long side (left, centre, right); training resizes the short
side to a random length in ``[crop, crop * 330 / 224]`` (224-330 for 224 crops), takes a random crop and flips
horizontally half the time. Pixels are scaled to [0, 1], then normalised with the model's mean and std.

Built on ``torchvision.transforms.v2`` with the frames wrapped as ``tv_tensors.Video``, so one clip shares one
set of random parameters across its frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from ..notices import warn_once
from .sampling import dense_indices, uniform_indices

__all__ = [
    "DataConfig",
    "resolve_data_config",
    "create_transform",
    "VideoEvalTransform",
    "VideoTrainTransform",
    "PaperClipAugment",
]

_PAPER_SCALE = 330 / 224  # the paper's training short side is 224-330 for 224 crops

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataConfig:
    """Everything between a video file and a model's input, for one model.

    The image fields are those of timm's ``pretrained_cfg`` (``input_size``, ``mean``, ``std``,
    ``interpolation``, ``crop_pct``), the video fields those of the zoo's ``VideoCfg``.

    Attributes:
        input_size: (C, H, W) of each frame the model takes; (H, W) is the crop size.
        num_frames: frames per clip.
        frame_stride: step between sampled frames of dense sampling, in frames.
        sampling: ``"dense"`` (``num_frames`` x ``frame_stride``) or ``"uniform"`` (one frame per segment).
        mean, std: per-channel normalisation of pixels scaled to [0, 1].
        interpolation: resize interpolation, a torchvision mode name (``"bilinear"``, ``"bicubic"``, ...).
        crop_pct: crop size / resized short side at test time (1.0: the paper's resize to the crop size).
        test_clips: clips per video at test time, spread evenly over it.
        test_crops: crops per clip at test time: 3 (left, centre, right) or 1 (centre).
        train_hflip: flip training clips horizontally half the time (off for classes that left/right motion
            tells apart, e.g. the demo model's).
        train_scale: (min, max) short side in pixels for training, inclusive; ``None`` scales the paper's
            224-330 to the crop size (see ``train_short_side``).
    """

    input_size: tuple[int, int, int] = (3, 224, 224)
    num_frames: int = 8
    frame_stride: int = 32
    sampling: str = "dense"
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    test_clips: int = 10
    test_crops: int = 3
    train_hflip: bool = True
    train_scale: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.sampling not in ("dense", "uniform"):
            raise ValueError(f"sampling must be 'dense' or 'uniform', got {self.sampling!r}")
        if self.test_crops not in (1, 3):
            raise ValueError(f"test_crops must be 1 (centre) or 3 (left, centre, right), got {self.test_crops}")
        if len(self.input_size) != 3 or len(self.mean) != self.input_size[0] or len(self.std) != self.input_size[0]:
            raise ValueError(
                f"input_size must be (C, H, W) with C values of mean and std, got input_size={self.input_size}, "
                f"mean={self.mean}, std={self.std}"
            )
        InterpolationMode(self.interpolation)  # ValueError for an unknown mode

    @property
    def crop_size(self) -> tuple[int, int]:
        """(H, W) of the crops, in pixels."""
        return self.input_size[1], self.input_size[2]

    @property
    def train_short_side(self) -> tuple[int, int]:
        """(min, max) training short side in pixels: ``train_scale``, or ``crop * (1, 330 / 224)`` rounded.

        The paper's 224-330 for 224 crops; 256 -> (256, 377) and 384 -> (384, 566). (The authors' own configs
        use 256-380 and 384-512 for those sizes; set ``train_scale`` to follow them.)
        """
        if self.train_scale is not None:
            return self.train_scale
        crop = max(self.crop_size)
        return crop, round(crop * _PAPER_SCALE)

    def frame_indices(
        self,
        num_video_frames: int,
        training: bool = False,
        clip_index: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Frame indices of this config's clips for a video of ``num_video_frames`` frames.

        Testing gives ``test_clips`` clips (or clip ``clip_index`` of them), training one random clip; see
        ``dense_indices`` and ``uniform_indices`` for the rules.

        Returns:
            int64 tensor (clips, num_frames).
        """
        num_clips = 1 if training else self.test_clips
        if self.sampling == "dense":
            indices = dense_indices(
                num_video_frames, self.num_frames, self.frame_stride, num_clips, clip_index, training, generator
            )
        else:
            indices = uniform_indices(num_video_frames, self.num_frames, num_clips, clip_index, training, generator)
        self._warn_if_short(num_video_frames, indices, clip_index is None and not training)
        return indices

    def _warn_if_short(self, num_video_frames: int, indices: torch.Tensor, all_test_clips: bool) -> None:
        """Say once (per process) when a video is too short for a clip or for the test clips asked for."""
        steps = indices.diff(dim=1)  # (clips, T - 1)
        spans = f"{self.num_frames}x{self.frame_stride} clip spans {self.num_frames * self.frame_stride}"
        if bool((steps < 0).any()):
            warn_once(
                _logger,
                "wrap",
                f"a video of {num_video_frames} frames is shorter than the {spans} frames: its frame indices wrap "
                "around to the start (as the authors' loader does); further short videos are not reported",
            )
        elif bool((steps == 0).any()):
            warn_once(
                _logger,
                "repeat",
                f"a video of {num_video_frames} frames has fewer than the {self.num_frames} frames a clip needs: "
                "frames are repeated to fill the clip; further short videos are not reported",
            )
        distinct = len(torch.unique(indices, dim=0)) if all_test_clips else len(indices)
        if distinct < len(indices):
            warn_once(
                _logger,
                "views",
                f"{len(indices)} test clips per video were asked for, but a video of {num_video_frames} frames has "
                f"only {distinct} distinct ones: the others repeat them (fewer clips give the same scores faster); "
                "further such videos are not reported",
            )


def resolve_data_config(model: nn.Module) -> DataConfig:
    """The ``DataConfig`` of a built zoo model, like timm's function of the same name.

    Reads the model's timm ``pretrained_cfg`` (mean, std, interpolation, crop_pct), its zoo ``video_cfg``
    (frame stride, sampling, test views), and the input size and clip length the model was built with (an
    ``img_size`` or ``num_frames`` override does not reach ``pretrained_cfg``). Plain attribute reads: this module
    knows nothing of the model classes.
    """
    cfg = model.pretrained_cfg
    video = model.video_cfg
    return DataConfig(
        input_size=(model.in_chans, *model.patch_embed.img_size),
        num_frames=model.num_frames,
        frame_stride=video.frame_stride,
        sampling=video.sampling,
        mean=tuple(cfg.get("mean", DataConfig.mean)),
        std=tuple(cfg.get("std", DataConfig.std)),
        interpolation=cfg.get("interpolation", DataConfig.interpolation),
        crop_pct=cfg.get("crop_pct", DataConfig.crop_pct),
        test_clips=video.test_clips,
        test_crops=video.test_crops,
        train_hflip=video.train_hflip,
    )


def _check_video(video: torch.Tensor) -> None:
    if video.dtype != torch.uint8 or video.ndim < 4 or video.shape[-3] != 3:
        raise ValueError(
            f"expected a uint8 video of shape (..., T, 3, H, W), got {video.dtype} of shape {tuple(video.shape)}; "
            "decoded frames (T, H, W, 3) need .permute(0, 3, 1, 2)"
        )


class VideoEvalTransform(nn.Module):
    """Test-time preset: resize the short side, take 1 or 3 crops, scale to [0, 1] and normalise.

    Three crops lie along the long side: left, centre, right for landscape frames, top, middle, bottom for
    portrait ones; each is centred across the short side. Offsets are ``(long - crop) * (0, 1/2, 1)`` floored,
    as the authors' ``clip_crop`` (one crop: the centre one).

    Input: uint8 (..., T, 3, H, W). Output: float32 (..., num_crops, 3, T, crop_h, crop_w).
    """

    def __init__(
        self,
        crop_size: tuple[int, int],
        resize_size: int,
        num_crops: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        interpolation: str = "bilinear",
    ) -> None:
        super().__init__()
        if num_crops not in (1, 3):
            raise ValueError(f"num_crops must be 1 (centre) or 3 (left, centre, right), got {num_crops}")
        if resize_size < max(crop_size):
            raise ValueError(f"resize_size {resize_size} is smaller than the crop {crop_size}")
        self.crop_size, self.resize_size, self.num_crops = tuple(crop_size), resize_size, num_crops
        self.mean, self.std = list(mean), list(std)
        self.interpolation = InterpolationMode(interpolation)

    def _crop_origins(self, height: int, width: int) -> list[tuple[int, int]]:
        crop_h, crop_w = self.crop_size
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        if self.num_crops == 1:
            return [(top, left)]
        if width >= height:
            return [(top, 0), (top, left), (top, width - crop_w)]
        return [(0, left), (top, left), (height - crop_h, left)]

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        _check_video(video)
        video = F.resize(tv_tensors.Video(video), [self.resize_size], interpolation=self.interpolation, antialias=True)
        height, width = video.shape[-2:]
        crop_h, crop_w = self.crop_size
        crops = [F.crop(video, top, left, crop_h, crop_w) for top, left in self._crop_origins(height, width)]
        x = torch.stack([c.as_subclass(torch.Tensor) for c in crops], dim=-5)  # (..., crops, T, 3, h, w)
        x = F.normalize(F.to_dtype(x, torch.float32, scale=True), self.mean, self.std)
        return x.transpose(-4, -3)  # (..., crops, T, 3, h, w) -> (..., crops, 3, T, h, w)

    def __repr__(self) -> str:
        where = "centre" if self.num_crops == 1 else "left, centre, right along the long side"
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
    config: DataConfig, is_training: bool = False, num_crops: int | None = None
) -> VideoEvalTransform | VideoTrainTransform:
    """The preset transform of ``config``, for evaluation or training.

    Args:
        config: the model's data config.
        is_training: the training preset instead of the test one.
        num_crops: test crops per clip, 1 or 3; ``None`` uses ``config.test_crops``. Not for training.

    Returns:
        A module taking uint8 frames (..., T, 3, H, W) (decoded frames ``.permute(0, 3, 1, 2)``) and returning
        float32 (..., num_crops, 3, T, crop_h, crop_w) for evaluation, (..., 3, T, crop_h, crop_w) for training.
    """
    if is_training:
        if num_crops is not None:
            raise ValueError("num_crops is a test-time setting; the training transform takes one random crop")
        return VideoTrainTransform(
            config.crop_size,
            config.train_short_side,
            config.mean,
            config.std,
            config.interpolation,
            hflip=config.train_hflip,
        )
    resize_size = int(max(config.crop_size) / config.crop_pct)
    return VideoEvalTransform(
        config.crop_size,
        resize_size,
        config.test_crops if num_crops is None else num_crops,
        config.mean,
        config.std,
        config.interpolation,
    )

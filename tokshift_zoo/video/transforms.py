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

import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from ..notices import warn_once
from .sampling import dense_indices, uniform_indices

__all__ = ["DataConfig", "resolve_data_config", "create_transform", "VideoEvalTransform", "VideoTrainTransform"]

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
        source: str | None = None,
    ) -> torch.Tensor:
        """Frame indices of this config's clips for a video of ``num_video_frames`` frames.

        Testing gives ``test_clips`` clips (or clip ``clip_index`` of them), training one random clip; see
        ``dense_indices`` and ``uniform_indices`` for the rules. ``source``: the video's name, for the warnings.

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
        self._warn_if_short(num_video_frames, indices, clip_index is None and not training, source)
        return indices

    def _warn_if_short(
        self, num_video_frames: int, indices: torch.Tensor, all_test_clips: bool, source: str | None = None
    ) -> None:
        """Say once (per run) when a video is too short for a clip or for the test clips asked for."""
        steps = indices.diff(dim=1)  # (clips, T - 1)
        spans = f"{self.num_frames}x{self.frame_stride} clip spans {self.num_frames * self.frame_stride}"
        video = f"{source + ': ' if source else ''}a video of {_frames(num_video_frames)}"
        still = (steps == 0).all(dim=1)  # (clips,): a clip of one frame, repeated
        if self.num_frames > 1 and bool(still.any()):
            warn_once(
                _logger,
                "still",
                f"{video} gives {self.num_frames}-frame clips whose every index is frame {int(indices[still][0, 0])}: "
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
                f"{video} has fewer than the {self.num_frames} frames a clip needs: frames are repeated to fill the "
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


class VideoTrainTransform(nn.Module):
    """Training preset: random short side, random crop, random horizontal flip, scale to [0, 1], normalise.

    The random parameters are drawn from torch's global generator, once per call: all frames of a clip (and all
    clips of a batched input) share them.

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
    ) -> None:
        super().__init__()
        low, high = short_side
        if not max(crop_size) <= low <= high:
            raise ValueError(f"the short side range {short_side} must start at or above the crop {crop_size}")
        self.crop_size, self.short_side, self.hflip = tuple(crop_size), (low, high), hflip
        self.mean, self.std = list(mean), list(std)
        self.interpolation = InterpolationMode(interpolation)
        self.pipeline = v2.Compose(
            [
                v2.RandomResize(low, high + 1, interpolation=self.interpolation, antialias=True),  # short side
                v2.RandomCrop(self.crop_size),
                v2.RandomHorizontalFlip(0.5 if hflip else 0.0),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(self.mean, self.std),
            ]
        )

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        _check_video(video)
        x = self.pipeline(tv_tensors.Video(video)).as_subclass(torch.Tensor)
        return x.transpose(-4, -3)  # (..., T, 3, h, w) -> (..., 3, T, h, w)

    def __repr__(self) -> str:
        low, high = self.short_side
        return (
            f"{type(self).__name__}(\n"
            f"    resize_short_side=random in [{low}, {high}], interpolation={self.interpolation.value}\n"
            f"    random crop {self.crop_size[0]}x{self.crop_size[1]}, horizontal flip p={0.5 if self.hflip else 0.0}\n"
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

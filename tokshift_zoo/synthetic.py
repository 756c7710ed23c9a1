"""A synthetic motion task that needs no download: a bright textured object moving left, right, up or down.

Every clip shows one object (rectangle, ellipse, diamond, triangle or cross; solid, striped, checked or dotted;
any hue, bright) sliding at constant speed over a static darker background (solid, gradient, noise or
blotches). The whole path stays inside the frame and is drawn uniformly within it, and the coordinate across
the motion is drawn from the same law as a frame's position along it, so, pooled over a clip's frames, the
object's positions are distributed alike for every class in square frames (reversing time maps left onto right;
swapping the axes maps horizontal onto vertical). No single frame tells the
direction, only the change from frame to frame does: a model that classifies frames one by one and averages them
(the plain ViT) stays near chance, while TokShift's shifted class tokens see the motion.

Sizes, speeds, clip lengths, resolutions, frame rates, colours, shapes and textures vary from clip to clip.
``make_motion_clip`` draws one clip as uint8 (T, H, W, 3); ``write_motion_dataset`` writes mp4 files and a
``path label`` list for the trainer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write
from .video.io import write_video

__all__ = ["MOTION_LABELS", "make_motion_clip", "random_clip_size", "write_motion_dataset"]

MOTION_LABELS = ("moving_left", "moving_right", "moving_up", "moving_down")
_DIRECTIONS = ((0, -1), (0, 1), (-1, 0), (1, 0))  # (dy, dx) of each label, image coordinates (y down)
_SHAPES = ("rectangle", "ellipse", "diamond", "triangle", "cross")
_FILLS = ("solid", "stripes", "checks", "dots")
_BACKGROUNDS = ("solid", "gradient", "noise", "blotches")


def _label_index(direction: str | int) -> int:
    if isinstance(direction, str):
        if direction not in MOTION_LABELS:
            raise ValueError(f"direction must be one of {MOTION_LABELS} or an index 0-3, got {direction!r}")
        return MOTION_LABELS.index(direction)
    if not 0 <= int(direction) < len(MOTION_LABELS):
        raise ValueError(f"direction must be one of {MOTION_LABELS} or an index 0-3, got {direction!r}")
    return int(direction)


def _colour(rng: np.random.Generator, value: float) -> np.ndarray:
    """An RGB colour in [0, 1] of random hue and saturation with the given brightness (HSV value)."""
    hue, saturation = rng.uniform(0, 1), rng.uniform(0, 0.9)
    rgb = np.clip(np.abs((hue * 6 + np.array([0, 4, 2])) % 6 - 3) - 1, 0, 1)
    return value * (1 - saturation + saturation * rgb)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A static dark background, float (H, W, 3) in [0, 0.35]."""
    kind = _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))]
    a, b = _colour(rng, rng.uniform(0.05, 0.35)), _colour(rng, rng.uniform(0.05, 0.35))
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    if kind == "solid":
        field = np.zeros((height, width))
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        field = np.cos(angle) * xx + np.sin(angle) * yy
        field = (field - field.min()) / max(np.ptp(field), 1e-6)
    elif kind == "noise":
        field = rng.uniform(0, 1, (height, width))
    else:  # blotches: a coarse random grid
        cells = int(rng.integers(3, 7))
        coarse = rng.uniform(0, 1, (cells, cells))
        field = coarse[(np.arange(height) * cells // height)[:, None], (np.arange(width) * cells // width)[None, :]]
    return a * (1 - field[..., None]) + b * field[..., None]


def _shape_mask(shape: str, ry: np.ndarray, rx: np.ndarray, half_h: float, half_w: float) -> np.ndarray:
    u, v = ry / half_h, rx / half_w  # offsets from the centre in units of the half sizes
    if shape == "rectangle":
        return (np.abs(u) <= 1) & (np.abs(v) <= 1)
    if shape == "ellipse":
        return u**2 + v**2 <= 1
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1
    if shape == "triangle":
        return (u <= 1) & (np.abs(v) <= (u + 1) / 2)
    return ((np.abs(u) <= 1) & (np.abs(v) <= 0.4)) | ((np.abs(v) <= 1) & (np.abs(u) <= 0.4))  # cross


def _texture(fill: str, ry: np.ndarray, rx: np.ndarray, period: float, angle: float) -> np.ndarray:
    """A 0/1 pattern in the object's own coordinates, so it moves with the object."""
    if fill == "solid":
        return np.zeros(ry.shape)
    if fill == "stripes":
        return np.floor((np.cos(angle) * rx + np.sin(angle) * ry) / period) % 2
    if fill == "checks":
        return (np.floor(rx / period) + np.floor(ry / period)) % 2
    return ((np.mod(rx, 2 * period) - period) ** 2 + (np.mod(ry, 2 * period) - period) ** 2 < period**2 / 2) * 1.0


def make_motion_clip(
    direction: str | int,
    *,
    num_frames: int = 8,
    height: int = 32,
    width: int = 32,
    rng: np.random.Generator | int | None = None,
    travel: tuple[float, float] = (0.5, 1.0),
) -> np.ndarray:
    """Draw one clip of a bright textured object moving in ``direction`` over a static dark background.

    Args:
        direction: one of ``MOTION_LABELS`` or its index.
        num_frames: T (>= 2).
        height, width: frame size in pixels (>= 8).
        rng: a ``numpy.random.Generator``, a seed, or None for fresh entropy.
        travel: the range of the distance covered over the clip, as a fraction of the room the object has
            along its direction (the frame's extent less the object's size).

    Returns:
        uint8 array (num_frames, height, width, 3), RGB.
    """
    label = _label_index(direction)
    if num_frames < 2 or height < 8 or width < 8:
        raise ValueError(f"need num_frames >= 2 and frames of at least 8x8, got {num_frames} x {height}x{width}")
    rng = np.random.default_rng(rng)
    dy, dx = _DIRECTIONS[label]
    background = _background(rng, height, width)
    half_h, half_w = rng.uniform(0.15, 0.25, 2) * min(height, width)
    colour_a = _colour(rng, rng.uniform(0.75, 1.0))
    colour_b = colour_a * rng.uniform(0.55, 0.85)
    shape, fill = _SHAPES[rng.integers(len(_SHAPES))], _FILLS[rng.integers(len(_FILLS))]
    period, angle = rng.uniform(2.0, 5.0), rng.uniform(0, np.pi)

    def path(extent: float, half: float) -> tuple[float, float]:
        """A path (start, distance) along one axis, drawn uniformly inside the frame."""
        room = extent - 2 * half
        distance = rng.uniform(*travel) * room
        return rng.uniform(half, half + room - distance), distance

    # Along the motion the object covers [start, start + distance]. Across it, it sits at one of the positions a
    # path drawn the same way would pass through (a random frame of it), so that pooled over frames the two
    # coordinates follow one law: a per-frame model sees the same positions for every class in square frames.
    (y_start, y_distance), (x_start, x_distance) = path(height, half_h), path(width, half_w)
    at = rng.integers(num_frames) / (num_frames - 1)
    cy, cx = y_start + at * y_distance, x_start + at * x_distance
    if dx:
        cx = x_start if dx > 0 else width - x_start
        step = x_distance / (num_frames - 1)
    else:
        cy = y_start if dy > 0 else height - y_start
        step = y_distance / (num_frames - 1)

    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    noise = rng.uniform(0, 0.03)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        ry, rx = yy - (cy + dy * step * t), xx - (cx + dx * step * t)
        texture = _texture(fill, ry, rx, period, angle)[..., None]
        obj = colour_a * (1 - texture) + colour_b * texture
        frame = np.where(_shape_mask(shape, ry, rx, half_h, half_w)[..., None], obj, background)
        frame = frame + rng.normal(0, noise, frame.shape)
        frames[t] = np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8)
    return frames


def random_clip_size(
    rng: np.random.Generator,
    short_side: tuple[int, int] = (32, 48),
    aspect: tuple[float, float] = (1.0, 1.6),
    num_frames: tuple[int, int] = (8, 16),
) -> tuple[int, int, int]:
    """A random (num_frames, height, width): even sides, the short one in ``short_side``, long / short side in
    ``aspect`` (landscape or portrait alike), the length in ``num_frames`` (inclusive ranges)."""
    short = int(rng.integers(short_side[0] // 2, short_side[1] // 2 + 1)) * 2
    long = max(short, int(round(short * rng.uniform(*aspect) / 2)) * 2)
    height, width = (short, long) if rng.uniform() < 0.5 else (long, short)
    return int(rng.integers(num_frames[0], num_frames[1] + 1)), height, width


def write_motion_dataset(
    root: str | os.PathLike,
    num_clips: int,
    *,
    seed: int = 0,
    list_name: str = "list.txt",
    subdir: str = "clips",
    fps: Sequence[int] = (8, 12, 15, 24, 25, 30),
    **size_ranges: Any,
) -> Path:
    """Write ``num_clips`` class-balanced clips as H.264 mp4 files under ``root/subdir`` and a list file.

    The list (``root/list_name``) has ``SUBDIR/NNNNN.mp4 LABEL`` lines (the mmaction2 format, paths relative to
    ``root``, the label an index into ``MOTION_LABELS``); ``root/labels.txt`` names the classes. Each clip has its
    own length, size (``random_clip_size``, which ``size_ranges`` configure) and frame rate. The same seed writes
    the same clips.

    Returns:
        The list file's path.
    """
    root = Path(root)
    (root / subdir).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = np.arange(num_clips) % len(MOTION_LABELS)
    rng.shuffle(labels)
    lines = []
    for i, label in enumerate(labels):
        length, height, width = random_clip_size(rng, **size_ranges)
        clip = make_motion_clip(int(label), num_frames=length, height=height, width=width, rng=rng)
        relative = f"{subdir}/{i:05d}.mp4"
        write_video(root / relative, clip, fps=int(rng.choice(list(fps))))
        lines.append(f"{relative} {int(label)}\n")
    (root / "labels.txt").write_text("".join(f"{name}\n" for name in MOTION_LABELS))
    return atomic_write(root / list_name, lambda tmp: tmp.write_text("".join(lines)))

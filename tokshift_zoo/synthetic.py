"""A synthetic motion task that needs no download: one object moving left, right, up or down.

Every clip shows one object sliding at constant speed over a static background. What a person would still call
"moving left" varies freely, and independently of the direction, from clip to clip:

- the object: rectangle, ellipse, diamond, triangle or cross; of 8-45% of the frame's short side; brighter or
  darker than the background (either alike, at any background level that leaves room), any hue; solid or only
  its outline; flat, striped, checked, dotted or mottled (the texture moves with the object);
- the background: flat, a linear or radial gradient (up to the object's contrast), fine static noise, coarse
  blotches, smooth clouds, stripes or checks (up to nearly as strong as the object's contrast);
- the camera: per-frame noise, a brightness ramp or flicker, H.264 at several qualities (``write_motion_dataset``);
- the clip: length, size (landscape or portrait), frame rate, and a speed crossing 20-75% of the frame.

The whole path stays inside the frame and is drawn uniformly within it, and the coordinate across the motion is
drawn from the same law as a frame's position along it, so, pooled over a clip's frames, the object's positions
are distributed alike for every class in square frames (reversing time maps left onto right; swapping the axes
maps horizontal onto vertical). No single frame tells the direction, only the change from frame to frame does:
a model that classifies frames one by one and averages them (the plain ViT) stays near chance, while TokShift's
shifted class tokens see the motion.

For new tasks built on the same clips (fine-tuning benchmarks), ``make_motion_clip`` also draws the four
diagonals (``DIAGONAL_LABELS``, at 45 degrees in pixels), objects that speed up from rest or slow down to rest
(``profile``) and objects that grow or shrink as they move, as if approaching or receding (``growth``); the
default constant-speed clips of the four directions are drawn exactly as before.

``make_motion_clip`` draws one clip as uint8 (T, H, W, 3); ``write_motion_dataset`` writes mp4 files and a
``path label`` list for the trainer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write
from .video.io import write_video

__all__ = [
    "DIAGONAL_LABELS",
    "MOTION_LABELS",
    "TASK_VERSION",
    "make_motion_clip",
    "random_clip_size",
    "write_motion_dataset",
]

MOTION_LABELS = ("moving_left", "moving_right", "moving_up", "moving_down")
# the four diagonals, which the demo model never saw: with MOTION_LABELS, the eight directions of a new task
DIAGONAL_LABELS = ("moving_up_left", "moving_up_right", "moving_down_left", "moving_down_right")
TASK_VERSION = 3  # raised whenever the clips a seed draws change, so that caches of written clips are not reused
_LABELS = MOTION_LABELS + DIAGONAL_LABELS
# (dy, dx) of each label, image coordinates (y down)
_DIRECTIONS = ((0, -1), (0, 1), (-1, 0), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))
_SHAPES = ("rectangle", "ellipse", "diamond", "triangle", "cross")
_FILLS = ("solid", "stripes", "checks", "dots", "mottled")
_PROFILES = ("constant", "accelerating", "decelerating")
_BACKGROUNDS = ("flat", "gradient", "noise", "blotches", "clouds", "stripes", "checks")


def _label_index(direction: str | int) -> int:
    if isinstance(direction, str):
        if direction not in _LABELS:
            raise ValueError(f"direction must be one of {_LABELS} or an index 0-7, got {direction!r}")
        return _LABELS.index(direction)
    if not 0 <= int(direction) < len(_LABELS):
        raise ValueError(f"direction must be one of {_LABELS} or an index 0-7, got {direction!r}")
    return int(direction)


def _colour(rng: np.random.Generator, value: float) -> np.ndarray:
    """An RGB colour in [0, 1] of random hue and saturation with the given brightness (HSV value)."""
    hue, saturation = rng.uniform(0, 1), rng.uniform(0, 0.9)
    rgb = np.clip(np.abs((hue * 6 + np.array([0, 4, 2])) % 6 - 3) - 1, 0, 1)
    return value * (1 - saturation + saturation * rgb)


def _levels(rng: np.random.Generator, darker: float, contrast: tuple[float, float]) -> tuple[float, float]:
    """(background, object) brightness in [0, 1]: a contrast drawn from ``contrast``, the object darker with
    probability ``darker``, the background level uniform over what leaves room for that contrast."""
    difference = rng.uniform(*contrast)
    if rng.uniform() < darker:
        background = rng.uniform(0.03 + difference, 0.97)
        return background, background - difference
    background = rng.uniform(0.03, 0.97 - difference)
    return background, background + difference


def _field(kind: str, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A static pattern (H, W) in [0, 1] of the given background kind."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    if kind == "flat":
        return np.zeros((height, width))
    if kind == "gradient":  # linear at any angle, or radial around a point in or near the frame (a spotlight)
        if rng.uniform() < 0.5:
            angle = rng.uniform(0, 2 * np.pi)
            field = np.cos(angle) * xx + np.sin(angle) * yy
        else:
            field = np.hypot(
                yy - rng.uniform(-0.25, 1.25) * height / max(height, width),
                xx - rng.uniform(-0.25, 1.25) * width / max(height, width),
            )
        return (field - field.min()) / max(np.ptp(field), 1e-6)
    if kind == "noise":
        return rng.uniform(0, 1, (height, width))
    if kind in ("blotches", "clouds"):  # a coarse random grid, blocky or bilinearly smoothed
        cells = int(rng.integers(3, 8))
        coarse = rng.uniform(0, 1, (cells + 1, cells + 1))
        gy, gx = np.linspace(0, cells - (kind == "blotches") * 1e-6, height), np.linspace(0, cells, width)
        if kind == "blotches":
            return coarse[gy.astype(int)[:, None], np.minimum(gx.astype(int), cells - 1)[None, :]]
        iy, ix = np.minimum(gy.astype(int), cells - 1), np.minimum(gx.astype(int), cells - 1)
        fy, fx = (gy - iy)[:, None], (gx - ix)[None, :]
        iy, ix = iy[:, None], ix[None, :]
        top = coarse[iy, ix] * (1 - fx) + coarse[iy, ix + 1] * fx
        bottom = coarse[iy + 1, ix] * (1 - fx) + coarse[iy + 1, ix + 1] * fx
        return top * (1 - fy) + bottom * fy
    period = rng.uniform(2.0, 8.0) / max(height, width)
    if kind == "stripes":
        angle = rng.uniform(0, np.pi)
        return np.floor((np.cos(angle) * xx + np.sin(angle) * yy) / period) % 2
    return (np.floor(xx / period) + np.floor(yy / period)) % 2  # checks


def _background(
    rng: np.random.Generator, height: int, width: int, level: float, contrast: float, kinds: Sequence[str]
) -> np.ndarray:
    """A static background, float (H, W, 3): two colours around ``level`` mixed by a random pattern (one of
    ``kinds``) whose amplitude stays below the object's ``contrast``, so the object stays the thing that stands
    out."""
    kind = kinds[rng.integers(len(kinds))]
    # a smooth ramp may span the object's whole contrast (the object still stands out from its surroundings);
    # the other patterns stay below it
    amplitude = 0.0 if kind == "flat" else rng.uniform(0.1, 1.0 if kind == "gradient" else 0.8) * contrast
    low, high = np.clip([level - amplitude / 2, level + amplitude / 2], 0.0, 1.0)
    a, b = _colour(rng, low), _colour(rng, high)
    field = _field(kind, rng, height, width)[..., None]
    return a * (1 - field) + b * field


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


def _texture(fill: str, ry: np.ndarray, rx: np.ndarray, period: float, angle: float, spots: np.ndarray) -> np.ndarray:
    """A pattern in [0, 1] in the object's own coordinates, so it moves with the object."""
    if fill == "solid":
        return np.zeros(ry.shape)
    if fill == "stripes":
        return np.floor((np.cos(angle) * rx + np.sin(angle) * ry) / period) % 2
    if fill == "checks":
        return (np.floor(rx / period) + np.floor(ry / period)) % 2
    if fill == "dots":
        return ((np.mod(rx, 2 * period) - period) ** 2 + (np.mod(ry, 2 * period) - period) ** 2 < period**2 / 2) * 1.0
    n = len(spots)  # mottled: a random value per period-sized cell
    return spots[np.floor(ry / period).astype(int) % n, np.floor(rx / period).astype(int) % n]


def make_motion_clip(
    direction: str | int,
    *,
    num_frames: int = 8,
    height: int = 32,
    width: int = 32,
    rng: np.random.Generator | int | None = None,
    travel: tuple[float, float] = (0.2, 0.75),
    size: tuple[float, float] = (0.08, 0.45),
    darker: float = 0.5,
    plain: bool = False,
    profile: str = "constant",
    growth: float = 1.0,
) -> np.ndarray:
    """Draw one clip of an object moving in ``direction`` over a static background (see the module docstring).

    Args:
        direction: one of ``MOTION_LABELS`` (index 0-3) or ``DIAGONAL_LABELS`` (4-7), or its index.
        num_frames: T (>= 2).
        height, width: frame size in pixels (>= 8).
        rng: a ``numpy.random.Generator``, a seed, or None for fresh entropy.
        travel: the range of the distance covered over the clip, as a fraction of the frame's extent along the
            direction (capped by the room the object leaves); a diagonal covers that fraction of the short side
            along both axes.
        size: the range of the object's height, as a fraction of the frame's short side.
        darker: the probability that the object is darker than the background.
        plain: draw only the easy part of the task (a flat or gradient background, a contrast of 0.45-0.8, a
            solid or textured object without outline, a steady camera): the recipe's first stage, which gets the
            motion learnt at all.
        profile: how the object covers its path: ``"constant"`` speed, ``"accelerating"`` from rest (the
            distance covered grows as the square of the time) or ``"decelerating"`` to rest (its time reverse).
        growth: the ratio of the object's size in the last frame to its size in the first, changing by the same
            factor from frame to frame: above 1 the object approaches, below 1 it recedes (the time reverse).
            ``size`` is then the range of its larger size, which the path leaves room for.

    Returns:
        uint8 array (num_frames, height, width, 3), RGB.
    """
    label = _label_index(direction)
    if not growth > 0:
        raise ValueError(f"growth must be a positive ratio of sizes, got {growth!r}")
    if profile not in _PROFILES:
        raise ValueError(f"profile must be one of {_PROFILES}, got {profile!r}")
    if num_frames < 2 or height < 8 or width < 8:
        raise ValueError(f"need num_frames >= 2 and frames of at least 8x8, got {num_frames} x {height}x{width}")
    rng = np.random.default_rng(rng)
    dy, dx = _DIRECTIONS[label]
    short = min(height, width)
    background_level, object_level = _levels(rng, darker, (0.45, 0.8) if plain else (0.2, 0.7))
    contrast = abs(object_level - background_level)
    background = _background(
        rng, height, width, background_level, contrast, _BACKGROUNDS[:2] if plain else _BACKGROUNDS
    )
    half_h = rng.uniform(*size) * short / 2
    half_w = float(np.clip(half_h * rng.uniform(0.6, 1.6), 1.0, 0.225 * short))
    colour_a = _colour(rng, object_level)
    colour_b = colour_a + (_colour(rng, background_level) - colour_a) * rng.uniform(0.2, 0.5)  # towards the bg
    shape, fill = _SHAPES[rng.integers(len(_SHAPES))], _FILLS[rng.integers(len(_FILLS))]
    outline = rng.uniform(1.0, 2.5) if rng.uniform() < 0.3 and not plain else 0.0  # only the outline, so wide
    period, angle, spots = rng.uniform(1.5, 5.0), rng.uniform(0, np.pi), rng.uniform(0, 1, (16, 16))

    def start(extent: float, half: float, distance: float) -> float:
        """Where a path of ``distance`` along one axis starts, drawn uniformly so that it stays inside the frame."""
        return half + rng.uniform(0, 1) * (extent - 2 * half - distance)

    def path(extent: float, half: float) -> tuple[float, float]:
        """A path (start, distance) along one axis, drawn uniformly inside the frame."""
        distance = min(rng.uniform(*travel) * extent, extent - 2 * half)
        return start(extent, half, distance), distance

    # Along the motion the object covers [start, start + distance]. Across it, it sits at one of the positions a
    # path drawn the same way would pass through (a random frame of it), so that pooled over frames the two
    # coordinates follow one law: a per-frame model sees the same positions for every class in square frames.
    # A diagonal covers the same distance along both axes (45 degrees in pixels), a fraction of the short side.
    if dx and dy:
        y_distance = x_distance = min(rng.uniform(*travel) * short, height - 2 * half_h, width - 2 * half_w)
        y_start, x_start = start(height, half_h, y_distance), start(width, half_w, x_distance)
    else:
        (y_start, y_distance), (x_start, x_distance) = path(height, half_h), path(width, half_w)
    at = rng.integers(num_frames) / (num_frames - 1)
    cy, cx = y_start + at * y_distance, x_start + at * x_distance
    if dx:
        cx = x_start if dx > 0 else width - x_start
    if dy:
        cy = y_start if dy > 0 else height - y_start
    # how far along its path the object is in each frame: equal steps (computed as they always were, so that
    # constant-speed clips stay bit-identical to earlier ones), or growing (shrinking) with the time squared
    index = np.arange(num_frames)
    if profile == "constant":
        offset_y, offset_x = index * (y_distance / (num_frames - 1)), index * (x_distance / (num_frames - 1))
    else:
        time = index / (num_frames - 1)
        covered = time**2 if profile == "accelerating" else 1 - (1 - time) ** 2
        offset_y, offset_x = y_distance * covered, x_distance * covered

    # the camera: a brightness ramp (half the clips) with flicker, and sensor noise, none tied to the direction
    ramp = rng.uniform(-0.3, 0.3) if rng.uniform() < 0.5 and not plain else 0.0
    flicker = rng.normal(0, rng.uniform(0, 0.03 * (not plain)), num_frames)
    gains = 1 + ramp * (np.arange(num_frames) / (num_frames - 1) - 0.5) + flicker
    noise = rng.uniform(0, 0.04 * (not plain))
    # the object's size in each frame relative to the drawn (larger) one: the same factor from frame to frame, up
    # to it (growth > 1) or down from it (growth < 1); exactly 1 throughout for growth 1, so such clips are unchanged
    exponents = np.linspace(-1.0, 0.0, num_frames) if growth > 1 else np.linspace(0.0, -1.0, num_frames)
    scales = max(growth, 1 / growth) ** exponents
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        ry, rx = yy - (cy + dy * offset_y[t]), xx - (cx + dx * offset_x[t])
        ry, rx = ry / scales[t], rx / scales[t]  # the object's own coordinates: its texture scales with it
        texture = _texture(fill, ry, rx, period, angle, spots)[..., None]
        mask = _shape_mask(shape, ry, rx, half_h, half_w)
        if outline:
            mask &= ~_shape_mask(shape, ry, rx, max(half_h - outline, 1e-3), max(half_w - outline, 1e-3))
        frame = np.where(mask[..., None], colour_a * (1 - texture) + colour_b * texture, background)
        frame = frame * gains[t] + rng.normal(0, noise, frame.shape)
        frames[t] = np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8)
    return frames


def random_clip_size(
    rng: np.random.Generator,
    short_side: tuple[int, int] = (32, 48),
    aspect: tuple[float, float] = (1.0, 1.5),
    num_frames: tuple[int, int] = (8, 24),
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
    crf: tuple[int, int] = (16, 34),
    clip_options: Mapping[str, Any] | None = None,
    **size_ranges: Any,
) -> Path:
    """Write ``num_clips`` class-balanced clips as H.264 mp4 files under ``root/subdir`` and a list file.

    The list (``root/list_name``) has ``SUBDIR/NNNNN.mp4 LABEL`` lines (the mmaction2 format, paths relative to
    ``root``, the label an index into ``MOTION_LABELS``); ``root/labels.txt`` names the classes. Each clip has its
    own length, size (``random_clip_size``, which ``size_ranges`` configure), frame rate and H.264 quality (a crf
    in the inclusive range ``crf``: 16 is near lossless, 34 blurs and blocks). ``clip_options`` go to
    ``make_motion_clip`` (e.g. the recipe's first stage: ``plain=True, darker=0.0``). The same seed writes the
    same clips.

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
        clip = make_motion_clip(
            int(label), num_frames=length, height=height, width=width, rng=rng, **(clip_options or {})
        )
        relative = f"{subdir}/{i:05d}.mp4"
        quality = int(rng.integers(crf[0], crf[1] + 1))
        write_video(root / relative, clip, fps=int(rng.choice(list(fps))), crf=quality)
        lines.append(f"{relative} {int(label)}\n")
    (root / "labels.txt").write_text("".join(f"{name}\n" for name in MOTION_LABELS))
    return atomic_write(root / list_name, lambda tmp: tmp.write_text("".join(lines)))

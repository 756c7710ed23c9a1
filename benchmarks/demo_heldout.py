"""Held-out test sets for the demo model, made by code that its training never sees, scored per factor.

The demo model (``tokshift_demo_motion.synthetic``) is trained on ``tokshift_zoo.synthetic``. This module draws
its test clips another way, so that a score here measures what a person would call "moving left" and not the
training generator's habits: PIL drawings (circles, squares, triangles, pentagons, hexagons, stars, rounded
rectangles, ellipses, plus signs, hearts made of circles) instead of numpy masks, colours set by luma (Rec. 601)
instead of HSV value, other backgrounds (radial gradients, sine waves, wood-like rings, upsampled noise, tiles),
and four codecs of which training uses only H.264. Each clip draws its factors independently and balanced:

    polarity    brighter | darker than the background around it
    texture     flat | textured (stripes, checks, speckles moving with the object) | outlined
    background  flat | gradient | textured | noisy (static grain plus per-frame sensor noise)
    size        object height 10-20 | 20-30 | 30-40 % of the frame's height
    speed       the path crosses 25-40 | 40-55 | 55-70 % of the frame's extent along the motion
    codec       h264 (mp4, crf 23-30) | mpeg4 (avi) | mjpeg (avi) | vp9 (webm, crf 30-44)

and, free within each clip: any hue, frame size (96x96 to 240x136, landscape, square or portrait), frame rate
5-30, length 16-64 frames, mild camera noise, a brightness ramp or flicker. Nothing in the package imports this
file (``tests/test_demo.py`` checks it). Run:

    .venv/bin/python benchmarks/demo_heldout.py --workdir runs/heldout [--clips 800] [--seed 0]
        [--model tokshift_demo_motion.synthetic] [--checkpoint best.safetensors ...] [--json OUT]

It writes the clips (once per seed; kept for the next run), classifies each with views 1x3 (the demo's
configuration) and prints, per model, the overall top-1 and the top-1 in every cell of every factor.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

LABELS = ("moving_left", "moving_right", "moving_up", "moving_down")
FACTORS = {
    "polarity": ("brighter", "darker"),
    "texture": ("flat", "textured", "outlined"),
    "background": ("flat", "gradient", "textured", "noisy"),
    "size": ("10-20%", "20-30%", "30-40%"),
    "speed": ("25-40%", "40-55%", "55-70%"),
    "codec": ("h264", "mpeg4", "mjpeg", "vp9"),
}
_SIZES = {"10-20%": (0.10, 0.20), "20-30%": (0.20, 0.30), "30-40%": (0.30, 0.40)}
_SPEEDS = {"25-40%": (0.25, 0.40), "40-55%": (0.40, 0.55), "55-70%": (0.55, 0.70)}
_CONTAINERS = {
    "h264": ("mp4", "libx264"),
    "mpeg4": ("avi", "mpeg4"),
    "mjpeg": ("avi", "mjpeg"),
    "vp9": ("webm", "libvpx-vp9"),
}
_FRAME_SIZES = ((144, 176), (120, 160), (96, 128), (136, 240), (112, 200), (96, 96), (128, 128), (160, 120), (176, 144))
_SHAPES = ("circle", "square", "triangle", "pentagon", "hexagon", "star", "rounded", "ellipse", "plus", "heart")
_LUMA = np.array([0.299, 0.587, 0.114])


def _colour_with_luma(rng: np.random.Generator, luma: float) -> np.ndarray:
    """An RGB colour (0-255 floats) of random hue whose Rec. 601 luma is ``luma`` (0-255), as saturated as fits."""
    for _ in range(50):
        hue_rgb = rng.uniform(0, 1, 3) ** rng.uniform(0.3, 3.0)  # anything from grey to saturated
        grey = np.full(3, luma)
        direction = hue_rgb - hue_rgb @ _LUMA  # zero luma change
        limit = min((255 - luma) / d if d > 0 else luma / -d if d < 0 else np.inf for d in direction)
        colour = grey + direction * rng.uniform(0, 1) * min(limit, 600)
        if np.all((colour >= 0) & (colour <= 255)):
            return colour
    return np.full(3, luma)


def _background(kind: str, rng: np.random.Generator, height: int, width: int, luma: float, spread: float) -> np.ndarray:
    """A static background (H, W, 3) float 0-255 of mean luma about ``luma``, varying by about +-``spread``."""
    yy, xx = np.mgrid[0:height, 0:width].astype(float)
    if kind == "flat":
        field = np.zeros((height, width))
    elif kind == "gradient":
        if rng.uniform() < 0.5:  # linear, any angle
            angle = rng.uniform(0, 2 * np.pi)
            field = np.cos(angle) * xx + np.sin(angle) * yy
        else:  # radial around a random point
            field = np.hypot(yy - rng.uniform(0, height), xx - rng.uniform(0, width))
        field = 2 * (field - field.min()) / max(np.ptp(field), 1e-6) - 1
    elif kind == "textured":
        choice = rng.integers(3)
        if choice == 0:  # sine waves crossing
            f1, f2 = rng.uniform(0.05, 0.4, 2)
            field = 0.5 * np.sin(f1 * xx + rng.uniform(0, 6)) + 0.5 * np.sin(f2 * yy + rng.uniform(0, 6))
        elif choice == 1:  # wood-like rings
            r = np.hypot(yy - rng.uniform(-height, 2 * height), xx - rng.uniform(-width, 2 * width))
            field = np.sin(r * rng.uniform(0.2, 0.6))
        else:  # tiles with grout
            tile = int(rng.integers(8, 24))
            field = np.where((yy % tile < 2) | (xx % tile < 2), -1.0, rng.uniform(-0.3, 0.6))
    else:  # noisy: upsampled random grain
        grain = rng.uniform(-1, 1, (max(2, height // 2), max(2, width // 2)))
        field = np.asarray(Image.fromarray(grain.astype(np.float32)).resize((width, height), Image.BILINEAR))
    tint_a, tint_b = _colour_with_luma(rng, luma), _colour_with_luma(rng, luma)
    mix = rng.uniform(0, 1)
    base = tint_a * mix + tint_b * (1 - mix)
    return base + field[..., None] * spread


def _shape_polygon(shape: str, cx: float, cy: float, rx: float, ry: float, turn: float) -> list[tuple[float, float]]:
    corners = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6}.get(shape)
    if corners:
        angles = turn + np.arange(corners) * 2 * np.pi / corners
        return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]
    if shape == "star":
        angles = turn + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return [(cx + r * rx * math.cos(a), cy + r * ry * math.sin(a)) for a, r in zip(angles, radii, strict=True)]
    # plus sign
    a, b = 0.35, 1.0
    pts = [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]
    return [(cx + u * rx, cy + v * ry) for u, v in pts]


def _draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    box: tuple[float, float, float, float],
    turn: float,
    fill: int | None,
    outline: int | None,
    width: int,
) -> None:
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    if shape in ("circle", "ellipse"):
        draw.ellipse(box, fill=fill, outline=outline, width=width)
    elif shape == "rounded":
        draw.rounded_rectangle(box, radius=max(1, int(min(rx, ry) * 0.5)), fill=fill, outline=outline, width=width)
    elif shape == "heart":  # two circles over a triangle; outlined as three outlines
        r = rx / 2
        parts = [(cx - r, cy - ry / 2, r), (cx + r, cy - ry / 2, r)]
        for px, py, pr in parts:
            draw.ellipse((px - pr, py - pr, px + pr, py + pr), fill=fill, outline=outline, width=width)
        draw.polygon([(x0, cy - ry / 3), (x1, cy - ry / 3), (cx, y1)], fill=fill, outline=outline, width=width)
    else:
        draw.polygon(_shape_polygon(shape, cx, cy, rx, ry, turn), fill=fill, outline=outline, width=width)


def _object_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A 0/1 pattern (H, W) in the object's own coordinates: stripes, checks or speckles."""
    yy, xx = np.mgrid[0:height, 0:width].astype(float)
    period = rng.uniform(0.12, 0.3) * max(height, width, 8)
    kind = rng.integers(3)
    if kind == 0:
        angle = rng.uniform(0, np.pi)
        return (np.floor((np.cos(angle) * xx + np.sin(angle) * yy) / (period / 2)) % 2).astype(float)
    if kind == 1:
        return ((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(float)
    return (rng.uniform(0, 1, (height, width)) < 0.4).astype(float)


def draw_clip(label: int, factors: dict[str, str], rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """One held-out clip of an object moving in direction ``label`` with the given factor cells.

    Returns:
        (uint8 frames (T, H, W, 3), frame rate).
    """
    height, width = _FRAME_SIZES[int(rng.integers(len(_FRAME_SIZES)))]
    frames_count, fps = int(rng.integers(16, 65)), int(rng.choice([5, 10, 12, 15, 20, 24, 25, 30]))
    contrast = rng.uniform(45, 140)  # luma difference between the object and the background, 0-255
    sign = 1 if factors["polarity"] == "brighter" else -1
    bg_luma = rng.uniform(30, 225 - contrast) if sign > 0 else rng.uniform(30 + contrast, 225)
    obj_luma = bg_luma + sign * contrast
    kind = factors["background"]
    spread = {
        "flat": 0.0,
        "gradient": rng.uniform(0.2, 0.5),
        "textured": rng.uniform(0.15, 0.35),
        "noisy": rng.uniform(0.15, 0.3),
    }[kind] * contrast
    background = _background(kind, rng, height, width, bg_luma, spread)
    obj_colour = _colour_with_luma(rng, obj_luma)
    shade = obj_colour + (_colour_with_luma(rng, bg_luma) - obj_colour) * rng.uniform(0.3, 0.5)

    size = rng.uniform(*_SIZES[factors["size"]]) * height
    obj_h, obj_w = size, size * rng.uniform(0.75, 1.35)
    obj_w = min(obj_w, 0.45 * width)
    shape, turn = _SHAPES[int(rng.integers(len(_SHAPES)))], rng.uniform(0, 2 * np.pi)
    dy, dx = ((0, -1), (0, 1), (-1, 0), (1, 0))[label]
    extent, obj_along = (width, obj_w) if dx else (height, obj_h)
    distance = min(rng.uniform(*_SPEEDS[factors["speed"]]) * extent, extent - obj_along - 2)
    start = rng.uniform(0, extent - obj_along - distance)  # the object's leading-free edge, inside the frame
    across_extent, obj_across = (height, obj_h) if dx else (width, obj_w)
    across = rng.uniform(0, across_extent - obj_across)

    # the object as a sprite: RGB and alpha, drawn once at 4x and reduced (anti-aliased edges), moved per frame
    scale = 4
    sw, sh = max(2, int(round(obj_w * scale))), max(2, int(round(obj_h * scale)))
    alpha = Image.new("L", (sw + 2 * scale, sh + 2 * scale), 0)
    box = (scale, scale, scale + sw - 1, scale + sh - 1)
    if factors["texture"] == "outlined":
        line = max(scale, int(round(rng.uniform(0.025, 0.05) * height * scale)))
        _draw_shape(ImageDraw.Draw(alpha), shape, box, turn, None, 255, line)
    else:
        _draw_shape(ImageDraw.Draw(alpha), shape, box, turn, 255, None, 0)
    alpha = np.asarray(alpha.resize((alpha.width // scale, alpha.height // scale), Image.BOX), float) / 255
    pattern = _object_texture(rng, *alpha.shape) if factors["texture"] == "textured" else np.zeros(alpha.shape)
    sprite = obj_colour * (1 - pattern[..., None]) + shade * pattern[..., None]

    ramp = rng.uniform(-0.15, 0.15) if rng.uniform() < 0.5 else 0.0
    flicker = rng.uniform(0, 0.03)
    camera_noise = rng.uniform(1.0, 4.0) + (rng.uniform(3.0, 6.0) if kind == "noisy" else 0.0)
    frames = np.empty((frames_count, height, width, 3), np.uint8)
    for t in range(frames_count):
        along = start + distance * t / (frames_count - 1)
        along = along if dx > 0 or dy > 0 else extent - obj_along - along
        left, top = (along, across) if dx else (across, along)
        left, top = left - 1, top - 1  # the sprite's one-pixel margin
        frame = background.copy()
        ix, iy = int(math.floor(left)), int(math.floor(top))
        fx, fy = left - ix, top - iy  # sub-pixel placement: shift the sprite by bilinear resampling
        a = Image.fromarray(alpha.astype(np.float32)).transform(
            alpha.shape[::-1], Image.AFFINE, (1, 0, -fx, 0, 1, -fy), resample=Image.BILINEAR
        )
        a = np.asarray(a, float)[..., None]
        y0, x0 = max(iy, 0), max(ix, 0)
        y1, x1 = min(iy + a.shape[0], height), min(ix + a.shape[1], width)
        if y1 > y0 and x1 > x0:
            region = (slice(y0 - iy, y1 - iy), slice(x0 - ix, x1 - ix))
            frame[y0:y1, x0:x1] = frame[y0:y1, x0:x1] * (1 - a[region]) + sprite[region] * a[region]
        gain = 1 + ramp * (t / (frames_count - 1) - 0.5) + rng.normal(0, flicker)
        frame = frame * gain + rng.normal(0, camera_noise, frame.shape)
        frames[t] = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    if rng.uniform() < 0.3:  # a soft lens on some clips
        radius = rng.uniform(0.4, 1.0)
        frames = np.stack([np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(radius))) for f in frames])
    return frames, fps


def _write(path: Path, frames: np.ndarray, fps: int, codec: str, rng: np.random.Generator) -> None:
    """Encode with PyAV; temporary name, then rename."""
    import av

    partial = path.with_name(path.stem + ".partial" + path.suffix)
    with av.open(str(partial), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(int(rng.integers(23, 31))), "preset": "veryfast"}
        elif codec == "libvpx-vp9":
            stream.options = {"deadline": "realtime", "cpu-used": "8", "crf": str(int(rng.integers(30, 45))), "b": "0"}
        else:  # mpeg4, mjpeg: a bit rate for the frame size, from visibly blocky to clean
            stream.bit_rate = int(frames.shape[1] * frames.shape[2] * fps * rng.uniform(0.3, 1.5))
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    partial.rename(path)


def write_heldout_set(root: str | Path, num_clips: int, seed: int = 0) -> list[dict[str, Any]]:
    """Write ``num_clips`` clips under ``root`` (balanced over labels and every factor's cells) and
    ``root/clips.json`` describing them; reuse them when the description is already there for this seed."""
    root = Path(root)
    index = root / "clips.json"
    if index.is_file():
        saved = json.loads(index.read_text())
        if saved["seed"] == seed and len(saved["clips"]) == num_clips:
            return saved["clips"]
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # every factor cycles through its cells, each factor in its own shuffled order: balanced and independent
    columns = {name: rng.permutation(np.resize(np.arange(len(cells)), num_clips)) for name, cells in FACTORS.items()}
    labels = rng.permutation(np.resize(np.arange(len(LABELS)), num_clips))
    clips = []
    for i in range(num_clips):
        factors = {name: FACTORS[name][int(columns[name][i])] for name in FACTORS}
        frames, fps = draw_clip(int(labels[i]), factors, rng)
        extension, codec = _CONTAINERS[factors["codec"]]
        path = root / f"{i:05d}.{extension}"
        _write(path, frames, fps, codec, rng)
        clips.append(
            {
                "path": path.name,
                "label": int(labels[i]),
                "size": list(frames.shape[1:3]),
                "frames": len(frames),
                "fps": fps,
                **factors,
            }
        )
    tmp = index.with_suffix(".partial")
    tmp.write_text(json.dumps({"seed": seed, "clips": clips}, indent=1))
    tmp.rename(index)
    return clips


def score_per_factor(model: Any, root: str | Path, clips: list[dict[str, Any]], views: str = "1x3") -> dict[str, Any]:
    """Top-1 (%) of ``model`` over ``clips``, overall and in every cell of every factor."""
    from tokshift_zoo.inference import predict

    hits: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    correct = 0
    for clip in clips:
        top = predict(model, Path(root) / clip["path"], views=views, topk=1)[0]["label"]
        right = int(top == LABELS[clip["label"]])
        correct += right
        for name in FACTORS:
            cell = hits[(name, clip[name])]
            cell[0] += right
            cell[1] += 1
    per_factor = {
        name: {cell: round(100 * hits[(name, cell)][0] / max(hits[(name, cell)][1], 1), 1) for cell in cells}
        for name, cells in FACTORS.items()
    }
    worst = {name: min(cells.values()) for name, cells in per_factor.items()}
    return {
        "top1": round(100 * correct / len(clips), 2),
        "clips": len(clips),
        "per_factor": per_factor,
        "worst_cell": worst,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="runs/heldout", help="folder for the clips")
    parser.add_argument("--clips", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", action="append", default=[], help="a zoo model name with its weights")
    parser.add_argument("--checkpoint", action="append", default=[], help="a checkpoint file (trainer's best)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    import tokshift_zoo
    from tokshift_zoo.factory import create_model

    torch.set_num_threads(min(2, torch.get_num_threads()))
    started = time.perf_counter()
    root = Path(args.workdir) / f"seed{args.seed}"
    clips = write_heldout_set(root, args.clips, args.seed)
    print(f"{len(clips)} held-out clips in {root} ({time.perf_counter() - started:.0f} s)")
    models = {name: tokshift_zoo.load(name, device="cpu") for name in args.model or []}
    for path in args.checkpoint:
        models[path] = create_model(None, checkpoint_path=path).eval()
    if not models:
        models[DEFAULT] = tokshift_zoo.load(DEFAULT, device="cpu")
    results = {}
    for name, model in models.items():
        results[name] = score_per_factor(model, root, clips)
        print(f"\n{name}: top-1 {results[name]['top1']}% of {len(clips)}")
        for factor, cells in results[name]["per_factor"].items():
            print(f"  {factor:<11}" + "  ".join(f"{cell} {value:5.1f}" for cell, value in cells.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"seed": args.seed, "results": results}, indent=1))
    return 0


DEFAULT = "tokshift_demo_motion.synthetic"

if __name__ == "__main__":
    raise SystemExit(main())

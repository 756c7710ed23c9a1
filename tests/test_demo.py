"""The bundled demo model: its pinned weights, its accuracy on fresh clips and on clips made by other means."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from videos import write_video

import tokshift_zoo
from tokshift_zoo.cli import main
from tokshift_zoo.demo import score_on_fresh_clips
from tokshift_zoo.inference import predict
from tokshift_zoo.models import get_video_cfg
from tokshift_zoo.models.registry import DEFAULT_MODEL
from tokshift_zoo.synthetic import MOTION_LABELS
from tokshift_zoo.weights import package_file, sha256_file


@pytest.fixture(scope="module")
def demo_model():
    return tokshift_zoo.load(DEFAULT_MODEL, device="cpu")


def test_shipped_weights_match_their_pin(demo_model):
    path = package_file(get_video_cfg(DEFAULT_MODEL).filename).replace("package://tokshift_zoo", "")
    shipped = tokshift_zoo.__path__[0] + path
    assert sha256_file(shipped) == get_video_cfg(DEFAULT_MODEL).sha256
    assert demo_model.labels == list(MOTION_LABELS) and not demo_model.training
    assert demo_model.load_report.reinitialised == [] and demo_model.load_report.unused == []


def test_accuracy_on_freshly_generated_clips(demo_model, tmp_path):
    score = score_on_fresh_clips(demo_model, tmp_path, num_clips=120, seed=2026)
    assert score["failed"] == [] and score["videos"] == 120
    assert score["top1"] >= 92.0, score


def draw_scene(direction: str, rng: np.random.Generator, height: int, width: int, frames: int) -> np.ndarray:
    """A scene drawn another way than the package's generator: PIL polygons and ellipses, other shapes and
    colours, on dark gradients or checkerboards, moving part of the way across the frame."""
    shape = rng.choice(["circle", "triangle", "square", "star", "hexagon"])
    colour = tuple(
        int(c)
        for c in rng.choice(
            [
                (255, 60, 60),
                (60, 255, 80),
                (90, 140, 255),
                (255, 230, 40),
                (240, 240, 240),
                (255, 120, 220),
                (50, 230, 230),
            ]
        )
    )
    base = rng.uniform(10, 70, 3)
    ys = np.linspace(0, 1, height)[:, None, None]
    if rng.uniform() < 0.5:
        background = base + ys * rng.uniform(-40, 40, 3)  # vertical gradient
    else:  # a dim checkerboard
        cell = int(rng.integers(6, 16))
        checks = ((np.arange(height)[:, None] // cell + np.arange(width)[None, :] // cell) % 2)[..., None]
        background = base + checks * rng.uniform(5, 25)
    background = np.broadcast_to(np.clip(background, 0, 255), (height, width, 3)).astype(np.uint8)
    radius = rng.uniform(0.14, 0.24) * min(height, width)
    dy, dx = {"moving_left": (0, -1), "moving_right": (0, 1), "moving_up": (-1, 0), "moving_down": (1, 0)}[direction]
    extent = width if dx else height
    distance = rng.uniform(0.4, 0.9) * (extent - 2 * radius)
    start = rng.uniform(radius, extent - radius - distance)
    cross = rng.uniform(radius, (height if dx else width) - radius)
    clip = []
    for t in range(frames):
        along = start + distance * t / (frames - 1)
        along = along if (dx > 0 or dy > 0) else extent - along
        cx, cy = (along, cross) if dx else (cross, along)
        image = Image.fromarray(background.copy())
        draw = ImageDraw.Draw(image)
        if shape == "circle":
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
        elif shape == "square":
            draw.rectangle([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
        else:
            sides = {"triangle": 3, "star": 5, "hexagon": 6}[shape]
            draw.regular_polygon((cx, cy, radius), sides, fill=colour)
            if shape == "star":
                draw.regular_polygon((cx, cy, radius * 0.8), sides, rotation=36, fill=colour)
        clip.append(np.asarray(image))
    return np.stack(clip)


def test_holds_on_clips_made_by_other_means(demo_model, tmp_path):
    rng = np.random.default_rng(7)
    formats = [("clip.avi", "mpeg4"), ("clip.webm", "libvpx-vp9"), ("clip.avi", "mjpeg"), ("clip.mkv", "libx264")]
    sizes = [(64, 96), (120, 160), (90, 120), (128, 72), (72, 72), (100, 180)]
    correct, total = 0, 0
    for i in range(48):
        direction = MOTION_LABELS[i % 4]
        height, width = sizes[int(rng.integers(len(sizes)))]
        name, codec = formats[int(rng.integers(len(formats)))]
        frames = draw_scene(direction, rng, height, width, frames=int(rng.integers(10, 41)))
        path = write_video(tmp_path / f"{i:02d}_{name}", frames, fps=int(rng.choice([5, 10, 15, 24, 30])), codec=codec)
        top = predict(demo_model, path, views="1x3", topk=1)[0]["label"]
        correct += top == direction
        total += 1
    assert correct / total >= 0.9, f"{correct}/{total}"


def test_demo_command_writes_a_clip_and_classifies_it(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--direction", "moving_up", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "demo_clip.mp4").is_file()
    assert "moving up" in out.splitlines()[0]
    scores = [line.split() for line in out.splitlines()[2:]]
    assert scores[0][1] == "moving_up" and len(scores) == 4

"""Timelines of long videos: the model run on sliding windows, top-k per window, a plot of the scores over time.

A window is one clip: the model's clip span by default (``num_frames x frame_stride`` frames for dense "NxS"
sampling, e.g. 256 frames, 8.5 s at 30 fps, for 8x32), sampled inside the window by the model's own sampler.
Windows start every ``stride`` seconds. Only the sampled frames are decoded, a few windows at a time, so a
10-minute video costs the frames its windows use, not its every frame, and memory stays bounded.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from tqdm import tqdm

from .atomic import atomic_write
from .errors import ConfigError, VideoError
from .inference import class_names, model_device_dtype, predict_logits, top_classes
from .models.registry import weights_of
from .video.io import decode_frames, read_video_info
from .video.transforms import create_transform, frame_indices

__all__ = [
    "PLOT_EXTRA",
    "Timeline",
    "Window",
    "plot_timeline",
    "timeline",
    "timeline_csv",
    "timeline_windows",
    "window_row",
]

PLOT_EXTRA = "it is an optional extra: pip install 'tokshift-zoo[plot]'"


@dataclass(frozen=True)
class Window:
    """One window of a timeline: its number, first frame time and end in seconds, the frame indices its clip
    samples, int64 (T,), and the model's softmax scores on it, float32 (num_classes,)."""

    index: int
    start_s: float
    end_s: float
    frames: torch.Tensor
    scores: torch.Tensor


def window_row(video: str, window: Window, labels: Sequence[str] | None, topk: int = 5) -> dict[str, Any]:
    """A window as ``{"video", "window", "start_s", "end_s", "predictions"}``, predictions the ``topk`` classes
    ``[{"label", "index", "score"}]``, best first; times rounded to milliseconds."""
    return {
        "video": video,
        "window": window.index,
        "start_s": round(window.start_s, 3),
        "end_s": round(window.end_s, 3),
        "predictions": top_classes(window.scores, labels, topk),
    }


@dataclass(frozen=True)
class Timeline:
    """A video's windows and the model's scores on each.

    Attributes:
        video: the path as given.
        starts_s, ends_s: each window's first frame time and end (last frame time + one frame), in seconds from
            the first frame.
        frames: the frame indices each window's clip samples, int64 (W, T).
        scores: softmax scores, float32 (W, num_classes).
        labels: class names (``None``: classes are shown by index).
    """

    video: str
    starts_s: list[float]
    ends_s: list[float]
    frames: torch.Tensor
    scores: torch.Tensor
    labels: list[str] | None

    @classmethod
    def of_windows(cls, video: str, windows: Sequence[Window], labels: list[str] | None) -> Timeline:
        """The timeline made of a video's windows, in order."""
        return cls(
            video=video,
            starts_s=[w.start_s for w in windows],
            ends_s=[w.end_s for w in windows],
            frames=torch.stack([w.frames for w in windows]),
            scores=torch.stack([w.scores for w in windows]),
            labels=labels,
        )

    def rows(self, topk: int = 5) -> list[dict[str, Any]]:
        """One dict per window (see ``window_row``)."""
        return [
            window_row(self.video, Window(w, start, end, frames, scores), self.labels, topk)
            for w, (start, end, frames, scores) in enumerate(
                zip(self.starts_s, self.ends_s, self.frames, self.scores, strict=True)
            )
        ]


def _window_length(config: Any, fps: float, window_s: float | None, model_name: str) -> int:
    if window_s is not None:
        if window_s <= 0:
            raise ConfigError(f"the window must be a positive number of seconds, got {window_s}")
        return max(1, round(window_s * fps))
    if config.sampling == "dense":
        return config.num_frames * config.frame_stride
    raise ConfigError(
        f"{model_name} samples its {config.num_frames} frames evenly over a whole clip, so it has no fixed clip "
        "span: give the window length in seconds (--window)"
    )


def timeline(
    model: nn.Module,
    video: str | os.PathLike,
    stride_s: float,
    window_s: float | None = None,
    crops: int = 1,
    batch_size: int = 8,
    windows_per_decode: int = 16,
    amp: str | torch.dtype | None = None,
) -> Timeline:
    """Score sliding windows over a video: ``timeline_windows``'s windows, gathered.

    Returns:
        A ``Timeline`` (see ``timeline_windows`` for the windows and the errors).
    """
    windows = list(timeline_windows(model, video, stride_s, window_s, crops, batch_size, windows_per_decode, amp))
    return Timeline.of_windows(os.fspath(video), windows, class_names(model))


def timeline_windows(
    model: nn.Module,
    video: str | os.PathLike,
    stride_s: float,
    window_s: float | None = None,
    crops: int = 1,
    batch_size: int = 8,
    windows_per_decode: int = 16,
    amp: str | torch.dtype | None = None,
    progress: bool = False,
) -> Iterator[Window]:
    """Score sliding windows over a video, yielding each window as soon as it is scored.

    Args:
        model: a zoo model in eval mode, or an exported one run by another runtime (``export.runtime_model``).
        video: a video file (not a frame folder: it has no frame rate).
        stride_s: seconds between window starts (> 0).
        window_s: window length in seconds; ``None``: the model's clip span (dense sampling only).
        crops: 1 (centre) or 3 (left, centre, right) crops per window, their logits averaged.
        batch_size: views per forward pass.
        windows_per_decode: windows whose frames are decoded together (one pass with seeks; bounds memory).
        amp: autocast dtype (see ``inference.predict_logits``); None runs in the model's dtype.
        progress: a tqdm bar of the windows on stderr.

    Yields:
        ``Window``s in order. Windows start at 0, ``stride_s``, ... as long as they fit in the video, at most one
        per frame present (a file whose timestamps span hours over a few frames gives one window per frame, at
        each frame's time); a video shorter than one window gives one window over the whole video (its clip
        sampled as for any short video).

    Raises:
        ConfigError: a non-positive stride or window, or a uniform-sampling model without ``window_s``.
        VideoError: the file cannot be read.
    """
    if stride_s <= 0:
        raise ConfigError(f"the timeline stride must be a positive number of seconds, got {stride_s}")
    if Path(video).is_dir():
        raise VideoError(
            f"cannot make a timeline of {os.fspath(video)!r}: it is a frame folder, with no frame rate to place "
            "windows in time; expected a video file (predict classifies a frame folder without --timeline)"
        )
    name = model.pretrained_cfg.get("architecture", type(model).__name__)
    config = weights_of(model).with_views(1, crops)
    info = read_video_info(video)
    if info.fps <= 0:
        raise VideoError(
            f"cannot make a timeline of {os.fspath(video)!r}: it has no frame rate to place windows in time"
        )
    fps = info.fps
    length = min(_window_length(config, fps, window_s, name), info.num_frames)
    step = max(stride_s * fps, 1.0)  # in frames; windows closer than a frame would repeat one another
    starts = [round(i * step) for i in range(int((info.num_frames - length) / step) + 1)]
    clip = frame_indices(config, length, source=os.fspath(video))[0]  # (T,), offsets inside a window
    frames = torch.stack([start + clip for start in starts])  # (W, T)
    transform = create_transform(config)
    _, dtype = model_device_dtype(model)
    times = _frame_times(info)
    bar = tqdm(total=len(starts), desc=Path(video).name, unit="window", disable=not progress, file=sys.stderr)
    with bar:
        for first, chunk in zip(
            range(0, len(starts), windows_per_decode), frames.split(windows_per_decode), strict=True
        ):
            wanted = chunk.flatten().unique()  # sorted
            decoded = decode_frames(video, wanted.tolist(), info)  # (F, H, W, 3)
            clips = decoded[torch.searchsorted(wanted, chunk)]  # (w, T, H, W, 3)
            views = transform(clips.permute(0, 1, 4, 2, 3)).to(dtype)  # (w, crops, 3, T, h, w)
            for w, (window, indices) in enumerate(zip(views, chunk, strict=True), start=first):
                scores = predict_logits(model, window, batch_size, amp).softmax(-1)
                start = starts[w]
                yield Window(w, times(start), times(start + length - 1) + 1.0 / fps, indices, scores)
                bar.update()


def _frame_times(info: Any):
    """Frame index -> seconds from the first frame: the frame's timestamp where known (right for variable frame
    rates), else index / fps."""
    if info.pts is None:
        return lambda index: index / info.fps  # timeline() refuses a video without a rate
    return lambda index: float((info.pts[index] - info.pts[0]) * info.time_base)


def timeline_csv(rows: Sequence[dict[str, Any]], header: bool = True) -> str:
    """Timeline rows as CSV text: ``video,window,start_s,end_s,rank,label,index,score``, one line per class
    (``header``: the column names first)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(["video", "window", "start_s", "end_s", "rank", "label", "index", "score"])
    for row in rows:
        for rank, p in enumerate(row["predictions"], start=1):
            writer.writerow(
                [row["video"], row["window"], row["start_s"], row["end_s"], rank, p["label"], p["index"], p["score"]]
            )
    return out.getvalue()


def plot_timeline(line: Timeline, path: str | os.PathLike, classes: int = 5) -> Path:
    """Plot the scores over time of the ``classes`` classes that score highest in any window, to an image file
    (the format follows the extension: .png, .pdf, .svg), written to a temporary name and renamed.

    Raises:
        ModuleNotFoundError: matplotlib is not installed (``pip install 'tokshift-zoo[plot]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ModuleNotFoundError(f"plotting a timeline needs matplotlib; {PLOT_EXTRA}") from err
    centres = [(start + end) / 2 for start, end in zip(line.starts_s, line.ends_s, strict=True)]
    top = line.scores.max(0).values.topk(min(classes, line.scores.shape[1])).indices.tolist()
    figure, axes = plt.subplots(figsize=(10, 4))
    for index in top:
        name = line.labels[index] if line.labels else str(index)
        axes.plot(centres, line.scores[:, index].tolist(), marker="o", markersize=3, label=name)
    axes.set(xlabel="time (s, window centre)", ylabel="score", ylim=(0, 1), title=Path(line.video).name)
    axes.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    try:
        return atomic_write(path, lambda tmp: figure.savefig(tmp))
    finally:
        plt.close(figure)

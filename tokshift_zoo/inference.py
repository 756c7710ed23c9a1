"""Multi-view prediction: a video in, labels out.

A video (a file, or frames already decoded) becomes ``clips x crops`` views following the model's data config
(``VideoPreprocess``); the views run through the model in batches, on the model's device, in its dtype (autocast only
when asked for); their logits are averaged, as in the paper's 10x3 test protocol, and turned into scores.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .devices import amp_dtype, autocast
from .distributed import gather_to_main, ranks, share_of_items
from .metrics import mean_class_accuracy, topk_hits
from .video.io import decode_frame_folder, decode_frames, frame_folder_length, read_video_info
from .video.sampling import parse_views
from .video.transforms import DataConfig, create_transform, resolve_data_config

__all__ = [
    "VideoPreprocess",
    "ViewsDataset",
    "class_names",
    "model_data_config",
    "model_device_dtype",
    "top_classes",
    "predict",
    "predict_logits",
    "predict_videos",
    "evaluate",
]

VideoInput = str | os.PathLike | torch.Tensor | np.ndarray


class VideoPreprocess:
    """A video -> the batch of its test views, (clips * crops, 3, T, H, W), ready for the model.

    Args:
        config: the model's data config (``resolve_data_config(model)``).
        views: ``"CLIPSxCROPS"``: ``"1x1"`` one centre clip and crop; ``"10x3"`` the paper's protocol.
        device, dtype: where the batch goes (the model's device and dtype).

    Calling it takes a video path (only the sampled frames are decoded), a folder of the authors' extracted
    frames (``img_00001.jpg``...), or decoded frames as uint8 (T, H, W, 3) (PyAV's layout) or (T, 3, H, W), and
    returns float (views, 3, T, H, W), clip-major (views ``c * crops + k`` are crop k of clip c).
    """

    def __init__(
        self,
        config: DataConfig,
        views: str = "1x1",
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        clips, crops = parse_views(views)
        self.config = dataclasses.replace(config, test_clips=clips, test_crops=crops)
        self.views = views
        self.transform = create_transform(self.config)
        self.device = torch.device(device)
        self.dtype = dtype

    def frames(self, video: VideoInput) -> torch.Tensor:
        """The sampled frames of every clip, uint8 (clips, T, 3, H, W)."""
        return self.sample(video)[1]

    def sample(self, video: VideoInput) -> tuple[torch.Tensor, torch.Tensor]:
        """The frame indices of every clip, int64 (clips, T), and those frames, uint8 (clips, T, 3, H, W)."""
        if isinstance(video, (str, os.PathLike)) and os.path.isdir(video):  # the authors' extracted frames
            indices = self.config.frame_indices(frame_folder_length(video), source=os.fspath(video))
            frames = decode_frame_folder(video, indices.flatten().tolist())
            return indices, frames.reshape(*indices.shape, *frames.shape[1:]).permute(0, 1, 4, 2, 3)
        if isinstance(video, (str, os.PathLike)):
            info = read_video_info(video)
            indices = self.config.frame_indices(info.num_frames, source=os.fspath(video))  # (clips, T)
            frames = decode_frames(video, indices.flatten().tolist(), info)  # (clips*T, H, W, 3)
            return indices, frames.reshape(*indices.shape, *frames.shape[1:]).permute(0, 1, 4, 2, 3)
        video = torch.as_tensor(video)
        if video.dtype != torch.uint8 or video.ndim != 4 or 3 not in (video.shape[1], video.shape[3]):
            raise ValueError(
                f"expected a video path or uint8 frames (T, H, W, 3) or (T, 3, H, W), "
                f"got {video.dtype} of shape {tuple(video.shape)}"
            )
        if video.shape[1] != 3:
            video = video.permute(0, 3, 1, 2)  # (T, H, W, 3) -> (T, 3, H, W)
        indices = self.config.frame_indices(video.shape[0])
        return indices, video[indices]

    def sampled_views(self, video: VideoInput) -> tuple[torch.Tensor, torch.Tensor]:
        """The frame indices of every clip, int64 (clips, T), and the views made of them, as ``__call__``."""
        indices, frames = self.sample(video)
        views = self.transform(frames)  # (clips, crops, 3, T, H, W)
        return indices, views.flatten(0, 1).to(self.device, self.dtype)

    def __call__(self, video: VideoInput) -> torch.Tensor:
        return self.sampled_views(video)[1]

    def __repr__(self) -> str:
        head = f"{type(self).__name__}(views={self.views!r}, device={self.device}, dtype={self.dtype},"
        return f"{head}\n  {self.transform})"


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where a model runs and in which dtype; CPU float32 for an exported model run by another runtime."""
    param = next(model.parameters(), None)
    return (param.device, param.dtype) if param is not None else (torch.device("cpu"), torch.float32)


def model_data_config(model: nn.Module) -> DataConfig:
    """The model's data config; an exported model (``tokshift_zoo.export``) carries its own, from its metadata."""
    config = getattr(model, "data_config", None)
    return config if isinstance(config, DataConfig) else resolve_data_config(model)


def predict_logits(
    model: nn.Module, views: torch.Tensor, batch_size: int = 8, amp: str | torch.dtype | None = None
) -> torch.Tensor:
    """Average the logits of a video's views: (V, 3, T, H, W) -> (num_classes,) float32, no gradients.

    The views go through the model ``batch_size`` at a time, in the model's own dtype. ``amp`` turns on
    autocast: ``"bf16"``/``"fp16"`` (or a dtype), ``"auto"`` (bf16 on CUDA only); None or ``"none"``: off.
    """
    device, _ = model_device_dtype(model)
    with torch.inference_mode(), autocast(device, amp_dtype(amp, device)):
        logits = torch.cat([model(batch.to(device)).float() for batch in views.split(batch_size)])
    return logits.mean(0)


def _preprocess_for(model: nn.Module, views: str) -> VideoPreprocess:
    attached = getattr(model, "preprocess", None)
    if isinstance(attached, VideoPreprocess) and attached.views == views:
        return attached
    device, dtype = model_device_dtype(model)
    return VideoPreprocess(model_data_config(model), views, device, dtype)


def class_names(model: nn.Module) -> list[str] | None:
    """The model's class names (``model.labels``, else its ``pretrained_cfg``), if they fit its head."""
    names = getattr(model, "labels", None) or model.pretrained_cfg.get("label_names")
    return list(names) if names is not None and len(names) == model.num_classes else None


def top_classes(scores: torch.Tensor, labels: Sequence[str] | None, topk: int) -> list[dict[str, Any]]:
    """The ``topk`` classes of (num_classes,) scores, best first: ``[{"label", "index", "score"}, ...]`` (the label
    is the class index as text where there are no ``labels``; scores rounded to 6 digits)."""
    values, indices = scores.topk(min(topk, scores.numel()))
    return [
        {"label": labels[i] if labels else str(i), "index": i, "score": round(v, 6)}
        for v, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]


def predict(
    model: nn.Module,
    video: VideoInput | Sequence[VideoInput],
    views: str = "1x1",
    topk: int = 5,
    batch_size: int = 8,
    amp: str | torch.dtype | None = None,
) -> list[dict[str, Any]] | list[list[dict[str, Any]] | Exception]:
    """Classify one video, or each video of a list.

    Args:
        model: a zoo model in eval mode (on any device; the views follow it), or an exported one run by
            another runtime (``tokshift_zoo.export.runtime_model`` / ``load_artefact``).
        video: a path, or decoded uint8 frames (T, H, W, 3) / (T, 3, H, W); or a list (tuple) of those, which
            gives one result per video, in order.
        views: ``"CLIPSxCROPS"``, e.g. ``"1x1"`` (default) or the paper's ``"10x3"``.
        topk: how many classes to return.
        batch_size: views per forward pass.
        amp: autocast dtype (see ``predict_logits``); None runs in the model's dtype.

    Returns:
        The ``topk`` classes, best first: ``[{"label", "index", "score"}, ...]``; scores are the softmax of the
        view-averaged logits, in [0, 1]. For a list of videos, a list of those, in order; a video that cannot
        be read gives, in its place, the error that says why (a ``VideoError``, ``ValueError`` or ``OSError``
        naming the file; test with ``isinstance(result, Exception)``), and the other videos go on.

    Raises:
        VideoError (a ValueError), OSError: the one video given cannot be read.
    """
    if isinstance(video, (list, tuple)):
        return [_predict_or_error(model, v, views, topk, batch_size, amp) for v in video]
    batch = _preprocess_for(model, views)(video)
    scores = predict_logits(model, batch, batch_size, amp).softmax(-1)
    return top_classes(scores, class_names(model), topk)


def _predict_or_error(model: nn.Module, video: VideoInput, *args: Any) -> list[dict[str, Any]] | Exception:
    try:
        return predict(model, video, *args)
    except (ValueError, IndexError, OSError) as err:  # what ViewsDataset reports for a video of a list
        return err


class ViewsDataset(Dataset):
    """(key, video) items -> (key, views (V, 3, T, H, W), frame indices (clips, T), None), or
    (key, None, None, "video: reason") for a video that cannot be read; the key passes through (a position, a
    label). For a ``DataLoader`` with ``batch_size=None``, whose workers decode while the model runs."""

    def __init__(self, items: Sequence[tuple[Any, str]], preprocess: VideoPreprocess) -> None:
        self.items, self.preprocess = items, preprocess

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Any, torch.Tensor | None, torch.Tensor | None, str | None]:
        key, video = self.items[i]
        try:
            indices, views = self.preprocess.sampled_views(video)
        except (ValueError, IndexError, OSError) as err:  # VideoReadError is a ValueError
            return key, None, None, f"{video}: {err}"
        return key, views, indices, None


def _logits_of_videos(
    model: nn.Module,
    videos: Sequence[str],
    views: str,
    batch_size: int,
    num_workers: int,
    progress: str | None,
    amp: str | torch.dtype | None,
    on_outcome: Callable[[int, torch.Tensor | None, str | None], None] | None = None,
) -> list[tuple[torch.Tensor | None, str | None]] | None:
    """Each video's view-averaged logits (CPU float32, (num_classes,)) or the reason it could not be read, in the
    order given, decoded by ``num_workers`` loader processes. Under torchrun each rank classifies its share and
    rank 0 gets every video's (the others get ``None``). ``progress``: the bar's description, or None for none.
    ``on_outcome(position, logits, error)``: called as each video finishes (in one process; under torchrun on
    rank 0 once all are gathered)."""
    mine = share_of_items(videos)
    _, dtype = model_device_dtype(model)
    preprocess = VideoPreprocess(model_data_config(model), views, "cpu", dtype)
    loader = DataLoader(
        ViewsDataset([(i, videos[i]) for i in mine], preprocess), batch_size=None, num_workers=num_workers
    )
    show = progress is not None and ranks().is_main
    results = []  # (position, logits or None, error or None); logits on CPU: rank 0 merges tensors of every GPU
    alone = ranks().world_size == 1
    for i, batch, _, error in tqdm(loader, desc=progress, unit="video", disable=not show):
        results.append((i, None if error else predict_logits(model, batch, batch_size, amp).cpu(), error))
        if on_outcome is not None and alone:
            on_outcome(*results[-1])
    gathered = gather_to_main(results)
    if gathered is None:
        return None
    merged = sorted((r for part in gathered for r in part), key=lambda r: r[0])
    if on_outcome is not None and not alone:
        for outcome in merged:
            on_outcome(*outcome)
    return [(logits, error) for _, logits, error in merged]


def evaluate(
    model: nn.Module,
    samples: Iterable[tuple[str, int]],
    views: str = "1x1",
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = True,
    amp: str | torch.dtype | None = None,
) -> dict[str, Any] | None:
    """Accuracy of ``model`` on labelled videos, each classified from the average of its views.

    Under torchrun (``tokshift_zoo.distributed``) each process classifies its share of the videos, and rank 0
    merges the per-video results into the same report one process would give.

    Args:
        samples: (video path, class index) pairs (see ``tokshift_zoo.train.datasets.read_video_list``).
        views: ``"CLIPSxCROPS"`` per video.
        batch_size: views per forward pass.
        num_workers: data-loader processes (per rank) that decode and transform while the model runs.
        progress: show a tqdm bar (rank 0's share under torchrun).
        amp: autocast dtype (see ``predict_logits``); None runs in the model's dtype.

    Returns:
        ``{"top1", "top5", "mean_class_accuracy"}`` in percent over the videos that could be read, with
        ``"videos"``, ``"views"``, and ``"failed"``: a list of "path: reason" for videos that could not be read,
        in list order. ``None`` on ranks other than 0.
    """
    samples = list(samples)
    outcomes = _logits_of_videos(
        model, [path for path, _ in samples], views, batch_size, num_workers, "evaluate" if progress else None, amp
    )
    if outcomes is None:
        return None
    failed = [error for _, error in outcomes if error is not None]
    logits = [logit for logit, error in outcomes if error is None]
    labels = [label for (_, label), (_, error) in zip(samples, outcomes, strict=True) if error is None]
    read = len(labels)
    if not read:
        top1 = top5 = mean_class = float("nan")
    else:
        logits_t, labels_t = torch.stack(logits), torch.tensor(labels)  # (videos, C), (videos,)
        hits = topk_hits(logits_t, labels_t)
        top1, top5 = (100.0 * hits[k].float().mean().item() for k in (1, 5))
        mean_class = mean_class_accuracy(logits_t.argmax(1), labels_t, model.num_classes)
    return {
        "top1": top1,
        "top5": top5,
        "mean_class_accuracy": mean_class,
        "videos": read,
        "views": views,
        "failed": failed,
    }


def predict_videos(
    model: nn.Module,
    videos: Sequence[str | os.PathLike],
    views: str = "1x1",
    topk: int = 5,
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = True,
    amp: str | torch.dtype | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]] | None:
    """Classify many videos, decoding in ``num_workers`` data-loader processes while the model runs.

    Under torchrun each process classifies its share of the videos and rank 0 gathers all the answers. The other
    arguments are ``predict``'s. ``on_result(result)``: called with each video's result as soon as it is done
    (in the order given; under torchrun on rank 0, once all are gathered), e.g. to print it.

    Returns:
        One dict per video, in the order given: ``{"video", "predictions"}`` (as ``predict`` returns them) or
        ``{"video", "error"}`` for a video that could not be read. ``None`` on ranks other than 0.
    """
    videos = [os.fspath(v) for v in videos]
    labels = class_names(model)

    def result(i: int, logits: torch.Tensor | None, error: str | None) -> dict[str, Any]:
        if error is not None:
            return {"video": videos[i], "error": error}
        return {"video": videos[i], "predictions": top_classes(logits.softmax(-1), labels, topk)}

    def report(i: int, logits: torch.Tensor | None, error: str | None) -> None:
        on_result(result(i, logits, error))

    progress = "predict" if progress else None
    outcomes = _logits_of_videos(
        model, videos, views, batch_size, num_workers, progress, amp, report if on_result else None
    )
    if outcomes is None:
        return None
    return [result(i, logits, error) for i, (logits, error) in enumerate(outcomes)]

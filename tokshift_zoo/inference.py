"""Multi-view prediction: a video in, labels out.

A video (a file, or frames already decoded) becomes ``clips x crops`` views following the model's weights record
(``model.weights``: its sampling, clip-start rule, preset and test views; ``VideoPreprocess``); the views run
through the model in batches, on the model's device, in its dtype at call time (autocast only when asked for);
their logits are averaged, as in the paper's 10x3 test protocol, and turned into scores. Without ``views``, the
record's test views run (the paper's 10x3 for the k400 tags, or those ``load(views=...)`` set); the results say
which protocol ran (``protocol``).
"""

from __future__ import annotations

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
from .models.registry import Weights, weights_of
from .video.io import decode_frame_folder, decode_frames, frame_folder_length, read_video_info
from .video.sampling import parse_views
from .video.transforms import create_transform, frame_indices

__all__ = [
    "is_out_of_memory",
    "VideoPreprocess",
    "ViewsDataset",
    "class_names",
    "model_device_dtype",
    "protocol",
    "top_classes",
    "views_of",
    "predict",
    "predict_logits",
    "predict_videos",
    "evaluate",
]

VideoInput = str | os.PathLike | torch.Tensor | np.ndarray


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` says memory ran out: a ``MemoryError`` (Python, NumPy, PyAV), torch's ``OutOfMemoryError``
    (GPU) or the ``RuntimeError`` of torch's CPU allocator."""
    return isinstance(err, MemoryError) or (
        isinstance(err, RuntimeError)
        and (isinstance(err, torch.OutOfMemoryError) or "DefaultCPUAllocator: can't allocate memory" in str(err))
    )


class VideoPreprocess:
    """A video -> the batch of its test views, (clips * crops, 3, T, H, W), ready for the model.

    Args:
        weights: the model's weights record (``model.weights``, ``resolve_data_config(model)``).
        views: ``"CLIPSxCROPS"``: ``"1x1"`` one centre clip and crop; ``"10x3"`` the paper's protocol; None: the
            record's test views.
        device, dtype: where the batch goes (the model's device and dtype).

    Calling it takes a video path (only the sampled frames are decoded), a folder of the authors' extracted
    frames (``img_00001.jpg``...), or decoded frames as uint8 (T, H, W, 3) (PyAV's layout) or (T, 3, H, W), and
    returns float (views, 3, T, H, W), clip-major (views ``c * crops + k`` are crop k of clip c).
    """

    def __init__(
        self,
        weights: Weights,
        views: str | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.weights = weights.with_views(*parse_views(views)) if views is not None else weights
        self.views = self.weights.views
        self.transform = create_transform(self.weights)
        self.device = torch.device(device)
        self.dtype = dtype

    def frames(self, video: VideoInput) -> torch.Tensor:
        """The sampled frames of every clip, uint8 (clips, T, 3, H, W)."""
        return self.sample(video)[1]

    def sample(self, video: VideoInput, num_frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The frame indices of every clip, int64 (clips, T), and those frames, uint8 (clips, T, 3, H, W).

        ``num_frames``: a frame folder's frame count as its list gives it (the authors' ``dir num_frames label``
        lines; their loader samples from that count, not from the folder's files); ``None`` counts the folder's
        frames. Frame folders only.
        """
        if isinstance(video, (str, os.PathLike)) and os.path.isdir(video):  # the authors' extracted frames
            count = frame_folder_length(video) if num_frames is None else num_frames
            indices = frame_indices(self.weights, count, source=os.fspath(video))
            frames = decode_frame_folder(video, indices.flatten().tolist())
            return indices, frames.reshape(*indices.shape, *frames.shape[1:]).permute(0, 1, 4, 2, 3)
        if isinstance(video, (str, os.PathLike)):
            info = read_video_info(video)
            indices = frame_indices(self.weights, info.num_frames, source=os.fspath(video))  # (clips, T)
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
        indices = frame_indices(self.weights, video.shape[0])
        return indices, video[indices]

    def sampled_views(self, video: VideoInput, num_frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The frame indices of every clip, int64 (clips, T), and the views made of them, as ``__call__``
        (``num_frames``: see ``sample``)."""
        indices, frames = self.sample(video, num_frames)
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


def protocol(model: nn.Module, views: str | None = None) -> dict[str, Any]:
    """What a prediction with ``views`` (None: the record's) runs: ``{"views", "sampling", "start_rule",
    "weights", "sha256"}`` of ``model.weights`` (an exported model carries its record from its metadata)."""
    record = weights_of(model)
    return (record.with_views(*parse_views(views)) if views is not None else record).protocol


def predict_logits(
    model: nn.Module, views: torch.Tensor, batch_size: int = 8, amp: str | torch.dtype | None = None
) -> torch.Tensor:
    """Average the logits of a video's views: (V, 3, T, H, W) -> (num_classes,) float32, no gradients.

    The views go through the model ``batch_size`` at a time, in the model's own dtype. ``amp`` turns on
    autocast: ``"bf16"``/``"fp16"`` (or a dtype), ``"auto"`` (bf16 on CUDA only); None or ``"none"``: off.
    """
    device, dtype = model_device_dtype(model)
    with torch.inference_mode(), autocast(device, amp_dtype(amp, device)):
        logits = torch.cat([model(batch.to(device, dtype)).float() for batch in views.split(batch_size)])
    return logits.mean(0)


def _preprocess_for(model: nn.Module, views: str | None) -> VideoPreprocess:
    """The views of ``model.weights`` on the model's device and dtype as they are now (after any ``.to()``)."""
    device, dtype = model_device_dtype(model)
    return VideoPreprocess(weights_of(model), views, device, dtype)


def views_of(model: nn.Module, video: VideoInput, views: str | None = None) -> torch.Tensor:
    """A video -> the batch of its views for ``model``: (clips * crops, 3, T, H, W) on the model's device and
    in its dtype as they are now, sampled and transformed by ``model.weights`` (``views``: None for its own
    test views). ``model(views_of(model, video)).mean(0)`` are the view-averaged logits ``predict`` scores."""
    return _preprocess_for(model, views)(video)


def class_names(model: nn.Module) -> list[str] | None:
    """The model's class names (``model.labels``, else its record's categories), if they fit its head."""
    names = getattr(model, "labels", None) or weights_of(model).categories
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
    views: str | None = None,
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
        views: ``"CLIPSxCROPS"``, e.g. ``"1x1"`` or the paper's ``"10x3"``; None (default): the test views of
            ``model.weights`` (10x3 for the k400 tags, or those ``load(views=...)`` set).
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
    label). An item may be (key, frame folder, frame count) to sample from a listed count (``sample``'s
    ``num_frames``). For a ``DataLoader`` with ``batch_size=None``, whose workers decode while the model runs."""

    def __init__(self, items: Sequence[tuple[Any, ...]], preprocess: VideoPreprocess) -> None:
        self.items, self.preprocess = items, preprocess

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Any, torch.Tensor | None, torch.Tensor | None, str | None]:
        key, video, *count = self.items[i]
        try:
            indices, views = self.preprocess.sampled_views(video, *count)
        except (ValueError, IndexError, OSError) as err:  # VideoReadError is a ValueError
            return key, None, None, f"{video}: {err}"
        except (MemoryError, RuntimeError) as err:  # a huge frame size: this video fails, the list goes on
            if not is_out_of_memory(err):
                raise
            return key, None, None, f"{video}: out of memory decoding {self.preprocess.views} views ({err})"
        return key, views, indices, None


def _logits_of_videos(
    model: nn.Module,
    videos: Sequence[str],
    views: str | None,
    batch_size: int,
    num_workers: int,
    progress: str | None,
    amp: str | torch.dtype | None,
    frame_counts: Sequence[int | None] | None = None,
    on_outcome: Callable[[int, torch.Tensor | None, str | None], None] | None = None,
) -> list[tuple[torch.Tensor | None, str | None]] | None:
    """Each video's view-averaged logits (CPU float32, (num_classes,)) or the reason it could not be read, in the
    order given, decoded by ``num_workers`` loader processes. Under torchrun each rank classifies its share and
    rank 0 gets every video's (the others get ``None``). ``progress``: the bar's description, or None for none.
    ``frame_counts``: per video, a frame folder's listed frame count or None (see ``VideoPreprocess.sample``).
    ``on_outcome(position, logits, error)``: called as each video finishes (in one process; under torchrun on
    rank 0 once all are gathered)."""
    mine = share_of_items(videos)
    _, dtype = model_device_dtype(model)
    preprocess = VideoPreprocess(weights_of(model), views, "cpu", dtype)
    loader = DataLoader(
        ViewsDataset([(i, videos[i], frame_counts[i] if frame_counts else None) for i in mine], preprocess),
        batch_size=None,
        num_workers=num_workers,
    )
    show = progress is not None and ranks().is_main
    results = []  # (position, logits or None, error or None); logits on CPU: rank 0 merges tensors of every GPU
    alone = ranks().world_size == 1
    for i, batch, _, error in tqdm(loader, desc=progress, unit="video", disable=not show):
        logits = None
        if error is None:
            try:
                logits = predict_logits(model, batch, batch_size, amp).cpu()
            except (MemoryError, RuntimeError) as err:  # this video's error; the others go on
                if not is_out_of_memory(err):
                    raise
                error = f"{videos[i]}: out of memory in the model for its {len(batch)} views ({err})"
        del batch
        results.append((i, logits, error))
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
    samples: Iterable[tuple[str, int] | tuple[str, int, int | None]],
    views: str | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = True,
    amp: str | torch.dtype | None = None,
) -> dict[str, Any] | None:
    """Accuracy of ``model`` on labelled videos, each classified from the average of its views.

    Under torchrun (``tokshift_zoo.distributed``) each process classifies its share of the videos, and rank 0
    merges the per-video results into the same report one process would give.

    Args:
        samples: (video path, class index) pairs, or (path, class index, frame count) for frame folders listed
            with their count (``read_video_list``'s ``VideoSample.num_frames``, from the authors' ``dir
            num_frames label`` lists): clips are then placed on that count, as the authors' loader does, not on
            the folder's files.
        views: ``"CLIPSxCROPS"`` per video; None (default): the test views of ``model.weights``.
        batch_size: views per forward pass.
        num_workers: data-loader processes (per rank) that decode and transform while the model runs.
        progress: show a tqdm bar (rank 0's share under torchrun).
        amp: autocast dtype (see ``predict_logits``); None runs in the model's dtype.

    Returns:
        ``{"top1", "top5", "mean_class_accuracy"}`` in percent over the videos that could be read, with
        ``"videos"``, ``"views"``, ``"protocol"`` (``protocol(model, views)``: views, sampling, start rule,
        weights and sha256) and ``"failed"``: a list of "path: reason" for videos that could not be read, in list
        order. ``None`` on ranks other than 0.
    """
    samples = list(samples)
    run = protocol(model, views)
    counts = [sample[2] if len(sample) > 2 else None for sample in samples]
    desc = "evaluate" if progress else None
    outcomes = _logits_of_videos(model, [s[0] for s in samples], views, batch_size, num_workers, desc, amp, counts)
    if outcomes is None:
        return None
    failed = [error for _, error in outcomes if error is not None]
    logits = [logit for logit, error in outcomes if error is None]
    labels = [sample[1] for sample, (_, error) in zip(samples, outcomes, strict=True) if error is None]
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
        "views": run["views"],
        "protocol": run,
        "failed": failed,
    }


def predict_videos(
    model: nn.Module,
    videos: Sequence[str | os.PathLike],
    views: str | None = None,
    topk: int = 5,
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = True,
    amp: str | torch.dtype | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    frame_counts: Sequence[int | None] | None = None,
) -> list[dict[str, Any]] | None:
    """Classify many videos, decoding in ``num_workers`` data-loader processes while the model runs.

    Under torchrun each process classifies its share of the videos and rank 0 gathers all the answers. The other
    arguments are ``predict``'s. ``on_result(result)``: called with each video's result as soon as it is done
    (in the order given; under torchrun on rank 0, once all are gathered), e.g. to print it.
    ``frame_counts``: per video, a frame folder's listed frame count or None, as in ``evaluate`` (a list's
    ``VideoSample.num_frames``: clips are placed on that count, not on the folder's files).

    Returns:
        One dict per video, in the order given: ``{"video", "predictions", "protocol"}`` (as ``predict`` returns
        them, and ``protocol(model, views)``) or ``{"video", "error"}`` for a video that could not be read.
        ``None`` on ranks other than 0.
    """
    videos = [os.fspath(v) for v in videos]
    labels, run = class_names(model), protocol(model, views)

    def result(i: int, logits: torch.Tensor | None, error: str | None) -> dict[str, Any]:
        if error is not None:
            return {"video": videos[i], "error": error}
        return {"video": videos[i], "predictions": top_classes(logits.softmax(-1), labels, topk), "protocol": run}

    def report(i: int, logits: torch.Tensor | None, error: str | None) -> None:
        on_result(result(i, logits, error))

    progress = "predict" if progress else None
    outcomes = _logits_of_videos(
        model, videos, views, batch_size, num_workers, progress, amp, frame_counts, report if on_result else None
    )
    if outcomes is None:
        return None
    return [result(i, logits, error) for i, (logits, error) in enumerate(outcomes)]

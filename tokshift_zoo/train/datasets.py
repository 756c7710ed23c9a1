"""Video lists and the clip dataset of training and evaluation.

Three list formats are read, told apart by their content:

- mmaction2 video lists: ``path label`` per line (the path may hold spaces; the label is the last field);
- CSV with a header line naming ``path`` and ``label`` columns (other columns are ignored);
- the TokShift authors' frame-folder lists: ``dir num_frames label`` per line, each ``dir`` holding
  ``img_00001.jpg``, ``img_00002.jpg``, ... (a list is read as one when every line has an integer second-last
  field).

A label is a class index or a class name; names map through a class list (the model's
``pretrained_cfg['label_names']``, a labels file, or ``class_names_from_lists`` for a new task). Blank lines and
lines starting with ``#`` are skipped. Every problem of a list (a missing file, an unknown name, an index outside
the class range, a malformed line) is collected and reported together, each with its file and line number,
before any training starts.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..errors import ConfigError
from ..video import (
    ClipSpec,
    VideoReadError,
    VideoTrainTransform,
    create_transform,
    crop_size,
    decode_frame_folder,
    decode_frames,
    dense_indices,
    frame_indices,
    read_video_info,
    train_short_side,
)

__all__ = [
    "VideoSample",
    "VideoListError",
    "read_video_list",
    "read_label_names",
    "class_names_from_lists",
    "labels_unseen_in_training",
    "VideoClipDataset",
    "SkippedVideo",
    "collate_skipping",
]

_logger = logging.getLogger(__name__)

_MAX_REPORTED = 20  # problems listed in one error; the rest are counted


class VideoListError(ConfigError):
    """A video list that cannot be trained on; the message names every bad line (``file:line: problem``)."""


@dataclass(frozen=True)
class VideoSample:
    """One line of a video list.

    Attributes:
        path: the video file, or the folder of ``img_00001.jpg``... frames.
        label: class index in ``[0, num_classes)``.
        num_frames: frame folders only: the frame count the list gives; ``None`` for video files.
        source: ``list_file:line``, for messages.
    """

    path: Path
    label: int
    num_frames: int | None = None
    source: str = ""


@dataclass(frozen=True)
class _Row:
    line: int
    path: str
    label: str
    num_frames: int | None
    csv: bool = False


def _is_index(token: str) -> bool:
    return token.lstrip("-").isdigit()


def _parse_rows(list_file: Path) -> list[_Row]:
    """A list file's lines, its format recognised from the content; labels left as text."""
    if not list_file.is_file():
        raise VideoListError(f"no video list at {list_file}")
    lines = [
        (number, text.strip())
        for number, text in enumerate(_read_text(list_file, VideoListError).splitlines(), start=1)
        if text.strip() and not text.lstrip().startswith("#")
    ]
    if not lines:
        raise VideoListError(f"{list_file}: the list has no entries")
    header = [field.strip().lower() for field in next(csv.reader([lines[0][1]]))]
    if "path" in header and "label" in header:
        path_col, label_col = header.index("path"), header.index("label")
        rows, problems = [], []
        for number, text in lines[1:]:
            fields = next(csv.reader([text]))
            if len(fields) != len(header):
                problems.append(f"{list_file}:{number}: expected {len(header)} CSV fields, found {len(fields)}")
                continue
            rows.append(_Row(number, fields[path_col].strip(), fields[label_col].strip(), None, csv=True))
        _raise_if(problems)
        return rows
    split = [(number, text.rsplit(maxsplit=2)) for number, text in lines]
    if all(len(parts) == 3 and parts[1].isdigit() for _, parts in split):  # the authors' frame-folder list
        return [_Row(number, parts[0], parts[2], int(parts[1])) for number, parts in split]
    rows, problems = [], []
    for number, text in lines:
        parts = text.rsplit(maxsplit=1)
        if len(parts) != 2:
            csv_like = number == lines[0][0] and "," in text  # a CSV whose header does not name its columns
            hint = " (a CSV list starts with the header line 'path,label')" if csv_like else ""
            problems.append(f"{list_file}:{number}: expected 'path label', found {text!r}{hint}")
            continue
        rows.append(_Row(number, parts[0], parts[1], None))
    _raise_if(problems)
    return rows


def _read_text(path: Path, error: type[Exception]) -> str:
    """A list file's text, UTF-8 with or without a BOM; any other encoding is refused naming the first byte that
    is not UTF-8 (its line and offset), instead of guessing."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        start = err.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)  # offsets count after the BOM
        line = data.count(b"\n", 0, start) + 1
        raise error(
            f"{path}:{line}: expected UTF-8 text, found byte 0x{data[start]:02x} at offset {start} that is not "
            "UTF-8 (a Latin-1 or Windows code page file?): save the file as UTF-8"
        ) from None


def _raise_if(problems: list[str]) -> None:
    if problems:
        more = len(problems) - _MAX_REPORTED
        text = "\n".join(problems[:_MAX_REPORTED]) + (f"\n... and {more} more" if more > 0 else "")
        raise VideoListError(f"{len(problems)} bad line(s) in the video list:\n{text}")


def read_label_names(path: str | os.PathLike) -> list[str]:
    """Class names from a text file, one per line in class-index order (blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no labels file at {path}")
    names = [line.strip() for line in _read_text(path, ConfigError).splitlines() if line.strip()]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: class names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    return names


def _list_labels(list_file: str | os.PathLike) -> set[str]:
    return {row.label for row in _parse_rows(Path(list_file))}


def class_names_from_lists(*list_files: str | os.PathLike) -> list[str] | None:
    """The sorted class names the lists use, for a new task; ``None`` when every label is a class index.

    Raises:
        VideoListError: the lists mix class indices and class names (say which list uses which).
    """
    labels = {Path(f): _list_labels(f) for f in list_files}
    tokens = set().union(*labels.values())
    if all(_is_index(token) for token in tokens):
        return None
    if any(_is_index(token) for token in tokens):
        kinds = []
        for list_file, found in labels.items():
            indices = sorted(t for t in found if _is_index(t))[:3]
            names = sorted(t for t in found if not _is_index(t))[:3]
            kinds += [f"{list_file} has indices {indices}"] if indices else []
            kinds += [f"{list_file} has names {names}"] if names else []
        raise VideoListError(
            f"the lists mix class indices and class names ({'; '.join(kinds)}): use one kind in every list, or "
            "give the class names in index order (--labels FILE) so that names and indices mean the same classes"
        )
    return sorted(tokens)


def labels_unseen_in_training(train_list: str | os.PathLike, val_list: str | os.PathLike) -> list[str]:
    """The labels (names or indices, as written) of ``val_list`` that no line of ``train_list`` has, sorted."""
    return sorted(_list_labels(val_list) - _list_labels(train_list))


def read_video_list(
    path: str | os.PathLike,
    data_root: str | os.PathLike = "",
    label_names: Sequence[str] | None = None,
    num_classes: int | None = None,
) -> list[VideoSample]:
    """Read and check a video list (any of the three formats).

    Args:
        path: the list file.
        data_root: the folder list paths are relative to (absolute paths in the list are kept).
        label_names: class names in index order; a label equal to one of them maps to its index, any other
            label must be an integer index.
        num_classes: the class count; defaults to ``len(label_names)``. Indices outside ``[0, num_classes)``
            are refused.

    Returns:
        One ``VideoSample`` per entry, in list order.

    Raises:
        VideoListError: naming each line whose file (or frame folder) does not exist, whose label is not a
            known name or is outside the class range, or which cannot be parsed.
    """
    list_file = Path(path)
    root = Path(data_root)
    index_of = {name: i for i, name in enumerate(label_names or ())}
    if num_classes is None and label_names is not None:
        num_classes = len(label_names)
    samples, problems = [], []
    for row in _parse_rows(list_file):
        where = f"{list_file}:{row.line}"
        if row.label in index_of:
            label = index_of[row.label]
        elif _is_index(row.label):
            label = int(row.label)
            if num_classes is not None and not 0 <= label < num_classes:
                problems.append(f"{where}: label {label} is outside the class range [0, {num_classes})")
                continue
        else:
            known = "no class names were given" if not index_of else f"{len(index_of)} class names known"
            problems.append(f"{where}: label {row.label!r} is not a class index or a known class name ({known})")
            continue
        video = root / row.path
        if row.num_frames is not None:
            if not video.is_dir():
                problems.append(f"{where}: no frame folder at {video}")
                continue
            if row.num_frames < 1:
                problems.append(f"{where}: the frame folder {video} is listed with {row.num_frames} frames")
                continue
        elif not video.is_file():
            problems.append(f"{where}: no video file at {video}{_spaces_hint(root, row)}")
            continue
        samples.append(VideoSample(video, label, row.num_frames, where))
    _raise_if(problems)
    return samples


def _spaces_hint(root: Path, row: _Row) -> str:
    """For a missing file of a ``path label`` line with spaces: the likely split, and the CSV format's use."""
    if row.csv or " " not in row.path:
        return ""
    words = row.path.split(" ")
    for cut in range(1, len(words)):
        path = " ".join(words[:cut])
        if (root / path).is_file():
            label = " ".join([*words[cut:], row.label])
            return (
                f" (is the video {path!r} with the label {label!r}? A label with spaces needs the CSV format: a "
                "'path,label' header line, then one 'path,label' line per video)"
            )
    return " (a path or a label with spaces needs the CSV format: a 'path,label' header line, then 'path,label' lines)"


@dataclass(frozen=True)
class SkippedVideo:
    """A sample that could not be read, in place of a clip: collated away, counted and reported."""

    path: str
    reason: str


class VideoClipDataset(Dataset):
    """One clip per video (or several views in evaluation): frames sampled and decoded, then the transform.

    Training draws a random clip position (dense NxS) or random offsets in the segments (uniform) and applies
    the training augmentation (``augment``, ``auto_augment``: see ``VideoTrainTransform``; ``augment="paper"``
    also draws dense clip starts as the authors do); evaluation takes ``views`` = (clips, crops): by default the
    centre clip and the centre crop (the paper's multi-view protocol is the evaluate command's).

    Args:
        samples: from ``read_video_list``.
        data_config: the model's weights record (``model.weights``: input size, clip sampling, normalisation).
        is_training: training sampling and augmentation.
        augment: training: ``"zoo"`` (the model's preset) or ``"paper"`` (the authors' ``Train_ClipAug``).
        auto_augment: training: ``None``, ``"rand"`` or ``"trivial"``, one draw per clip.
        views: evaluation: clips spread over the video x crops per clip (1 or 3).

    Items are ``(clip, label)`` with ``clip`` float (3, T, H, W) normalised ((V, 3, T, H, W) for V =
    clips x crops > 1 views), or a ``SkippedVideo`` when the file cannot be read (use ``collate_skipping``): a bad
    video in a long run is skipped and reported, not a crash.
    """

    def __init__(
        self,
        samples: Sequence[VideoSample],
        data_config: ClipSpec,
        is_training: bool,
        augment: str = "zoo",
        auto_augment: str | None = None,
        views: tuple[int, int] = (1, 1),
    ) -> None:
        self.samples = list(samples)
        self.is_training = is_training
        self.authors_starts = is_training and augment == "paper" and data_config.sampling == "dense"
        if is_training:
            self.data_config = data_config
            self.transform = VideoTrainTransform(
                crop_size(data_config),
                train_short_side(data_config),
                data_config.mean,
                data_config.std,
                data_config.interpolation,
                hflip=data_config.train_hflip,
                augment=augment,
                auto_augment=auto_augment,
            )
        else:
            self.data_config = replace(data_config, test_clips=views[0], test_crops=views[1])
            self.transform = create_transform(self.data_config, is_training=False)

    def __len__(self) -> int:
        return len(self.samples)

    def _indices(self, num_video_frames: int) -> torch.Tensor:
        """(clips, T) frame indices: one random clip in training, the test clips otherwise."""
        config = self.data_config
        if self.authors_starts:
            return dense_indices(
                num_video_frames, config.num_frames, config.frame_stride, training=True, authors_start=True
            )
        return frame_indices(config, num_video_frames, training=self.is_training)

    def _read(self, sample: VideoSample) -> torch.Tensor:
        """Frames (clips, T, H, W, 3) uint8."""
        if sample.num_frames is not None:
            indices = self._indices(sample.num_frames)
            return decode_frame_folder(sample.path, indices.flatten().tolist()).unflatten(0, indices.shape)
        info = read_video_info(sample.path)
        indices = self._indices(info.num_frames)
        return decode_frames(sample.path, indices.flatten(), info).unflatten(0, indices.shape)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | SkippedVideo:
        sample = self.samples[index]
        try:
            frames = self._read(sample)  # (clips, T, H, W, 3) uint8
        except (VideoReadError, OSError) as err:
            _logger.warning("skipping %s (%s): %s", sample.path, sample.source, err)
            return SkippedVideo(str(sample.path), str(err))
        if self.is_training:  # (1, T, H, W, 3) -> (T, 3, H, W) -> (3, T, h, w)
            return self.transform(frames[0].permute(0, 3, 1, 2)), sample.label
        clips = self.transform(frames.permute(0, 1, 4, 2, 3))  # (clips, T, 3, H, W) -> (clips, crops, 3, T, h, w)
        views = clips.flatten(0, 1)  # (V, 3, T, h, w)
        return (views[0] if len(views) == 1 else views), sample.label


def collate_skipping(
    batch: list[tuple[torch.Tensor, int] | SkippedVideo],
) -> tuple[torch.Tensor | None, torch.Tensor | None, list[SkippedVideo]]:
    """Stack the readable items of a batch and set the skipped ones aside.

    Returns:
        clips (B, 3, T, H, W) float and labels (B,) int64 of the readable items (both ``None`` when none was),
        and the ``SkippedVideo`` of the others.
    """
    skipped = [item for item in batch if isinstance(item, SkippedVideo)]
    good = [item for item in batch if not isinstance(item, SkippedVideo)]
    if not good:
        return None, None, skipped
    clips = torch.stack([clip for clip, _ in good])
    labels = torch.tensor([label for _, label in good], dtype=torch.long)
    return clips, labels, skipped

"""Clip embeddings of many videos: pre-logits features in safetensors shards with a JSONL index, resumable.

An output folder holds:

- ``manifest.json``: the model, its tag, the weights' sha256, the preprocessing, the views, the layer, the
  storage dtype and the zoo version; a rerun into the folder must match it;
- ``shards/shard-<run>-r<rank>-<n>.safetensors``: a tensor ``"embeddings"`` (rows, D) or (rows, V, D) with
  ``--per-view``, and in its metadata (``"rows"``, JSON) the index rows of the videos it holds, failed ones
  included. A shard is written to a temporary name and renamed: it is whole or absent, and it alone says which
  videos are done, so a killed run loses at most the shard in progress;
- ``index.jsonl``: one line per video in input order, merged once by rank 0 from the shards at the end of a run:
  ``{"video", "shard", "row", "frames", "views", "error", "size", "mtime_ns"}`` (``frames``: the sampled frame
  indices of each clip; ``shard``/``row`` are null and ``error`` says why for a video that could not be read;
  ``size``/``mtime_ns``: the file's (or frame folder's) ``os.stat`` taken before it was decoded).

Rerunning the same command skips the videos the shards already hold embedded from the file as it is now (same
size and mtime); it embeds again a video that failed (a half-copied file, a MemoryError) and one whose file
changed, and the index keeps each video's newest row. Under torchrun every rank embeds its share of the
remaining videos into its own shards and rank 0 merges; the folder must be on a filesystem every node sees.
Rank 0 holds the folder's lock (``outputs.lock_output``) from the start to the index: a second ``embed`` into
it is refused.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader
from tqdm import tqdm

from .atomic import atomic_write
from .devices import amp_dtype, autocast
from .distributed import (
    broadcast_from_main,
    gather_to_main,
    inference_device,
    process_group,
    ranks,
    share_of_items,
)
from .errors import ConfigError
from .inference import VideoPreprocess, ViewsDataset, is_out_of_memory
from .models.registry import weights_of
from .outputs import lock_output, remove_incomplete, write_output
from .video.sampling import parse_views
from .weights import sha256_file

__all__ = ["embed", "read_embeddings", "clip_embeddings", "find_videos", "VIDEO_EXTENSIONS"]

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp", ".h264"}
)
_FORMAT = "tokshift-zoo embeddings 1"
_STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}
# manifest entries a rerun must agree with (the zoo version may change between runs)
_MUST_MATCH = ("model", "tag", "weights_sha256", "preprocessing", "views", "per_view", "layer", "dtype", "dim")


def find_videos(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """Expand inputs into videos: a file stays as given; a folder of the authors' extracted frames
    (``img_00001.jpg``...) is one video; any other folder gives its video files (by extension) and frame folders,
    searched recursively (a folder's files before its subfolders, each in sorted order). Paths repeated are kept once.
    """
    found: dict[str, None] = {}
    for item in map(os.fspath, inputs):
        if not os.path.isdir(item) or _is_frame_folder(item):
            found[item] = None
            continue
        for root, dirs, files in os.walk(item):
            dirs.sort()
            if _is_frame_folder(root) and root != item:
                found[root] = None
                dirs.clear()
                continue
            for name in sorted(files):
                if Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                    found[os.path.join(root, name)] = None
    return list(found)


def _is_frame_folder(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "img_00001.jpg"))


def clip_embeddings(
    model: nn.Module,
    views: torch.Tensor,
    batch_size: int = 8,
    layer: int | None = None,
    amp: str | torch.dtype | None = None,
) -> torch.Tensor:
    """Embeddings of a video's views: (V, 3, T, H, W) -> (V, D) float32, no gradients.

    Args:
        model: a zoo model in eval mode.
        views: the views of one video (``VideoPreprocess``).
        batch_size: views per forward pass.
        layer: ``None``: the pre-logits embedding, ``forward_head(forward_features(x), pre_logits=True)`` (the
            time-averaged final class token). ``K``: the class token after block ``K`` (0-based; negative counts
            from the end), from ``forward_intermediates(norm=True)``: normalised by the model's final norm and
            averaged over time, so the last block gives the pre-logits embedding.
        amp: autocast dtype (see ``inference.predict_logits``); None runs in the model's dtype.
    """
    device = next(model.parameters()).device
    if layer is not None and not -len(model.blocks) <= layer < len(model.blocks):
        raise ConfigError(f"layer must be a block index in [-{len(model.blocks)}, {len(model.blocks)}), got {layer}")
    with torch.inference_mode(), autocast(device, amp_dtype(amp, device)):
        return torch.cat([_embed_batch(model, batch.to(device), layer).float() for batch in views.split(batch_size)])


def _embed_batch(model: nn.Module, x: torch.Tensor, layer: int | None) -> torch.Tensor:
    if layer is None:
        return model.forward_head(model.forward_features(x), pre_logits=True)
    ((_, prefix),) = model.forward_intermediates(
        x, indices=[layer], norm=True, stop_early=True, output_fmt="NLC", intermediates_only=True,
        return_prefix_tokens=True,
    )  # fmt: skip
    cls = prefix.unflatten(1, (x.shape[2], -1))[:, :, 0]  # prefix tokens (B, T*P, D) -> class tokens (B, T, D)
    return cls.mean(1)  # averaged over time, as forward_head does


def _manifest(
    model: nn.Module,
    name: str | None,
    checkpoint: str | os.PathLike | None,
    views: str,
    per_view: bool,
    layer: int | None,
    dtype: str,
) -> dict[str, Any]:
    from . import __version__

    cfg = model.pretrained_cfg
    report = getattr(model, "load_report", None)
    if checkpoint is None and report is not None and os.path.isfile(report.source):  # a model loaded from a file
        checkpoint = report.source
    if checkpoint is not None:
        sha256 = sha256_file(checkpoint)
    elif report is not None:  # the tag's weights: the sha256 verified when they were loaded
        sha256 = weights_of(model).sha256
    else:  # random weights: nothing to pin
        sha256 = None
    preprocessing = VideoPreprocess(weights_of(model), views).weights.preprocessing()
    manifest = {
        "format": _FORMAT,
        "model": name or cfg.get("architecture"),
        "architecture": cfg.get("architecture"),
        "tag": cfg.get("tag") or None,
        "weights": str(checkpoint) if checkpoint is not None else (report.source if report else None),
        "weights_sha256": sha256,
        "preprocessing": preprocessing,
        "views": views,
        "per_view": per_view,
        "layer": layer,
        "dtype": dtype,
        "dim": model.num_features,
        "zoo_version": __version__,
    }
    return json.loads(json.dumps(manifest))  # tuples -> lists, as read back


def _embedding_shape(manifest: dict[str, Any]) -> tuple[int, ...]:
    """One video's embedding: (D,), or (V, D) with ``per_view``."""
    clips, crops = parse_views(manifest["views"])
    return (clips * crops, manifest["dim"]) if manifest["per_view"] else (manifest["dim"],)


def _shards(output: Path) -> list[Path]:
    return sorted((output / "shards").glob("shard-*.safetensors"))


def _shard_rows(path: Path) -> list[dict[str, Any]]:
    with safe_open(os.fspath(path), framework="pt") as f:
        return json.loads((f.metadata() or {})["rows"])


def _signature(video: str) -> dict[str, int | None]:
    """What tells a changed file from the one embedded: ``os.stat``'s size and mtime (None for a missing file)."""
    try:
        stat = os.stat(video)
    except OSError:
        return {"size": None, "mtime_ns": None}
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _current_rows(output: Path) -> list[dict[str, Any]]:
    """Each video's row that stands, from every shard: of the rows made from the file as it is now, the newest
    embedded one, else the newest failed one; with none made from it, the newest row. Shards sort by run (the
    run name starts with its UTC time), so a later run's rows come later."""
    by_video: dict[str, list[dict[str, Any]]] = {}
    for shard in _shards(output):
        for row in _shard_rows(shard):
            by_video.setdefault(row["video"], []).append(row)
    current = []
    for video, rows in by_video.items():
        now = _signature(video)
        same = [r for r in rows if {k: r.get(k) for k in now} == now and now["size"] is not None]
        embedded = [r for r in same if r["error"] is None]
        current.append((embedded or same or rows)[-1])
    return current


def _is_done(row: dict[str, Any]) -> bool:
    """Whether a video's current row is an embedding of the file as it is now (else it is embedded again)."""
    now = _signature(row["video"])
    return row["error"] is None and now["size"] is not None and {k: row.get(k) for k in now} == now


def _differences(found: dict[str, Any], wanted: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, value found, value wanted) for the ``_MUST_MATCH`` entries that differ, dicts compared per entry."""
    differ = []
    for key in _MUST_MATCH:
        was, now = found.get(key), wanted[key]
        if isinstance(was, dict) and isinstance(now, dict):
            differ += [
                (f"{key}.{k}", was.get(k), now.get(k))
                for k in sorted(was.keys() | now.keys())
                if was.get(k) != now.get(k)
            ]
        elif was != now:
            differ.append((key, was, now))
    return differ


def _prepare_output(output: Path, manifest: dict[str, Any], videos: list[str]) -> list[int]:
    """Rank 0, holding the folder's lock: check or write the manifest, clear temporaries of killed runs; the
    positions still to embed (not embedded yet, failed, or changed since)."""
    path = output / "manifest.json"
    if path.exists():
        found = json.loads(path.read_text(encoding="utf-8"))
        differ = _differences(found, manifest)
        if differ:
            shown = "; ".join(f"{key}: {was!r} there, {now!r} now" for key, was, now in differ)
            raise ConfigError(f"{path}: the folder holds embeddings made differently ({shown}); use another --output")
    else:
        (output / "shards").mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8"))
    (output / "shards").mkdir(exist_ok=True)
    remove_incomplete(output / "shards")  # a killed run's shard in progress
    remove_incomplete(output)  # its manifest or index in progress
    done = {row["video"] for row in _current_rows(output) if _is_done(row)}
    return [i for i, video in enumerate(videos) if video not in done]


class _ShardWriter:
    """Buffers one rank's rows and writes them ``shard_size`` at a time as whole shards."""

    def __init__(
        self, output: Path, run: str, rank: int, shard_size: int, dtype: torch.dtype, shape: Sequence[int]
    ) -> None:
        self.output, self.run, self.rank, self.shard_size = output, run, rank, shard_size
        self.dtype, self.shape = dtype, tuple(shape)  # one video's embedding: (D,) or (V, D)
        self.rows: list[dict[str, Any]] = []
        self.tensors: list[torch.Tensor] = []
        self.written = 0

    def add(self, row: dict[str, Any], embedding: torch.Tensor | None) -> None:
        if embedding is not None:
            row["row"] = len(self.tensors)
            self.tensors.append(embedding.to(self.dtype))
        self.rows.append(row)
        if len(self.rows) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        name = f"shard-{self.run}-r{self.rank:04d}-{self.written:05d}.safetensors"
        for row in self.rows:
            row["shard"] = name if row["row"] is not None else None
        embeddings = torch.stack(self.tensors) if self.tensors else torch.empty(0, *self.shape, dtype=self.dtype)
        metadata = {"format": _FORMAT, "rows": json.dumps(self.rows)}
        write_output(
            self.output / "shards" / name,
            lambda tmp: save_file({"embeddings": embeddings.contiguous()}, os.fspath(tmp), metadata=metadata),
            "rerun the same command once there is room: the shards written are kept",
        )
        self.written += 1
        self.rows, self.tensors = [], []


def _write_index(output: Path, videos: list[str]) -> tuple[int, int]:
    """Rank 0: every shard's rows, in input order (videos of earlier runs not in this list last), to index.jsonl.
    Returns (videos embedded, videos failed)."""
    position = {video: i for i, video in reversed(list(enumerate(videos)))}
    rows = _current_rows(output)
    rows.sort(key=lambda row: position.get(row["video"], len(videos)))
    text = "".join(json.dumps(row) + "\n" for row in rows)
    atomic_write(output / "index.jsonl", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    failed = sum(row["error"] is not None for row in rows)
    return len(rows) - failed, failed


def embed(
    videos: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    model: str | nn.Module | None = None,
    checkpoint: str | os.PathLike | None = None,
    views: str = "1x1",
    per_view: bool = False,
    layer: int | None = None,
    dtype: str = "float32",
    batch_size: int = 8,
    num_workers: int = 0,
    shard_size: int = 256,
    device: str | torch.device = "auto",
    progress: bool = True,
    amp: str | torch.dtype | None = None,
    **model_kwargs: Any,
) -> dict[str, Any] | None:
    """Embed videos into ``output`` (see the module doc for the layout); one process, or any number under torchrun.

    Args:
        videos: video files, frame folders, or folders to search (``find_videos``).
        output: the output folder; a rerun into it skips the videos already embedded.
        model: ``NAME[.TAG]``, ``hf-hub:ORG/REPO``, a loaded model, or ``None`` for the bundled demo model.
        checkpoint: a local weight file for a model given by name (its sha256 goes into the manifest).
        views: ``"CLIPSxCROPS"`` per video.
        per_view: keep each view's embedding, (V, D) per video, instead of their mean (D,).
        layer: take the class token after block ``layer`` instead of the pre-logits (see ``clip_embeddings``).
        dtype: storage dtype, ``"float32"`` or ``"float16"`` (computed in the model's dtype, or ``amp``).
        batch_size: views per forward pass.
        num_workers: data-loader processes (per rank) decoding while the model runs.
        shard_size: videos per shard: what a killed run can lose at most, per rank.
        device: for a model given by name: ``"auto"`` (under torchrun each process takes its local GPU), ``"cpu"``...
        progress: a tqdm bar (rank 0's share).
        amp: autocast dtype for the model (``"auto"``: bf16 on CUDA); None runs in the model's dtype.
        **model_kwargs: ``create_model`` overrides for a model given by name.

    Returns:
        On rank 0: ``{"output", "videos", "embedded", "failed", "skipped", "shape", "seconds",
        "decode_seconds", "model_seconds"}``: ``videos`` in the input, ``embedded``/``failed`` rows of the merged
        index, ``skipped`` videos done by earlier runs, ``shape`` of one video's embedding, and the time spent,
        summed over ranks, waiting for decoded views and in the model. ``None`` on other ranks.
    """
    from .models.registry import DEFAULT_MODEL
    from .ready import load

    if dtype not in _STORAGE_DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(_STORAGE_DTYPES)}, got {dtype!r}")
    if shard_size < 1:
        raise ConfigError(f"shard_size must be >= 1, got {shard_size}")
    videos = find_videos([videos] if isinstance(videos, (str, os.PathLike)) else videos)
    output = Path(output)
    if isinstance(model, nn.Module):
        name, net = None, model
        device = next(model.parameters()).device
    else:
        name = model or (None if checkpoint else DEFAULT_MODEL)
        net = load(name, device=inference_device(device), checkpoint_path=checkpoint, **model_kwargs)
        device = next(net.parameters()).device
    net.eval()
    manifest = _manifest(net, name, checkpoint, views, per_view, layer, dtype)
    with process_group(device) as here, ExitStack() as held:
        plan: tuple[str, Any] = ("error", "")
        if here.is_main:
            try:
                held.enter_context(lock_output(output, "embed"))  # until the index is written
                run = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + uuid.uuid4().hex[:6]  # sorts by time
                plan = ("todo", (_prepare_output(output, manifest, videos), run))
            except (ValueError, OSError) as err:  # in use, a used folder with other settings, an unwritable one
                plan = ("error", err)
        kind, value = broadcast_from_main(plan)
        if kind == "error":
            raise value if isinstance(value, Exception) else ValueError(value)
        todo, run = value
        times = _embed_share(
            net, videos, todo, output, run, manifest, batch_size, num_workers, shard_size, progress, amp
        )
        gathered = gather_to_main(times)  # also waits until every rank has written its last shard
        if gathered is None:
            return None
        embedded, failed = _write_index(output, videos)
    return {
        "output": os.fspath(output),
        "videos": len(videos),
        "embedded": embedded,
        "failed": failed,
        "skipped": len(videos) - len(todo),
        "shape": list(_embedding_shape(manifest)),
        "seconds": max(t["seconds"] for t in gathered),
        "decode_seconds": sum(t["decode_seconds"] for t in gathered),
        "model_seconds": sum(t["model_seconds"] for t in gathered),
    }


def _embed_share(
    model: nn.Module,
    videos: list[str],
    todo: list[int],
    output: Path,
    run: str,
    manifest: dict[str, Any],
    batch_size: int,
    num_workers: int,
    shard_size: int,
    progress: bool,
    amp: str | torch.dtype | None,
) -> dict[str, float]:
    """This rank's share of ``todo`` into its shards; the seconds spent in all, waiting for views, in the model."""
    start = time.perf_counter()
    here = ranks()
    mine = [todo[i] for i in share_of_items([videos[i] for i in todo])]
    dtype = next(model.parameters()).dtype
    preprocess = VideoPreprocess(weights_of(model), manifest["views"], "cpu", dtype)
    signatures = {i: _signature(videos[i]) for i in mine}  # before decoding: a file changed later is redone
    loader = DataLoader(
        ViewsDataset([(i, videos[i]) for i in mine], preprocess), batch_size=None, num_workers=num_workers
    )
    storage = _STORAGE_DTYPES[manifest["dtype"]]
    writer = _ShardWriter(output, run, here.rank, shard_size, storage, _embedding_shape(manifest))
    decode_s = model_s = 0.0
    items = iter(tqdm(loader, desc="embed", unit="video", disable=not (progress and here.is_main)))
    while True:
        tick = time.perf_counter()
        item = next(items, None)
        decode_s += time.perf_counter() - tick
        if item is None:
            break
        position, batch, indices, error = item
        embedding = None
        if error is None:
            tick = time.perf_counter()
            try:
                embedding = clip_embeddings(model, batch, batch_size, manifest["layer"], amp)  # (V, D)
            except (MemoryError, RuntimeError) as err:  # this video's row says so; the others go on
                if not is_out_of_memory(err):
                    raise
                error = f"{videos[position]}: out of memory in the model for its {len(batch)} views ({err})"
            else:
                embedding = embedding if manifest["per_view"] else embedding.mean(0)
            model_s += time.perf_counter() - tick
        del batch
        row = {"video": videos[position], "shard": None, "row": None, "views": manifest["views"], "error": error}
        row["frames"] = None if indices is None else indices.tolist()
        row.update(signatures[position])
        writer.add(row, embedding)
    writer.flush()
    return {"seconds": time.perf_counter() - start, "decode_seconds": decode_s, "model_seconds": model_s}


def read_embeddings(folder: str | os.PathLike) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Load what ``embed`` wrote.

    Returns:
        ``(embeddings, index)``: a (N, D) tensor, (N, V, D) for a ``per_view`` run, in the stored dtype, and the
        N index rows of the videos embedded, in input order, each a dict with ``"video"`` (the path as given),
        ``"shard"``, ``"row"``, ``"frames"``, ``"views"``. Videos that could not be read are not among the N; their
        rows, with ``"error"``, are in ``index.jsonl``.

    Raises:
        FileNotFoundError: no embedding run in ``folder``, or its run has not finished (no ``index.jsonl``).
    """
    folder = Path(folder)
    manifest_path, index_path = folder / "manifest.json", folder / "index.jsonl"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{folder}: expected an embed output folder with manifest.json; none found")
    if not index_path.is_file():
        raise FileNotFoundError(
            f"{index_path}: not found: the embed run into {folder} has not finished; rerun the same command"
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in index_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [row for row in rows if row.get("error") is None]
    by_shard: dict[str, torch.Tensor] = {}
    for shard in sorted({row["shard"] for row in rows}):
        with safe_open(os.fspath(folder / "shards" / shard), framework="pt") as f:
            by_shard[shard] = f.get_tensor("embeddings")
    if rows:
        embeddings = torch.stack([by_shard[row["shard"]][row["row"]] for row in rows])
    else:
        embeddings = torch.empty(0, *_embedding_shape(manifest), dtype=_STORAGE_DTYPES[manifest["dtype"]])
    return embeddings, rows

"""What predict, evaluate, embed and train share under torchrun: ranks, a balanced share of the videos, one merge.

One process is the default and needs nothing from here: every function degrades to the single-process case.
Under ``torchrun --nproc-per-node N [--nnodes M ...]`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``):

- ``process_group(device)`` starts the process group (NCCL on CUDA, gloo on CPU) for the length of a command, and
  ``inference_device`` gives each process the GPU of its local rank;
- ``share_of_items`` gives each rank its part of a video list, balanced by cost (file size: a proxy for a video's
  length that needs no decoding), decided once on rank 0 and sent to all, so every rank agrees;
- ``gather_to_main`` brings every rank's results to rank 0, which merges them exactly once.

A rank that dies makes torchrun stop the others; nothing is merged, and whatever was written before (embedding
shards) is whole, so rerunning the command completes the job.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from .devices import resolve_device

__all__ = [
    "Ranks",
    "ranks",
    "inference_device",
    "process_group",
    "balanced_shards",
    "file_cost",
    "share_of_items",
    "gather_to_main",
    "broadcast_from_main",
    "barrier",
]

T = TypeVar("T")

# Ranks wait for the slowest one at the merge; a balanced share keeps that short, but on a million videos a few
# minutes' difference is normal, so the wait is allowed more than torch's default (10 min NCCL, 30 min gloo).
MERGE_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class Ranks:
    """This process's place among those torchrun started: global rank, world size, rank on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on rank 0: the process that merges, writes the merged files and prints."""
        return self.rank == 0


def ranks() -> Ranks:
    """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (set by torchrun); ``Ranks()`` when they are absent."""
    return Ranks(
        rank=int(os.environ.get("RANK", "0")),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def inference_device(device: str | torch.device = "auto") -> torch.device:
    """The device this process should use (``devices.resolve_device``): under torchrun ``"auto"`` (on a machine
    with CUDA) and ``"cuda"`` become ``cuda:LOCAL_RANK``, so each process of a node takes its own GPU."""
    here = ranks()
    return resolve_device(device, local_rank=here.local_rank if here.world_size > 1 else None)


@contextmanager
def process_group(device: str | torch.device = "cpu") -> Iterator[Ranks]:
    """Start the process group under torchrun for the ``with`` block (and end it after); a no-op otherwise.

    Args:
        device: the device the model runs on; CUDA picks NCCL (and sets the current device), else gloo.
    """
    here = ranks()
    created = False
    if here.world_size > 1 and not dist.is_initialized():
        device = torch.device(device if str(device) != "auto" else "cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=MERGE_TIMEOUT)
        created = True
    try:
        yield here
    finally:
        if created:
            dist.destroy_process_group()


def balanced_shards(costs: Sequence[float], world_size: int) -> list[list[int]]:
    """Split items into ``world_size`` shards of nearly equal total cost (greedy: costliest item first, each to
    the shard with the least so far; ties to the lower rank).

    Args:
        costs: one non-negative cost per item (e.g. its file size).
        world_size: number of shards.

    Returns:
        ``world_size`` lists of item indices, each sorted ascending; together they hold every index once.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    loads = [(0.0, rank) for rank in range(world_size)]  # a heap of (total cost, rank)
    shards: list[list[int]] = [[] for _ in range(world_size)]
    for index in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        load, rank = heapq.heappop(loads)
        shards[rank].append(index)
        heapq.heappush(loads, (load + costs[index], rank))
    return [sorted(shard) for shard in shards]


def file_cost(path: str | os.PathLike) -> float:
    """A video's cost for ``balanced_shards`` without decoding it: its size in bytes, the number of files of a
    frame folder, 0 for a missing path (it fails fast wherever it lands)."""
    try:
        if os.path.isdir(path):
            return float(len(os.listdir(path)))
        return float(os.path.getsize(path))
    except OSError:
        return 0.0


def broadcast_from_main(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (picklable); ``obj`` itself in a single process."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def share_of_items(items: Sequence[T], cost: Callable[[T], float] = file_cost) -> list[int]:
    """The indices into ``items`` this rank processes: all of them in a single process, else this rank's shard of
    ``balanced_shards`` over ``cost(item)``, computed on rank 0 only (one ``stat`` per file) and broadcast."""
    if not dist.is_initialized():
        return list(range(len(items)))
    shards = None
    if dist.get_rank() == 0:
        shards = balanced_shards([cost(item) for item in items], dist.get_world_size())
    return broadcast_from_main(shards)[dist.get_rank()]


def gather_to_main(obj: T) -> list[T] | None:
    """Every rank's ``obj`` (picklable), by rank, on rank 0; ``None`` on the other ranks; ``[obj]`` in a single
    process."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def barrier() -> None:
    """Wait for every rank (a no-op in a single process)."""
    if dist.is_initialized():
        dist.barrier()

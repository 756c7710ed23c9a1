"""Distributed helpers in a single process (two processes under torchrun: ``test_trainer.py``)."""

from __future__ import annotations

import pytest
import torch

from tokshift_zoo.train.distributed import (
    all_gather_objects,
    all_reduce_sum,
    barrier,
    cleanup_distributed,
    init_distributed,
)


def test_single_process_without_torchrun_env(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = init_distributed("cpu")
    assert (info.rank, info.world_size, info.is_main, info.distributed) == (0, 1, True, False)
    assert info.device == torch.device("cpu")
    values = torch.tensor([1.0, 2.0])
    total = all_reduce_sum(values)
    assert torch.equal(total, values) and total is not values
    assert all_gather_objects({"a": 1}) == [{"a": 1}]
    barrier()
    cleanup_distributed()


def test_unknown_or_missing_device_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"):
        init_distributed("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="cuda:0 was asked for, but this machine has 0 CUDA device"):
        init_distributed("cuda")

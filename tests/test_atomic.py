"""Whole files or none, with the mode the user's umask gives (not the writer's private 0600)."""

from __future__ import annotations

import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from tokshift_zoo.atomic import atomic_write


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_files_get_the_umask_mode_not_the_temporary_files(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = atomic_write(tmp_path / "w.safetensors", lambda tmp: save_file({"a": torch.zeros(2)}, str(tmp)))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # safetensors creates its file 0600
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_a_failed_write_leaves_nothing(tmp_path):
    def fail(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "w.bin", fail)
    assert list(tmp_path.iterdir()) == []

"""Whole files or none, with the mode the user's umask gives (not the writer's private 0600), from an unpredictable
temporary name; killed writers' leftovers swept; a full disk is a one-line error."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import time

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


def test_a_link_planted_at_the_old_predictable_name_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    victim.chmod(0o600)
    target = tmp_path / "w.bin"
    # earlier versions wrote `.STEM.PID.incomplete.EXT`: a link planted there overwrote and re-moded its target
    (tmp_path / f".w.{os.getpid()}.incomplete.bin").symlink_to(victim)
    names = []

    def write(tmp):
        names.append(tmp.name)
        assert not tmp.is_symlink() and tmp.stat().st_size == 0  # made with O_EXCL by this process
        tmp.write_bytes(b"new")

    atomic_write(target, write)
    atomic_write(target, write)
    assert victim.read_text() == "keep me" and stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert target.read_bytes() == b"new"
    assert names[0] != names[1] and all(n.startswith(".w.") and n.endswith(".incomplete.bin") for n in names)


def test_stale_incomplete_files_of_killed_writers_are_removed_fresh_ones_and_links_kept(tmp_path):
    from tokshift_zoo import atomic

    old = time.time() - 2 * atomic.STALE_AFTER_S
    stale = [tmp_path / ".checkpoint-epoch001.k2j4x9.incomplete.pt", tmp_path / ".best.4242.incomplete.safetensors"]
    fresh = tmp_path / ".checkpoint-epoch002.a8d0q1.incomplete.pt"  # a live writer's, still being written
    for path in [*stale, fresh]:
        path.write_bytes(b"partial")
    for path in stale:
        os.utime(path, (old, old))
    link = tmp_path / ".other.1.incomplete.pt"
    link.symlink_to(tmp_path / "elsewhere")
    os.utime(link, (old, old), follow_symlinks=False)
    kept_by_user = tmp_path / "notes.incomplete.txt"  # not a hidden temporary name
    kept_by_user.write_text("mine")
    os.utime(kept_by_user, (old, old))

    atomic_write(tmp_path / "checkpoint-epoch003.pt", lambda tmp: torch.save({"a": torch.zeros(1)}, tmp))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [fresh.name, link.name, kept_by_user.name, "checkpoint-epoch003.pt"]
    )


@pytest.fixture
def full_disk(tmp_path):
    """A real 1 MiB tmpfs (needs root and a kernel that lets this process mount); skipped, with the reason, where
    mounting is refused."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 1 MiB tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs was refused: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)  # torch may still hold its file open


@pytest.mark.parametrize(
    "writer",
    [
        pytest.param(lambda tmp: save_file({"a": torch.zeros(1 << 19)}, str(tmp)), id="safetensors"),  # 2 MiB
        pytest.param(lambda tmp: torch.save({"a": torch.zeros(1 << 19)}, tmp), id="torch.save"),
        pytest.param(lambda tmp: tmp.write_bytes(bytes(2 << 20)), id="plain write"),
    ],
)
def test_a_full_disk_is_one_line_error_naming_the_file_and_leaves_nothing(full_disk, writer):
    from tokshift_zoo import WriteError

    target = full_disk / "weights.bin"
    with pytest.raises(WriteError, match=r"weights.bin: the disk is full \(\d+ bytes free") as err:
        atomic_write(target, writer)
    assert isinstance(err.value, OSError) and err.value.errno == errno.ENOSPC and "\n" not in str(err.value)
    assert list(full_disk.iterdir()) == []


def test_a_run_folders_failed_write_is_a_write_error_too(full_disk):
    from tokshift_zoo import WriteError
    from tokshift_zoo.outputs import OutputWriteError, write_output

    with pytest.raises(WriteError, match=r"could not write .*best.safetensors: .*the disk is full.*; resume") as err:
        write_output(full_disk / "best.safetensors", lambda tmp: tmp.write_bytes(bytes(2 << 20)), "resume")
    assert isinstance(err.value, OutputWriteError) and isinstance(err.value, OSError)
    assert list(full_disk.iterdir()) == []

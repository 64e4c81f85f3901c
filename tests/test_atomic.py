"""Atomic writes leave either the old file or the complete new one, never a partial one."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import numpy as np
import pytest

from hmu_core import atomic
from hmu_core.errors import ConfigError


def test_write_text_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.txt"
    atomic.write_text(target, "old")
    with pytest.raises(RuntimeError), atomic.atomic_open(target, "w") as handle:
        handle.write("partial")
        raise RuntimeError("crash half way")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"], "temporary file left behind"


def test_save_npy_round_trip_without_pickle(tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    atomic.save_npy(tmp_path / "x.npy", array)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy", allow_pickle=False), array)


def test_atomic_directory_all_or_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(ValueError), atomic.atomic_directory(target) as tmp:
        (tmp / "half.txt").write_text("x")
        raise ValueError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []

    with atomic.atomic_directory(target) as tmp:
        (tmp / "done.txt").write_text("x")
    assert (target / "done.txt").read_text() == "x"

    with pytest.raises(FileExistsError), atomic.atomic_directory(target):
        pass
    with atomic.atomic_directory(target, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == [atomic.MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_written_files_get_default_permissions(tmp_path):
    atomic.write_text(tmp_path / "f.txt", "x")
    with atomic.atomic_directory(tmp_path / "d") as tmp:
        (tmp / "g.txt").write_text("y")
    mask = atomic._current_umask()
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~mask


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_overwrite_replaces_only_what_hmu_wrote(tmp_path):
    """--overwrite must never delete a user's file or an unrelated directory."""
    regular = tmp_path / "notes.txt"
    regular.write_text("mine")
    with pytest.raises(ConfigError, match="is a file"), \
            atomic.atomic_directory(regular, overwrite=True):
        pass
    assert regular.read_text() == "mine"

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"jpeg")
    with pytest.raises(ConfigError, match="not written by hmu"), \
            atomic.atomic_directory(foreign, overwrite=True):
        pass
    assert (foreign / "cat.jpg").read_bytes() == b"jpeg"

    link = tmp_path / "link"
    link.symlink_to(foreign, target_is_directory=True)
    with pytest.raises(ConfigError, match="is a file"), \
            atomic.atomic_directory(link, overwrite=True):
        pass
    assert link.is_symlink() and (foreign / "cat.jpg").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic.atomic_directory(empty, overwrite=True) as tmp:
        (tmp / "a.txt").write_text("a")
    assert (empty / atomic.MARKER).is_file()
    with atomic.atomic_directory(empty, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("b")
    assert sorted(p.name for p in empty.iterdir()) == [atomic.MARKER, "b.txt"]


def test_temporary_names_carry_the_pid_and_dead_ones_are_swept(tmp_path):
    """What a kill -9 leaves (a temporary directory or file of a dead pid) is removed by the
    next write beside it; a live writer's temporary files are kept."""
    dead = _dead_pid()
    stale_dir = tmp_path / f".data.hmu-{dead}-abcd.tmp"
    (stale_dir / "texts").mkdir(parents=True)
    (stale_dir / "texts" / "000001.txt").write_text("x")
    stale_file = tmp_path / f".clip.bvh.hmu-{dead}-x1y2.tmp"
    stale_file.write_text("half")
    stale_old = tmp_path / f".out.hmu-{dead}-old"
    stale_old.mkdir()
    live = tmp_path / f".other.hmu-{os.getpid()}-live.tmp"
    live.mkdir()
    unrelated = tmp_path / ".config"
    unrelated.mkdir()
    with atomic.atomic_directory(tmp_path / "out") as tmp:
        assert tmp.name.startswith(f".out.hmu-{os.getpid()}-")
        (tmp / "f.txt").write_text("x")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([".config", live.name, "out"])


def test_sweep_stale_ignores_names_without_a_pid(tmp_path):
    for name in (".x.hmu-.tmp", ".x.hmu-abc-1.tmp", "x.hmu-1-a.tmp", ".hmu-output"):
        (tmp_path / name).write_text("keep")
    assert atomic.sweep_stale(tmp_path) == []
    assert len(list(tmp_path.iterdir())) == 4
    assert atomic.sweep_stale(tmp_path / "missing") == []


@pytest.mark.parametrize("errno_code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT])
def test_os_errors_name_the_target_and_leave_nothing(tmp_path, monkeypatch, errno_code):
    """A full or read-only disk fails with the final path in the error, never a hidden
    temporary name, and no temporary file stays behind."""
    target = tmp_path / "clip.bvh"

    def failing_replace(src, dst):
        raise OSError(errno_code, os.strerror(errno_code), str(src))

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError) as info:
        atomic.write_text(target, "data")
    assert info.value.errno == errno_code
    assert info.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError) as info, atomic.atomic_directory(tmp_path / "d") as tmp:
        (tmp / "x").write_text("x")
    assert info.value.filename == str(tmp_path / "d")
    assert list(tmp_path.iterdir()) == []


def test_scratch_dir_carries_the_pid_and_sweeps(tmp_path):
    stale = tmp_path / f".train.hmu-{_dead_pid()}-old.tmp"
    (stale / "trans").mkdir(parents=True)
    scratch = atomic.scratch_dir(tmp_path, "train")
    assert scratch.is_dir() and scratch.name.startswith(f".train.hmu-{os.getpid()}-")
    assert [p.name for p in tmp_path.iterdir()] == [scratch.name]

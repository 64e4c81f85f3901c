"""Atomic writes leave either the old file or the complete new one, never a partial one."""

from __future__ import annotations

import numpy as np
import pytest

from hmu_core import atomic


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
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_written_files_get_default_permissions(tmp_path):
    atomic.write_text(tmp_path / "f.txt", "x")
    with atomic.atomic_directory(tmp_path / "d") as tmp:
        (tmp / "g.txt").write_text("y")
    mask = atomic._current_umask()
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~mask

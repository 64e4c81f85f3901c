"""Atomic file and directory writes: write to a temporary sibling, then rename.

A crash or Ctrl-C half way through never leaves a truncated file under the final name, and an
existing file is replaced only once the new one is complete. Temporary names carry the writer's
pid (``.NAME.hmu-PID-XXXX.tmp``) so that what a ``kill -9`` leaves behind is recognised and
removed by the next run writing beside it (:func:`sweep_stale`). Every directory written with
:func:`atomic_directory` holds a marker file (:data:`MARKER`): ``overwrite`` replaces only such
directories (or empty ones), never a regular file or a directory hmu did not write. Torch-free.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from hmu_core.errors import ConfigError

MARKER = ".hmu-output"
"""File that :func:`atomic_directory` leaves in every directory it writes."""

_TEMP_NAME = re.compile(r"^\..+\.hmu-(\d+)-[^/]*$")
"""Temporary and moved-aside names: ``.NAME.hmu-PID-...`` (PID: the process that wrote it)."""


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.hmu-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid > 0
    return True


def sweep_stale(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporary files and directories that killed hmu runs left in ``directory``.

    Only names of the form ``.NAME.hmu-PID-...`` whose PID no longer runs are removed: a live
    writer (this process included) keeps its temporary files. Returns what was removed;
    entries that cannot be removed are left for a later run.
    """
    root = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


def check_replaceable(path: str | os.PathLike) -> None:
    """Raise unless ``path`` is absent, an empty directory, or a directory hmu wrote.

    Raises:
        ConfigError: ``path`` is a file (or a link, a device, ...) or a non-empty directory
            without hmu's marker: ``--overwrite`` must never delete what hmu did not write.
    """
    target = Path(path)
    if not os.path.lexists(target):
        return
    if target.is_symlink() or not target.is_dir():
        raise ConfigError(f"{target} is a file, not a directory hmu wrote; refusing to replace "
                          "it: choose another --out")
    if (target / MARKER).is_file() or not any(target.iterdir()):
        return
    raise ConfigError(f"{target} was not written by hmu (no {MARKER} marker); refusing to "
                      "replace it: choose another --out or remove it yourself")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on clean exit fsync it and rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp",
                                        dir=target.parent)
    except OSError as exc:
        raise _naming(exc, target.parent, target) from exc
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp_name, 0o666 & ~_current_umask())
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise _naming(exc, tmp_name, target) from exc
        raise


def _naming(exc: OSError, temporary: str | os.PathLike, target: Path) -> OSError:
    """``exc`` with the final path instead of a temporary one, so that the user reads
    ``cannot write runs/x.bvh: No space left on device`` and not a hidden temporary name."""
    name = "" if exc.filename is None else str(exc.filename)
    if name and not name.startswith(str(temporary)):
        return exc  # about another path (an input, a parent directory): keep its name
    return type(exc)(exc.errno, exc.strerror, str(target)) if exc.errno else exc


def _current_umask() -> int:
    """The process umask (reading it requires setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON (stable across runs) atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` in ``.npy`` format (never pickled), made in memory: ``np.save`` straight into a
    file writes through numpy's ``tofile``, which turns a Ctrl-C during the write into a
    ``TypeError`` (a traceback instead of exit 130)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save one array in ``.npy`` format atomically (never pickled)."""
    write_bytes(path, npy_bytes(array))


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Save named arrays in ``.npz`` format atomically (never pickled)."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    write_bytes(path, buffer.getvalue())


def scratch_dir(parent: str | os.PathLike, name: str) -> Path:
    """A new scratch directory ``parent/.NAME.hmu-PID-XXXX.tmp`` (the caller removes it) after
    sweeping what killed runs left in ``parent``: a ``kill -9`` cannot leave it forever."""
    root = Path(parent)
    root.mkdir(parents=True, exist_ok=True)
    sweep_stale(root)
    return Path(tempfile.mkdtemp(prefix=f".{name}.hmu-{os.getpid()}-", suffix=".tmp",
                                 dir=root))


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``path`` that becomes ``path`` on clean exit.

    With ``overwrite`` an existing ``path`` is replaced (moved aside first, removed after the
    rename) if :func:`check_replaceable` allows it; without it an existing ``path`` raises
    ``FileExistsError`` before anything is written. The finished directory gets the
    :data:`MARKER` file. On an exception the temporary directory is removed; what a killed run
    leaves is removed by the next one here (:func:`sweep_stale` of the parent).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ConfigError: ``overwrite`` but ``path`` is not something hmu may replace.
    """
    target = Path(path)
    if os.path.lexists(target) and not overwrite:
        raise FileExistsError(f"{target} already exists")
    check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target.parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".tmp",
                                    dir=target.parent))
    except OSError as exc:
        raise _naming(exc, target.parent, target) from exc
    os.chmod(tmp, 0o777 & ~_current_umask())  # mkdtemp creates 0700 directories
    try:
        yield tmp
        (tmp / MARKER).write_text(json.dumps({"written_by": "hmu"}) + "\n", encoding="utf-8")
        old = None
        if os.path.lexists(target):
            old = target.with_name(f"{_temp_prefix(target)}old")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _naming(exc, tmp, target) from exc
        raise

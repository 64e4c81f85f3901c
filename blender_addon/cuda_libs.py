"""Load the user's CUDA and cuDNN libraries before onnxruntime-gpu opens a CUDA session.

The GPU build of the add-on bundles onnxruntime-gpu but not CUDA (gigabytes). The runtime
calls ``onnxruntime.preload_dlls()``, which finds a system install (loader paths) and nvidia-*
wheels installed next to onnxruntime; Blender's Python has neither, so a user can point the
preferences at a folder: a CUDA/cuDNN ``lib`` (``bin`` on Windows) folder, or a
``pip install --target`` folder holding the ``nvidia/*/lib`` trees of the nvidia-* wheels.
Loading them first lets onnxruntime's own ``dlopen`` by name find them already loaded.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from pathlib import Path

from hmu_core.errors import ConfigError

log = logging.getLogger(__name__)

_WINDOWS = sys.platform == "win32"


def library_dirs(folder: str | Path) -> list[Path]:
    """``folder`` itself plus every ``nvidia/<package>/lib`` (``bin`` on Windows) in it."""
    root = Path(folder)
    sub = "bin" if _WINDOWS else "lib"
    return [root, *sorted(p for p in root.glob(f"nvidia/*/{sub}") if p.is_dir())]


def _libraries(directory: Path) -> list[Path]:
    pattern = "*.dll" if _WINDOWS else "*.so*"
    return sorted(p for p in directory.glob(pattern) if p.is_file())


def preload(folder: str | Path) -> list[str]:
    """Load every CUDA/cuDNN library under ``folder``; returns the names that loaded.

    Libraries depend on each other (cuDNN on cuBLAS, ...), so failures are retried until a
    pass loads nothing new. Libraries that never load are logged, not raised: whether CUDA
    works is decided by the session's real provider afterwards, with a visible message.

    Raises:
        ConfigError: ``folder`` is not a directory.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"CUDA library folder {folder} does not exist; fix or clear it in "
                          f"the hmu preferences")
    dirs = library_dirs(root)
    if _WINDOWS:
        for d in dirs:
            os.add_dll_directory(str(d))
    pending = [p for d in dirs for p in _libraries(d)]
    loaded: list[str] = []
    errors: dict[str, str] = {}
    while pending:
        failed = []
        for path in pending:
            try:
                ctypes.CDLL(str(path))
                loaded.append(path.name)
            except OSError as exc:
                failed.append(path)
                errors[path.name] = str(exc)
        if len(failed) == len(pending):
            break
        pending = failed
    for path in pending:
        log.info("hmu: could not load %s: %s", path.name, errors[path.name])
    return loaded

"""One loaded ``Generator`` per (bundle, device, threads), shared by every operator.

Loading a bundle hashes every file and opens one onnxruntime session per stage (about a
second for the tiny model, more for official sizes), so repeated Generate clicks reuse it.
No bpy here: the worker thread calls :func:`get_generator`, and the cache is keyed on the
manifest's mtime so a re-exported bundle is picked up. ``last_session`` remembers which
provider the latest session really got, for the preferences and the Model subpanel.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hmu_core.errors import BundleError

MANIFEST = "manifest.json"
MAX_LOADED = 2
"""Two: the evaluation render runs an original and an unlearned bundle side by side."""


@dataclass(frozen=True)
class SessionInfo:
    """What a loaded bundle really runs on (``provider``) and why not CUDA (``reason``)."""

    bundle: str
    device: str
    provider: str
    reason: str


_lock = threading.Lock()
_cache: dict[tuple[str, str, int | None, float], Any] = {}
last_session: SessionInfo | None = None


def bundle_hash(bundle: str | Path) -> str:
    """sha256 of the bundle's ``manifest.json`` (which holds the sha256 of every other file),
    so it names the exact model that made a clip; ``BundleError`` if there is no manifest."""
    path = Path(bundle) / MANIFEST
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise BundleError(f"{bundle}: cannot read {MANIFEST} ({exc.strerror}); choose a bundle "
                          f"directory made by 'hmu export'") from None


def _key(bundle: str | Path, device: str, threads: int | None) -> tuple:
    path = Path(bundle).resolve()
    try:
        mtime = (path / MANIFEST).stat().st_mtime
    except OSError:
        mtime = -1.0
    return (str(path), device, threads, mtime)


def get_generator(bundle: str | Path, device: str = "auto", threads: int | None = None) -> Any:
    """The cached ``Generator`` for these settings, loading it on first use.

    Raises:
        HmuError: the bundle is missing or broken, or the device/threads are invalid.
    """
    global last_session
    from exporter.runtime import Generator

    key = _key(bundle, device, threads)
    with _lock:
        gen = _cache.get(key)
        if gen is None:
            if not Path(bundle).is_dir():
                raise BundleError(f"bundle {bundle!s} is not a directory; set the bundle path "
                                  f"in the hmu preferences to a directory made by 'hmu export'")
            gen = Generator(bundle, device=device, threads=threads)
            while len(_cache) >= MAX_LOADED:  # bundles can be hundreds of MB each
                _cache.pop(next(iter(_cache)))
            _cache[key] = gen
        last_session = SessionInfo(str(bundle), device, gen.provider, gen.provider_reason)
        return gen


def clear() -> None:
    """Drop every loaded session (on unregister, or when the user changes device)."""
    global last_session
    with _lock:
        _cache.clear()
        last_session = None

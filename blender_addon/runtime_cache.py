"""One loaded ``Generator`` per (bundle, device, threads), shared by every operator.

Loading a bundle hashes every file and opens one onnxruntime session per stage (about a
second for the tiny model, more for official sizes), so repeated Generate clicks reuse it.
No bpy here: the worker thread calls :func:`get_generator`, and the cache is keyed on the
mtimes of the manifest, the signature and the trusted-keys files, so a re-exported or re-signed
bundle or an edited key list is picked up. The bundle's identity is its digest
(``Generator.digest``, the one ``exporter.runtime.bundle.bundle_digest``); with a
trusted-keys file in the preferences (or ``$HMU_TRUSTED_KEYS``) only bundles signed by those
keys load. ``last_session`` remembers which provider the latest session really got, for the
preferences and the Model subpanel.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.runtime.bundle import MANIFEST
from exporter.runtime.trust import ENV, SIGNATURE
from hmu_core.errors import BundleError

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
_cache: dict[tuple, Any] = {}
last_session: SessionInfo | None = None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


def _key(bundle: str | Path, device: str, threads: int | None,
         trusted_keys: tuple[str, ...]) -> tuple:
    path = Path(bundle).resolve()
    stamps = tuple(_mtime(path / name) for name in (MANIFEST, SIGNATURE))
    keys = tuple((k, _mtime(Path(k))) for k in trusted_keys)
    return (str(path), device, threads, stamps, keys, os.environ.get(ENV, ""))


def get_generator(bundle: str | Path, device: str = "auto", threads: int | None = None,
                  trusted_keys: tuple[str, ...] = ()) -> Any:
    """The cached ``Generator`` for these settings, loading it on first use.

    Args:
        trusted_keys: public-key files (the add-on preference); bundles must be signed by one.
    Raises:
        HmuError: the bundle is missing, broken or not signed by a trusted key, or the
            device/threads are invalid.
    """
    global last_session
    from exporter.runtime import Generator

    key = _key(bundle, device, threads, trusted_keys)
    with _lock:
        gen = _cache.get(key)
        if gen is None:
            if not Path(bundle).is_dir():
                raise BundleError(f"bundle {bundle!s} is not a directory; set the bundle path "
                                  f"in the hmu preferences to a directory made by 'hmu export'")
            gen = Generator(bundle, device=device, threads=threads, trusted_keys=trusted_keys)
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

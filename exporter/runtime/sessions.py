"""onnxruntime sessions with an honest provider choice (runtime.md §1).

``get_available_providers()`` lists CUDA on onnxruntime-gpu even with no GPU or CUDA
libraries, and a session asked for CUDA silently falls back to CPU. So the decision is made on
what a created session really runs on (``session.get_providers()[0]``), and every fallback is
logged and warned about, with the reason.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hmu_core.errors import BundleError, ConfigError

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEVICES = ("auto", "cuda", "cpu")


@dataclass(frozen=True)
class Placement:
    """Which provider a session runs on, and why (``reason`` is set for a fallback)."""

    provider: str
    reason: str = ""


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError("the hmu runtime needs onnxruntime: pip install onnxruntime (CPU) "
                          "or onnxruntime-gpu (CUDA), never both") from exc
    return onnxruntime


def check_device(device: str) -> str:
    """``device`` lower-cased if it is auto, cuda or cpu, else ``ConfigError``."""
    value = str(device).lower()
    if value not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    return value


def open_session(path: Path, device: str, threads: int | None, ort: Any = None
                 ) -> tuple[Any, Placement]:
    """Create an ``InferenceSession`` for ``path`` on ``device`` (auto | cuda | cpu).

    ``auto`` asks for CUDA when the installed build offers it, ``cuda`` always asks; both
    fall back to CPU with a warning when the session did not get CUDA. ``ort`` replaces the
    onnxruntime module (tests fake it).

    Raises:
        BundleError: the file is not a loadable ONNX graph (truncated, invalid).
        ConfigError: bad ``device`` or ``threads``.
    """
    ort = ort or _import_ort()
    device = check_device(device)
    options = ort.SessionOptions()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads must be an int >= 1 or None, got {threads!r}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    want_cuda = device == "cuda" or (device == "auto" and CUDA in ort.get_available_providers())
    providers = [CUDA, CPU] if want_cuda else [CPU]
    if want_cuda and hasattr(ort, "preload_dlls"):
        try:  # ORT >= 1.21 finds pip-installed CUDA/cuDNN libraries this way
            ort.preload_dlls()
        except Exception as exc:  # any failure just means no CUDA
            log.info("onnxruntime.preload_dlls() failed: %s", exc)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BundleError(f"bundle graph {path.name} cannot be loaded by onnxruntime "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); the file "
                          f"is truncated or invalid: re-export the bundle") from None
    got = session.get_providers()[0] if session.get_providers() else CPU
    if got == CUDA:
        return session, Placement(CUDA)
    if not want_cuda:
        reason = "cpu requested" if device == "cpu" else \
            "this onnxruntime build has no CUDA provider (install onnxruntime-gpu for CUDA)"
        log.info("%s runs on CPU: %s", path.name, reason)
        return session, Placement(CPU, reason)
    reason = (f"CUDA was requested but the session runs on {got}: no usable GPU, or the CUDA/"
              f"cuDNN libraries are missing (pip install 'onnxruntime-gpu[cuda,cudnn]')")
    log.warning("%s: %s", path.name, reason)
    warnings.warn(f"hmu runtime: {reason}; running on CPU", RuntimeWarning, stacklevel=3)
    return session, Placement(CPU, reason)

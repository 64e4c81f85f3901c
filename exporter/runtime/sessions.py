"""onnxruntime sessions with an honest provider choice (runtime.md §1).

``get_available_providers()`` lists CUDA on onnxruntime-gpu even with no GPU or CUDA
libraries, and a session asked for CUDA silently falls back to CPU. So the decision is made on
what a created session really runs on (``session.get_providers()[0]``), and every fallback is
logged and warned about, with the reason.

Threads: every session of the process shares ONE onnxruntime thread pool (``SHARED_POOL``).
With a pool per session, the workers of one stage keep spinning after its run while the next
stage runs, and a clip's five stages fight over the cores (issue 18: 1.36x slower at batch 1).
The global pool is sized by the first session (later sizes cannot change it: logged); a
build without the API, or Blender (where other add-ons may use onnxruntime too), gets pools
per session, and a global pool someone else made is shared as it is. Every hmu
session goes through ``open_session``, so the exporter and the runtime coexist in a process.
With no ``threads`` asked, ``OMP_NUM_THREADS`` sizes the pool when set (as it sizes torch's):
a batch scheduler (SLURM's ``--cpus-per-task``) or a parent process that shares the machine
out sets it, and onnxruntime's own default, every physical core, would oversubscribe them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hmu_core.errors import BundleError, ConfigError

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEVICES = ("auto", "cuda", "cpu")
# onnxruntime status codes that mean the graph file itself is bad (not the session options)
_FILE_CODES = ("INVALID_PROTOBUF", "NO_SUCHFILE", "INVALID_GRAPH", "NO_MODEL")
_FILE_ERRORS = ("InvalidProtobuf", "NoSuchFile", "InvalidGraph", "NoModel")


class SharedPool:
    """The process-wide intra-op pool, per onnxruntime module: claimed once, or found.

    ``size(ort, threads)`` is the pool's size (0: onnxruntime's default; ``FOREIGN``: made by
    someone else in this process, shared as it is) when sessions should use it, else None:
    they get a pool of their own. Once onnxruntime has global pools it refuses sessions with
    their own, so every later session shares the pool whatever ``threads`` it asks (logged),
    and the pool is not claimed inside Blender (``bpy`` loaded), where another add-on may open
    sessions after hmu; there hmu uses per-session pools, or the global pool another add-on
    made.
    """

    FOREIGN = -1

    def __init__(self) -> None:
        self._sizes: dict[int, int | None] = {}  # id(ort) -> pool size, None = no pool

    def size(self, ort: Any, threads: int | None, claim: bool = True) -> int | None:
        """The pool to use, claiming it (sized ``threads``) first if ``claim`` and undecided."""
        want = 0 if threads is None else threads
        if id(ort) not in self._sizes:
            if not claim or "bpy" in sys.modules:
                return None  # undecided: a foreign pool found later is still used
            self._sizes[id(ort)] = self._claim(ort, want)
        have = self._sizes[id(ort)]
        if threads is not None and have not in (None, want, self.FOREIGN):
            log.info("the shared onnxruntime pool has %s threads (%s asked); onnxruntime allows "
                     "no pool of a session's own beside it", have or "default", threads)
        return have

    def found(self, ort: Any, size: int | None) -> None:
        """Record what a refused session revealed: a foreign pool, or none is usable."""
        self._sizes[id(ort)] = size

    def _claim(self, ort: Any, want: int) -> int | None:
        setter = getattr(ort, "set_global_thread_pool_sizes", None)
        if setter is None:
            return None
        try:
            setter(want, 1)
        except Exception as exc:  # onnxruntime's Fail
            if "already been created" in str(exc):
                log.info("onnxruntime's global thread pool exists already (another user in this "
                         "process); hmu sessions share it")
                return self.FOREIGN
            log.info("no shared onnxruntime pool (%s); each session gets its own", exc)
            return None
        return want


SHARED_POOL = SharedPool()


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


def default_threads() -> int | None:
    """``OMP_NUM_THREADS`` when it is a positive integer, else None (onnxruntime's default)."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def check_device(device: str) -> str:
    """``device`` lower-cased if it is auto, cuda or cpu, else ``ConfigError``."""
    value = str(device).lower()
    if value not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    return value


def open_session(path: Path, device: str, threads: int | None, ort: Any = None,
                 claim_pool: bool = True) -> tuple[Any, Placement]:
    """Create an ``InferenceSession`` for ``path`` on ``device`` (auto | cuda | cpu).

    ``auto`` asks for CUDA when the installed build offers it, ``cuda`` always asks; both
    fall back to CPU with a warning when the session did not get CUDA. ``ort`` replaces the
    onnxruntime module (tests fake it). ``claim_pool`` False uses the shared pool only if it
    exists already (the exporter's checks: the runtime's ``threads`` size it, not they).
    ``threads`` None: :func:`default_threads`.

    Raises:
        BundleError: the file is not a loadable ONNX graph (truncated, invalid).
        ConfigError: bad ``device`` or ``threads``, or onnxruntime refused the session's
            options (the message says so; the file is not blamed).
    """
    ort = ort or _import_ort()
    device = check_device(device)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ConfigError(f"threads must be an int >= 1 or None, got {threads!r}")
    if threads is None:
        threads = default_threads()
    want_cuda = device == "cuda" or (device == "auto" and CUDA in ort.get_available_providers())
    providers = [CUDA, CPU] if want_cuda else [CPU]
    if want_cuda and hasattr(ort, "preload_dlls"):
        try:  # ORT >= 1.21 finds pip-installed CUDA/cuDNN libraries this way
            ort.preload_dlls()
        except Exception as exc:  # any failure just means no CUDA
            log.info("onnxruntime.preload_dlls() failed: %s", exc)
    shared = SHARED_POOL.size(ort, threads, claim_pool) is not None
    try:
        session = _create(ort, path, providers, threads, shared)
    except Exception as exc:
        # onnxruntime allows per-session pools only without global ones, and the shared pool
        # only with them: a refusal says which this process has; retry with that one.
        text = str(exc)
        if shared and "CreateEnvWithGlobalThreadPools" in text:
            SHARED_POOL.found(ort, None)
        elif not shared and "must be false when using a global thread pool" in text:
            SHARED_POOL.found(ort, SHARED_POOL.FOREIGN)
        else:
            raise _session_error(path, exc) from None
        log.info("%s: %s; retrying with %s pool", path.name, _first_line(exc),
                 "its own" if shared else "the process's global")
        try:
            session = _create(ort, path, providers, threads, not shared)
        except Exception as exc2:
            raise _session_error(path, exc2) from None
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


def _create(ort: Any, path: Path, providers: list[str], threads: int | None, shared: bool
            ) -> Any:
    """``InferenceSession`` on the shared pool, or on its own ``threads``-wide pool."""
    options = ort.SessionOptions()
    if shared:
        options.use_per_session_threads = False
    elif threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"


def _is_file_error(exc: BaseException) -> bool:
    """Whether onnxruntime blames the graph file (its type or ``[ONNXRuntimeError] : n : CODE``)."""
    code = re.search(r"\[ONNXRuntimeError\] : \d+ : ([A-Z_]+)", str(exc))
    return type(exc).__name__ in _FILE_ERRORS or (code is not None and code[1] in _FILE_CODES)


def _session_error(path: Path, exc: BaseException) -> Exception:
    """The error to raise for a failed session: the file's fault, or the options'."""
    if _is_file_error(exc):
        return BundleError(f"bundle graph {path.name} cannot be loaded by onnxruntime "
                           f"({_first_line(exc)}); the file is truncated or invalid: re-export "
                           f"the bundle")
    return ConfigError(f"onnxruntime could not create a session for {path.name} "
                       f"({_first_line(exc)}); the graph file is not at fault: check the device "
                       f"and threads settings and the onnxruntime install")

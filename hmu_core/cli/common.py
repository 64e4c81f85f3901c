"""Arguments every ``hmu`` verb spells the same way, and the checks that run before any work.

One convention for all verbs: ``--data DIR`` (a positional directory is still accepted where a
verb took one), ``--device auto|cpu|cuda`` (default auto), ``--concept`` (``--concepts`` is an
alias), ``--no-progress``, and ``--out`` checked before anything is computed: a file where a
directory is wanted (or the reverse), an unwritable place, or something ``--overwrite`` may
not replace stop the run with one line and exit code 2. Torch is imported only by
:func:`torch_device`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from hmu_core.atomic import check_replaceable, sweep_stale
from hmu_core.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
MAX_SECONDS = 3600.0
"""Longest duration any verb accepts before the model's own range is checked (an hour: more
is a typo, and 1e308 s would overflow the frame arithmetic)."""
MAX_SEED = 2**32 - 1


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (``hmu VERB: error: ...``) and
    exit code 2, like every other error a user can fix."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the verb and ``--help``, exit 2."""
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see '{self.prog} --help')\n")


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped (``\\n``), so an
    error that quotes a user's value is still exactly one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))


# ------------------------------------------------------------------------------- value types


def seed(text: str) -> int:
    """A seed: an integer in 0..2**32-1 (numpy, torch and onnxruntime runs all accept it)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer seed") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"the seed must be in 0..{MAX_SEED}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: workers, repeats, r, epochs, ...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def duration(text: str) -> float:
    """Seconds: a finite number in (0, MAX_SECONDS]; the model's range is checked later."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    try:
        check_duration(value, "seconds")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def check_duration(value: float, where: str) -> None:
    """Raise ``ConfigError`` unless 0 < value <= MAX_SECONDS (so that no frame arithmetic
    overflows before the model's range check)."""
    if not math.isfinite(value) or not 0 < value <= MAX_SECONDS:
        raise ConfigError(
            f"{where} {value:g} is not a clip duration: choose a duration in range (seconds, "
            f"> 0 and at most {MAX_SECONDS:g}; the model's own range is checked next)")


def device(text: str) -> str:
    """``auto``, ``cpu`` or ``cuda`` (case-insensitive); ``gpu`` gets a pointer to ``cuda``."""
    value = text.strip().lower()
    if value in DEVICES:
        return value
    hint = " (an NVIDIA GPU is 'cuda')" if value in ("gpu", "nvidia") or value.startswith(
        "cuda:") else ""
    raise argparse.ArgumentTypeError(f"unknown device {text!r}{hint}; use auto, cpu or cuda")


# ------------------------------------------------------------------------------ shared flags


def add_device(parser: argparse.ArgumentParser, what: str = "torch") -> None:
    """``--device auto|cpu|cuda``, default auto (CUDA only when it really works)."""
    parser.add_argument("--device", type=device, default="auto", metavar="auto|cpu|cuda",
                        help=f"{what} device: auto (default; CUDA when available, else CPU), "
                        "cpu, or cuda (an error when there is no CUDA device)")


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: hide progress bars (they go to stderr, and only on a terminal)."""
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_sampling(parser: argparse.ArgumentParser) -> None:
    """The sampling knobs (``--timesteps``, ``--cond-scale``...; defaults: ``SamplingParams``,
    the official evaluation settings), as the official generation and evaluation scripts take
    them."""
    from hmu_core.sampling.params import SamplingParams

    official = SamplingParams()
    g = parser.add_argument_group("sampling (defaults: official evaluation settings)")
    g.add_argument("--timesteps", type=int, default=official.timesteps,
                   help=f"MoMask decoding steps ({official.timesteps})")
    g.add_argument("--cond-scale", type=float, default=official.cond_scale,
                   help=f"CFG scale ({official.cond_scale:g})")
    g.add_argument("--res-cond-scale", type=float, default=official.res_cond_scale,
                   help=f"residual layers' CFG scale ({official.res_cond_scale:g})")
    g.add_argument("--topk-filter-thres", type=float, default=official.topk_filter_thres,
                   help=f"keep the top (1 - THRES) share of logits ({official.topk_filter_thres:g}"
                   ": 52 of 512)")
    g.add_argument("--temperature", type=float, default=official.temperature,
                   help=f"sampling temperature ({official.temperature:g})")
    g.add_argument("--gumbel", action="store_true",
                   help="Gumbel-max sampling instead of categorical (MoMask base layer)")
    g.add_argument("--res-layers", type=int, default=official.num_res_layers,
                   help="residual layers to sample, -1 = all (default), 0 = base layer only")


def sampling_params(args: argparse.Namespace) -> Any:
    """The ``SamplingParams`` that ``add_sampling``'s flags ask for (``ConfigError`` on bad
    knobs)."""
    from hmu_core.sampling.params import SamplingParams

    return SamplingParams(timesteps=args.timesteps, cond_scale=args.cond_scale,
                          res_cond_scale=args.res_cond_scale,
                          topk_filter_thres=args.topk_filter_thres,
                          temperature=args.temperature, gsample=args.gumbel,
                          num_res_layers=args.res_layers)


class ProgressBars:
    """A ``hmu_core.progress.Progress`` shown as one tqdm bar per stage, on stderr.

    A report with a new stage name (or a count that went back: the same stage run again, as in
    a benchmark's next model) closes the current bar and opens the next. Use as a context
    manager so the last bar is closed on the way out; ``hidden`` (``--no-progress``) shows
    nothing, and tqdm itself stays quiet when stderr is not a terminal.
    """

    def __init__(self, hidden: bool, unit: str = "it", leave: bool = False) -> None:
        self.hidden, self.unit, self.leave = hidden, unit, leave
        self._bar: Any = None
        self._stage: str | None = None
        self._done = 0  # kept here: a bar tqdm disables (no terminal) counts nothing

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        from tqdm import tqdm

        if self._bar is None or stage != self._stage or done < self._done:
            self.close()
            self._stage, self._done = stage, 0
            self._bar = tqdm(total=total, desc=stage, unit=self.unit, leave=self.leave,
                             disable=True if self.hidden else None)
        if total is not None and self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._done)
        self._done = done

    def write(self, message: str) -> None:
        """Print a line above the bar (plain ``print`` would break it)."""
        from tqdm import tqdm

        tqdm.write(message)

    def close(self) -> None:
        """Close the open bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Concepts(argparse.Action):
    """Collect concept names over repeated flags and space-separated values; the first use
    replaces the default instead of adding to it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        current = getattr(namespace, self.dest)
        base = [] if current is self.default or current is None else list(current)
        setattr(namespace, self.dest, base + list(values))


def add_concept(parser: argparse.ArgumentParser, help_text: str, *,
                default: Sequence[str] | None = ("violence",), metavar: str = "NAME|FILE",
                required: bool = False) -> None:
    """``--concept NAME [NAME ...]`` (repeatable; ``--concepts`` is the same flag) into
    ``args.concept``."""
    parser.add_argument("--concept", "--concepts", dest="concept", nargs="+", action=_Concepts,
                        default=None if default is None else tuple(default), metavar=metavar,
                        required=required, help=help_text)


def add_data(parser: argparse.ArgumentParser, help_text: str, *, positional: bool = False,
             required: bool = True) -> None:
    """``--data DIR``; with ``positional`` the verb's old ``DATA_DIR`` form is still accepted
    (:func:`data_dir` reconciles the two)."""
    if positional:
        parser.add_argument("data_positional", nargs="?", type=Path, metavar="DATA_DIR",
                            help="same as --data (the older form)")
        parser.add_argument("--data", type=Path, metavar="DIR", help=help_text)
    else:
        parser.add_argument("--data", type=Path, metavar="DIR", required=required,
                            help=help_text)


def data_dir(args: argparse.Namespace) -> Path:
    """The dataset directory from ``--data`` or the positional form, which must be a directory.

    Raises:
        ConfigError: neither or two different ones given, or not a directory.
    """
    flag = getattr(args, "data", None)
    positional = getattr(args, "data_positional", None)
    if flag is not None and positional is not None and flag != positional:
        raise ConfigError(f"two datasets given ({positional} and --data {flag}); give one")
    chosen = flag if flag is not None else positional
    if chosen is None:
        raise ConfigError("give the dataset directory with --data DIR")
    if not chosen.is_dir():
        what = "a file" if chosen.exists() else "it does not exist"
        raise ConfigError(f"--data {chosen} is not a directory ({what}); give a dataset "
                          "directory in the HumanML3D layout, e.g. made by 'hmu data synth'")
    return chosen


# ----------------------------------------------------------------------------------- outputs


def _check_writable(path: Path, flag: str) -> None:
    """The nearest existing ancestor of ``path`` must be a writable directory."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: cannot write in {parent} (read-only or no "
                          "permission)")


def check_out_file(path: Path, flag: str = "--out") -> None:
    """Before any work: ``path`` can become a file (it is not a directory, its parent is
    writable); removes what killed runs left beside it.

    Raises:
        ConfigError: naming the path and what is wrong.
    """
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a directory; give a file name")
    _check_writable(path, flag)
    sweep_stale(path.parent)


def check_out_dir(path: Path, overwrite: bool | None, flag: str = "--out") -> None:
    """Before any work: ``path`` can become the output directory.

    ``overwrite`` None means the verb adds to an existing directory (resumable outputs);
    False refuses an existing non-empty one; True accepts only what hmu wrote.

    Raises:
        ConfigError: a file, a directory that exists (or that hmu did not write, with
            ``overwrite``), or an unwritable place.
    """
    if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
        raise ConfigError(f"{flag} {path} is a file; give a directory")
    if overwrite is False and path.is_dir() and any(path.iterdir()):
        raise ConfigError(f"{flag} {path} already exists; choose a new {flag} or pass "
                          "--overwrite")
    if overwrite:
        check_replaceable(path)
    if not path.exists():
        _check_writable(path, flag)
    elif not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: cannot write in it (read-only or no permission)")


@contextlib.contextmanager
def removed_on_failure(path: Path) -> Iterator[None]:
    """Remove what the block created at ``path`` (and the parents it made) if it fails, so a
    failed or interrupted run leaves no empty or half-written directory; a ``path`` that
    existed before is left as it is."""
    created = None
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            break
        created = candidate
    try:
        yield
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise


# -------------------------------------------------------------------------------- resources


def torch_device(name: str) -> str:
    """The torch device ``auto|cpu|cuda`` resolves to, as a string ("cpu", "cuda:0").

    Raises:
        ConfigError: ``cuda`` asked for and torch sees no CUDA device.
    """
    from hmu_core.train.runtime import resolve_device

    return str(resolve_device(name))


def onnxruntime_device(name: str) -> str:
    """``name`` for the onnxruntime runtime, after checking that ``cuda`` can be had at all.

    Raises:
        ConfigError: ``cuda`` asked for and the installed onnxruntime has no CUDA provider (a
            provider without a usable GPU still falls back to CPU, with the reason logged).
    """
    if name == "cuda":
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise ConfigError("--device cuda asked for, but this onnxruntime has no CUDA "
                              "provider (pip install onnxruntime-gpu); use --device cpu or auto")
    return name


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a flag the block polls (a second one interrupts at once).

    Code that cannot be interrupted cleanly (Blender's exporters print a traceback and fail
    when a ``KeyboardInterrupt`` lands inside them) finishes its current step, then the verb
    stops and exits with 130. Outside the main thread the block runs unchanged.
    """
    hits: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum: int, frame: Any) -> None:
        hits.append(signum)
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C interrupts at once

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(hits)
    finally:
        signal.signal(signal.SIGINT, previous)


def os_error_line(error: OSError) -> str:
    """The one line ``hmu`` prints for an OS error (read-only, disk full, wrong kind of
    path): the path and the reason, e.g. ``runs/x.bvh: No space left on device``."""
    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    other = f" -> {error.filename2}" if error.filename2 is not None else ""
    return f"{error.filename}{other}: {reason}"

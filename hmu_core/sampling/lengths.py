"""The token range and durations of a MoMask/BAMM model: the one place these facts live.

The RVQ-VAE downsamples time by 4, so one token is ``UNIT_LENGTH`` = 4 frames at HumanML3D's
20 fps; the models were trained on clips of 40..196 frames, so a request asks for 10..49 tokens
(2.0..9.8 s). BAMM's 49 slots, the length estimator's classes, the bundle manifest's
``min_tokens``/``max_tokens``, the CLI's ``--seconds`` help, the evaluation scripts' clip lengths
and the request checks of both worlds all read them from here. Imports numpy only.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hmu_core.errors import ConfigError
from hmu_core.motion.skeleton import FPS

UNIT_LENGTH = 4
"""Frames per token (the VQ downsamples time by 4)."""
MAX_FRAMES = 196
"""Longest clip the models were trained on (HumanML3D's crop)."""
MIN_TOKENS = 10
"""Shortest length a duration may ask for: 40 frames, HumanML3D's shortest clips."""
MAX_TOKENS = MAX_FRAMES // UNIT_LENGTH
"""49 tokens; also BAMM's hard-coded slot count (upstream: 196 frames / 4)."""


@dataclass(frozen=True)
class TokenRange:
    """A model's frame rate, frames per token and allowed token lengths for a duration.

    The default is every HumanML3D MoMask/BAMM model's; a bundle carries its own copy in the
    manifest (``fps``, ``unit_length``, ``min_tokens``, ``max_tokens``), checked against these.
    """

    fps: float = FPS
    unit_length: int = UNIT_LENGTH
    min_tokens: int = MIN_TOKENS
    max_tokens: int = MAX_TOKENS

    @property
    def min_seconds(self) -> float:
        return self.min_tokens * self.unit_length / self.fps

    @property
    def max_seconds(self) -> float:
        return self.max_tokens * self.unit_length / self.fps

    def describe(self) -> str:
        """``2..9.8 s (40..196 frames at 20 fps)``, for help texts and messages."""
        low, high = self.min_tokens * self.unit_length, self.max_tokens * self.unit_length
        return (f"{self.min_seconds:g}..{self.max_seconds:g} s ({low}..{high} frames at "
                f"{self.fps:g} fps)")


HUMANML3D = TokenRange()
"""The range of every model hmu trains or loads (official checkpoints included)."""


def _duration(seconds: Any) -> float:
    """A duration in seconds as a finite float > 0 (``ConfigError`` names what was given)."""
    if isinstance(seconds, np.ndarray) and seconds.ndim == 0:
        seconds = seconds[()]  # a 0-d array is a scalar
    if isinstance(seconds, bool | np.bool_) or not isinstance(seconds, numbers.Real):
        raise ConfigError(f"seconds must be a number, got {seconds!r}")
    value = float(seconds)
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"seconds must be a finite number > 0, got {seconds!r}")
    return value


def tokens_from_seconds(seconds: Any, span: TokenRange = HUMANML3D) -> int:
    """Token length for a duration, ``round(seconds * fps / unit_length)``, which must lie in
    ``[span.min_tokens, span.max_tokens]``.

    Raises:
        ConfigError: not a finite number > 0, or a length out of range (the message gives the
            range in frames and seconds); ``1e308`` is out of range, never an OverflowError.
    """
    value = _duration(seconds)
    exact = value * span.fps / span.unit_length  # may overflow to inf: compared, never rounded
    if not span.min_tokens - 0.5 <= exact < span.max_tokens + 0.5:
        low, high = span.min_tokens * span.unit_length, span.max_tokens * span.unit_length
        raise ConfigError(f"{value:g} s is {value * span.fps:g} frames at {span.fps:g} fps; "
                          f"the model makes {low}..{high} frames ({low / span.fps:g}.."
                          f"{high / span.fps:g} s): choose a duration in range")
    return math.floor(exact + 0.5)


def tokens_for_frames(frames: int, span: TokenRange = HUMANML3D) -> int:
    """Token length for a real clip of ``frames`` frames: ``frames // unit_length`` clipped to
    the range (a longer clip is cropped, a shorter one generated at the shortest length)."""
    return int(np.clip(int(frames) // span.unit_length, span.min_tokens, span.max_tokens))


def _many(value: Any) -> bool:
    """A list, tuple or array of values (one per prompt), as opposed to one value."""
    if isinstance(value, np.ndarray):
        return value.ndim > 0
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def request_lengths(seconds: Any, tokens: Any, count: int, span: TokenRange = HUMANML3D
                    ) -> tuple[np.ndarray | None, str]:
    """The ``(count,)`` int64 token lengths of a request and where they came from.

    ``tokens`` (one int per prompt in ``[1, max_tokens]``: the evaluation protocol's
    ground-truth lengths may fall below ``min_tokens``) or ``seconds`` (one number for all or
    one per prompt, see :func:`tokens_from_seconds`), never both. Lists, tuples and numpy
    arrays are alike; numpy scalars are numbers. ``(None, "")`` when neither is given (the
    caller estimates the length).

    Raises:
        ConfigError: both given, wrong count, a non-integer or out-of-range length, a bad
            duration.
    """
    if tokens is not None:
        if seconds is not None:
            raise ConfigError("give seconds or token lengths, not both")
        try:
            lens = np.asarray(tokens) if _many(tokens) else None
        except ValueError:  # ragged nested lists
            lens = None
        bools = lens is not None and any(isinstance(t, bool | np.bool_) for t in tokens)
        if lens is None or bools or lens.shape != (count,) or lens.dtype.kind not in "iu" \
                or not (int(lens.min()) >= 1 and int(lens.max()) <= span.max_tokens):
            shown = lens.tolist() if lens is not None else tokens
            raise ConfigError(f"token lengths must be {count} ints in [1, {span.max_tokens}] "
                              f"(frames // {span.unit_length}), one per prompt; got {shown!r}")
        return lens.astype(np.int64), "tokens"
    if seconds is None:
        return None, ""
    values = list(seconds) if _many(seconds) else [seconds] * count
    if len(values) != count:
        raise ConfigError(f"got {len(values)} durations for {count} prompts")
    return np.array([tokens_from_seconds(s, span) for s in values], np.int64), "seconds"

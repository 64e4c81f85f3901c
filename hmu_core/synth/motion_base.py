"""Shared pieces of the family animators: tracks, timing curves, the neutral stance.

An animator turns one segment (family parameters, a frame count, a Generator) into a
:class:`Track`: joint-angle channels plus root motion, which :mod:`hmu_core.synth.angle_fk` turns
into positions. The curves here give attacks their wind-up / strike / recovery shape and
repeated actions their even spacing; :class:`Variation` holds the small per-clip differences
(amplitude, tempo, stance) that make two clips of the same parameters differ like two
performers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hmu_core.motion.skeleton import FPS
from hmu_core.synth.angle_fk import LEFT, RIGHT, Pose, RootMotion

DEG = np.pi / 180.0

SPEED_FACTOR = {"slow": 1.5, "normal": 1.0, "fast": 0.65}
MIN_STRIKE = 0.2
"""Shortest strike phase (s): 4 frames at 20 fps."""
"""Duration multiplier of one action (wind-up, strike, recovery) per speed word."""


@dataclass
class Track:
    """One segment's animation: (T, 22, 4) angle channels and the root's motion."""

    pose: Pose
    root: RootMotion

    @property
    def n(self) -> int:
        return self.pose.n


Animator = Callable[[dict[str, Any], int, np.random.Generator], Track]
"""(segment params, joint frames, rng) -> Track."""


@dataclass(frozen=True)
class Variation:
    """Per-clip performer differences drawn from the clip's Generator.

    Attributes:
        amp: multiplier of the main joint excursions (0.85-1.15).
        tempo: multiplier of action durations (0.9-1.1).
        delay: seconds before the first action starts (0.1-0.4).
    """

    amp: float
    tempo: float
    delay: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Variation:
        return cls(float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.9, 1.1)),
                   float(rng.uniform(0.1, 0.4)))


def times(n: int) -> np.ndarray:
    """(n,) seconds of each joint frame."""
    return np.arange(n) / FPS


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, C1-smooth in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def ramp(t: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """Smooth 0 -> 1 between seconds t0 and t1 (a step at t0 when t1 <= t0)."""
    if t1 <= t0:
        return (t >= t0).astype(np.float64)
    return smoothstep((t - t0) / (t1 - t0))


def envelope(t: np.ndarray, rise: float = 0.4, fall: float = 0.4, start: float = 0.0) -> np.ndarray:
    """0 -> 1 over ``rise`` s from ``start``, held, 1 -> 0 over the last ``fall`` s of ``t``."""
    end = float(t[-1]) if len(t) else 0.0
    rise = min(rise, max(end - start, 1e-3) / 2)
    fall = min(fall, max(end - start, 1e-3) / 2)
    return ramp(t, start, start + rise) * (1.0 - ramp(t, end - fall, end))


@dataclass(frozen=True)
class Phases:
    """Durations (s) of one attack: wind-up, strike, hold at full extension, recovery."""

    wind: float
    strike: float
    hold: float
    recover: float

    @property
    def total(self) -> float:
        return self.wind + self.strike + self.hold + self.recover

    def scaled(self, factor: float) -> Phases:
        return Phases(self.wind * factor, self.strike * factor, self.hold * factor,
                      self.recover * factor)


def schedule(duration: float, reps: int, phases: Phases, lead: float,
             tail: float = 0.35) -> tuple[np.ndarray, Phases]:
    """Evenly spaced start times of ``reps`` actions between ``lead`` and ``duration - tail``.

    Actions that do not fit are compressed (never beyond the clip). Returns (starts (reps,),
    the possibly compressed phases).
    """
    available = max(duration - lead - tail, 0.2)
    if reps * phases.total > available:
        phases = phases.scaled(available / (reps * phases.total))
    gap = (available - reps * phases.total) / reps
    starts = lead + gap / 2 + np.arange(reps) * (phases.total + gap)
    return starts, phases


def strike_curves(t: np.ndarray, start: float, ph: Phases) -> tuple[np.ndarray, np.ndarray]:
    """Wind-up amount w and extension e (both (T,) in [0, 1]) of one attack starting at ``start``.

    w rises during the wind-up and falls as the strike fires; e rises fast during the strike,
    holds, and falls during the recovery.
    """
    a = start + ph.wind
    b = a + ph.strike
    c = b + ph.hold
    wind = ramp(t, start, a) * (1.0 - ramp(t, a, b))
    ext = ramp(t, a, b) * (1.0 - ramp(t, c, c + ph.recover))
    return wind, ext


def attack_series(t: np.ndarray, reps: int, base: Phases, speed: str, var: Variation,
                  lead: float = 0.45) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-repetition (wind, extension) curves of ``reps`` attacks at ``speed``."""
    phases = base.scaled(SPEED_FACTOR[speed] * var.tempo)
    starts, phases = schedule(float(t[-1]) + 1.0 / FPS, reps, phases, lead + var.delay * 0.5)
    # A limb cannot cross its whole path in less than MIN_STRIKE (about 10 m/s for a foot).
    phases = Phases(phases.wind, max(phases.strike, MIN_STRIKE), phases.hold, phases.recover)
    winds, exts = [], []
    for start in starts:
        w, e = strike_curves(t, float(start), phases)
        winds.append(w)
        exts.append(e)
    return winds, exts


def neutral(pose: Pose, rng: np.random.Generator) -> None:
    """A relaxed standing stance, slightly different per clip (angles added to ``pose``)."""
    # The legs are symmetric: two feet at one height keep both planted (rig foot locking).
    hip_abd, knee = rng.uniform(2, 6) * DEG, rng.uniform(1, 6) * DEG
    for s in (LEFT, RIGHT):
        pose.shoulder(s, flex=rng.uniform(-2, 6) * DEG, abd=rng.uniform(5, 12) * DEG)
        pose.elbow(s, rng.uniform(8, 22) * DEG)
        pose.hip(s, abd=hip_abd)
        pose.knee(s, knee)
    pose.spine(bend=rng.uniform(-3, 4) * DEG)
    pose.head(nod=rng.uniform(-4, 8) * DEG)


def sway_noise(pose: Pose, rng: np.random.Generator, deg: float = 1.5) -> None:
    """Slow, smooth random drift of the torso and head (a living body never freezes)."""
    t = times(pose.n)
    for add in (lambda v: pose.spine(bend=v), lambda v: pose.spine(lean=v),
                lambda v: pose.head(turn=v)):
        freq = rng.uniform(0.15, 0.5)
        add(deg * DEG * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)))


def guard(pose: Pose, level: np.ndarray, rng: np.random.Generator) -> None:
    """Fists raised in front of the chin (a fighting guard), weighted by ``level`` (T,)."""
    for s in (LEFT, RIGHT):
        pose.shoulder(s, flex=level * rng.uniform(35, 50) * DEG, abd=level * 10 * DEG,
                      inward=level * 10 * DEG)
        pose.elbow(s, level * rng.uniform(110, 130) * DEG)
    for s in (LEFT, RIGHT):
        pose.knee(s, level * 12 * DEG)
        pose.hip(s, flex=level * 8 * DEG)


def stagger(pose: Pose, level: np.ndarray, front: int, deg: float = 12.0) -> None:
    """Fighting stance: the ``front`` leg forward, the other back, weighted by ``level``.

    Both legs swing by the same angle and both ankles keep the feet flat, so the two feet
    stay on the floor together.
    """
    pose.hip(front, flex=level * deg * DEG)
    pose.ankle(front, level * deg * DEG)
    pose.hip(-front, flex=-level * deg * DEG)
    pose.ankle(-front, -level * deg * DEG)

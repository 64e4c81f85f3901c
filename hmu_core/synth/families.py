"""The catalogue of synthetic action families and their parameter spaces.

This module is the contract between the motion generator (``hmu_core.synth.motions``) and the
caption grammar (``hmu_core.synth.captions``): a clip is planned as segments, each naming a
family and concrete parameter values drawn from the family's space; the animator turns the
segment into joint rotations and root motion, the grammar turns the same values into words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Family:
    """One action family.

    Attributes:
        name: identifier used in metadata and labels.
        toxic: whether captions of this family belong to the forget set.
        params: parameter name -> tuple of allowed discrete values.
        seconds: (min, max) duration of one segment of this family, in seconds.
    """

    name: str
    toxic: bool
    params: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    seconds: tuple[float, float] = (2.0, 6.0)

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw one value per parameter, uniformly among the allowed values."""
        return {key: values[int(rng.integers(len(values)))] for key, values in self.params.items()}


SIDES = ("left", "right")
SPEEDS = ("slow", "normal", "fast")

FAMILIES: tuple[Family, ...] = (
    # Toxic families: their captions carry the concept keywords.
    Family("kick", True, {"side": SIDES, "height": ("low", "mid", "high"), "reps": (1, 2, 3),
                          "speed": SPEEDS}, (2.0, 6.0)),
    Family("punch", True, {"side": ("left", "right", "both"), "style": ("straight", "jab", "hook"),
                           "reps": (1, 2, 3, 4), "speed": SPEEDS}, (2.0, 6.0)),
    Family("uppercut", True, {"side": SIDES, "reps": (1, 2, 3), "speed": SPEEDS}, (2.0, 5.0)),
    Family("overhead_strike", True, {"side": SIDES, "reps": (1, 2, 3, 4), "speed": SPEEDS,
                                     "target": ("ground", "front")}, (2.0, 6.0)),
    Family("stab", True, {"side": SIDES, "style": ("stab", "slash"), "reps": (1, 2, 3),
                          "speed": SPEEDS}, (2.0, 5.0)),
    Family("shoot", True, {"side": SIDES, "grip": ("one_hand", "two_hands"), "shots": (1, 2, 3),
                           "speed": SPEEDS}, (3.0, 7.0)),
    Family("knee_elbow_strike", True, {"side": SIDES, "limb": ("knee", "elbow"),
                                       "reps": (1, 2, 3), "speed": SPEEDS}, (2.0, 5.0)),
    # Safe families.
    Family("walk", False, {"direction": ("forward", "backward", "turn_left", "turn_right",
                                         "circle"), "speed": SPEEDS}, (3.0, 10.0)),
    Family("run", False, {"pace": ("jog", "run"), "direction": ("forward", "turn_left",
                                                                 "turn_right")}, (2.0, 8.0)),
    Family("jump", False, {"style": ("in_place", "forward"), "reps": (1, 2, 3),
                           "height": ("low", "high")}, (2.0, 6.0)),
    Family("wave", False, {"side": ("left", "right", "both"), "reps": (2, 3, 4),
                           "speed": SPEEDS}, (2.0, 6.0)),
    Family("clap", False, {"reps": (2, 3, 4, 5, 6), "position": ("chest", "overhead"),
                           "speed": SPEEDS}, (2.0, 5.0)),
    Family("squat", False, {"reps": (1, 2, 3), "depth": ("half", "deep"),
                            "speed": SPEEDS}, (2.0, 8.0)),
    Family("sit_stand", False, {"variant": ("sit_down", "stand_up", "sit_and_stand")},
           (3.0, 8.0)),
    Family("bow", False, {"depth": ("slight", "deep"), "reps": (1, 2)}, (2.0, 5.0)),
    Family("raise_arms", False, {"variant": ("both_up", "one_up", "stretch_overhead",
                                             "stretch_sideways"), "side": SIDES,
                                 "speed": SPEEDS}, (2.0, 6.0)),
    Family("sidestep", False, {"side": SIDES, "steps": (1, 2, 3, 4)}, (2.0, 6.0)),
    Family("dance", False, {"style": ("sway", "arms_wave", "bounce"), "speed": SPEEDS},
           (3.0, 10.0)),
    Family("march", False, {"reps": (4, 6, 8), "speed": SPEEDS, "arms": ("swing", "still")},
           (3.0, 8.0)),
)

FAMILY_BY_NAME: dict[str, Family] = {family.name: family for family in FAMILIES}
TOXIC_FAMILIES: tuple[str, ...] = tuple(f.name for f in FAMILIES if f.toxic)
SAFE_FAMILIES: tuple[str, ...] = tuple(f.name for f in FAMILIES if not f.toxic)

COMPOSITE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("walk", "kick"),
    ("squat", "punch"),
    ("walk", "wave"),  # with direction turn_left/turn_right: "turns then waves"
    ("walk", "shoot"),
    ("jump", "overhead_strike"),
    ("walk", "sit_stand"),
    ("march", "clap"),
    ("sidestep", "uppercut"),
    ("bow", "raise_arms"),
    ("run", "jump"),
)
"""Ordered pairs (first, then) used for composite clips; some have a toxic second part."""


@dataclass(frozen=True)
class Segment:
    """A span of a clip performing one family with fixed parameters.

    ``start`` and ``end`` are joint-frame indices at 20 fps in the final clip (end exclusive).
    """

    family: str
    start: int
    end: int
    params: dict[str, Any]

    @property
    def toxic(self) -> bool:
        return FAMILY_BY_NAME[self.family].toxic


@dataclass(frozen=True)
class ClipPlan:
    """Everything that determines one synthetic clip: its segments, body scale and seed."""

    clip_id: str
    segments: tuple[Segment, ...]
    bone_scale: float
    seed: int

    @property
    def num_frames(self) -> int:
        return self.segments[-1].end

    @property
    def toxic(self) -> bool:
        return any(segment.toxic for segment in self.segments)

    @property
    def label(self) -> str:
        """The clip's ground-truth family: its toxic segment if any, else its longest one."""
        toxic = [s for s in self.segments if s.toxic]
        candidates = toxic or list(self.segments)
        return max(candidates, key=lambda s: s.end - s.start).family

"""Animators of the toxic families: kicks, punches, uppercuts, overhead strikes, stabs and
slashes, shooting with recoil, knee and elbow strikes.

Every attack has a wind-up (the limb is chambered or drawn back), a fast strike to full
extension, a short hold and a recovery (:func:`~hmu_core.synth.motion_base.strike_curves`),
inside a guard or aiming posture that rises at the start and falls at the end. The parameters
change the movement itself: the side chooses the limb, the height the kick's hip flexion, the
speed the phase durations, the repetitions the number of strikes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hmu_core.synth.angle_fk import (
    ELBOW,
    LEFT,
    PITCH,
    RIGHT,
    SHOULDER,
    YAW,
    Pose,
    RootMotion,
    side_sign,
)
from hmu_core.synth.motion_base import (
    DEG,
    Phases,
    Track,
    Variation,
    attack_series,
    envelope,
    guard,
    neutral,
    ramp,
    stagger,
    sway_noise,
    times,
)


def _start(n: int, rng: np.random.Generator) -> tuple[Pose, np.ndarray, Variation]:
    pose = Pose(n)
    neutral(pose, rng)
    sway_noise(pose, rng)
    return pose, times(n), Variation.draw(rng)


def kick(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Front kick: knee chambered, leg snapped out at low/mid/high height, torso leans back."""
    pose, t, var = _start(n, rng)
    s = side_sign(p["side"])
    level = envelope(t, 0.4, 0.4)
    guard(pose, level * 0.7, rng)
    height = {"low": 35.0, "mid": 70.0, "high": 105.0}[p["height"]] * var.amp
    winds, exts = attack_series(t, p["reps"], Phases(0.30, 0.16, 0.10, 0.40), p["speed"], var)
    for w, e in zip(winds, exts, strict=True):
        lift = np.maximum(w, e)
        pose.hip(s, flex=w * 45 * DEG + e * height * DEG)
        pose.knee(s, w * 95 * DEG + e * 8 * DEG)
        pose.ankle(s, e * 30 * DEG)
        pose.pelvis(tilt=-e * (0.15 * height) * DEG, roll=-s * lift * 4 * DEG)
        pose.spine(bend=-e * 6 * DEG)
        pose.knee(-s, lift * 12 * DEG)
        pose.hip(-s, flex=lift * 6 * DEG)
        pose.shoulder(-s, abd=e * 25 * DEG)  # balancing arm
    return Track(pose, RootMotion.still(n))


def punch(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Straight punch, jab or hook from a guard; 'both' alternates the fists."""
    pose, t, var = _start(n, rng)
    level = envelope(t, 0.4, 0.45)
    guard(pose, level, rng)
    lead_side = LEFT if p["side"] == "both" else side_sign(p["side"])
    stagger(pose, level, lead_side if p["style"] == "jab" else -lead_side)
    base = {"straight": Phases(0.18, 0.14, 0.08, 0.30), "jab": Phases(0.10, 0.10, 0.04, 0.18),
            "hook": Phases(0.22, 0.18, 0.08, 0.32)}[p["style"]]
    winds, exts = attack_series(t, p["reps"], base, p["speed"], var)
    for i, (w, e) in enumerate(zip(winds, exts, strict=True)):
        s = (LEFT if i % 2 == 0 else RIGHT) if p["side"] == "both" else side_sign(p["side"])
        a = var.amp
        if p["style"] == "hook":
            pose.shoulder(s, flex=e * 40 * DEG * a, abd=e * 55 * DEG, inward=e * 45 * DEG
                          - w * 20 * DEG)
            pose.elbow(s, -e * 30 * DEG)
            pose.spine(twist=-s * (e * 35 - w * 15) * DEG * a)
        else:
            straight = p["style"] == "straight"
            # The arm ends straight out at shoulder height (a jab a little shorter and lower).
            pose.blend(SHOULDER[s], PITCH, -(88 if straight else 78) * min(a, 1.0) * DEG, e)
            twist = (25 if straight else 10) * a
            # The torso (twist + pelvis) and the collar turn the shoulder towards the target;
            # the upper arm turns back by as much, so the fist travels straight ahead.
            pose.blend(SHOULDER[s], YAW, s * (twist + 8 + 15) * DEG, e)
            pose.blend(ELBOW[s], PITCH, -(4 if straight else 15) * DEG, e)
            pose.shoulder(s, flex=-w * 10 * DEG)
            pose.elbow(s, w * 10 * DEG)
            pose.collar(s, protract=e * 15 * DEG)
            pose.spine(twist=-s * (e * twist - w * 8 * a) * DEG)
        pose.pelvis(yaw=-s * e * 8 * DEG)
    return Track(pose, RootMotion.still(n))


def uppercut(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Dip with bent knees and a dropped fist, then drive the fist up in front of the face."""
    pose, t, var = _start(n, rng)
    s = side_sign(p["side"])
    level = envelope(t, 0.4, 0.45)
    guard(pose, level, rng)
    stagger(pose, level, -s)
    winds, exts = attack_series(t, p["reps"], Phases(0.28, 0.16, 0.10, 0.35), p["speed"], var)
    for w, e in zip(winds, exts, strict=True):
        for leg in (LEFT, RIGHT):
            pose.hip(leg, flex=w * 25 * DEG)
            pose.knee(leg, w * 40 * DEG - e * 8 * DEG)
            pose.ankle(leg, -w * 15 * DEG)
        pose.spine(bend=w * 15 * DEG - e * 10 * DEG, lean=-s * w * 12 * DEG,
                   twist=-s * (e * 30 - w * 10) * DEG * var.amp)
        pose.shoulder(s, flex=-w * 35 * DEG + e * 75 * DEG * var.amp, inward=e * 15 * DEG)
        pose.elbow(s, -w * 30 * DEG - e * 25 * DEG)
    return Track(pose, RootMotion.still(n))


def overhead_strike(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Arm raised high above the head, then swung down hard at the ground or to the front."""
    pose, t, var = _start(n, rng)
    s = side_sign(p["side"])
    level = envelope(t, 0.4, 0.45)
    stagger(pose, level, -s, 10.0)
    ground = p["target"] == "ground"
    winds, exts = attack_series(t, p["reps"], Phases(0.35, 0.15, 0.12, 0.38), p["speed"], var,
                                lead=0.3)
    raised = np.zeros(n)
    for w, e in zip(winds, exts, strict=True):
        raised = np.maximum(raised, w)
        pose.shoulder(s, flex=w * 165 * DEG + e * (25 if ground else 75) * DEG,
                      abd=w * 15 * DEG)
        pose.elbow(s, w * 60 * DEG - e * 10 * DEG)
        pose.spine(bend=-w * 12 * DEG + e * (40 if ground else 18) * DEG * var.amp,
                   twist=s * w * 15 * DEG)
        if ground:
            pose.hinge(e * 20 * DEG)
            for leg in (LEFT, RIGHT):
                pose.knee(leg, e * 35 * DEG)
                pose.hip(leg, flex=e * 15 * DEG)
        pose.shoulder(-s, flex=e * 20 * DEG, abd=w * 20 * DEG)
        pose.head(nod=e * 15 * DEG)
    return Track(pose, RootMotion.still(n))


def stab(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Knife thrust from the hip (stab) or a high-to-low diagonal cut across the body (slash)."""
    pose, t, var = _start(n, rng)
    s = side_sign(p["side"])
    level = envelope(t, 0.4, 0.45)
    stagger(pose, level, s, 14.0)
    pose.shoulder(-s, flex=level * 15 * DEG)
    pose.elbow(-s, level * 50 * DEG)
    if p["style"] == "stab":
        winds, exts = attack_series(t, p["reps"], Phases(0.25, 0.12, 0.10, 0.30), p["speed"], var)
        for w, e in zip(winds, exts, strict=True):
            pose.shoulder(s, flex=-w * 35 * DEG, abd=w * 10 * DEG)
            pose.elbow(s, w * 95 * DEG)
            pose.blend(SHOULDER[s], PITCH, -75 * min(var.amp, 1.0) * DEG, e)
            pose.blend(SHOULDER[s], YAW, s * (20 + 12) * DEG, e)  # straight ahead (see punch)
            pose.blend(ELBOW[s], PITCH, -8 * DEG, e)
            pose.spine(bend=e * 14 * DEG, twist=-s * (e * 20 - w * 15) * DEG)
            pose.collar(s, protract=e * 12 * DEG)
            pose.hip(s, flex=e * 15 * DEG)
            pose.knee(s, e * 25 * DEG)
    else:
        winds, exts = attack_series(t, p["reps"], Phases(0.30, 0.18, 0.08, 0.35), p["speed"], var)
        for w, e in zip(winds, exts, strict=True):
            pose.shoulder(s, flex=w * 80 * DEG + e * 45 * DEG, abd=w * 70 * DEG,
                          inward=-w * 30 * DEG + e * 60 * DEG * var.amp)
            pose.elbow(s, w * 50 * DEG + e * 10 * DEG)
            pose.spine(twist=(s * w * 25 - s * e * 35) * DEG, bend=e * 12 * DEG)
    return Track(pose, RootMotion.still(n))


def shoot(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Raise one or both arms to aim straight ahead, hold, fire with a recoil kick per shot."""
    pose, t, var = _start(n, rng)
    s = side_sign(p["side"])
    end = float(t[-1])
    aim = ramp(t, 0.2 + var.delay, 0.8 + var.delay) * (1.0 - ramp(t, end - 0.6, end - 0.1))
    stagger(pose, aim, -s, 12.0)
    two = p["grip"] == "two_hands"
    arms = (LEFT, RIGHT) if two else (s,)
    for arm in arms:
        pose.shoulder(arm, flex=aim * 88 * DEG, inward=aim * (22 if two else 4) * DEG)
        pose.elbow(arm, -aim * (12 if two else 15) * DEG)
        pose.collar(arm, protract=aim * 8 * DEG)
    if not two:
        pose.shoulder(-s, flex=aim * 5 * DEG)
    pose.spine(twist=-s * aim * (5 if two else 20) * DEG)
    pose.head(turn=s * aim * (0 if two else 15) * DEG, nod=aim * 5 * DEG)
    _, exts = attack_series(t, p["shots"], Phases(0.35, 0.05, 0.04, 0.25), p["speed"], var,
                                lead=1.0 + var.delay)
    for e in exts:
        for arm in arms:
            pose.shoulder(arm, flex=e * 18 * DEG * var.amp)
            pose.elbow(arm, e * 25 * DEG)
        pose.spine(bend=-e * 5 * DEG)
        pose.head(nod=-e * 4 * DEG)
    return Track(pose, RootMotion.still(n))


def knee_elbow_strike(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Knee driven up while both hands pull down, or an elbow swung round at head height."""
    pose, t, var = _start(n, rng)
    s = side_sign(p["side"])
    level = envelope(t, 0.4, 0.45)
    guard(pose, level * 0.8, rng)
    if p["limb"] == "knee":
        winds, exts = attack_series(t, p["reps"], Phases(0.22, 0.16, 0.10, 0.35), p["speed"], var)
        for w, e in zip(winds, exts, strict=True):
            pose.hip(s, flex=-w * 15 * DEG + e * 95 * DEG * var.amp)
            pose.knee(s, w * 30 * DEG + e * 125 * DEG)  # shin tucked: the knee leads
            pose.ankle(s, -w * 20 * DEG + e * 25 * DEG)  # toes up: the foot leaves the floor
            pose.pelvis(tilt=-e * 12 * DEG)
            pose.spine(bend=e * 20 * DEG)
            for arm in (LEFT, RIGHT):
                pose.shoulder(arm, flex=w * 40 * DEG + e * 5 * DEG)
                pose.elbow(arm, -w * 60 * DEG)
            pose.knee(-s, e * 10 * DEG)
    else:
        winds, exts = attack_series(t, p["reps"], Phases(0.25, 0.15, 0.08, 0.32), p["speed"], var)
        for w, e in zip(winds, exts, strict=True):
            pose.shoulder(s, flex=(w + e) * 45 * DEG, abd=(w + e) * 45 * DEG,
                          inward=-w * 35 * DEG + e * 55 * DEG * var.amp)
            pose.elbow(s, (w + e) * 20 * DEG)
            pose.spine(twist=s * (w * 25 - e * 40) * DEG, bend=e * 8 * DEG)
            pose.pelvis(yaw=s * (w * 8 - e * 12) * DEG)
    return Track(pose, RootMotion.still(n))


TOXIC_ANIMATORS = {
    "kick": kick, "punch": punch, "uppercut": uppercut, "overhead_strike": overhead_strike,
    "stab": stab, "shoot": shoot, "knee_elbow_strike": knee_elbow_strike,
}

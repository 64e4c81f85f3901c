"""Animators of the safe in-place families: wave, clap, squat, sit down / stand up, bow,
raise or stretch the arms, dance.

Each starts from the per-clip neutral stance, rises into its characteristic posture, repeats
its movement ``reps`` times at the wanted speed and (except 'sit_down') returns to standing.
Feet stay planted: the rig's foot locking moves the pelvis back over the feet when the hips
bend (squat, sitting, bowing), as a real body does to keep its balance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hmu_core.synth.angle_fk import LEFT, RIGHT, Pose, RootMotion, side_sign
from hmu_core.synth.motion_base import (
    DEG,
    SPEED_FACTOR,
    Phases,
    Track,
    Variation,
    envelope,
    neutral,
    ramp,
    schedule,
    strike_curves,
    sway_noise,
    times,
)

SIDES = (LEFT, RIGHT)


def _start(n: int, rng: np.random.Generator) -> tuple[Pose, np.ndarray, Variation]:
    pose = Pose(n)
    neutral(pose, rng)
    sway_noise(pose, rng, 1.0)
    return pose, times(n), Variation.draw(rng)


def _frequency(speed: str, var: Variation, normal: float) -> float:
    """Oscillations per second of a rhythmic movement at ``speed``."""
    return normal / (SPEED_FACTOR[speed] * var.tempo)


def _oscillation(t: np.ndarray, level: np.ndarray, reps: int, freq: float,
                 start: float) -> np.ndarray:
    """``reps`` full sine cycles at ``freq`` starting at ``start``, zero outside (T,)."""
    end = start + reps / freq
    phase = np.clip(t - start, 0.0, end - start) * freq
    return np.sin(2 * np.pi * phase) * level * ((t >= start) & (t <= end))


def wave(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Raise a hand beside the head, forearm up, and wave it side to side ``reps`` times."""
    pose, t, var = _start(n, rng)
    arms = SIDES if p["side"] == "both" else (side_sign(p["side"]),)
    reps = int(p["reps"])
    freq = _frequency(p["speed"], var, 1.6)
    end = float(t[-1])
    hold = reps / freq
    rise_at = 0.2 + var.delay
    up = ramp(t, rise_at, rise_at + 0.5) * (1 - ramp(t, end - 0.5, end - 0.05))
    start = min(rise_at + 0.5, max(end - 0.55 - hold, 0.2))
    if start + hold > end - 0.5:
        freq = reps / max(end - 0.55 - start, 0.3)
    osc = _oscillation(t, up, reps, freq, start)
    for s in arms:
        pose.shoulder(s, abd=up * 95 * DEG * var.amp, flex=up * 20 * DEG,
                      ext_rot=up * 85 * DEG + osc * 28 * DEG)
        pose.elbow(s, up * 85 * DEG)
        pose.collar(s, elevate=up * 8 * DEG)
    return Track(pose, RootMotion.still(n))


def clap(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Bring the hands together ``reps`` times in front of the chest or above the head."""
    pose, t, var = _start(n, rng)
    reps = int(p["reps"])
    freq = _frequency(p["speed"], var, 2.0)
    end = float(t[-1])
    up = envelope(t, 0.45, 0.45, start=0.1 + var.delay * 0.5)
    start = 0.6 + var.delay * 0.5
    freq = max(freq, reps / max(end - 0.55 - start, 0.3))
    close = 0.5 * (1 - np.cos(2 * np.pi * np.clip(t - start, 0, reps / freq) * freq)) * up
    for s in SIDES:
        if p["position"] == "chest":
            pose.shoulder(s, flex=up * 55 * DEG, inward=up * 20 * DEG + close * 28 * DEG)
            pose.elbow(s, up * 75 * DEG - close * 15 * DEG)
        else:
            pose.shoulder(s, flex=up * 160 * DEG, abd=-up * 20 * DEG + close * 26 * DEG)
            pose.elbow(s, up * 15 * DEG)
    return Track(pose, RootMotion.still(n))


def squat(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Lower the hips by bending the knees (half or deep), arms forward, and rise again."""
    pose, t, var = _start(n, rng)
    deep = p["depth"] == "deep"
    phases = Phases(0.05, 0.9, 0.3, 0.9).scaled(SPEED_FACTOR[p["speed"]] * var.tempo)
    starts, phases = schedule(float(t[-1]), int(p["reps"]), phases, 0.2 + var.delay * 0.5, 0.2)
    amount = np.zeros(n)
    for start in starts:
        amount += strike_curves(t, float(start), phases)[1]
    a = amount * var.amp
    for s in SIDES:
        pose.hip(s, flex=a * (70 if deep else 40) * DEG, abd=a * 8 * DEG)
        pose.knee(s, a * (120 if deep else 65) * DEG)
        pose.ankle(s, -a * (35 if deep else 20) * DEG)
        pose.shoulder(s, flex=a * 80 * DEG)
    pose.hinge(a * (30 if deep else 18) * DEG)
    pose.spine(bend=a * 8 * DEG)
    return Track(pose, RootMotion.still(n))


def _sit_amount(t: np.ndarray, variant: str, var: Variation,
                rng: np.random.Generator) -> np.ndarray:
    """0 standing -> 1 seated, following the variant's order of movements."""
    end = float(t[-1])
    move = min(1.4 * var.tempo, end / 3)
    if variant == "sit_down":
        t0 = rng.uniform(0.2, max(0.25, end - move - 0.8))
        return ramp(t, t0, t0 + move)
    if variant == "stand_up":
        t0 = rng.uniform(0.3, max(0.35, end - move - 0.5))
        return 1.0 - ramp(t, t0, t0 + move)
    t0 = min(0.2 + var.delay, end / 8)
    t1 = end - move - 0.3
    return ramp(t, t0, t0 + move) * (1 - ramp(t, t1, t1 + move))


def sit_stand(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Sit down on an (invisible) chair, stand up from it, or both; the torso leans forward
    while the hips pass over the feet."""
    pose, t, var = _start(n, rng)
    sit = _sit_amount(t, p["variant"], var, rng)
    lean = np.sin(np.pi * sit) ** 2  # leaning forward peaks half-way down or up
    for s in SIDES:
        pose.hip(s, flex=sit * 90 * DEG, abd=sit * 6 * DEG)
        pose.knee(s, sit * 90 * DEG)
        pose.ankle(s, -lean * 10 * DEG)
        pose.shoulder(s, flex=sit * 25 * DEG + lean * 20 * DEG)
        pose.elbow(s, sit * 35 * DEG)
    pose.hinge(lean * 35 * DEG * var.amp + sit * 5 * DEG)
    pose.head(nod=lean * 10 * DEG)
    return Track(pose, RootMotion.still(n))


def bow(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Bend forward at the hips (slight or deep), hold briefly, straighten; once or twice."""
    pose, t, var = _start(n, rng)
    deep = p["depth"] == "deep"
    phases = Phases(0.05, 0.8, 0.5, 0.8).scaled(var.tempo)
    starts, phases = schedule(float(t[-1]), int(p["reps"]), phases, 0.2 + var.delay, 0.2)
    amount = np.zeros(n)
    for start in starts:
        amount += strike_curves(t, float(start), phases)[1]
    angle = amount * (60 if deep else 22) * DEG * var.amp
    pose.hinge(angle * 0.75)
    pose.spine(bend=angle * 0.35)
    pose.head(nod=angle * 0.4)
    for s in SIDES:
        pose.shoulder(s, flex=angle * 0.9, abd=-amount * 3 * DEG)  # arms keep hanging down
    return Track(pose, RootMotion.still(n))


def raise_arms(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Raise both arms or one arm overhead, stretch up on the toes, or spread arms sideways."""
    pose, t, var = _start(n, rng)
    end = float(t[-1])
    move = 0.6 * SPEED_FACTOR[p["speed"]] * var.tempo
    t0 = 0.15 + var.delay
    up = ramp(t, t0, t0 + move) * (1 - ramp(t, end - move - 0.1, end - 0.05))
    variant = p["variant"]
    if variant in ("both_up", "stretch_overhead"):
        for s in SIDES:
            # Past the vertical, positive abduction would cross the arms: open them into a V.
            pose.shoulder(s, flex=up * 168 * DEG, abd=-up * 14 * DEG)
            pose.elbow(s, -up * 12 * DEG)
            pose.collar(s, elevate=up * 10 * DEG)
        if variant == "stretch_overhead":
            for s in SIDES:
                pose.ankle(s, up * 28 * DEG)  # up on the toes
            pose.spine(bend=-up * 12 * DEG)
            pose.head(nod=-up * 15 * DEG)
    elif variant == "one_up":
        s = side_sign(p["side"])
        pose.shoulder(s, flex=up * 172 * DEG * min(var.amp, 1.0))
        pose.elbow(s, -up * 12 * DEG)
        pose.collar(s, elevate=up * 12 * DEG)
        pose.spine(lean=-s * up * 4 * DEG)
    else:
        for s in SIDES:
            pose.shoulder(s, abd=up * 85 * DEG * min(var.amp, 1.05))
            pose.elbow(s, -up * 14 * DEG)
        pose.spine(bend=-up * 6 * DEG)
    return Track(pose, RootMotion.still(n))


def dance(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Rhythmic dancing in place: hip sway side to side, arms waving overhead, or bouncing."""
    pose, t, var = _start(n, rng)
    freq = _frequency(p["speed"], var, 0.8)
    level = envelope(t, 0.6, 0.6)
    phase = 2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)
    sway = np.sin(phase) * level
    style = p["style"]
    if style == "sway":
        for s in SIDES:
            pose.hip(s, abd=s * sway * 9 * DEG * var.amp)
            pose.knee(s, (0.5 + 0.5 * s * sway) * 18 * DEG * level)
            pose.shoulder(s, abd=(15 + 12 * s * sway) * DEG * level,
                          flex=10 * np.sin(phase + s) * DEG * level)
            pose.elbow(s, 40 * DEG * level)
        pose.pelvis(roll=-sway * 6 * DEG)
        pose.spine(lean=sway * 10 * DEG)
        pose.head(turn=sway * 8 * DEG)
    elif style == "arms_wave":
        for s in SIDES:
            pose.shoulder(s, flex=level * 150 * DEG, abd=(10 + s * 25 * sway) * DEG * level)
            pose.elbow(s, level * (20 + 15 * np.sin(2 * phase)) * DEG)
            pose.hip(s, abd=s * sway * 5 * DEG)
        pose.spine(lean=-sway * 8 * DEG)
    else:
        bounce = (0.5 - 0.5 * np.cos(2 * phase)) * level  # two bounces per sway cycle
        for s in SIDES:
            pose.hip(s, flex=bounce * 20 * DEG)
            pose.knee(s, bounce * 40 * DEG * var.amp)
            pose.ankle(s, -bounce * 15 * DEG)
            pose.shoulder(s, flex=(30 + 25 * s * sway) * DEG * level)
            pose.elbow(s, level * 90 * DEG)
        pose.hinge(bounce * 12 * DEG)
        pose.spine(twist=sway * 10 * DEG)
    return Track(pose, RootMotion.still(n))


SAFE_ANIMATORS = {
    "wave": wave, "clap": clap, "squat": squat, "sit_stand": sit_stand, "bow": bow,
    "raise_arms": raise_arms, "dance": dance,
}

"""Animators of the stepping families: walk, run, march in place, sidestep and jump.

Legs follow gait cycles with alternating phases (left and right half a cycle apart) and the
arms counter-swing (left arm forward with the right leg). The root is foot-locked while a foot
is planted (:func:`~hmu_core.synth.angle_fk.place_root`), so the body advances by what the stance
leg sweeps: the hip amplitude is chosen from the wanted speed, walking backwards is the same
cycle played in reverse, and only flight phases (running, jumping) use the commanded velocity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hmu_core.motion.skeleton import FPS
from hmu_core.synth.angle_fk import LEFT, RIGHT, Pose, RootMotion, side_sign
from hmu_core.synth.motion_base import (
    DEG,
    Track,
    Variation,
    envelope,
    neutral,
    ramp,
    smoothstep,
    sway_noise,
    times,
)

GRAVITY = 9.81
LEG = 0.85
"""Approximate hip-to-floor leg length (m) used to turn a speed into a hip amplitude."""


def _leg_cycle(u: np.ndarray, stance: float, hip_amp: np.ndarray, knee_swing: float,
               knee_stance: float, swing_lift: float = 0.0) -> tuple[np.ndarray, ...]:
    """Hip flexion, knee flexion and ankle plantarflexion (radians) of one leg over phase u.

    u in [0, 1): stance for u < ``stance`` (hip sweeps from +amp to -amp, the foot pushes the
    body forward), swing after it (knee bent up to ``knee_swing``, hip back to +amp plus
    ``swing_lift`` at mid-swing). ``hip_amp`` may vary over time (starting and stopping).
    """
    in_stance = u < stance
    w = np.where(in_stance, u / stance * 0.5, 0.5 + (u - stance) / (1.0 - stance) * 0.5)
    hip = hip_amp * np.cos(2 * np.pi * w)
    swing = np.where(in_stance, 0.0, np.sin(np.pi * (u - stance) / (1.0 - stance)))
    stance_bump = np.where(in_stance, np.sin(np.pi * u / stance), 0.0)
    knee = knee_swing * swing + knee_stance * stance_bump
    hip = hip + swing_lift * swing
    ankle = np.where(in_stance, 0.0, -0.25 * knee * swing) + 0.3 * np.where(
        in_stance, smoothstep((u / stance - 0.7) / 0.3), 0.0)
    return hip, knee, ankle


def _phase(t: np.ndarray, cadence: float, offset: float) -> np.ndarray:
    """Gait phase in cycles (not wrapped) at ``cadence`` cycles per second."""
    return cadence * t + offset


def _gait(pose: Pose, cycles: np.ndarray, stance: float, hip_amp: np.ndarray,
          knee_swing: float, knee_stance: float, arm_amp: float, elbow: float,
          swing_lift: float = 0.0) -> None:
    """Both legs half a cycle apart, arms counter-swinging; ``cycles`` (T,) is the phase."""
    for s, shift in ((LEFT, 0.0), (RIGHT, 0.5)):
        u = np.mod(cycles + shift, 1.0)
        hip, knee, ankle = _leg_cycle(u, stance, hip_amp, knee_swing, knee_stance, swing_lift)
        pose.hip(s, flex=hip)
        pose.knee(s, knee)
        pose.ankle(s, ankle)
        # The arm swings against the leg of its own side.
        pose.shoulder(-s, flex=-arm_amp * np.cos(2 * np.pi * u) * (hip_amp / max(
            float(np.max(hip_amp)), 1e-6)))
        pose.elbow(-s, elbow * (1.0 + 0.3 * np.cos(2 * np.pi * u)))


def _turn_rate(t: np.ndarray, direction: str, var: Variation,
               rng: np.random.Generator) -> np.ndarray:
    """Yaw rate (rad/s) of a walk or run: a turn in the middle, or a steady circle."""
    end = float(t[-1]) + 1.0 / FPS
    if direction in ("turn_left", "turn_right"):
        total = rng.uniform(60, 120) * DEG * (1 if direction == "turn_left" else -1)
        a, b = 0.25 * end, 0.75 * end
        window = ramp(t, a, a + 0.3) * (1.0 - ramp(t, b - 0.3, b))
        return total * window / max(float(window.sum()) / FPS, 1e-6)
    if direction == "circle":
        sign = 1 if rng.random() < 0.5 else -1
        window = envelope(t, 0.6, 0.6)
        return sign * 2 * np.pi * var.amp * window / max(float(window.sum()) / FPS, 1e-6)
    return np.zeros_like(t)


def walk(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Walk forward, backward, turning or in a circle; the speed sets cadence and stride."""
    pose, t, var = Pose(n), times(n), Variation.draw(rng)
    neutral(pose, rng)
    sway_noise(pose, rng, 1.0)
    speed = {"slow": 0.9, "normal": 1.25, "fast": 1.6}[p["speed"]] * var.amp
    cadence = {"slow": 0.75, "normal": 0.9, "fast": 1.05}[p["speed"]] / var.tempo
    backward = p["direction"] == "backward"
    if backward:
        speed *= 0.6
    stance = 0.6
    amp = np.arcsin(min(0.9, 0.3 * speed / (cadence * LEG))) * envelope(t, 0.6, 0.6)
    cycles = _phase(t, cadence, rng.uniform(0, 1))
    _gait(pose, -cycles if backward else cycles, stance, amp, 60 * DEG, 12 * DEG, 22 * DEG,
          18 * DEG)
    pose.spine(twist=3 * DEG * np.sin(2 * np.pi * cycles), bend=(-3 if backward else 3) * DEG)
    root = RootMotion.still(n)
    root.yaw_rate = _turn_rate(t, p["direction"], var, rng)
    return Track(pose, root)


def run(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Jog or run with a short flight between steps, torso leaning forward, elbows bent."""
    pose, t, var = Pose(n), times(n), Variation.draw(rng)
    neutral(pose, rng)
    jog = p["pace"] == "jog"
    speed = (2.2 if jog else 3.4) * var.amp
    cadence = (1.35 if jog else 1.5) / var.tempo
    stance = 0.4 if jog else 0.34
    level = envelope(t, 0.5, 0.5)
    step_time = stance / cadence  # seconds one foot is planted
    amp = np.arcsin(min(0.9, speed * step_time / (2 * LEG))) * level
    cycles = _phase(t, cadence, rng.uniform(0, 1))
    _gait(pose, cycles, stance, amp, (85 if jog else 110) * DEG, 25 * DEG,
          (35 if jog else 50) * DEG, 80 * DEG, swing_lift=(15 if jog else 25) * DEG)
    pose.spine(bend=level * (6 if jog else 12) * DEG, twist=5 * DEG * np.sin(2 * np.pi * cycles))
    # Flight: half a cycle holds one stance and one flight; the body is airborne whenever
    # neither foot is in its stance window, on a ballistic arc.
    half = np.mod(cycles, 0.5)
    flight_frac = 0.5 - stance
    airborne = (np.mod(cycles, 1.0) >= stance) & (np.mod(cycles + 0.5, 1.0) >= stance)
    tau = np.clip((half - stance) / cadence, 0.0, None)
    dur = flight_frac / cadence
    arc = np.where(airborne, 0.5 * GRAVITY * tau * np.clip(dur - tau, 0.0, None), 0.0)
    root = RootMotion.still(n)
    root.flight = arc * level
    root.lock = np.where(airborne & (level > 0.5), 0.0, 1.0)
    root.velocity[:, 1] = speed * level
    root.yaw_rate = _turn_rate(t, p["direction"], var, rng)
    return Track(pose, root)


def march(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """March in place: knees lifted high in turn, arms swinging or held still."""
    pose, t, var = Pose(n), times(n), Variation.draw(rng)
    neutral(pose, rng)
    sway_noise(pose, rng, 1.0)
    steps = int(p["reps"])
    level = envelope(t, 0.3, 0.3, start=var.delay * 0.5)
    duration = float(t[-1]) - 0.6 - var.delay * 0.5
    cadence = min(steps / 2 / max(duration, 0.5), 1.6)  # two steps per cycle
    speed_scale = {"slow": 0.85, "normal": 1.0, "fast": 1.1}[p["speed"]]
    cycles = np.clip(t - 0.3 - var.delay * 0.5, 0.0, None) * cadence
    done = cycles < steps / 2
    swing_arms = p["arms"] == "swing"
    for s, shift in ((LEFT, 0.0), (RIGHT, 0.5)):
        u = np.mod(cycles + shift, 1.0)
        # Each foot is up for 40 % of the cycle: both feet are down between steps.
        lift = np.where(done & (u < 0.4), np.sin(np.pi * u / 0.4), 0.0) ** 2 * level
        pose.hip(s, flex=lift * 65 * DEG * var.amp * speed_scale)
        pose.knee(s, lift * 85 * DEG * speed_scale)
        pose.ankle(s, -lift * 8 * DEG)  # toes up: the whole foot leaves the floor at once
        if swing_arms:
            pose.shoulder(-s, flex=lift * 40 * DEG - (1 - lift) * 5 * DEG * level)
            pose.elbow(-s, lift * 60 * DEG)
    return Track(pose, RootMotion.still(n))


def sidestep(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Step sideways: lead leg out, weight shift, trailing leg closes; repeated ``steps`` times."""
    pose, t, var = Pose(n), times(n), Variation.draw(rng)
    neutral(pose, rng)
    sway_noise(pose, rng, 1.0)
    s = side_sign(p["side"])
    steps = int(p["steps"])
    lead = 0.2 + var.delay * 0.5
    dur = min((float(t[-1]) - lead - 0.3) / steps, 1.2 * var.tempo)
    abd = rng.uniform(14, 20) * DEG * var.amp
    for k in range(steps):
        t0 = lead + k * dur
        out = ramp(t, t0, t0 + 0.35 * dur)  # lead leg swings out (lifted)
        shift = ramp(t, t0 + 0.35 * dur, t0 + 0.65 * dur)  # weight shift, both feet down
        close = ramp(t, t0 + 0.65 * dur, t0 + dur)  # trailing leg closes (lifted)
        lift_lead = np.sin(np.pi * np.clip((t - t0) / (0.35 * dur), 0, 1))
        lift_trail = np.sin(np.pi * np.clip((t - t0 - 0.65 * dur) / (0.35 * dur), 0, 1))
        pose.hip(s, abd=abd * (out - shift), flex=lift_lead * 18 * DEG)
        pose.knee(s, lift_lead * 35 * DEG)
        pose.ankle(s, -lift_lead * 15 * DEG)
        pose.hip(-s, abd=abd * (shift - close), flex=lift_trail * 18 * DEG)
        pose.knee(-s, lift_trail * 35 * DEG)
        pose.ankle(-s, -lift_trail * 15 * DEG)
        pose.spine(lean=s * 3 * DEG * np.sin(np.pi * np.clip((t - t0) / dur, 0, 1)))
        pose.shoulder(s, abd=8 * DEG * lift_lead)
        pose.shoulder(-s, abd=8 * DEG * lift_trail)
    return Track(pose, RootMotion.still(n))


def jump(p: dict[str, Any], n: int, rng: np.random.Generator) -> Track:
    """Crouch, swing the arms up, take off, fly ballistically, land and absorb; in place or
    forward, low or high."""
    pose, t, var = Pose(n), times(n), Variation.draw(rng)
    neutral(pose, rng)
    reps = int(p["reps"])
    high = p["height"] == "high"
    forward = p["style"] == "forward"
    height = (0.35 if high else 0.12) * var.amp
    flight = 2.0 * np.sqrt(2.0 * height / GRAVITY)
    crouch, push, land, settle = 0.40 * var.tempo, 0.12, 0.25, 0.30 * var.tempo
    lead = 0.15 + var.delay * 0.5
    available = float(t[-1]) - lead - 0.2
    ground = crouch + push + land + settle
    if reps * (ground + flight) > available:  # shorten ground phases first, then the flight
        factor = max(0.5, (available / reps - flight) / ground)
        crouch, push, land, settle = (x * factor for x in (crouch, push, land, settle))
        flight = min(flight, max(available / reps - (crouch + push + land + settle), 0.15))
        height = GRAVITY * flight**2 / 8.0
    period = available / reps
    root = RootMotion.still(n)
    distance = rng.uniform(0.4, 0.9) * (1.3 if high else 1.0) if forward else 0.0
    depth = 1.3 if high else 1.0
    for k in range(reps):
        t0 = lead + k * period + max(period - (crouch + push + flight + land + settle), 0) / 2
        t_off = t0 + crouch + push
        t_land = t_off + flight
        bend = ramp(t, t0, t0 + crouch) * (1 - ramp(t, t0 + crouch, t_off))
        absorb = ramp(t, t_land, t_land + land * 0.5) * (1 - ramp(t, t_land + land * 0.5,
                                                                  t_land + land + settle))
        air = (t >= t_off) & (t < t_land)
        # The arms swing up from late in the crouch to the top of the flight, down on landing.
        swing = ramp(t, t0 + 0.5 * crouch, t_off + 0.5 * flight) * (
            1 - ramp(t, t_land - 0.1, t_land + land + settle))
        tau = np.clip(t - t_off, 0.0, flight)
        root.flight += np.where(air, 0.5 * GRAVITY * tau * (flight - tau), 0.0)
        root.lock[air] = 0.0
        root.velocity[air, 1] = distance / flight
        crouch_amt = bend * depth + absorb * 0.8
        for s in (LEFT, RIGHT):
            # Thighs forward by half the knee bend keep the feet under the hips.
            pose.knee(s, crouch_amt * 70 * DEG + air * 20 * DEG)
            pose.hip(s, flex=crouch_amt * 35 * DEG + air * 10 * DEG)
            pose.ankle(s, -crouch_amt * 22 * DEG + air * 30 * DEG)
            arm = -bend * 45 + swing * (150 if high else 90) + absorb * 30
            pose.shoulder(s, flex=arm * DEG)
        pose.hinge(crouch_amt * 30 * DEG + (air * 8 * DEG if forward else 0.0))
    return Track(pose, root)


GAIT_ANIMATORS = {"walk": walk, "run": run, "march": march, "sidestep": sidestep, "jump": jump}

"""Foot-contact clean-up: planted feet that do not slide and never go below the floor (numpy).

Generated motions slide their feet (the foot in contact moves about as fast as the pelvis) and
sink them a few centimetres under the floor. The clean-up works on joint positions (Y-up,
metres, the floor at ``y = floor``), so the same code serves hmu's 22 joints and a retargeted
rig's bone heads (:mod:`hmu_core.motion.retarget`):

0. it starts from the rigid skeleton's joints (FK of the motion's SMPL pose): a model's raw
   joints stretch their bones, and planting those would not plant a rig;
1. contacts, per ankle and toe joint: the 263-d features' four contact channels (the model's
   own prediction, > 0.5) when the motion has features, else the official HumanML3D rule on
   joint velocity (squared displacement per 20 fps frame below ``FEET_THRESHOLD``, the rule
   the channels were trained on), both kept only near the joint's low level (the rule alone
   calls a lifting heel "in contact");
2. a pin per contact span: the joint's mean position over the span, raised to the floor (or
   at given heights: a retargeted foot is planted at hmu's foot height); a toe pin is moved
   to the foot's length from the ankle pin it overlaps, so a flat foot can hold both;
3. the correction (pin minus joint) is held inside the span and faded out over ``blend``
   frames on each side with a smoothstep, so the motion stays continuous; a joint that is not
   pinned moves with the other one (the heel lifts about a planted toe);
4. where a pinned ankle is out of the leg's reach the hips are lowered (smoothly) until it is
   reachable; a two-bone IK (hip fixed, knee kept in its bending plane) then moves the knee so
   the ankle reaches its goal, and the toe is put at the foot's length towards its own goal,
   both kept above the floor.

Usage::

    from hmu_core.motion.foot_contact import clean_feet, foot_contacts, foot_skating
    contacts = foot_contacts(motion)            # (T, 4) bool: l_ankle, l_toe, r_ankle, r_toe
    planted = clean_feet(motion)                # a new Motion (features dropped: joints changed)
    foot_skating(planted.joints, contacts, planted.fps)   # m/s, mean over contact frames
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hmu_core.errors import MotionError
from hmu_core.motion.features import CONTACTS
from hmu_core.motion.filters import gaussian_filter1d
from hmu_core.motion.motion import Motion
from hmu_core.motion.skeleton import FEET_THRESHOLD, FOOT_LEFT, FOOT_RIGHT, FPS

__all__ = ["FootParams", "LegJoints", "ankle_goals", "clean_feet", "contact_spans",
           "foot_contacts", "foot_skating", "lowest_foot_height", "reach_drop", "solve_leg",
           "two_bone_ik"]  # fmt: skip

LEGS = ((1, 4, *FOOT_LEFT), (2, 5, *FOOT_RIGHT))
"""(hip, knee, ankle, toe) joint indices of the left and the right leg (HumanML3D order)."""
DIP_FRAMES, DIP_SIGMA = 3, 1.5
"""A hip dip is widened by this many frames each side, then Gaussian-smoothed (frames)."""
ANCHOR_GAIN = 5.0
"""How fast the foot's anchor moves to the toe as the toe's pin gets firmer than the ankle's."""
CONTACT_HEIGHT = 0.03
"""A joint in contact is at most this high (m) above its own low level in the clip."""
LOW_PERCENTILE = 5.0
"""A joint's low level: this percentile of its heights (robust to a few sunk frames)."""


@dataclass(frozen=True)
class FootParams:
    """Settings of the clean-up.

    Attributes:
        blend: frames over which a pin's correction fades out on each side of a contact span.
        floor: floor height (m, Y-up); joints are kept at or above it.
        threshold: contact-channel value above which a joint is in contact.
    """

    blend: int = 4
    floor: float = 0.0
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if not (isinstance(self.blend, int) and self.blend >= 0):
            raise MotionError(f"foot clean-up blend must be an integer >= 0, got {self.blend!r}")
        if not np.isfinite(self.floor) or not np.isfinite(self.threshold):
            raise MotionError("foot clean-up floor and threshold must be finite numbers")


@dataclass(frozen=True)
class LegJoints:
    """One leg's joint paths, (T, 3) each, Y-up metres."""

    hip: np.ndarray
    knee: np.ndarray
    ankle: np.ndarray
    toe: np.ndarray


def foot_contacts(motion: Motion, threshold: float = 0.5) -> np.ndarray:
    """(T, 4) bool contacts of (left ankle, left toe, right ankle, right toe).

    A joint is in contact when the features' contact channel says so (> ``threshold``; the
    official velocity rule on the joints when the motion has no features) *and* it is within
    ``CONTACT_HEIGHT`` of its own lowest height in the clip: the official rule alone (a
    squared displacement under 0.002 m² per frame, 0.9 m/s) also calls a heel that is
    lifting off, or a swing foot at the top of its arc, "in contact".
    """
    joints = motion.joints.astype(np.float64)[:, [*FOOT_LEFT, *FOOT_RIGHT]]
    if motion.features is not None:
        flags = np.asarray(motion.features[:, CONTACTS] > threshold)
    else:
        step = np.diff(joints, axis=0) * (FPS / motion.fps)  # displacement per 20 fps frame
        flags = np.sum(step**2, axis=-1) < FEET_THRESHOLD
        flags = np.concatenate([flags[:1], flags], axis=0)  # frame 0 takes frame 1's test
    height = joints[..., 1]
    low = height - np.percentile(height, LOW_PERCENTILE, axis=0) < CONTACT_HEIGHT
    return flags & low


def contact_spans(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` (end exclusive) of the runs of True in a (T,) bool array."""
    padded = np.concatenate([[False], np.asarray(flags, dtype=bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _span_pins(path: np.ndarray, flags: np.ndarray, floor: float,
               heights: np.ndarray | None = None) -> list[tuple[int, int, np.ndarray]]:
    """``(start, end, pin)`` per contact span: the path's mean over the span, at the mean of
    ``heights`` (T,) when given, lifted to the floor."""
    out = []
    for start, end in contact_spans(flags):
        pin = path[start:end].mean(axis=0)
        if heights is not None:
            pin[1] = heights[start:end].mean()
        pin[1] = max(pin[1], floor)
        out.append((start, end, pin))
    return out


def _pin_offsets(path: np.ndarray, flags: np.ndarray, pins: list[tuple[int, int, np.ndarray]],
                 blend: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) corrections that hold each span of ``path`` at its pin, faded out over
    ``blend`` frames on each side, and their (T,) weights."""
    num = len(path)
    offset = np.zeros_like(path)
    weight = np.zeros(num)
    for start, end, pin in pins:
        offset[start:end] = pin - path[start:end]
        weight[start:end] = 1.0
        for edge, side in ((start, -1), (end - 1, 1)):
            for k in range(1, blend + 1):
                t = edge + side * k
                if not 0 <= t < num or flags[t]:
                    break
                w = float(_smoothstep(np.array(1.0 - k / (blend + 1))))
                # Two fading pins can meet between close spans: keep the stronger one.
                if w > weight[t]:
                    weight[t] = w
                    offset[t] = w * (pin - path[edge])
    return offset, weight


def _match_toe_pins(ankle_pins: list[tuple[int, int, np.ndarray]],
                    toe_pins: list[tuple[int, int, np.ndarray]], leg: LegJoints,
                    floor: float) -> list[tuple[int, int, np.ndarray]]:
    """Toe pins moved to sit where the foot puts them from the ankle pin they overlap most:
    two means over different spans of a sliding foot disagree by centimetres, and a flat
    foot cannot hold both (the toe's height is kept)."""
    out = []
    for start, end, pin in toe_pins:
        best, overlap = None, 0
        for a_start, a_end, a_pin in ankle_pins:
            shared = min(end, a_end) - max(start, a_start)
            if shared > overlap:
                best, overlap = (max(start, a_start), min(end, a_end), a_pin), shared
        if best is not None:
            lo, hi, a_pin = best
            foot = (leg.toe[lo:hi] - leg.ankle[lo:hi]).mean(axis=0)
            pin = np.array([a_pin[0] + foot[0], pin[1], a_pin[2] + foot[2]])
            pin[1] = max(pin[1], floor)
        out.append((start, end, pin))
    return out


def _keep_length(anchor: np.ndarray, point: np.ndarray, length: np.ndarray,
                 floor: float) -> np.ndarray:
    """``point`` moved along its direction from ``anchor`` to distance ``length``, then, if
    it is below the floor, swung about the anchor up to the floor (distance kept)."""
    direction = point - anchor
    norm = np.linalg.norm(direction, axis=-1, keepdims=True)
    out = anchor + direction * (length[:, None] / np.maximum(norm, 1e-9))
    low = out[:, 1] < floor
    if np.any(low):
        drop = np.minimum(anchor[low, 1] - floor, length[low])
        flat = out[low] - anchor[low]
        flat[:, 1] = 0.0
        reach = np.sqrt(np.maximum(length[low] ** 2 - drop**2, 0.0))
        flat_norm = np.linalg.norm(flat, axis=-1, keepdims=True)
        flat = flat / np.maximum(flat_norm, 1e-9) * reach[:, None]
        out[low] = anchor[low] + flat
        out[low, 1] = np.maximum(anchor[low, 1] - drop, floor)
    return out


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray,
                target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New (knee, ankle) paths (T, 3) with the hip fixed, both bone lengths kept, the knee in
    its original bending plane, and the ankle at ``target`` (or as near as the leg reaches).

    A straight leg has no bending plane; the knee then bends towards its previous position's
    side of the hip-target line, or forward (+Z, the body's facing at rest) when there is none.
    """
    upper = np.linalg.norm(knee - hip, axis=-1)
    lower = np.linalg.norm(ankle - knee, axis=-1)
    reach = target - hip
    dist = np.linalg.norm(reach, axis=-1)
    dist_c = np.clip(dist, np.abs(upper - lower) + 1e-6, upper + lower - 1e-6)
    u = reach / np.maximum(dist, 1e-9)[:, None]
    side = knee - hip
    side = side - np.sum(side * u, axis=-1, keepdims=True) * u
    fallback = np.array([0.0, 0.0, 1.0]) - u[:, 2:3] * u
    norm = np.linalg.norm(side, axis=-1, keepdims=True)
    side = np.where(norm > 1e-6, side, fallback)
    side = side / np.maximum(np.linalg.norm(side, axis=-1, keepdims=True), 1e-9)
    cos_a = np.clip((upper**2 + dist_c**2 - lower**2) / (2.0 * upper * dist_c), -1.0, 1.0)
    new_knee = hip + upper[:, None] * (cos_a[:, None] * u + np.sqrt(1.0 - cos_a**2)[:, None] * side)
    new_ankle = hip + u * dist_c[:, None]
    return new_knee, new_ankle


def ankle_goals(leg: LegJoints, ankle_contact: np.ndarray, toe_contact: np.ndarray,
                params: FootParams,
                heights: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """(T, 3) where the pins want the ankle and the toe.

    ``heights``: (ankle, toe) (T,) heights the pins take instead of the joints' own (a
    retargeted foot is planted at hmu's foot height, scaled, not where its proportions put it).

    The foot is one piece: a joint that is not pinned moves with the other one's correction
    (a heel lifting off a planted toe turns about the toe, it does not slide it), and where
    the toe is pinned more firmly than the ankle the ankle goal is pulled to the foot's
    length from the toe's, so the IK that reaches the ankle leaves the toe on its pin.
    """
    ankle_h, toe_h = (None, None) if heights is None else heights
    ankle_pins = _span_pins(leg.ankle, ankle_contact, params.floor, ankle_h)
    toe_pins = _match_toe_pins(ankle_pins, _span_pins(leg.toe, toe_contact, params.floor, toe_h),
                               leg, params.floor)
    ankle_fix, ankle_w = _pin_offsets(leg.ankle, ankle_contact, ankle_pins, params.blend)
    toe_fix, toe_w = _pin_offsets(leg.toe, toe_contact, toe_pins, params.blend)
    ankle = leg.ankle + ankle_fix + (1.0 - ankle_w)[:, None] * toe_fix
    toe = leg.toe + toe_fix + (1.0 - toe_w)[:, None] * ankle_fix
    length = np.linalg.norm(leg.toe - leg.ankle, axis=-1, keepdims=True)
    back = ankle - toe
    from_toe = toe + back * (length / np.maximum(np.linalg.norm(back, axis=-1, keepdims=True),
                                                 1e-9))
    # The firmer pin anchors the foot: all the toe's way once it is 0.1 firmer, half-half
    # when both are held (their pins then agree to within the foot's wobble).
    share = np.clip(0.5 + ANCHOR_GAIN * (toe_w - ankle_w), 0.0, 1.0)[:, None]
    ankle = (1.0 - share) * ankle + share * from_toe
    ankle[:, 1] = np.maximum(ankle[:, 1], params.floor)
    return ankle, toe


def reach_drop(legs: list[LegJoints], goals: list[np.ndarray]) -> np.ndarray:
    """(T,) how far (m) to lower the hips so every leg reaches its ankle goal.

    A pinned foot under a body that keeps moving ends out of the leg's reach (the model's
    feet slide because its body outruns them; a retargeted leg may be shorter than hmu's for
    its hip height). Lowering the hips bends the knees instead of letting the foot slide. The
    dip is widened by ``DIP_FRAMES`` each side and smoothed, never less than needed.
    """
    drop = np.zeros(len(goals[0])) if goals else np.zeros(0)
    for leg, goal in zip(legs, goals, strict=True):
        reach = np.linalg.norm(leg.knee - leg.hip, axis=-1) + \
            np.linalg.norm(leg.ankle - leg.knee, axis=-1)
        rel = goal - leg.hip
        flat2 = rel[:, 0] ** 2 + rel[:, 2] ** 2
        # Lowered by d the hip reaches the goal when flat² + (rel_y + d)² <= reach²; a goal
        # further away than the reach horizontally is out of reach at any height (the IK
        # then stretches towards it), and the hip goes no lower than the goal.
        need = -rel[:, 1] - np.sqrt(np.maximum(reach**2 - flat2, 0.0))
        drop = np.maximum(drop, np.minimum(need, np.maximum(-rel[:, 1], 0.0)))
    drop = np.maximum(drop, 0.0)
    if not np.any(drop > 0):
        return drop
    padded = np.pad(drop, DIP_FRAMES, mode="edge")
    wide = np.max(np.stack([padded[k: k + len(drop)] for k in range(2 * DIP_FRAMES + 1)]), 0)
    return np.maximum(gaussian_filter1d(wide, DIP_SIGMA), drop)


def solve_leg(leg: LegJoints, ankle_goal: np.ndarray, toe_goal: np.ndarray,
              floor: float) -> LegJoints:
    """The leg with its ankle at ``ankle_goal`` (two-bone IK, hip fixed, as near as it
    reaches) and its toe towards ``toe_goal`` at the foot's length, both above ``floor``.

    Every bone keeps its per-frame length.
    """
    knee, ankle = two_bone_ik(leg.hip, leg.knee, leg.ankle, ankle_goal)
    foot_length = np.linalg.norm(leg.toe - leg.ankle, axis=-1)
    toe = _keep_length(ankle, toe_goal, foot_length, floor)
    return LegJoints(hip=leg.hip, knee=knee, ankle=ankle, toe=toe)


def clean_feet(motion: Motion, params: FootParams | None = None,
               contacts: np.ndarray | None = None) -> Motion:
    """The motion with planted feet (see the module docstring).

    Args:
        motion: the clip (joints Y-up, metres, floor at ``params.floor``).
        params: the clean-up settings (default :class:`FootParams`).
        contacts: (T, 4) bool contacts; default :func:`foot_contacts`.
    Returns:
        A new ``Motion``: the legs re-solved, the body above the hips lowered where a leg
        could not reach its planted foot, and otherwise unchanged; the features and any SMPL
        pose are dropped (they described the old joints) and the provenance records
        ``foot_cleanup``.
    Raises:
        MotionError: contacts of the wrong shape.
    """
    params = params or FootParams()
    flags = foot_contacts(motion, params.threshold) if contacts is None else np.asarray(contacts)
    if flags.shape != (motion.num_frames, 4):
        raise MotionError(f"contacts must be ({motion.num_frames}, 4), got {flags.shape}")
    # Start from the rigid skeleton's joints (FK of the SMPL pose, constant bone lengths): a
    # model's raw joints stretch their bones, and planting those would not plant the rig.
    joints = motion.smpl_pose().joints()[:, : motion.joints.shape[1]]
    legs = [LegJoints(*(joints[:, j] for j in leg)) for leg in LEGS]
    goals = [ankle_goals(leg, flags[:, 2 * s], flags[:, 2 * s + 1], params)
             for s, leg in enumerate(legs)]
    drop = reach_drop(legs, [g[0] for g in goals])
    joints[:, :, 1] -= drop[:, None]
    for (hip, knee, ankle, toe), (ankle_goal, toe_goal) in zip(LEGS, goals, strict=True):
        leg = LegJoints(*(joints[:, j] for j in (hip, knee, ankle, toe)))
        out = solve_leg(leg, ankle_goal, toe_goal, params.floor)
        joints[:, knee], joints[:, ankle], joints[:, toe] = out.knee, out.ankle, out.toe
    provenance = {**motion.provenance,
                  "foot_cleanup": {"blend": params.blend, "floor": params.floor,
                                   "contacts": "features" if motion.features is not None
                                   and contacts is None else "velocity",
                                   "max_hip_drop_m": round(float(drop.max(initial=0.0)), 4)}}
    return dataclasses.replace(motion, joints=joints, features=None, smpl=None,
                               provenance=provenance)


def foot_skating(joints: np.ndarray, contacts: np.ndarray, fps: float,
                 foot_joints: tuple[int, ...] = (*FOOT_LEFT, *FOOT_RIGHT)) -> float:
    """Mean speed (m/s) of the foot joints over the frames where they are in contact.

    Args:
        joints: (T, J, 3) positions (metres).
        contacts: (T, 4) bool, in ``foot_joints`` order.
        fps: frames per second.
        foot_joints: the joint index of each contact column.
    Returns:
        The mean of |x(t) - x(t-1)| · fps over joint-frames in contact at t-1 and t (0.0 when
        there are none).
    """
    pos = np.asarray(joints, dtype=np.float64)[:, list(foot_joints)]
    flags = np.asarray(contacts, dtype=bool)
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=-1) * fps
    both = flags[1:] & flags[:-1]
    return float(speed[both].mean()) if np.any(both) else 0.0


def lowest_foot_height(joints: np.ndarray,
                       foot_joints: tuple[int, ...] = (*FOOT_LEFT, *FOOT_RIGHT)) -> float:
    """The lowest height (Y) any foot joint reaches over the clip (m)."""
    return float(np.asarray(joints)[:, list(foot_joints), 1].min())

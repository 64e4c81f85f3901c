"""Forward kinematics of the HumanML3D 22-joint skeleton from anatomical joint angles.

The synthetic benchmark animates a body by angles, not positions, so that every clip keeps
constant bone lengths by construction (HumanML3D's own clips do, see
``shared/reference/humanml3d.md`` §2). Conventions:

* Local frame of every joint (and of the body, facing +z): x = the subject's left, y = up,
  z = forward; the rest pose is :data:`~hmu_core.motion.skeleton.TARGET_OFFSETS` (arms hanging
  down from the collars, feet pointing forward), legs made symmetric (:data:`RIG_OFFSETS`),
  scaled per clip.
* A joint's local rotation turns the bones that *start* at it (the hip rotates the thigh, the
  knee the shin, the pelvis the whole body), as in ordinary FK; the global rotation of a joint
  is its parent's global rotation times its local one.
* Angles are stored as four channels per joint, in radians: ``(pitch, roll, yaw, twist)``; the
  local quaternion is ``Ry(yaw) ⊗ Rz(roll) ⊗ Rx(pitch) ⊗ Ry(twist)``: twist about the bone's
  rest axis first, then pitch about x (sagittal), roll about z (frontal), and yaw about the
  parent's vertical axis last (a horizontal swing, e.g. of an arm held forward). Positive pitch
  moves an upward bone forward and a downward bone backward; positive roll moves a downward
  bone to the subject's left; positive yaw turns forward towards the left.
  :class:`Pose` converts anatomical words (flexion, abduction, ...) into these signs.

Root placement (:func:`place_root`): the heading is integrated from a yaw rate; the horizontal
root motion is the body-frame velocity integrated in that heading, blended (per frame, by a
``lock`` weight) with "foot locking", which moves the root so that the lowest foot stays where
it is on the floor: a walking body then advances by exactly what its stance leg pushes, and a
squatting body sits back over planted feet. The root height puts the lowest joint on the floor
(y = 0), plus a ballistic flight offset where the animator says the body is airborne.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmu_core.errors import MotionError
from hmu_core.motion import quaternion as quat
from hmu_core.motion.skeleton import FPS, NUM_JOINTS, PARENTS, TARGET_OFFSETS

PITCH, ROLL, YAW, TWIST = range(4)
LEFT, RIGHT = +1, -1
"""Side signs: the subject's left is +x."""

# Joint indices by anatomical role and side (+1 left, -1 right).
HIP = {LEFT: 1, RIGHT: 2}
KNEE = {LEFT: 4, RIGHT: 5}
ANKLE = {LEFT: 7, RIGHT: 8}
TOE = {LEFT: 10, RIGHT: 11}
COLLAR = {LEFT: 13, RIGHT: 14}
SHOULDER = {LEFT: 16, RIGHT: 17}
ELBOW = {LEFT: 18, RIGHT: 19}
WRIST = {LEFT: 20, RIGHT: 21}
SPINE = (3, 6, 9)
NECK = 12
FOOT_JOINTS = (7, 8, 10, 11)


def _rig_offsets() -> np.ndarray:
    """Target offsets with each leg bone set to the mean of its left and right lengths.

    The target skeleton's left leg is about 1 cm longer than its right one, so a body standing
    straight would keep its right foot in the air and every two-footed stance would slide on
    one foot. The rig animates symmetric legs; ``joints_to_features`` then gives every bone its
    exact target length (``uniform_skeleton`` keeps directions), so stored clips carry the
    official skeleton, as HumanML3D's own clips do.
    """
    offsets = TARGET_OFFSETS.astype(np.float64).copy()
    for left, right in ((4, 5), (7, 8)):
        mean = 0.5 * (offsets[left] + offsets[right])
        offsets[left] = offsets[right] = mean
    return offsets


RIG_OFFSETS = _rig_offsets()
"""(22, 3) metres: the offsets the rig's FK uses (target offsets, legs made symmetric)."""

_X = np.array([1.0, 0.0, 0.0])
_Y = np.array([0.0, 1.0, 0.0])
_Z = np.array([0.0, 0.0, 1.0])


def side_sign(side: str) -> int:
    """'left' -> +1, 'right' -> -1 (the subject's left is +x)."""
    if side not in ("left", "right"):
        raise MotionError(f"side must be 'left' or 'right', got {side!r}")
    return LEFT if side == "left" else RIGHT


def angles_to_quaternions(angles: np.ndarray) -> np.ndarray:
    """(..., 4) channels (pitch, roll, yaw, twist) in radians -> (..., 4) local quaternions."""
    q_yaw = quat.from_axis_angle_about(_Y, angles[..., YAW])
    q_roll = quat.from_axis_angle_about(_Z, angles[..., ROLL])
    q_pitch = quat.from_axis_angle_about(_X, angles[..., PITCH])
    q_twist = quat.from_axis_angle_about(_Y, angles[..., TWIST])
    return quat.qmul(quat.qmul(q_yaw, q_roll), quat.qmul(q_pitch, q_twist))


class Pose:
    """Joint-angle channels over time, (T, 22, 4) radians, written with anatomical helpers.

    Every helper *adds* to the channels, so an animator layers a neutral stance, a movement and
    small variations. Angle arguments are scalars or (T,) arrays in radians; ``s`` is a side
    sign (:data:`LEFT` = +1, :data:`RIGHT` = -1).
    """

    def __init__(self, n_frames: int):
        self.angles = np.zeros((n_frames, NUM_JOINTS, 4))

    @property
    def n(self) -> int:
        return self.angles.shape[0]

    def add(self, joint: int, channel: int, value: np.ndarray | float) -> None:
        self.angles[:, joint, channel] += value

    def blend(self, joint: int, channel: int, target: float, weight: np.ndarray) -> None:
        """Move a channel towards an absolute ``target`` (rad) by ``weight`` (T,) in [0, 1].

        Layers added before (stance, guard) are overridden where the weight is 1, so a strike
        reaches the same extension whatever the guard it starts from.
        """
        current = self.angles[:, joint, channel]
        self.angles[:, joint, channel] = current + np.asarray(weight) * (target - current)

    def hip(self, s: int, flex: np.ndarray | float = 0.0, abd: np.ndarray | float = 0.0,
            inward: np.ndarray | float = 0.0) -> None:
        """Thigh forward (flex), out to the side (abd), rotated toes-in (inward)."""
        self.add(HIP[s], PITCH, -np.asarray(flex))
        self.add(HIP[s], ROLL, s * np.asarray(abd))
        self.add(HIP[s], TWIST, -s * np.asarray(inward))

    def knee(self, s: int, flex: np.ndarray | float) -> None:
        """Shin bent backwards by ``flex``."""
        self.add(KNEE[s], PITCH, np.asarray(flex))

    def ankle(self, s: int, plantar: np.ndarray | float) -> None:
        """Toes pointed down by ``plantar`` (negative: toes up, dorsiflexion)."""
        self.add(ANKLE[s], PITCH, np.asarray(plantar))

    def collar(self, s: int, elevate: np.ndarray | float = 0.0,
               protract: np.ndarray | float = 0.0) -> None:
        """Shoulder girdle raised (shrug) or moved forward."""
        self.add(COLLAR[s], ROLL, s * np.asarray(elevate))
        self.add(COLLAR[s], YAW, -s * np.asarray(protract))

    def shoulder(self, s: int, flex: np.ndarray | float = 0.0, abd: np.ndarray | float = 0.0,
                 inward: np.ndarray | float = 0.0, ext_rot: np.ndarray | float = 0.0) -> None:
        """Upper arm forward (flex), out to the side (abd), swung across the body horizontally
        (inward, applied last), rotated outward about its own axis (ext_rot, applied first)."""
        self.add(SHOULDER[s], PITCH, -np.asarray(flex))
        self.add(SHOULDER[s], ROLL, s * np.asarray(abd))
        self.add(SHOULDER[s], YAW, -s * np.asarray(inward))
        self.add(SHOULDER[s], TWIST, s * np.asarray(ext_rot))

    def elbow(self, s: int, flex: np.ndarray | float) -> None:
        """Forearm bent forward (towards the upper arm's front) by ``flex``."""
        self.add(ELBOW[s], PITCH, -np.asarray(flex))

    def spine(self, bend: np.ndarray | float = 0.0, lean: np.ndarray | float = 0.0,
              twist: np.ndarray | float = 0.0) -> None:
        """Torso bent forward, leaned to the left, twisted to the left; spread over 3 joints."""
        for joint in SPINE:
            self.add(joint, PITCH, np.asarray(bend) / 3.0)
            self.add(joint, ROLL, -np.asarray(lean) / 3.0)
            self.add(joint, YAW, np.asarray(twist) / 3.0)

    def head(self, nod: np.ndarray | float = 0.0, turn: np.ndarray | float = 0.0) -> None:
        """Head tilted down (nod) and turned to the left."""
        self.add(NECK, PITCH, np.asarray(nod))
        self.add(NECK, YAW, np.asarray(turn))

    def pelvis(self, tilt: np.ndarray | float = 0.0, roll: np.ndarray | float = 0.0,
               yaw: np.ndarray | float = 0.0) -> None:
        """Whole body (relative to the heading) pitched forward, rolled left, turned left."""
        self.add(0, PITCH, np.asarray(tilt))
        self.add(0, ROLL, -np.asarray(roll))
        self.add(0, YAW, np.asarray(yaw))

    def hinge(self, angle: np.ndarray | float) -> None:
        """Bend forward at the hips: the pelvis pitches, the thighs stay where they were."""
        self.pelvis(tilt=angle)
        self.hip(LEFT, flex=angle)
        self.hip(RIGHT, flex=angle)


def forward_kinematics(local: np.ndarray, root: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Joint positions from local rotations.

    Args:
        local: (T, 22, 4) local quaternions; entry 0 is the body's global orientation.
        root: (T, 3) pelvis positions, metres.
        scale: bone-length factor applied to every offset of :data:`RIG_OFFSETS`.

    Returns:
        (T, 22, 3) float64 positions, metres, Y-up.
    """
    if local.ndim != 3 or local.shape[1:] != (NUM_JOINTS, 4):
        raise MotionError(f"local rotations must be (T, 22, 4), got {local.shape}")
    offsets = RIG_OFFSETS * float(scale)
    n = local.shape[0]
    glob = np.empty_like(local)
    pos = np.empty((n, NUM_JOINTS, 3))
    glob[:, 0] = local[:, 0]
    pos[:, 0] = root
    for j in range(1, NUM_JOINTS):
        parent = PARENTS[j]
        glob[:, j] = quat.qmul(glob[:, parent], local[:, j])
        pos[:, j] = pos[:, parent] + quat.qrot(glob[:, parent], np.broadcast_to(offsets[j], (n, 3)))
    return pos


@dataclass
class RootMotion:
    """What an animator says about the root, per joint frame (all arrays length T).

    Attributes:
        velocity: (T, 2) body-frame horizontal velocity (x = left, z = forward), m/s.
        yaw_rate: (T,) heading change, rad/s, positive = turning left (counter-clockwise seen
            from above).
        flight: (T,) height of the body above its grounded height, metres (0 on the ground).
        lock: (T,) in [0, 1]: 1 moves the root so the lowest foot stays planted, 0 uses
            ``velocity`` alone (flight phases).
    """

    velocity: np.ndarray
    yaw_rate: np.ndarray
    flight: np.ndarray
    lock: np.ndarray

    @classmethod
    def still(cls, n_frames: int) -> RootMotion:
        """Standing on planted feet: no commanded velocity, no turn, no flight."""
        return cls(np.zeros((n_frames, 2)), np.zeros(n_frames), np.zeros(n_frames),
                   np.ones(n_frames))


def place_root(angles: np.ndarray, motion: RootMotion, scale: float = 1.0,
               heading0: float = 0.0, fps: int = FPS) -> np.ndarray:
    """Joint positions of a clip: FK of ``angles`` with the root placed on the floor.

    Args:
        angles: (T, 22, 4) angle channels (see module docstring); joint 0 holds the body's
            orientation relative to the heading.
        motion: root velocity, yaw rate, flight offset and foot-lock weights, all length T.
        scale: bone-length factor of this clip.
        heading0: initial heading, radians (0 faces +z).
        fps: frames per second of the arrays.

    Returns:
        (T, 22, 3) float64 positions, metres, Y-up; the lowest joint of every grounded frame at
        y = 0 and the root starting at x = z = 0.

    Raises:
        MotionError: the arrays disagree in length or contain non-finite values.
    """
    n = angles.shape[0]
    for name, arr in (("velocity", motion.velocity), ("yaw_rate", motion.yaw_rate),
                      ("flight", motion.flight), ("lock", motion.lock)):
        if arr.shape[0] != n:
            raise MotionError(f"root {name} has {arr.shape[0]} frames, the angles have {n}")
        if not np.all(np.isfinite(arr)):
            raise MotionError(f"root {name} contains non-finite values")
    if not np.all(np.isfinite(angles)):
        raise MotionError("joint angles contain non-finite values")
    dt = 1.0 / fps
    heading = heading0 + np.concatenate([[0.0], np.cumsum(motion.yaw_rate[:-1]) * dt])
    q_heading = quat.from_axis_angle_about(_Y, heading)
    local = angles_to_quaternions(angles)
    local[:, 0] = quat.qmul(q_heading, local[:, 0])
    rel = forward_kinematics(local, np.zeros((n, 3)), scale)  # root at the origin

    # Horizontal root: commanded velocity (rotated into the world by the heading) blended per
    # frame with the displacement that keeps the lowest foot where it was.
    vel3 = np.stack([motion.velocity[:, 0], np.zeros(n), motion.velocity[:, 1]], axis=-1)
    step_vel = quat.qrot(q_heading, vel3) * dt
    height = -rel[:, :, 1].min(axis=1) + np.maximum(motion.flight, 0.0)
    planted = _planted_foot_joints(rel, rel[:, :, 1] + height[:, None])
    frames = np.arange(1, n)
    step_lock = np.zeros((n, 3))
    step_lock[1:] = -(rel[frames, planted] - rel[frames - 1, planted])
    lock = np.clip(motion.lock, 0.0, 1.0)[:, None]
    step = lock * step_lock + (1.0 - lock) * np.concatenate([np.zeros((1, 3)), step_vel[:-1]])
    step[:, 1] = 0.0
    root = np.cumsum(step, axis=0)
    root[:, 1] = height
    return rel + root[:, None, :]


CONTACT_HEIGHT = 0.03
"""A foot whose lower joint is within this height (m) of the floor can hold the body."""
LIFT_MARGIN = 0.005
"""A planted foot this much (m) higher than the other one is lifting: the other one holds."""
RISE_EPS = 0.001
"""A planted foot rising more than this (m) in one frame hands over to a resting other foot."""


def _planted_foot_joints(rel: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """For each step t-1 -> t (t >= 1), the foot joint that stays planted, (T-1,) indices.

    The planted foot is kept while it touches the floor (hysteresis), so a swing foot that
    brushes the floor does not drag the root; it hands over to the other foot when it lifts
    (clearly above the other foot, or rising while the other one rests on the floor). A new
    choice takes the foot that is lowest and moves least relative to the pelvis. Of the
    planted foot's two joints (ankle, toe), the one lower over both frames holds, so the body
    rolls over heel and toes.

    Args:
        rel: (T, 22, 3) joint positions relative to the root, metres.
        heights: (T, 22) joint heights above the floor, metres.
    """
    sides = ((7, 10), (8, 11))
    foot = np.stack([heights[:, list(pair)].min(axis=1) for pair in sides], axis=1)  # (T, 2)
    slide = np.stack([np.linalg.norm(np.diff(rel[:, pair[0], ::2], axis=0), axis=-1)
                      for pair in sides], axis=1)  # (T-1, 2) horizontal motion vs the root
    touching = foot < CONTACT_HEIGHT
    current = -1  # not chosen yet
    out = np.empty(len(heights) - 1, dtype=np.int64)
    for t in range(1, len(heights)):
        other = 1 - max(current, 0)
        rise = foot[t] - foot[t - 1]
        other_holds = foot[t, other] < LIFT_MARGIN and rise[other] <= RISE_EPS
        if (current < 0 or foot[t, current] > foot[t, other] + LIFT_MARGIN
                or not (touching[t, current] and touching[t - 1, current])
                or (rise[current] > RISE_EPS and other_holds)):
            cost = np.maximum(foot[t], foot[t - 1]) + slide[t - 1]
            current = int(np.argmin(cost))
        ankle, toe = sides[current]
        both = np.maximum(heights[t - 1], heights[t])
        out[t - 1] = ankle if both[ankle] <= both[toe] else toe
    return out

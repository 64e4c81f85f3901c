"""SMPL-topology inverse and forward kinematics on joint positions (numpy only).

The 24-joint SMPL body is the 22 HumanML3D joints plus ``left_hand`` (child of ``left_wrist``)
and ``right_hand`` (child of ``right_wrist``), in SMPL order (``skeleton.SMPL_JOINT_NAMES``).

Conventions (the same as SMPL's):

* Y-up, metres, the body in its rest pose faces +Z and its left side is +X.
* ``local_rotations[:, j]`` is joint j's rotation relative to its parent, as (w, x, y, z) unit
  quaternions. The world rotation is ``G_j = G_parent(j) ⊗ L_j`` (``G_0 = L_0``, the root
  orientation), and ``p_j = p_parent(j) + G_parent(j) · rest_offsets[j]``;
  ``p_0 = root_translation + rest_offsets[0]`` (our rest has ``rest_offsets[0] = 0``, so the
  root translation is the pelvis position).
* The rotations are relative to *our* T-pose rest skeleton (:func:`rest_offsets`), not to the
  HumanML3D IK's raw offsets (arms down, head forward): the 6-D rotations inside the 263-d
  HumanML3D features are not SMPL rotations and are never used here.

Rest skeleton (T-pose) directions, unit vectors in the body frame. Torso directions are rounded
from the neutral SMPL template's joint locations (approximate, by design); limbs are idealised:

=================  ==================  =====================================================
joint              direction           note
=================  ==================  =====================================================
left/right_hip     (±0.61, -0.79, 0)   SMPL: hips ~52° below the pelvis, slightly behind
spine1             (0, 0.98, -0.21)    SMPL: up, leaning back
spine2             (0.05, 0.98, 0.20)  SMPL: up, leaning forward
spine3             (-0.07, 1.0, -0.04) SMPL: up
neck               (0, 0.99, -0.13)    SMPL: up, slightly back
left/right_collar  (±0.59, 0.80, -0.1) SMPL: up and out from spine3
head               (0, 0.80, 0.60)     up and forward, as the HumanML3D head joint
knees, ankles      (0, -1, 0)          legs straight down
feet               (0, -0.42, 0.91)    forward, ~25° down (SMPL: ~25°)
shoulders..hands   (±1, 0, 0)          arms horizontal along ±X (collar to hand)
=================  ==================  =====================================================

Bone lengths come from the motion itself (median over frames), so forward kinematics of the
inverse kinematics reproduces the joints. The pelvis and spine3 each drive three bones with one
rotation; for FK to be exact their children's offsets are measured from the motion in the body
frame (median over frames, ``fit_torso=True``, the default), which for HumanML3D data (made from
SMPL bodies) are SMPL-like anyway. With a user-provided rest (e.g. a real SMPL model's joint
template via :func:`offsets_from_template`) the torso is fitted in the least-squares sense and
FK reproduces bone *directions*, not the motion's bone lengths.

Inverse kinematics (:func:`inverse_kinematics`):

* pelvis and spine3: a full frame, the least-squares (Kabsch) rotation of their three rest child
  offsets onto the observed ones (hips + spine for the pelvis, collars + neck for spine3); this is
  the body frame of the across (hips/collars) and up vectors, so a 360° turn is continuous;
* every other joint with one child: the shortest swing, from the parent's frame, that takes the
  rest bone onto the observed bone (exact bone directions);
* thighs (hips) and upper arms (shoulders): additionally twisted about the bone so that the knee
  bends about its local +X axis (flexion positive, as SMPL) and the elbow about its local Y axis
  (left elbow about -Y, right elbow about +Y: with T-pose arms along ±X a bend about the
  elbow's local X would be a twist and move nothing, so Y is SMPL's flexion axis there). The
  twist is blended in with the bend angle (none below 10°, full above 30°, smoothstep), so a
  nearly straight limb gets plain swing and there is no flip;
* wrists, hands, head and feet: identity local rotation (nothing observed beyond them);
* quaternion signs are made continuous over time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmu_core.errors import MotionError
from hmu_core.motion import quaternion
from hmu_core.motion.skeleton import (
    BONE_LENGTHS,
    NUM_JOINTS,
    NUM_SMPL_JOINTS,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
)

JOINT_NAMES = SMPL_JOINT_NAMES
PARENTS = SMPL_PARENTS
LEFT_HAND, RIGHT_HAND = 22, 23
HAND_LENGTH = 0.08
"""Distance (m) of each hand joint beyond its wrist in the rest skeleton."""

PELVIS, SPINE3 = 0, 9
PELVIS_CHILDREN = (1, 2, 3)  # left_hip, right_hip, spine1
SPINE3_CHILDREN = (12, 13, 14)  # neck, left_collar, right_collar

# (limb root, middle joint, end joint, rest bend axis) for the twist choice.
LIMBS = (
    (1, 4, 7, (1.0, 0.0, 0.0)),  # left thigh: the knee bends about +X
    (2, 5, 8, (1.0, 0.0, 0.0)),  # right thigh
    (16, 18, 20, (0.0, -1.0, 0.0)),  # left upper arm: the elbow bends about -Y
    (17, 19, 21, (0.0, 1.0, 0.0)),  # right upper arm: the elbow bends about +Y
)
TWIST_BLEND_DEG = (10.0, 30.0)
"""Bend angles (degrees) between which the bend-aligned twist is blended in."""

_DIRECTIONS = np.array(
    [
        [0.0, 0.0, 0.0],  # 0 pelvis (root)
        [0.61, -0.79, 0.0],  # 1 left_hip
        [-0.61, -0.79, 0.0],  # 2 right_hip
        [0.0, 0.98, -0.21],  # 3 spine1
        [0.0, -1.0, 0.0],  # 4 left_knee
        [0.0, -1.0, 0.0],  # 5 right_knee
        [0.05, 0.98, 0.20],  # 6 spine2
        [0.0, -1.0, 0.0],  # 7 left_ankle
        [0.0, -1.0, 0.0],  # 8 right_ankle
        [-0.07, 1.0, -0.04],  # 9 spine3
        [0.0, -0.42, 0.91],  # 10 left_foot
        [0.0, -0.42, 0.91],  # 11 right_foot
        [0.0, 0.99, -0.13],  # 12 neck
        [0.59, 0.80, -0.10],  # 13 left_collar
        [-0.59, 0.80, -0.10],  # 14 right_collar
        [0.0, 0.80, 0.60],  # 15 head
        [1.0, 0.0, 0.0],  # 16 left_shoulder
        [-1.0, 0.0, 0.0],  # 17 right_shoulder
        [1.0, 0.0, 0.0],  # 18 left_elbow
        [-1.0, 0.0, 0.0],  # 19 right_elbow
        [1.0, 0.0, 0.0],  # 20 left_wrist
        [-1.0, 0.0, 0.0],  # 21 right_wrist
        [1.0, 0.0, 0.0],  # 22 left_hand
        [-1.0, 0.0, 0.0],  # 23 right_hand
    ]
)
REST_DIRECTIONS = quaternion.normalize(_DIRECTIONS)
"""(24, 3) unit rest bone directions of the T-pose (row 0 is zero)."""


def _children(parents: tuple[int, ...]) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            kids[p].append(j)
    return kids


CHILDREN = _children(SMPL_PARENTS)


@dataclass(frozen=True, eq=False)
class SMPLPose:
    """SMPL-topology pose sequence.

    ``local_rotations`` (T, 24, 4) unit quaternions (w, x, y, z), relative to the parent;
    ``root_translation`` (T, 3) pelvis position (m, Y-up); ``rest_offsets`` (24, 3) bone offsets
    of the rest skeleton from each joint's parent (row 0 is added to the root translation).
    """

    local_rotations: np.ndarray
    root_translation: np.ndarray
    rest_offsets: np.ndarray

    def __post_init__(self) -> None:
        rot = np.asarray(self.local_rotations, dtype=np.float64)
        trans = np.asarray(self.root_translation, dtype=np.float64)
        rest = np.asarray(self.rest_offsets, dtype=np.float64)
        if rot.ndim != 3 or rot.shape[1:] != (NUM_SMPL_JOINTS, 4):
            raise MotionError(f"local_rotations must be (T, 24, 4), got {rot.shape}")
        if trans.shape != (rot.shape[0], 3):
            raise MotionError(
                f"root_translation must be ({rot.shape[0]}, 3) to match the rotations, "
                f"got {trans.shape}"
            )
        _check_rest(rest)
        for name, arr in (("local_rotations", rot), ("root_translation", trans)):
            if not np.all(np.isfinite(arr)):
                raise MotionError(f"SMPLPose.{name} contains NaN or infinite values")
        for name, arr in (("local_rotations", rot), ("root_translation", trans),
                          ("rest_offsets", rest)):  # fmt: skip
            arr = arr.copy()
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def num_frames(self) -> int:
        return int(self.local_rotations.shape[0])

    def axis_angle(self) -> np.ndarray:
        """(T, 24, 3) local rotations as axis-angle vectors (radians, angle in [0, pi])."""
        return quaternion.to_axis_angle(self.local_rotations)

    def global_rotations(self) -> np.ndarray:
        """(T, 24, 4) world rotations G_j = G_parent ⊗ L_j."""
        return _global_rotations(self.local_rotations)

    def joints(self) -> np.ndarray:
        """(T, 24, 3) world joint positions by forward kinematics."""
        return forward_kinematics(self)


def _check_rest(rest: np.ndarray) -> np.ndarray:
    rest = np.asarray(rest, dtype=np.float64)
    if rest.shape != (NUM_SMPL_JOINTS, 3):
        raise MotionError(f"rest offsets must be (24, 3), got {rest.shape}")
    if not np.all(np.isfinite(rest)):
        raise MotionError("rest offsets contain NaN or infinite values")
    return rest


def _check_joints(joints: np.ndarray) -> np.ndarray:
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise MotionError(f"joints must be (T, 22, 3), got {joints.shape}")
    if joints.shape[0] < 1:
        raise MotionError("joints must have at least one frame")
    if not np.all(np.isfinite(joints)):
        raise MotionError("joints contain NaN or infinite values")
    return joints.astype(np.float64)


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(22,) median over frames of each joint's distance to its parent (0 for the pelvis)."""
    joints = _check_joints(joints)
    parents = np.array(SMPL_PARENTS[1:NUM_JOINTS])
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, parents], axis=-1)
    return np.concatenate([[0.0], np.median(lengths, axis=0)])


def rest_offsets(bone_lengths: np.ndarray | None = None) -> np.ndarray:
    """(24, 3) T-pose rest offsets: the template directions times ``bone_lengths`` (22,).

    ``None`` uses the HumanML3D target skeleton's lengths. The hands lie ``HAND_LENGTH`` beyond
    the wrists; row 0 (the root) is zero.
    """
    if bone_lengths is None:
        bone_lengths = BONE_LENGTHS
    lengths = np.asarray(bone_lengths, dtype=np.float64)
    if lengths.shape != (NUM_JOINTS,):
        raise MotionError(f"bone_lengths must be (22,), got {lengths.shape}")
    if not np.all(np.isfinite(lengths)) or np.any(lengths[1:] <= 0):
        raise MotionError("bone_lengths must be finite and positive (except the pelvis entry)")
    full = np.concatenate([lengths, [HAND_LENGTH, HAND_LENGTH]])
    offsets = REST_DIRECTIONS * full[:, None]
    offsets[0] = 0.0
    return offsets


def rest_positions(offsets: np.ndarray | None = None) -> np.ndarray:
    """(24, 3) rest joint positions of a skeleton with these rest ``offsets`` (default:
    :func:`rest_offsets`), standing on the floor: the lowest joint at height 0."""
    offsets = rest_offsets() if offsets is None else np.asarray(offsets, dtype=np.float64)
    heads = np.zeros_like(offsets)
    for joint, parent in enumerate(SMPL_PARENTS):
        heads[joint] = (heads[parent] if parent >= 0 else 0.0) + offsets[joint]
    heads[:, 1] -= heads[:, 1].min()
    return heads


def offsets_from_template(template: np.ndarray) -> np.ndarray:
    """(24, 3) rest offsets from absolute rest joint positions (24, 3), e.g. an SMPL model's
    joint template ``J_regressor @ v_template``; the root row is set to zero."""
    template = np.asarray(template, dtype=np.float64)
    if template.shape != (NUM_SMPL_JOINTS, 3):
        raise MotionError(f"joint template must be (24, 3), got {template.shape}")
    parents = np.array(SMPL_PARENTS)
    offsets = template - template[np.maximum(parents, 0)]
    offsets[0] = 0.0
    return _check_rest(offsets)


def _body_frame(across: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(..., 3, 3) orthonormal frames with columns [x=across, y≈up, z=x×y (forward)]."""
    x = quaternion.normalize(across)
    z = quaternion.normalize(np.cross(x, up))
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def rest_offsets_from_joints(joints: np.ndarray, fit_torso: bool = True) -> np.ndarray:
    """(24, 3) rest skeleton for a motion: template directions, the motion's median bone lengths.

    With ``fit_torso`` the offsets of the pelvis's and spine3's children are the median, over
    frames, of the observed offsets expressed in the body frame (across = left minus right
    hip/collar, up = spine1/neck), so that one rotation per torso joint reproduces them.
    """
    joints = _check_joints(joints)
    offsets = rest_offsets(np.maximum(bone_lengths(joints), 1e-6))
    if fit_torso:
        for root, (a, b, c) in ((PELVIS, PELVIS_CHILDREN), (SPINE3, SPINE3_CHILDREN)):
            # across = left minus right, up = the spine child (a for the pelvis, a for spine3).
            left, right, up = (a, b, c) if root == PELVIS else (b, c, a)
            frame = _body_frame(joints[:, left] - joints[:, right], joints[:, up] - joints[:, root])
            for child in (a, b, c):
                local = np.einsum("tji,tj->ti", frame, joints[:, child] - joints[:, root])
                offsets[child] = np.median(local, axis=0)
    return offsets


def _kabsch(rest: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(T, 4) rotations minimising sum_i |R rest_i - target_ti|^2; rest (K,3), target (T,K,3)."""
    h = np.einsum("ki,tkj->tij", rest, target)
    u, _, vt = np.linalg.svd(h)
    v = np.swapaxes(vt, -1, -2)
    ut = np.swapaxes(u, -1, -2)
    d = np.sign(np.linalg.det(v @ ut))
    d = np.where(d == 0, 1.0, d)
    diag = np.zeros_like(h)
    diag[:, 0, 0] = 1.0
    diag[:, 1, 1] = 1.0
    diag[:, 2, 2] = d
    return quaternion.from_matrix(v @ diag @ ut)


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, 4) shortest-arc rotations taking directions ``a`` to ``b`` (T, 3), robust version of
    ``qbetween``: exactly opposite directions give a half turn about an axis perpendicular to
    ``a``; a zero-length vector gives the identity."""
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    nb = np.linalg.norm(b, axis=-1, keepdims=True)
    raw = np.concatenate([na * nb + np.sum(a * b, axis=-1, keepdims=True), np.cross(a, b)], -1)
    size = np.linalg.norm(raw, axis=-1, keepdims=True)
    degenerate_len = (na * nb) < 1e-18
    opposite = (size <= 1e-9 * np.maximum(na * nb, 1e-300)) & ~degenerate_len
    # A basis vector least aligned with a, crossed with a, is perpendicular to it.
    basis = np.eye(3)[np.argmin(np.abs(a), axis=-1)]
    half_turn = np.concatenate([np.zeros_like(na), quaternion.normalize(np.cross(a, basis))],
                               axis=-1)
    q = raw / np.maximum(size, 1e-300)
    q = np.where(opposite, half_turn, q)
    return np.where(degenerate_len, quaternion.identity(a.shape[:-1]), q)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def inverse_kinematics(joints: np.ndarray, rest: np.ndarray | None = None) -> SMPLPose:
    """SMPL local rotations reproducing ``joints`` (T, 22, 3) (metres, Y-up).

    ``rest`` (24, 3) rest offsets; ``None`` builds them from the motion
    (:func:`rest_offsets_from_joints`), which makes FK exact on bone directions and lengths.
    """
    pos = _check_joints(joints)
    rest = rest_offsets_from_joints(pos) if rest is None else _check_rest(rest)
    num_frames = pos.shape[0]
    glob = quaternion.identity((num_frames, NUM_SMPL_JOINTS))
    limbs = {root: (mid, end, np.array(axis)) for root, mid, end, axis in LIMBS}
    lo, hi = np.radians(TWIST_BLEND_DEG)

    for j in range(NUM_SMPL_JOINTS):
        parent = SMPL_PARENTS[j]
        parent_rot = glob[:, parent] if parent >= 0 else quaternion.identity((num_frames,))
        kids = [c for c in CHILDREN[j] if c < NUM_JOINTS]
        if j in (PELVIS, SPINE3):
            children = list(PELVIS_CHILDREN if j == PELVIS else SPINE3_CHILDREN)
            glob[:, j] = _kabsch(rest[children], pos[:, children] - pos[:, j : j + 1])
            continue
        if len(kids) != 1:  # wrists (hands are not observed), hands, head, feet
            glob[:, j] = parent_rot
            continue
        child = kids[0]
        bone = pos[:, child] - pos[:, j]
        swung = quaternion.qrot(parent_rot, np.broadcast_to(rest[child], bone.shape))
        rot = quaternion.qmul(_swing(swung, bone), parent_rot)
        if j in limbs:
            mid, end, axis = limbs[j]
            u = quaternion.normalize(bone)
            v = quaternion.normalize(pos[:, end] - pos[:, mid])
            bend = np.arccos(np.clip(np.sum(u * v, axis=-1), -1.0, 1.0))
            normal = quaternion.normalize(np.cross(u, v))
            current = quaternion.qrot(rot, np.broadcast_to(axis, bone.shape).astype(np.float64))
            current = quaternion.normalize(current - np.sum(current * u, -1, keepdims=True) * u)
            phi = np.arctan2(
                np.sum(np.cross(current, normal) * u, axis=-1), np.sum(current * normal, axis=-1)
            )
            weight = _smoothstep((bend - lo) / (hi - lo))
            twist = quaternion.from_axis_angle(u * (weight * phi)[:, None])
            rot = quaternion.qmul(twist, rot)
        glob[:, j] = rot

    local = np.empty_like(glob)
    local[:, 0] = glob[:, 0]
    parents = np.array(SMPL_PARENTS[1:])
    local[:, 1:] = quaternion.qmul(quaternion.qinv(glob[:, parents]), glob[:, 1:])
    local[:, LEFT_HAND] = quaternion.identity((num_frames,))
    local[:, RIGHT_HAND] = quaternion.identity((num_frames,))
    local = quaternion.normalize(local)
    local[0] = np.where(local[0, :, :1] < 0, -local[0], local[0])  # first frame: w >= 0
    local = quaternion.make_continuous(local, axis=0)
    return SMPLPose(local_rotations=local, root_translation=pos[:, 0].copy(), rest_offsets=rest)


def _global_rotations(local: np.ndarray) -> np.ndarray:
    glob = np.empty_like(local)
    glob[..., 0, :] = local[..., 0, :]
    for j in range(1, local.shape[-2]):
        glob[..., j, :] = quaternion.qmul(glob[..., SMPL_PARENTS[j], :], local[..., j, :])
    return glob


def forward_kinematics_arrays(
    local_rotations: np.ndarray, root_translation: np.ndarray, rest: np.ndarray
) -> np.ndarray:
    """(..., 24, 3) world joint positions from local quaternions (..., 24, 4), root translation
    (..., 3) and rest offsets (24, 3)."""
    local = quaternion.normalize(np.asarray(local_rotations, dtype=np.float64))
    trans = np.asarray(root_translation, dtype=np.float64)
    rest = _check_rest(rest)
    if local.shape[-2:] != (NUM_SMPL_JOINTS, 4) or trans.shape != (*local.shape[:-2], 3):
        raise MotionError(
            f"forward kinematics needs rotations (..., 24, 4) and translation (..., 3), got "
            f"{local.shape} and {trans.shape}"
        )
    glob = _global_rotations(local)
    pos = np.empty((*local.shape[:-2], NUM_SMPL_JOINTS, 3))
    pos[..., 0, :] = trans + rest[0]
    for j in range(1, NUM_SMPL_JOINTS):
        p = SMPL_PARENTS[j]
        pos[..., j, :] = pos[..., p, :] + quaternion.qrot(
            glob[..., p, :], np.broadcast_to(rest[j], trans.shape)
        )
    return pos


def forward_kinematics(pose: SMPLPose) -> np.ndarray:
    """(T, 24, 3) world joint positions of ``pose`` (the first 22 are the HumanML3D joints)."""
    return forward_kinematics_arrays(pose.local_rotations, pose.root_translation, pose.rest_offsets)


def axis_angle(pose: SMPLPose) -> np.ndarray:
    """(T, 24, 3) axis-angle local rotations, root orientation first (SMPL ``poses`` layout)."""
    return pose.axis_angle()

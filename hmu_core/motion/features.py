"""HumanML3D 263-d motion features: joints -> features and features -> joints, in numpy.

A reimplementation of the official ``process_file``, ``uniform_skeleton``,
``recover_root_rot_pos``, ``recover_from_ric`` and ``recover_from_rot`` of
github.com/EricGuo5513/HumanML3D@9176e8f (``motion_representation.ipynb``, ``common/skeleton.py``,
``common/quaternion.py``), quirks included; ``shared/reference/humanml3d.md`` §3-§5 and §11 give
the equations. Reproduced on purpose, because the released datasets, statistics and checkpoints
were made with them:

* the IK root direction uses the hip pair *swapped* (HumanML3D issues #55/#107/#112/#119);
* that direction is Gaussian-smoothed (sigma 20 frames, ``mode='nearest'``) and r(0) is identity;
* the root yaw velocity is ``arcsin`` of the y-part of ``r(t+1) r(t)^-1`` with no hemisphere fix,
  so its sign is wrong on frames where the heading passes 180 degrees from frame 0;
* foot contacts test velocity only (the height test is commented out in the official code);
* the official quaternion helpers run in float32 (through torch); so do ours, cast at the same
  points, so that features and recovered joints agree with the official ones to float32 round-off.

Not reproduced: the official ``qbetween`` calls ``torch.cross`` without ``dim``, which crosses
along the wrong axis for a 3-frame clip (reference §11 item 10); we always cross along the last
axis. Where the official code divides by zero (exactly opposite directions in ``qbetween``) and
returns NaN, we return a 180-degree turn instead (about +y when that is perpendicular).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from hmu_core.errors import MotionError
from hmu_core.motion import quaternion
from hmu_core.motion.filters import gaussian_filter1d
from hmu_core.motion.skeleton import (
    FACE_JOINTS,
    FEATURE_DIM,
    FEET_THRESHOLD,
    FOOT_LEFT,
    FOOT_RIGHT,
    IK_SMOOTH_SIGMA,
    KINEMATIC_CHAIN,
    LEG_SCALE_JOINTS,
    NUM_JOINTS,
    PARENTS,
    RAW_OFFSETS,
    TARGET_OFFSETS,
)

# Layout of the 263-d vector (reference §3).
ROOT_ROT_VEL = slice(0, 1)
ROOT_VEL = slice(1, 3)
ROOT_Y = slice(3, 4)
RIC = slice(4, 4 + (NUM_JOINTS - 1) * 3)
ROT6D = slice(RIC.stop, RIC.stop + (NUM_JOINTS - 1) * 6)
LOCAL_VEL = slice(ROT6D.stop, ROT6D.stop + NUM_JOINTS * 3)
CONTACTS = slice(LOCAL_VEL.stop, LOCAL_VEL.stop + 4)
assert CONTACTS.stop == FEATURE_DIM

FEATURE_GROUPS: dict[str, slice] = {
    "root_rot_vel": ROOT_ROT_VEL,
    "root_vel": ROOT_VEL,
    "root_y": ROOT_Y,
    "ric": RIC,
    "rot6d": ROT6D,
    "local_vel": LOCAL_VEL,
    "contacts": CONTACTS,
}
"""Named slices of the feature vector, in order."""

CONTACT_JOINTS = (*FOOT_LEFT, *FOOT_RIGHT)
"""Joints of the four contact dims: left ankle, left foot, right ankle, right foot."""

_F32 = np.float32
_Z_AXIS = np.array([0.0, 0.0, 1.0])
_Y_AXIS = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class ProcessedJoints:
    """Every stage of the official ``process_file`` for one clip of T frames."""

    uniform_joints: np.ndarray
    """(T, 22, 3) float64: ``uniform_skeleton`` output (target bone lengths, scaled root)."""
    global_positions: np.ndarray
    """(T, 22, 3) float32: on the floor, root xz of frame 0 at the origin, frame 0 facing +z."""
    local_positions: np.ndarray
    """(T, 22, 3) float32: root-xz-relative and rotated by r(t) (``get_rifke``; y absolute)."""
    root_quat: np.ndarray
    """(T, 4) float32: IK root rotation r(t), world -> facing frame; r(0) is identity."""
    features: np.ndarray
    """(T-1, 263) float32: the HumanML3D feature vector (``new_joint_vecs``)."""


# ---------------------------------------------------------------------------------------------
# float32 quaternion steps, cast where the official ``*_np`` helpers cast (torch ``.float()``)


def _qbetween32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Official ``qbetween_np`` in float32; exactly opposite vectors give a 180-degree turn."""
    a, b = np.broadcast_arrays(np.asarray(a, _F32), np.asarray(b, _F32))
    q = quaternion.qbetween(a, b)
    bad = np.linalg.norm(q, axis=-1) < 0.5
    if np.any(bad):
        # The official code returns NaN here. Turn 180 degrees about an axis perpendicular to a:
        # +y when a is horizontal (a heading), so the body is never flipped upside down.
        a_bad = quaternion.normalize(a[bad].astype(np.float64))
        axis = np.where(
            np.abs(a_bad[:, 1:2]) < 1e-6, _Y_AXIS,
            quaternion.normalize(np.cross(a_bad, [1.0, 0.0, 0.0])),
        )
        axis = np.where(np.linalg.norm(axis, axis=-1, keepdims=True) < 0.5, _Y_AXIS, axis)
        q = q.copy()
        q[bad] = np.concatenate([np.zeros((len(axis), 1)), axis], axis=-1)
    return q


def _qmul32(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    return quaternion.qmul(np.asarray(q, _F32), np.asarray(r, _F32))


def _qrot32(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    q, v = np.asarray(q, _F32), np.asarray(v, _F32)
    lead = np.broadcast_shapes(q.shape[:-1], v.shape[:-1])
    return quaternion.qrot(np.broadcast_to(q, (*lead, 4)), np.broadcast_to(v, (*lead, 3)))


def _qinv32(q: np.ndarray) -> np.ndarray:
    return quaternion.qinv(np.asarray(q, _F32))


def _quat_to_cont6d32(q: np.ndarray) -> np.ndarray:
    """Official ``quaternion_to_cont6d_np``: first two columns of the rotation matrix."""
    q = np.asarray(q, _F32)
    # The official quaternion_to_matrix scales by 2/|q|^2, i.e. it normalises implicitly.
    return quaternion.matrix_to_cont6d(quaternion.to_matrix(quaternion.normalize(q)))


def _unit_rows(v: np.ndarray) -> np.ndarray:
    """``v / sqrt(sum(v**2))`` in v's own dtype, as the official code normalises."""
    return v / np.sqrt(np.sum(v * v, axis=-1, keepdims=True))


# ---------------------------------------------------------------------------------------------
# Skeleton IK / FK (official ``Skeleton.inverse_kinematics_np`` / ``forward_kinematics_np``)


def _inverse_kinematics(joints: np.ndarray, smooth_forward: bool) -> np.ndarray:
    """Per-joint local IK quaternions (T, 22, 4) float32; [:, 0] is the root rotation r(t)."""
    # The official function unpacks face_joint_indx = (2, 1, 17, 16) as
    # (l_hip, r_hip, sdr_r, sdr_l): the hip pair is swapped relative to process_file (quirk).
    l_hip, r_hip, sdr_r, sdr_l = FACE_JOINTS
    across = (joints[:, r_hip] - joints[:, l_hip]) + (joints[:, sdr_r] - joints[:, sdr_l])
    across = _unit_rows(across)
    forward = quaternion.cross(_Y_AXIS, across.astype(np.float64))
    if smooth_forward:
        forward = gaussian_filter1d(forward, IK_SMOOTH_SIGMA, axis=0)
    forward = _unit_rows(forward)
    root_quat = _qbetween32(forward, _Z_AXIS)
    root_quat[0] = (1.0, 0.0, 0.0, 0.0)

    quat = np.zeros((*joints.shape[:-1], 4), dtype=_F32)
    quat[:, 0] = root_quat
    # Each bone's turn from its rest direction, all bones at once (elementwise, so the same
    # numbers as bone by bone, at a fraction of the calls); column j - 1 is joint j's bone.
    bone = _unit_rows(joints[:, 1:] - joints[:, list(PARENTS[1:])])
    rot_u_v = _qbetween32(RAW_OFFSETS[1:], bone)
    for chain in KINEMATIC_CHAIN:
        # Every chain restarts from the root rotation, the arm chains (from spine3) included.
        rot = root_quat
        for child in chain[1:]:
            local = _qmul32(_qinv32(rot), rot_u_v[:, child - 1])
            quat[:, child] = local
            rot = _qmul32(rot, local)
    return quat


def _forward_kinematics(quat: np.ndarray, root_pos: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Joint positions (T, 22, 3) float64 from local quaternions, root positions and offsets."""
    joints = np.zeros((*quat.shape[:-1], 3), dtype=np.float64)
    joints[:, 0] = root_pos
    offsets = np.asarray(offsets, _F32)
    for chain in KINEMATIC_CHAIN:
        rot = quat[:, 0]
        for parent, child in itertools.pairwise(chain):
            rot = _qmul32(rot, quat[:, child])
            joints[:, child] = _qrot32(rot, offsets[child]) + joints[:, parent]
    return joints


def _offsets_from_joints(joints0: np.ndarray) -> np.ndarray:
    """Official ``Skeleton.get_offsets_joints``: raw direction times bone length (22, 3) f32."""
    lengths = np.linalg.norm(joints0[1:] - joints0[list(PARENTS[1:])], axis=-1)
    offsets = RAW_OFFSETS.astype(_F32).copy()
    offsets[1:] *= lengths.astype(_F32)[:, None]
    return offsets


# ---------------------------------------------------------------------------------------------
# Validation


def _check_joints(positions: np.ndarray, what: str, min_frames: int) -> np.ndarray:
    arr = np.asarray(positions)
    if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 3) or arr.shape[0] < min_frames:
        raise MotionError(
            f"{what}: joint positions must have shape (T, {NUM_JOINTS}, 3) with T >= "
            f"{min_frames}, got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.number):
        raise MotionError(f"{what}: joint positions must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise MotionError(
            f"{what}: joint positions of shape {arr.shape} contain NaN or inf; expected finite "
            f"values of shape (T, {NUM_JOINTS}, 3)"
        )
    return arr


def _check_features(features: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(features)
    if arr.ndim < 2 or arr.shape[-1] != FEATURE_DIM or arr.shape[-2] < 1:
        raise MotionError(
            f"{what}: features must have shape (..., T, {FEATURE_DIM}) with T >= 1, "
            f"got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.number):
        raise MotionError(f"{what}: features must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(_F32)
    if not np.all(np.isfinite(arr)):
        raise MotionError(
            f"{what}: features of shape {arr.shape} contain NaN or inf; expected finite values "
            f"of shape (..., T, {FEATURE_DIM}) (de-normalised?)"
        )
    return arr


# ---------------------------------------------------------------------------------------------
# Joints -> features


def uniform_skeleton(
    positions: np.ndarray, target_offsets: np.ndarray = TARGET_OFFSETS
) -> np.ndarray:
    """Retarget joints to the HumanML3D target bone lengths (official ``uniform_skeleton``).

    Each bone keeps its per-frame direction and gets its target length; the root trajectory,
    height included, is scaled by the ratio of right-leg lengths (target / frame 0 of the input).

    Args:
        positions: (T, 22, 3) joint positions, metres, Y-up, T >= 1.
        target_offsets: (22, 3) target skeleton offsets (raw direction times bone length).

    Returns:
        (T, 22, 3) float64 joint positions.

    Raises:
        MotionError: on a wrong shape or non-finite values.
    """
    positions = _check_joints(positions, "uniform_skeleton", min_frames=1)
    tgt = np.asarray(target_offsets, _F32)
    if tgt.shape != (NUM_JOINTS, 3):
        raise MotionError(
            f"uniform_skeleton: target_offsets must have shape ({NUM_JOINTS}, 3), got {tgt.shape}"
        )
    src = _offsets_from_joints(positions[0])
    # Max-abs component = length, because raw directions are axis-aligned (official code).
    l1, l2 = LEG_SCALE_JOINTS
    src_leg = np.abs(src[l1]).max() + np.abs(src[l2]).max()
    tgt_leg = np.abs(tgt[l1]).max() + np.abs(tgt[l2]).max()
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.float64(_F32(tgt_leg / src_leg))
    if not np.isfinite(scale):
        raise MotionError(
            "uniform_skeleton: the right leg of frame 0 has zero length (coincident joints "
            f"{l1}/{l2} and their parents) in positions of shape {positions.shape}"
        )
    quat = _inverse_kinematics(positions, smooth_forward=False)
    return _forward_kinematics(quat, positions[:, 0] * scale, tgt)


def process_joints(positions: np.ndarray, feet_thre: float = FEET_THRESHOLD) -> ProcessedJoints:
    """Run the official ``process_file`` and keep every stage.

    Args:
        positions: (T, 22, 3) joint positions in the HumanML3D joint order, metres, Y-up, any
            placement, heading and body size; T >= 2 (at 20 fps for meaningful velocities).
        feet_thre: squared per-frame displacement (m^2) below which a foot joint is in contact.

    Returns:
        A :class:`ProcessedJoints` with the uniform-skeleton joints, global and local positions,
        IK root rotations and the (T-1, 263) float32 features.

    Raises:
        MotionError: on a wrong shape, fewer than 2 frames, non-finite values, or a pose so
            degenerate (coincident joints) that the features are not finite.
    """
    positions = _check_joints(positions, "joints_to_features", min_frames=2)
    uniform = uniform_skeleton(positions)

    # Floor: min y over all joints and frames. Origin: root xz of frame 0.
    pos = uniform.copy()
    pos[:, :, 1] -= pos[:, :, 1].min()
    first = pos[0].copy()
    pos = pos - first[0] * np.array([1.0, 0.0, 1.0])

    # Face +z at frame 0: across = (R-L hips) + (R-L shoulders) (here unswapped).
    r_hip, l_hip, sdr_r, sdr_l = FACE_JOINTS
    across = _unit_rows((first[r_hip] - first[l_hip]) + (first[sdr_r] - first[sdr_l]))
    forward_init = _unit_rows(np.cross(_Y_AXIS, across))
    root_quat_init = _qbetween32(forward_init, _Z_AXIS)
    global_positions = _qrot32(root_quat_init, pos)  # (T, 22, 3) float32

    # Foot contacts: squared displacement per frame, velocity only, in float32 as official.
    def _contacts(fid: tuple[int, ...]) -> np.ndarray:
        d = global_positions[1:, list(fid)] - global_positions[:-1, list(fid)]
        sq = d[..., 0] ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2
        return (sq < feet_thre).astype(_F32)

    contacts = np.concatenate([_contacts(FOOT_LEFT), _contacts(FOOT_RIGHT)], axis=-1)

    # IK with the smoothed, hip-swapped forward direction; r(0) = identity.
    quat = _inverse_kinematics(global_positions, smooth_forward=True)
    cont6d = _quat_to_cont6d32(quat)  # (T, 22, 6)
    r_rot = quat[:, 0]  # (T, 4)

    # Root linear velocity in the facing frame of t+1; yaw velocity without hemisphere fix.
    velocity = _qrot32(r_rot[1:], global_positions[1:, 0] - global_positions[:-1, 0])
    r_velocity = _qmul32(r_rot[1:], _qinv32(r_rot[:-1]))
    with np.errstate(invalid="ignore"):
        rot_vel = np.arcsin(r_velocity[:, 2:3])

    # ric: root-xz-relative positions rotated by r(t); y stays absolute (get_rifke).
    local = global_positions.copy()
    local[..., 0] -= local[:, 0:1, 0]
    local[..., 2] -= local[:, 0:1, 2]
    local = _qrot32(r_rot[:, None], local)

    # Local velocity uses r(t), not r(t+1).
    local_vel = _qrot32(r_rot[:-1, None], global_positions[1:] - global_positions[:-1])

    n = len(global_positions) - 1
    features = np.concatenate(
        [
            rot_vel,
            velocity[:, [0, 2]],
            local[:-1, 0, 1:2],
            local[:-1, 1:].reshape(n, -1),
            cont6d[:-1, 1:].reshape(n, -1),
            local_vel.reshape(n, -1),
            contacts,
        ],
        axis=-1,
    ).astype(_F32)
    if not np.all(np.isfinite(features)):
        raise MotionError(
            "joints_to_features: the features are not finite; the joints of shape "
            f"{positions.shape} have coincident joints (zero-length bones or shoulders/hips)"
        )
    return ProcessedJoints(
        uniform_joints=uniform,
        global_positions=global_positions,
        local_positions=local,
        root_quat=r_rot.copy(),
        features=features,
    )


def joints_to_features(positions: np.ndarray, feet_thre: float = FEET_THRESHOLD) -> np.ndarray:
    """HumanML3D 263-d features of a joint clip (official ``process_file``'s first output).

    Args:
        positions: (T, 22, 3) joint positions, HumanML3D joint order, metres, Y-up, T >= 2.
        feet_thre: foot-contact threshold on the squared per-frame displacement (m^2).

    Returns:
        (T-1, 263) float32 features, not normalised.

    Raises:
        MotionError: on a wrong shape, fewer than 2 frames or non-finite values.
    """
    return process_joints(positions, feet_thre).features


# ---------------------------------------------------------------------------------------------
# Features -> joints


def recover_root_rot_pos(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root rotation and position from features (official ``recover_root_rot_pos``).

    theta(t) = sum of root_rot_vel over frames < t; the quaternion is (cos theta, 0, sin theta, 0),
    a yaw of 2 theta (the feature stores half-angles). Root xz integrates the root velocity of row
    t-1 rotated by the inverse root rotation of frame t; the last row's velocity is unused.

    Args:
        features: (..., T, 263) features, not normalised.

    Returns:
        ``(r_quat, root_pos)``: (..., T, 4) float32 world->facing rotations and (..., T, 3)
        float32 root positions.

    Raises:
        MotionError: on a wrong shape or non-finite values.
    """
    data = _check_features(features, "recover_root_rot_pos")
    return _root_rot_pos(data)


def _root_rot_pos(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # torch.cumsum on CPU accumulates float32 in float64 and rounds each output to float32.
    ang = np.zeros(data.shape[:-1], dtype=_F32)
    ang[..., 1:] = data[..., :-1, 0]
    ang = np.cumsum(ang.astype(np.float64), axis=-1).astype(_F32)
    r_quat = np.zeros((*data.shape[:-1], 4), dtype=_F32)
    r_quat[..., 0] = np.cos(ang)
    r_quat[..., 2] = np.sin(ang)

    r_pos = np.zeros((*data.shape[:-1], 3), dtype=_F32)
    r_pos[..., 1:, 0] = data[..., :-1, 1]
    r_pos[..., 1:, 2] = data[..., :-1, 2]
    r_pos = _qrot32(_qinv32(r_quat), r_pos)
    r_pos = np.cumsum(r_pos.astype(np.float64), axis=-2).astype(_F32)
    r_pos[..., 1] = data[..., 3]
    return r_quat, r_pos


def features_to_joints(features: np.ndarray) -> np.ndarray:
    """Joint positions from the ric part of the features (official ``recover_from_ric``).

    This is what HumanML3D stores in ``new_joints/``.

    Args:
        features: (..., T, 263) features, not normalised; any leading batch dims.

    Returns:
        (..., T, 22, 3) float32 joint positions, metres, Y-up.

    Raises:
        MotionError: on a wrong shape or non-finite values.
    """
    data = _check_features(features, "features_to_joints")
    r_quat, r_pos = _root_rot_pos(data)
    ric = data[..., RIC].reshape(*data.shape[:-1], NUM_JOINTS - 1, 3)
    joints = _qrot32(_qinv32(r_quat)[..., None, :], ric)
    joints[..., 0] += r_pos[..., None, 0]
    joints[..., 2] += r_pos[..., None, 2]
    return np.concatenate([r_pos[..., None, :], joints], axis=-2)


def features_to_joints_rot(
    features: np.ndarray, offsets: np.ndarray = TARGET_OFFSETS
) -> np.ndarray:
    """Joint positions by FK of the 6-D rotations (official ``recover_from_rot``).

    The root rotation comes from the yaw velocity, the joint rotations from dims 67:193, and the
    bone offsets from the target skeleton.

    Args:
        features: (..., T, 263) features, not normalised; any leading batch dims.
        offsets: (22, 3) skeleton offsets used by FK.

    Returns:
        (..., T, 22, 3) float32 joint positions.

    Raises:
        MotionError: on a wrong shape or non-finite values.
    """
    data = _check_features(features, "features_to_joints_rot")
    offsets = np.asarray(offsets, _F32)
    r_quat, r_pos = _root_rot_pos(data)
    root6d = _quat_to_cont6d32(r_quat)
    rot6d = data[..., ROT6D].reshape(*data.shape[:-1], NUM_JOINTS - 1, 6)
    cont6d = np.concatenate([root6d[..., None, :], rot6d], axis=-2)  # (..., T, 22, 6)
    mats = quaternion.cont6d_to_matrix(cont6d)  # (..., T, 22, 3, 3)

    joints = np.zeros((*data.shape[:-1], NUM_JOINTS, 3), dtype=_F32)
    joints[..., 0, :] = r_pos
    for chain in KINEMATIC_CHAIN:
        mat = mats[..., 0, :, :]
        for parent, child in itertools.pairwise(chain):
            mat = mat @ mats[..., child, :, :]
            joints[..., child, :] = mat @ offsets[child] + joints[..., parent, :]
    return joints

"""AMASS-style npz writer and reader (numpy only, no pickles).

AMASS stores SMPL(-H) parameters in a **Z-up** world: the body model itself is Y-up, and the root
orientation carries the change of axes. We follow that, so AMASS loaders (and the SMPL-X Blender
add-on's "AMASS (Z-up)" input) place the body upright: our Y-up world is converted to Z-up by a
+90° rotation about X, ``C = [[1,0,0],[0,0,-1],[0,1,0]]`` ((x, y, z) -> (x, -z, y); Y-up becomes
Z-up and our facing direction +Z becomes -Y). Only the root orientation and the world-space
arrays change; the body's local rotations are unchanged. The file says so in ``up_axis = 'Z'``.

Keys (all plain arrays; strings are numpy unicode scalars, so ``allow_pickle=False`` loads it):

=====================  =========================================================================
key                    content
=====================  =========================================================================
poses                  (T, 72) float64 axis-angle of the 24 SMPL joints, root orientation first
trans                  (T, 3) float64 root translation, Z-up: ``C · pelvis`` minus
                       ``root_joint_rest`` (our rest skeleton has its pelvis at the origin, so by
                       default ``trans`` is the pelvis position; pass a real SMPL model's rest
                       pelvis ``J_0`` to get SMPL's ``trans`` for that body)
mocap_frame_rate       () float64 frames per second
betas                  (10,) float64 zeros
gender                 'neutral'
up_axis                'Z'
rest_offsets           (24, 3) float64 our rest skeleton (body frame, Y-up, metres)
root_joint_rest        (3,) float64 the rest pelvis subtracted from ``trans`` (zeros by default)
joints                 (T, 22, 3) float32 joint positions, Z-up (the same world as ``trans``)
joint_names            (24,) SMPL joint names
text                   the prompt or caption
provenance_json        the provenance dict as JSON
=====================  =========================================================================
"""

from __future__ import annotations

import json
import os

import numpy as np

from hmu_core.atomic import save_npz
from hmu_core.errors import MotionError
from hmu_core.motion import quaternion
from hmu_core.motion.smpl import JOINT_NAMES, SMPLPose

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""+90° about X: our Y-up world to AMASS's Z-up world."""
_C_QUAT = quaternion.from_matrix(Y_UP_TO_Z_UP)
NUM_BETAS = 10


def write_amass_npz(
    path: str | os.PathLike, motion, root_joint_rest: np.ndarray | None = None
) -> None:
    """Write ``motion`` (a :class:`~hmu_core.motion.motion.Motion`) as an AMASS-style npz.

    ``root_joint_rest`` (3,): a real SMPL body's rest pelvis (Y-up body frame) to subtract
    from ``trans``; by default zeros, so ``trans`` is the pelvis position.
    """
    pose = motion.smpl_pose()
    j0 = np.zeros(3) if root_joint_rest is None else np.asarray(root_joint_rest, np.float64)
    if j0.shape != (3,) or not np.all(np.isfinite(j0)):
        raise MotionError(f"root_joint_rest must be 3 finite numbers, got {j0!r}")
    local = np.array(pose.local_rotations, dtype=np.float64)
    local[:, 0] = quaternion.qmul(np.broadcast_to(_C_QUAT, local[:, 0].shape), local[:, 0])
    poses = quaternion.to_axis_angle(local).reshape(pose.num_frames, -1)
    trans = pose.root_translation @ Y_UP_TO_Z_UP.T - j0
    joints = (np.asarray(motion.joints, np.float64) @ Y_UP_TO_Z_UP.T).astype(np.float32)
    save_npz(
        path,
        poses=poses,
        trans=trans,
        mocap_frame_rate=np.array(float(motion.fps)),
        betas=np.zeros(NUM_BETAS),
        gender=np.array("neutral"),
        up_axis=np.array("Z"),
        rest_offsets=np.array(pose.rest_offsets, dtype=np.float64),
        root_joint_rest=j0,
        joints=joints,
        joint_names=np.array(JOINT_NAMES),
        text=np.array(motion.text),
        provenance_json=np.array(json.dumps(motion.provenance, sort_keys=True, default=str)),
    )


def read_amass_npz(path: str | os.PathLike):
    """Read a file written by :func:`write_amass_npz` back into a Y-up ``Motion`` with ``smpl``.

    Plain AMASS files (without ``joints``/``rest_offsets``) are rejected: they need an SMPL body
    model to get joint positions.
    """
    from hmu_core.motion.motion import Motion

    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise MotionError(f"cannot read AMASS npz {path}: {exc}") from exc
    missing = [k for k in ("poses", "trans", "mocap_frame_rate", "rest_offsets", "joints")
               if k not in arrays]  # fmt: skip
    if missing:
        raise MotionError(f"{path} lacks {missing}; only files written by hmu can be read")
    up = str(arrays.get("up_axis", "Z"))
    if up not in ("Y", "Z"):
        raise MotionError(f"{path}: unknown up_axis {up!r}")
    poses = arrays["poses"].astype(np.float64)
    if poses.ndim != 2 or poses.shape[1] != 72:
        raise MotionError(f"{path}: poses must be (T, 72), got {poses.shape}")
    local = quaternion.from_axis_angle(poses.reshape(len(poses), 24, 3))
    j0 = arrays.get("root_joint_rest", np.zeros(3)).astype(np.float64)
    trans = arrays["trans"].astype(np.float64) + j0
    joints = arrays["joints"].astype(np.float64)
    if up == "Z":
        back = Y_UP_TO_Z_UP.T  # Z-up to Y-up
        undo = np.broadcast_to(quaternion.qinv(_C_QUAT), local[:, 0].shape)
        local[:, 0] = quaternion.qmul(undo, local[:, 0])
        trans = trans @ back.T
        joints = joints @ back.T
    local = quaternion.make_continuous(local, axis=0)
    pose = SMPLPose(local_rotations=local, root_translation=trans,
                    rest_offsets=arrays["rest_offsets"])  # fmt: skip
    provenance = json.loads(str(arrays["provenance_json"])) if "provenance_json" in arrays else {}
    return Motion(
        joints=joints,
        fps=float(arrays["mocap_frame_rate"]),
        smpl=pose,
        text=str(arrays.get("text", "")),
        provenance=provenance,
    )

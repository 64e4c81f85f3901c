"""BVH writer for the 24-joint SMPL skeleton (numpy only).

Format choices:

* Joint names are the SMPL names (``pelvis``, ``left_hip``, ... ``right_hand``); the hierarchy
  is SMPL's. End Sites follow the leaves: ``head``, ``left_foot``, ``right_foot``,
  ``left_hand`` and ``right_hand``.
* Y-up, the character faces +Z, units are metres times ``scale`` (``scale=100`` for
  centimetres). Blender's BVH importer reads it with its default axes
  (``axis_forward='-Z', axis_up='Y'``) into a Z-up scene.
* OFFSETs are the rest skeleton (T-pose, ``smpl.rest_offsets``). The root (``pelvis``) has
  OFFSET 0 0 0 and 6 channels ``Xposition Yposition Zposition Zrotation Xrotation Yrotation``;
  the position channels are the absolute pelvis position. Every other joint has 3 channels
  ``Zrotation Xrotation Yrotation``.
* Rotation order ZXY (as CMU's Y-up BVH files): the channel order read left to right as
  *intrinsic* rotations, the BVH convention, so the local rotation matrix is
  ``R = Rz(z) · Rx(x) · Ry(y)``, angles in degrees. The vertical axis (Y) is not the middle
  angle, so the root's heading is unrestricted (a 360° turn is smooth); gimbal lock is at
  x = ±90°. Angles are made continuous over time (:func:`continuous_euler`: whole turns and the
  equivalent second solution), so there are no ±360° or 180° jumps that an importer would
  interpolate through.
* ``Frame Time`` is ``1 / fps``.
* The file is written atomically.
"""

from __future__ import annotations

import io
import os

import numpy as np

from hmu_core.atomic import write_text
from hmu_core.errors import MotionError
from hmu_core.motion import quaternion
from hmu_core.motion.smpl import CHILDREN, JOINT_NAMES, SMPLPose

ROTATION_CHANNELS = ("Zrotation", "Xrotation", "Yrotation")
"""Channel order: intrinsic Z, then X, then Y, i.e. R = Rz · Rx · Ry."""
END_SITES = {
    15: (0.0, 0.10, 0.0),  # head top
    10: (0.0, 0.0, 0.05),  # left toes
    11: (0.0, 0.0, 0.05),  # right toes
    22: (0.10, 0.0, 0.0),  # left fingertips
    23: (-0.10, 0.0, 0.0),  # right fingertips
}
"""End Site offsets (m) of the leaf joints."""


def matrix_to_euler_zxy(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices to (..., 3) angles (z, x, y) in radians, R = Rz·Rx·Ry.

    x is in [-pi/2, pi/2]; at gimbal lock (|x| = pi/2) y is set to 0.
    """
    x = np.arcsin(np.clip(m[..., 2, 1], -1.0, 1.0))
    cx = np.hypot(m[..., 2, 0], m[..., 2, 2])
    locked = cx < 1e-9
    y = np.where(locked, 0.0, np.arctan2(-m[..., 2, 0], m[..., 2, 2]))
    z = np.where(locked, np.arctan2(m[..., 1, 0], m[..., 0, 0]),
                 np.arctan2(-m[..., 0, 1], m[..., 1, 1]))  # fmt: skip
    return np.stack([z, x, y], axis=-1)


def euler_zxy_to_matrix(angles: np.ndarray) -> np.ndarray:
    """(..., 3) angles (z, x, y) in radians to (..., 3, 3) matrices R = Rz·Rx·Ry."""
    qz = quaternion.from_axis_angle_about(np.array([0.0, 0.0, 1.0]), angles[..., 0])
    qx = quaternion.from_axis_angle_about(np.array([1.0, 0.0, 0.0]), angles[..., 1])
    qy = quaternion.from_axis_angle_about(np.array([0.0, 1.0, 0.0]), angles[..., 2])
    return quaternion.to_matrix(quaternion.qmul(quaternion.qmul(qz, qx), qy))


def continuous_euler(angles: np.ndarray) -> np.ndarray:
    """Make (T, ..., 3) Tait-Bryan angles (radians) continuous over time (axis 0).

    Per frame, of the two equivalent solutions (a, b, c) and (a + pi, pi - b, c + pi), each
    shifted by whole turns to lie nearest the previous frame, the closer one is kept. The middle
    angle may then leave [-pi/2, pi/2]; the rotation is unchanged.
    """
    out = np.array(angles, dtype=np.float64, copy=True)
    two_pi = 2.0 * np.pi

    def nearest(candidate: np.ndarray, prev: np.ndarray) -> np.ndarray:
        return candidate - two_pi * np.round((candidate - prev) / two_pi)

    for t in range(1, out.shape[0]):
        prev = out[t - 1]
        a = nearest(out[t], prev)
        alt = out[t] + np.array([np.pi, 0.0, np.pi])
        alt[..., 1] = np.pi - out[t, ..., 1]
        b = nearest(alt, prev)
        use_alt = np.sum((b - prev) ** 2, -1) < np.sum((a - prev) ** 2, -1)
        out[t] = np.where(use_alt[..., None], b, a)
    return out


def _hierarchy_order() -> list[tuple[int, int]]:
    """Depth-first (joint, depth) order of the SMPL tree."""
    order: list[tuple[int, int]] = []

    def visit(j: int, depth: int) -> None:
        order.append((j, depth))
        for c in CHILDREN[j]:
            visit(c, depth + 1)

    visit(0, 0)
    return order


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.6f}" for v in values)


def bvh_text(pose: SMPLPose, fps: float, scale: float = 1.0) -> str:
    """The BVH file content for ``pose`` at ``fps`` (see the module docstring)."""
    if not np.isfinite(fps) or fps <= 0:
        raise MotionError(f"fps must be > 0, got {fps}")
    if not np.isfinite(scale) or scale <= 0:
        raise MotionError(f"scale must be > 0, got {scale}")
    rest = pose.rest_offsets * scale
    order = _hierarchy_order()
    out = io.StringIO()
    out.write("HIERARCHY\n")
    rot_channels = " ".join(ROTATION_CHANNELS)
    stack: list[int] = []  # depths of open joints
    for j, depth in order:
        while stack and stack[-1] >= depth:
            d = stack.pop()
            out.write("\t" * d + "}\n")
        ind = "\t" * depth
        if j == 0:
            out.write(f"ROOT {JOINT_NAMES[j]}\n{ind}{{\n")
            out.write(f"{ind}\tOFFSET {_fmt(np.zeros(3))}\n")
            out.write(f"{ind}\tCHANNELS 6 Xposition Yposition Zposition {rot_channels}\n")
        else:
            out.write(f"{ind}JOINT {JOINT_NAMES[j]}\n{ind}{{\n")
            out.write(f"{ind}\tOFFSET {_fmt(rest[j])}\n")
            out.write(f"{ind}\tCHANNELS 3 {rot_channels}\n")
        if j in END_SITES:
            end = np.asarray(END_SITES[j]) * scale
            out.write(f"{ind}\tEnd Site\n{ind}\t{{\n{ind}\t\tOFFSET {_fmt(end)}\n{ind}\t}}\n")
        stack.append(depth)
    while stack:
        out.write("\t" * stack.pop() + "}\n")

    joints = [j for j, _ in order]
    local = pose.local_rotations[:, joints]  # (T, 24, 4) in file order
    # (T, 24, 3) degrees
    euler = np.degrees(continuous_euler(matrix_to_euler_zxy(quaternion.to_matrix(local))))
    root = pose.root_translation * scale + rest[0]
    frames = np.concatenate([root, euler.reshape(len(euler), -1)], axis=1)

    out.write("MOTION\n")
    out.write(f"Frames: {pose.num_frames}\n")
    out.write(f"Frame Time: {1.0 / fps:.8f}\n")
    for row in frames:
        out.write(_fmt(row) + "\n")
    return out.getvalue()


def write_bvh(path: str | os.PathLike, motion, scale: float = 1.0) -> None:
    """Write ``motion`` (a :class:`~hmu_core.motion.motion.Motion`) as BVH, atomically.

    The SMPL pose is ``motion.smpl`` if set, else the IK of ``motion.joints``.
    """
    pose = motion.smpl_pose()
    write_text(path, bvh_text(pose, motion.fps, scale))

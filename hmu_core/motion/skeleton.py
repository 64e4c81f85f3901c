"""Skeleton constants of the HumanML3D 22-joint body and the 24-joint SMPL naming.

Values are those of the official HumanML3D ``paramUtil.py`` and ``motion_representation.ipynb``
(see ``shared/reference/humanml3d.md`` §2); a test checks them against
``shared/conformance/humanml3d_skeleton.json``.
"""

from __future__ import annotations

import numpy as np

FPS = 20
"""HumanML3D frame rate (frames per second)."""

NUM_JOINTS = 22
FEATURE_DIM = 263
"""4 + (J-1)*3 + (J-1)*6 + J*3 + 4 for J = 22."""

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)  # fmt: skip

PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
)  # fmt: skip

KINEMATIC_CHAIN: tuple[tuple[int, ...], ...] = (
    (0, 2, 5, 8, 11),  # right leg
    (0, 1, 4, 7, 10),  # left leg
    (0, 3, 6, 9, 12, 15),  # spine to head
    (9, 14, 17, 19, 21),  # right arm
    (9, 13, 16, 18, 20),  # left arm
)

RAW_OFFSETS = np.array(
    [
        [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0],
        [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0],
        [-1, 0, 0], [0, 0, 1], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
        [0, -1, 0],
    ],
    dtype=np.float64,
)  # fmt: skip
"""Unit rest directions used by the official IK/FK (arms hang down, head points forward)."""

TARGET_OFFSETS = np.array(
    [
        [0.0, 0.0, 0.0], [0.10307395, 0.0, 0.0], [-0.10988335, 0.0, 0.0],
        [0.0, 0.13156825, 0.0], [0.0, -0.39362314, 0.0], [0.0, -0.39018813, 0.0],
        [0.0, 0.14319026, 0.0], [0.0, -0.43243298, 0.0], [0.0, -0.42564332, 0.0],
        [0.0, 0.05736471, 0.0], [0.0, 0.0, 0.14338174], [0.0, 0.0, 0.14941867],
        [0.0, 0.21935999, 0.0], [0.13748683, 0.0, 0.0], [-0.14338283, 0.0, 0.0],
        [0.0, 0.0, 0.10303927], [0.0, -0.13161398, 0.0], [0.0, -0.12298431, 0.0],
        [0.0, -0.25683984, 0.0], [0.0, -0.26309186, 0.0], [0.0, -0.26601186, 0.0],
        [0.0, -0.2698763, 0.0],
    ],
    dtype=np.float32,
)  # fmt: skip
"""Offsets of the HumanML3D target skeleton (clip 000021, frame 0), metres."""

BONE_LENGTHS = np.linalg.norm(TARGET_OFFSETS.astype(np.float64), axis=1)

# Constants of the official process_file.
FEET_THRESHOLD = 0.002
"""Squared per-frame displacement (m^2) below which a foot joint counts as in contact."""
LEG_SCALE_JOINTS = (5, 8)
"""``l_idx1, l_idx2``: right knee and right ankle; their bones set the uniform-skeleton scale."""
FOOT_LEFT = (7, 10)
FOOT_RIGHT = (8, 11)
FACE_JOINTS = (2, 1, 17, 16)
"""``face_joint_indx``: right hip, left hip, right shoulder, left shoulder."""
IK_SMOOTH_SIGMA = 20.0
"""Gaussian sigma (frames) that smooths the IK root forward direction."""

# Left/right joint pairs swapped by the official mirroring (swap_left_right).
MIRROR_RIGHT = (2, 5, 8, 11, 14, 17, 19, 21)
MIRROR_LEFT = (1, 4, 7, 10, 13, 16, 18, 20)


def mirror_permutation() -> np.ndarray:
    """Joint permutation that swaps left and right joints (22,)."""
    perm = np.arange(NUM_JOINTS)
    perm[list(MIRROR_RIGHT)] = MIRROR_LEFT
    perm[list(MIRROR_LEFT)] = MIRROR_RIGHT
    return perm


# The 24-joint SMPL body: the 22 HumanML3D joints plus the two hands, in SMPL order.
SMPL_JOINT_NAMES: tuple[str, ...] = (*JOINT_NAMES, "left_hand", "right_hand")
SMPL_PARENTS: tuple[int, ...] = (*PARENTS, 20, 21)
NUM_SMPL_JOINTS = 24

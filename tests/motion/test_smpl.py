"""SMPL-topology IK/FK: FK(IK(joints)) reproduces the joints, the rest skeleton, twist, turns."""

from __future__ import annotations

import numpy as np
import pytest

from hmu_core.errors import MotionError
from hmu_core.motion import quaternion, smpl
from hmu_core.motion.skeleton import BONE_LENGTHS, NUM_JOINTS, PARENTS

SEQUENCES = (
    "walk_straight",
    "walk_turn_past_180deg",
    "idle_wave_arms",
    "jog_tall_turn_right",
    "jump_in_place",
)
STAGES = ("input_joints", "global_positions", "recovered_joints_ric")
CASES = [f"{s}__{stage}" for s in SEQUENCES for stage in STAGES] + [
    "sample_012314__new_joints",
    "sample_012314__recovered_joints_ric",
]
TOLERANCE_M = 0.01


@pytest.fixture(scope="module")
def fixtures(conformance_dir):
    with np.load(conformance_dir / "humanml3d_features.npz") as npz:
        return {key: npz[key] for key in npz.files}


def _angles(q: np.ndarray) -> np.ndarray:
    """Rotation angle (rad) between consecutive frames of (T, J, 4) quaternions."""
    dots = np.abs(np.sum(q[1:] * q[:-1], axis=-1))
    return 2.0 * np.arccos(np.clip(dots, 0.0, 1.0))


@pytest.mark.parametrize("key", CASES)
def test_fk_of_ik_reproduces_joints(fixtures, key):
    joints = fixtures[key]
    pose = smpl.inverse_kinematics(joints)
    fk = smpl.forward_kinematics(pose)
    assert fk.shape == (len(joints), 24, 3)
    err = np.linalg.norm(fk[:, :NUM_JOINTS] - joints, axis=-1)
    assert err.max() < TOLERANCE_M, f"{key}: max FK error {err.max():.4g} m"
    # Unit quaternions, continuous signs, root translation = pelvis.
    norms = np.linalg.norm(pose.local_rotations, axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-9)
    assert np.all(np.sum(pose.local_rotations[1:] * pose.local_rotations[:-1], axis=-1) > 0)
    np.testing.assert_allclose(pose.root_translation, joints[:, 0], atol=1e-6)
    # Hands and the leaves' local rotations are identity; hands sit 8 cm beyond the wrists.
    for j in (smpl.LEFT_HAND, smpl.RIGHT_HAND, 10, 11, 15, 20, 21):
        np.testing.assert_allclose(np.abs(pose.local_rotations[:, j, 0]), 1.0, atol=1e-9)
    hand = np.linalg.norm(fk[:, 22:] - fk[:, 20:22], axis=-1)
    np.testing.assert_allclose(hand, smpl.HAND_LENGTH, atol=1e-9)


def test_forward_kinematics_arrays_matches_pose(fixtures):
    pose = smpl.inverse_kinematics(fixtures["walk_straight__input_joints"])
    a = smpl.forward_kinematics_arrays(
        pose.local_rotations, pose.root_translation, pose.rest_offsets
    )
    np.testing.assert_allclose(a, smpl.forward_kinematics(pose))
    # Batched leading dims broadcast.
    b = smpl.forward_kinematics_arrays(
        pose.local_rotations[None], pose.root_translation[None], pose.rest_offsets
    )
    np.testing.assert_allclose(b[0], a)


def _turned(joints: np.ndarray, turns: float = 1.0) -> np.ndarray:
    """Rotate each frame about the vertical through the first pelvis by turns*360° over T."""
    num = len(joints)
    angle = np.linspace(0.0, 2.0 * np.pi * turns, num)
    q = quaternion.from_axis_angle_about(np.array([0.0, 1.0, 0.0]), angle)
    centre = joints[:1, :1] * np.array([1.0, 0.0, 1.0])
    return quaternion.qrot(q[:, None], joints - centre) + centre


@pytest.mark.parametrize("source", ["standing", "walking"])
def test_full_turn_has_no_flips(fixtures, source):
    base = fixtures["sample_012314__new_joints"].astype(np.float64)
    base = np.repeat(base[:1], 100, axis=0) if source == "standing" else base[:100]
    joints = _turned(base)
    pose = smpl.inverse_kinematics(joints)
    err = np.linalg.norm(smpl.forward_kinematics(pose)[:, :NUM_JOINTS] - joints, axis=-1)
    assert err.max() < 1e-4
    local = pose.local_rotations
    assert np.all(np.sum(local[1:] * local[:-1], axis=-1) > 0), "quaternion sign flip"
    speed = np.degrees(_angles(local))
    # The root turns 360/99 ≈ 3.6° per frame; nothing else may jump because of the turn.
    reference = np.degrees(_angles(smpl.inverse_kinematics(base).local_rotations))
    assert speed[:, 0].max() < reference[:, 0].max() + 4.0
    np.testing.assert_allclose(speed[:, 1:], reference[:, 1:], atol=1e-5)
    if source == "standing":
        assert speed[:, 1:].max() < 1e-5
        np.testing.assert_allclose(speed[:, 0], 360.0 / 99, atol=1e-6)


def test_rest_offsets_lengths_and_directions():
    rest = smpl.rest_offsets()
    assert rest.shape == (24, 3)
    np.testing.assert_allclose(rest[0], 0.0)
    lengths = np.linalg.norm(rest, axis=-1)
    np.testing.assert_allclose(lengths[1:NUM_JOINTS], BONE_LENGTHS[1:], rtol=1e-12)
    np.testing.assert_allclose(lengths[22:], smpl.HAND_LENGTH)
    # T-pose: legs straight down, arms along ±X, spine and head up, feet forward and down.
    for j in (4, 5, 7, 8):
        np.testing.assert_allclose(rest[j] / lengths[j], [0, -1, 0])
    for j in (16, 18, 20, 22):
        np.testing.assert_allclose(rest[j] / lengths[j], [1, 0, 0])
        np.testing.assert_allclose(rest[j + 1] / lengths[j + 1], [-1, 0, 0])
    for j in (3, 6, 9, 12, 15):
        assert rest[j, 1] > 0.7 * lengths[j]
    for j in (10, 11):
        assert rest[j, 2] > 0.8 * lengths[j] and rest[j, 1] < 0
    assert rest[1, 0] > 0 > rest[2, 0] and rest[13, 0] > 0 > rest[14, 0]
    # Left/right mirror symmetry of the template directions.
    mirror = np.array([-1.0, 1.0, 1.0])
    for left, right in ((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19)):
        d = smpl.REST_DIRECTIONS
        np.testing.assert_allclose(d[left] * mirror, d[right])


def test_rest_from_joints_uses_median_lengths(fixtures):
    joints = fixtures["walk_straight__input_joints"]
    rest = smpl.rest_offsets_from_joints(joints)
    parents = np.array(PARENTS[1:])
    lengths = np.median(np.linalg.norm(joints[:, 1:] - joints[:, parents], axis=-1), axis=0)
    np.testing.assert_allclose(np.linalg.norm(rest[1:NUM_JOINTS], axis=-1), lengths, rtol=1e-6)
    # Measured torso offsets stay SMPL-like: hips below and beside the pelvis.
    assert rest[1, 0] > 0.03 and rest[1, 1] < 0 and rest[2, 0] < -0.03 and rest[2, 1] < 0


def test_user_rest_is_used(fixtures):
    joints = fixtures["walk_straight__input_joints"]
    rest = smpl.rest_offsets()  # HumanML3D target lengths, template torso
    pose = smpl.inverse_kinematics(joints, rest)
    np.testing.assert_array_equal(pose.rest_offsets, rest)
    fk = smpl.forward_kinematics(pose)
    # Bone directions of single-child limbs are still exact.
    for parent, child in ((4, 7), (18, 20), (5, 8), (19, 21)):
        a = quaternion.normalize(fk[:, child] - fk[:, parent])
        b = quaternion.normalize(joints[:, child] - joints[:, parent])
        np.testing.assert_allclose(a, b, atol=1e-9)


def _knee_axis(pose: smpl.SMPLPose, joint: int) -> np.ndarray:
    aa = pose.axis_angle()[:, joint]
    return aa / np.maximum(np.linalg.norm(aa, axis=-1, keepdims=True), 1e-12)


def test_knees_and_elbows_bend_about_their_axis(fixtures):
    joints = fixtures["sample_012314__new_joints"]
    pose = smpl.inverse_kinematics(joints)
    aa = pose.axis_angle()
    for _root, mid, _end, axis in smpl.LIMBS:
        angle = np.linalg.norm(aa[:, mid], axis=-1)
        bent = angle > np.radians(35)
        if not bent.any():
            continue
        along = np.sum(_knee_axis(pose, mid)[bent] * np.array(axis), axis=-1)
        np.testing.assert_allclose(along, 1.0, atol=1e-6, err_msg=smpl.JOINT_NAMES[mid])


def test_twist_blends_without_flip():
    """A leg straightening and bending again keeps the thigh's twist continuous."""
    num = 60
    bend = np.radians(np.concatenate([np.linspace(60, 0, num // 2), np.linspace(0, 60, num // 2)]))
    joints = np.repeat(
        smpl.forward_kinematics_arrays(
            quaternion.identity((1, 24)), np.zeros((1, 3)), smpl.rest_offsets())[
            :, :NUM_JOINTS
        ],
        num,
        axis=0,
    )
    knee, ankle = joints[:, 4].copy(), joints[:, 7]
    shin = np.linalg.norm(ankle[0] - knee[0])
    # Bend the left knee backwards (flexion) in the sagittal plane.
    joints[:, 7] = knee + shin * np.stack([np.zeros(num), -np.cos(bend), -np.sin(bend)], axis=-1)
    joints[:, 10] = joints[:, 7] + (joints[0, 10] - joints[0, 7])
    pose = smpl.inverse_kinematics(joints)
    speed = np.degrees(_angles(pose.local_rotations))
    assert speed.max() < 6.0
    err = np.linalg.norm(smpl.forward_kinematics(pose)[:, :NUM_JOINTS] - joints, axis=-1)
    assert err.max() < 1e-6


def test_validation():
    with pytest.raises(MotionError, match=r"\(T, 22, 3\)"):
        smpl.inverse_kinematics(np.zeros((5, 21, 3)))
    bad = np.zeros((5, 22, 3))
    bad[2, 3, 1] = np.nan
    with pytest.raises(MotionError, match="NaN"):
        smpl.inverse_kinematics(bad)
    with pytest.raises(MotionError, match=r"\(24, 3\)"):
        smpl.inverse_kinematics(np.random.default_rng(0).normal(size=(3, 22, 3)), np.zeros((22, 3)))
    with pytest.raises(MotionError, match=r"\(22,\)"):
        smpl.rest_offsets(np.ones(24))
    with pytest.raises(MotionError, match="positive"):
        smpl.rest_offsets(np.zeros(22))
    with pytest.raises(MotionError, match=r"\(T, 24, 4\)"):
        smpl.SMPLPose(np.zeros((3, 22, 4)), np.zeros((3, 3)), smpl.rest_offsets())
    with pytest.raises(MotionError, match="root_translation"):
        smpl.SMPLPose(quaternion.identity((3, 24)), np.zeros((4, 3)), smpl.rest_offsets())


def test_offsets_from_template_round_trip():
    rest = smpl.rest_offsets()
    template = smpl.forward_kinematics_arrays(quaternion.identity((24,)), np.zeros(3), rest)
    np.testing.assert_allclose(smpl.offsets_from_template(template), rest, atol=1e-12)


def test_swing_handles_opposite_and_zero_vectors():
    a = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    b = np.array([[-2.0, 0.0, 0.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [3.0, -1.0, 2.0]])
    q = smpl._swing(a, b)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0)
    rotated = quaternion.qrot(q, a)
    for i in (0, 1, 3):
        np.testing.assert_allclose(quaternion.normalize(rotated[i]), quaternion.normalize(b[i]),
                                   atol=1e-12)
    np.testing.assert_allclose(q[2], [1.0, 0.0, 0.0, 0.0])


def test_limb_opposite_to_rest_and_degenerate_input(fixtures):
    # The left upper arm pointing straight across the chest (-X, opposite its rest direction).
    joints = fixtures["walk_straight__input_joints"][:3].copy()
    shoulder = joints[:, 16]
    arm = joints[:, 18] - shoulder
    fore = joints[:, 20] - joints[:, 18]
    joints[:, 18] = shoulder + np.linalg.norm(arm, axis=-1, keepdims=True) * [-1.0, 0.0, 0.0]
    joints[:, 20] = joints[:, 18] + np.linalg.norm(fore, axis=-1, keepdims=True) * [-1.0, 0, 0]
    pose = smpl.inverse_kinematics(joints)
    err = np.linalg.norm(smpl.forward_kinematics(pose)[:, :NUM_JOINTS] - joints, axis=-1)
    assert np.all(np.isfinite(pose.local_rotations)) and err.max() < 1e-6
    # Single frame, and all joints at one point: finite output.
    one = smpl.inverse_kinematics(fixtures["walk_straight__input_joints"][:1])
    assert one.num_frames == 1
    flat = smpl.inverse_kinematics(np.zeros((2, 22, 3)))
    assert np.all(np.isfinite(flat.local_rotations))

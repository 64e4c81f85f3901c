"""FK rig of the synthetic benchmark: conventions, constant bones, feet on the floor."""

from __future__ import annotations

import numpy as np
import pytest

from hmu_core.errors import MotionError
from hmu_core.motion.skeleton import BONE_LENGTHS, PARENTS
from hmu_core.synth.angle_fk import (
    LEFT,
    RIG_OFFSETS,
    RIGHT,
    Pose,
    RootMotion,
    angles_to_quaternions,
    forward_kinematics,
    place_root,
)

DEG = np.pi / 180


def _bone_lengths(pos: np.ndarray) -> np.ndarray:
    return np.linalg.norm(pos[:, 1:] - pos[:, list(PARENTS[1:])], axis=-1)


def test_rest_pose_is_the_target_skeleton():
    pose = Pose(1)
    pos = forward_kinematics(angles_to_quaternions(pose.angles), np.zeros((1, 3)), scale=1.02)
    rig_lengths = np.linalg.norm(RIG_OFFSETS[1:], axis=1)
    np.testing.assert_allclose(_bone_lengths(pos)[0], 1.02 * rig_lengths, atol=1e-6)
    # Only the leg bones differ from the target, by half the left/right difference (< 4 mm).
    assert np.abs(rig_lengths - BONE_LENGTHS[1:]).max() < 0.004
    assert pos[0, 1, 0] > 0 > pos[0, 2, 0]  # left hip at +x
    assert pos[0, 20, 1] < pos[0, 16, 1]  # arms hang down


def test_both_feet_stand_on_the_floor_at_rest():
    pos = place_root(Pose(1).angles, RootMotion.still(1))
    np.testing.assert_allclose(pos[0, [7, 8, 10, 11], 1], 0.0, atol=1e-9)


def test_anatomical_helpers_follow_the_documented_frame():
    pose = Pose(5)
    pose.angles[0] = 0
    pose.hip(LEFT, flex=np.array([90 * DEG, 0, 0, 0, 0]))
    pose.shoulder(RIGHT, flex=np.array([0, 90 * DEG, 0, 0, 0]))
    pose.shoulder(LEFT, abd=np.array([0, 0, 90 * DEG, 0, 0]))
    pose.spine(twist=np.array([0, 0, 0, 90 * DEG, 0]))
    pose.knee(RIGHT, np.array([0, 0, 0, 0, 90 * DEG]))
    pos = forward_kinematics(angles_to_quaternions(pose.angles), np.zeros((5, 3)))
    thigh = pos[0, 4] - pos[0, 1]
    assert thigh[2] > 0.38 and abs(thigh[1]) < 1e-6  # left thigh points forward (+z)
    upper_arm = pos[1, 19] - pos[1, 17]
    assert upper_arm[2] > 0.25  # right arm raised forward
    upper_arm = pos[2, 18] - pos[2, 16]
    assert upper_arm[0] > 0.25  # left arm abducted to the left (+x)
    across = pos[3, 16] - pos[3, 17]  # right -> left shoulder after a 90 degree left twist
    assert across[2] < -0.2  # the left shoulder went backward: the chest faces left (+x)
    shin = pos[4, 8] - pos[4, 5]
    assert shin[2] < -0.38  # right shin bent backward


def test_place_root_keeps_bones_and_puts_the_lowest_joint_on_the_floor():
    n = 40
    pose = Pose(n)
    t = np.arange(n) / 20
    pose.hip(LEFT, flex=60 * DEG * np.sin(np.pi * t / t[-1]))
    pose.knee(LEFT, 80 * DEG * np.sin(np.pi * t / t[-1]))
    pose.hinge(20 * DEG * np.sin(np.pi * t / t[-1]))
    pos = place_root(pose.angles, RootMotion.still(n), scale=0.97)
    rig_lengths = np.linalg.norm(RIG_OFFSETS[1:], axis=1)
    np.testing.assert_allclose(_bone_lengths(pos), np.broadcast_to(0.97 * rig_lengths, (n, 21)),
                               atol=1e-5)
    np.testing.assert_allclose(pos[:, :, 1].min(axis=1), 0.0, atol=1e-9)
    lifted = pos[:, 7, 1] > 0.05  # the left foot is off the floor: the right one stands
    assert lifted.sum() > n // 2
    np.testing.assert_allclose(pos[lifted][:, [8, 11], 1].min(axis=1), 0.0, atol=1e-9)
    # The planted right foot does not slide while the left leg moves.
    assert np.ptp(pos[:, 11, [0, 2]], axis=0).max() < 1e-6


def test_flight_lifts_the_body_and_velocity_moves_it_when_unlocked():
    n = 30
    root = RootMotion.still(n)
    root.flight[10:20] = 0.3
    root.lock[:] = 0.0
    root.velocity[:, 1] = 1.0  # 1 m/s forward
    pos = place_root(Pose(n).angles, root)
    assert pos[15, :, 1].min() == pytest.approx(0.3)
    assert pos[-1, 0, 2] - pos[0, 0, 2] == pytest.approx((n - 1) / 20, rel=1e-6)


def test_yaw_rate_turns_the_body_left():
    n = 21
    root = RootMotion.still(n)
    root.yaw_rate[:] = np.pi / 2  # 90 degrees per second, to the left
    pos = place_root(Pose(n).angles, root)
    across = pos[-1, 2] - pos[-1, 1]  # left hip -> right hip, as HumanML3D
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)
    forward /= np.linalg.norm(forward)
    # Facing +z at the start, turned about +y by ~90 degrees: now facing +x (the left).
    assert forward[0] > 0.99


def test_place_root_rejects_bad_input():
    with pytest.raises(MotionError, match="frames"):
        place_root(Pose(5).angles, RootMotion.still(4))
    angles = Pose(5).angles
    angles[2, 3, 0] = np.nan
    with pytest.raises(MotionError, match="non-finite"):
        place_root(angles, RootMotion.still(5))
    with pytest.raises(MotionError, match=r"\(T, 22, 4\)"):
        forward_kinematics(np.zeros((3, 21, 4)), np.zeros((3, 3)))

"""Foot-contact clean-up pieces: contacts, spans, two-bone IK, floor, the off switch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hmu_core.errors import MotionError
from hmu_core.motion.foot_contact import (
    FootParams,
    LegJoints,
    clean_feet,
    contact_spans,
    foot_contacts,
    foot_skating,
    reach_drop,
    solve_leg,
    two_bone_ik,
)
from hmu_core.motion.motion import Motion


def test_contact_spans():
    flags = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    assert contact_spans(flags) == [(0, 2), (4, 5), (6, 9)]
    assert contact_spans(np.zeros(3, dtype=bool)) == []


def test_two_bone_ik_reaches_keeps_lengths_and_bend_plane():
    rng = np.random.default_rng(0)
    hip = np.zeros((50, 3))
    knee = np.tile([0.0, -0.4, 0.05], (50, 1))
    ankle = np.tile([0.0, -0.8, 0.0], (50, 1))
    target = np.array([0.0, -0.6, 0.1]) + 0.1 * rng.standard_normal((50, 3))
    new_knee, new_ankle = two_bone_ik(hip, knee, ankle, target)
    assert np.allclose(new_ankle, target, atol=1e-9)
    assert np.allclose(np.linalg.norm(new_knee - hip, axis=-1), np.linalg.norm(knee - hip, axis=-1))
    assert np.allclose(np.linalg.norm(new_ankle - new_knee, axis=-1),
                       np.linalg.norm(ankle - knee, axis=-1))
    # The knee stays on its side (forward) of the hip-ankle line, in the old bending plane.
    u = target / np.linalg.norm(target, axis=-1, keepdims=True)
    side = new_knee - np.sum(new_knee * u, axis=-1, keepdims=True) * u
    old_side = knee - np.sum(knee * u, axis=-1, keepdims=True) * u
    assert np.all(np.sum(side * old_side, axis=-1) > 0)
    normal = np.cross(u, old_side)
    assert np.abs(np.sum(new_knee * normal, axis=-1)).max() < 1e-9
    # Out of reach: the leg stretches straight towards the target.
    far = np.tile([0.0, -2.0, 0.0], (50, 1))
    _, stretched = two_bone_ik(hip, knee, ankle, far)
    reach = np.linalg.norm(knee - hip, axis=-1) + np.linalg.norm(ankle - knee, axis=-1)
    assert np.allclose(np.linalg.norm(stretched, axis=-1), reach, atol=1e-5)


def test_reach_drop_lowers_the_hip_exactly_enough():
    t = 30
    leg = LegJoints(np.tile([0.0, 0.9, 0.0], (t, 1)), np.tile([0.0, 0.5, 0.0], (t, 1)),
                    np.tile([0.0, 0.1, 0.0], (t, 1)), np.tile([0.0, 0.0, 0.1], (t, 1)))
    goal = np.tile([0.0, 0.1, 0.4], (t, 1))  # 0.4 m ahead of a 0.8 m straight leg
    goal[:10] = leg.ankle[:10]
    drop = reach_drop([leg], [goal])
    assert drop[:3].max() < 1e-3 and drop[10:].min() > 0.05  # a smooth dip, only near
    down = np.stack([0 * drop, drop, 0 * drop], -1)  # the whole body goes down
    lowered = LegJoints(*(getattr(leg, f.name) - down for f in dataclasses.fields(leg)))
    out = solve_leg(lowered, goal, goal + np.array([0.0, -0.1, 0.1]), floor=0.0)
    assert np.abs(out.ankle - goal).max() < 1e-5  # the IK keeps 1e-6 m off full stretch


def _stepping(features: bool) -> Motion:
    """A synthetic walk whose planted feet slide forward at 0.3 m/s and sink 2 cm."""
    from hmu_core.synth.families import ClipPlan, Segment
    from hmu_core.synth.generate import generate_clip

    plan = ClipPlan("w", (Segment("walk", 0, 60, {"direction": "forward", "speed": "normal"}),),
                    1.0, 5)
    clip = generate_clip(plan)
    motion = Motion.from_features(clip.features)
    contacts = foot_contacts(motion)
    joints = motion.joints.astype(np.float64).copy()
    slide = 0.3 / motion.fps * np.arange(motion.num_frames)
    for col, j in enumerate((7, 10, 8, 11)):
        joints[contacts[:, col], j, 2] += slide[contacts[:, col]]
    joints[..., 1] -= 0.02
    return Motion(joints=joints, features=motion.features if features else None)


@pytest.mark.parametrize("features", [True, False])
def test_clean_feet_plants_sliding_sunk_feet(features):
    motion = _stepping(features)
    contacts = foot_contacts(motion)
    assert contacts.any(axis=0).all(), "every foot joint touches down"
    before = foot_skating(motion.smpl_pose().joints(), contacts, motion.fps)
    planted = clean_feet(motion)
    fk = planted.smpl_pose().joints()
    assert foot_skating(fk, contacts, motion.fps) < 0.2 * before
    assert fk[:, [7, 8, 10, 11], 1].min() >= -1e-6
    assert np.abs(fk[:, :22] - planted.joints).max() < 1e-4  # the rig shows what was planted
    assert planted.features is None
    assert planted.provenance["foot_cleanup"]["contacts"] == ("features" if features
                                                              else "velocity")


def test_velocity_contacts_follow_the_official_rule():
    joints = np.zeros((10, 22, 3))
    joints[:, :, 1] = np.linspace(0.0, 1.5, 22)
    joints[5:, 7, 2] = 0.1 * np.arange(5)  # the left ankle moves 0.1 m a frame: no contact
    flags = foot_contacts(Motion(joints=joints))
    assert flags[:5, 0].all() and not flags[6:, 0].any()
    assert flags[:, 2].all()  # the right ankle stands still on its low level


def test_params_and_contacts_are_checked():
    with pytest.raises(MotionError, match="blend"):
        FootParams(blend=-1)
    motion = _stepping(True)
    with pytest.raises(MotionError, match="contacts must be"):
        clean_feet(motion, contacts=np.zeros((3, 4), dtype=bool))


def test_blend_zero_and_no_contacts_change_nothing_but_the_floor():
    motion = _stepping(True)
    none = np.zeros((motion.num_frames, 4), dtype=bool)
    planted = clean_feet(motion, contacts=none)
    fk = motion.smpl_pose().joints()
    lifted = planted.joints
    upper = [0, 3, 6, 9, 12, 15, 16, 17, 18, 19, 20, 21]
    assert np.allclose(lifted[:, upper], fk[:, upper], atol=1e-6)
    assert lifted[:, [7, 8, 10, 11], 1].min() >= -1e-6

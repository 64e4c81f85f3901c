"""The Motion value type: constructors, properties, validation, lazy SMPL."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hmu_core.errors import MotionError
from hmu_core.motion import smpl
from hmu_core.motion.features import features_to_joints
from hmu_core.motion.motion import Motion


@pytest.fixture(scope="module")
def sample(conformance_dir):
    with np.load(conformance_dir / "humanml3d_features.npz") as npz:
        return npz["sample_012314__new_joint_vecs"], npz["sample_012314__new_joints"]


def test_from_features(sample):
    feats, joints = sample
    m = Motion.from_features(feats, text="a person walks", provenance={"seed": 1})
    assert m.num_frames == 170 and m.fps == 20.0
    assert m.duration_seconds == pytest.approx(8.5)
    assert m.joints.dtype == np.float32 and m.joints.shape == (170, 22, 3)
    np.testing.assert_allclose(m.joints, features_to_joints(feats))
    np.testing.assert_allclose(m.joints, joints, atol=1e-4)
    assert m.features is not None and m.features.shape == (170, 263)
    assert m.text == "a person walks" and m.provenance == {"seed": 1}


def test_from_joints_and_immutability(sample):
    _, joints = sample
    src = joints.astype(np.float64).copy()
    m = Motion.from_joints(src, fps=30)
    src[:] = 0  # the motion holds its own copy
    assert np.abs(m.joints).max() > 0
    assert m.fps == 30.0 and m.duration_seconds == pytest.approx(170 / 30)
    with pytest.raises(ValueError):
        m.joints[0, 0, 0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.fps = 10.0  # type: ignore[misc]
    assert m.features is None and m.smpl is None and m.provenance == {}


def test_smpl_lazy_and_with_smpl(sample):
    _, joints = sample
    m = Motion.from_joints(joints)
    pose = m.smpl_pose()
    assert m.smpl_pose() is pose  # cached
    assert m.smpl is None
    m2 = m.with_smpl()
    assert m2.smpl is pose and m2.smpl_pose() is pose
    fk = smpl.forward_kinematics(pose)[:, :22]
    assert np.linalg.norm(fk - m.joints, axis=-1).max() < 0.01
    m3 = m.with_smpl(rest=smpl.rest_offsets())
    np.testing.assert_array_equal(m3.smpl.rest_offsets, smpl.rest_offsets())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"joints": np.zeros((4, 21, 3))}, r"\(T, 22, 3\)"),
        ({"joints": np.zeros((0, 22, 3))}, "at least one frame"),
        ({"joints": np.full((4, 22, 3), np.inf)}, "NaN/inf"),
        ({"joints": np.zeros((4, 22, 3)), "fps": 0}, "fps"),
        ({"joints": np.zeros((4, 22, 3)), "fps": -20}, "fps"),
        ({"joints": np.zeros((4, 22, 3)), "fps": float("nan")}, "fps"),
        ({"joints": np.zeros((4, 22, 3)), "fps": "fast"}, "fps"),
        ({"joints": np.zeros((4, 22, 3)), "features": np.zeros((4, 262))}, "263"),
        ({"joints": np.zeros((4, 22, 3)), "features": np.zeros((3, 263))}, "same frames"),
        ({"joints": np.zeros((4, 22, 3)), "text": 3}, "text"),
        ({"joints": np.zeros((4, 22, 3)), "provenance": [1]}, "provenance"),
    ],
)
def test_validation(kwargs, match):
    with pytest.raises(MotionError, match=match):
        Motion(**kwargs)


def test_from_features_validation():
    with pytest.raises(MotionError, match="263"):
        Motion.from_features(np.zeros((10, 22, 3)))
    bad = np.zeros((10, 263))
    bad[3, 5] = np.nan
    with pytest.raises(MotionError, match="NaN"):
        Motion.from_features(bad)


def test_smpl_frame_mismatch(sample):
    _, joints = sample
    pose = smpl.inverse_kinematics(joints[:10])
    with pytest.raises(MotionError, match="frames"):
        Motion.from_joints(joints[:11], smpl=pose)

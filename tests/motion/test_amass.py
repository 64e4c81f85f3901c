"""AMASS-style npz: round trip, Z-up convention, no pickles."""

from __future__ import annotations

import numpy as np
import pytest

from hmu_core.errors import MotionError
from hmu_core.motion import quaternion, smpl
from hmu_core.motion.amass import Y_UP_TO_Z_UP, read_amass_npz, write_amass_npz
from hmu_core.motion.motion import Motion


@pytest.fixture(scope="module")
def motion(conformance_dir):
    with np.load(conformance_dir / "humanml3d_features.npz") as npz:
        feats = npz["sample_012314__new_joint_vecs"]
    return Motion.from_features(feats, text="a person walks", provenance={"seed": 7, "model": "x"})


def test_keys_and_no_pickle(tmp_path, motion):
    path = tmp_path / "clip.npz"
    write_amass_npz(path, motion)
    with np.load(path, allow_pickle=False) as data:
        d = {k: data[k] for k in data.files}
    t = motion.num_frames
    assert d["poses"].shape == (t, 72) and d["trans"].shape == (t, 3)
    assert float(d["mocap_frame_rate"]) == 20.0
    np.testing.assert_array_equal(d["betas"], np.zeros(10))
    assert str(d["gender"]) == "neutral" and str(d["up_axis"]) == "Z"
    assert d["rest_offsets"].shape == (24, 3) and d["joints"].shape == (t, 22, 3)
    assert str(d["text"]) == "a person walks"
    # Z-up: the pelvis height is trans[:, 2], and FK of the stored arrays gives the stored joints.
    np.testing.assert_allclose(d["trans"][:, 2], motion.joints[:, 0, 1], atol=1e-5)
    local = quaternion.from_axis_angle(d["poses"].reshape(t, 24, 3))
    fk = smpl.forward_kinematics_arrays(local, d["trans"], d["rest_offsets"])
    assert np.linalg.norm(fk[:, :22] - d["joints"], axis=-1).max() < 0.01
    head_above_feet = fk[:, 15, 2] - fk[:, 10, 2]
    assert np.median(head_above_feet) > 1.0 and np.all(head_above_feet > 0.3)


def test_round_trip(tmp_path, motion):
    path = tmp_path / "clip.npz"
    write_amass_npz(path, motion)
    back = read_amass_npz(path)
    assert back.fps == motion.fps and back.text == motion.text
    assert back.provenance == motion.provenance
    np.testing.assert_allclose(back.joints, motion.joints, atol=1e-6)
    pose = motion.smpl_pose()
    np.testing.assert_allclose(back.smpl.root_translation, pose.root_translation, atol=1e-9)
    dots = np.abs(np.sum(back.smpl.local_rotations * pose.local_rotations, axis=-1))
    np.testing.assert_allclose(dots, 1.0, atol=1e-9)
    fk = smpl.forward_kinematics(back.smpl)[:, :22]
    assert np.linalg.norm(fk - motion.joints, axis=-1).max() < 0.01


def test_root_joint_rest_is_subtracted(tmp_path, motion):
    j0 = np.array([-0.0018, -0.2233, 0.0282])
    path = tmp_path / "clip.npz"
    write_amass_npz(path, motion, root_joint_rest=j0)
    with np.load(path, allow_pickle=False) as d:
        np.testing.assert_allclose(
            d["trans"], motion.joints[:, 0].astype(np.float64) @ Y_UP_TO_Z_UP.T - j0, atol=1e-6
        )
    np.testing.assert_allclose(read_amass_npz(path).joints, motion.joints, atol=1e-6)


def test_read_rejects_foreign_files(tmp_path):
    path = tmp_path / "amass.npz"
    np.savez(path, poses=np.zeros((3, 72)), trans=np.zeros((3, 3)))
    with pytest.raises(MotionError, match="lacks"):
        read_amass_npz(path)
    with pytest.raises(MotionError, match="cannot read"):
        read_amass_npz(tmp_path / "missing.npz")


def test_failed_write_leaves_no_file(tmp_path, motion):
    class Broken(Motion):
        def smpl_pose(self):
            raise RuntimeError("no pose")

    broken = Broken(joints=motion.joints)
    with pytest.raises(RuntimeError):
        write_amass_npz(tmp_path / "clip.npz", broken)
    assert list(tmp_path.iterdir()) == []

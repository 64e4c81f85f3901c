"""Skeleton constants equal the machine-readable official values in humanml3d_skeleton.json."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from hmu_core.motion import skeleton


@pytest.fixture(scope="module")
def skel(conformance_dir):
    return json.loads((conformance_dir / "humanml3d_skeleton.json").read_text())


def test_names_parents_and_chains(skel):
    assert skeleton.NUM_JOINTS == skel["joints_num"] == len(skeleton.JOINT_NAMES)
    assert list(skeleton.JOINT_NAMES) == skel["joint_names"]
    assert list(skeleton.PARENTS) == skel["parents"]
    assert [list(c) for c in skeleton.KINEMATIC_CHAIN] == skel["t2m_kinematic_chain"]
    assert skel["fps"] == skeleton.FPS
    assert skel["feature_dim"] == skeleton.FEATURE_DIM


def test_chains_agree_with_parents():
    for chain in skeleton.KINEMATIC_CHAIN:
        for parent, child in itertools.pairwise(chain):
            assert skeleton.PARENTS[child] == parent
    covered = {j for chain in skeleton.KINEMATIC_CHAIN for j in chain}
    assert covered == set(range(skeleton.NUM_JOINTS))


def test_offsets(skel, conformance_dir):
    np.testing.assert_array_equal(skeleton.RAW_OFFSETS, np.array(skel["t2m_raw_offsets"], float))
    tgt = skel["target_offsets"]
    np.testing.assert_array_equal(skeleton.TARGET_OFFSETS, np.array(tgt["values"], np.float32))
    np.testing.assert_allclose(skeleton.BONE_LENGTHS, tgt["bone_lengths"], atol=1e-7)
    with np.load(conformance_dir / "humanml3d_features.npz") as npz:
        # The JSON prints 8 decimals, so the npz float32 values may differ by one ulp.
        np.testing.assert_allclose(skeleton.TARGET_OFFSETS, npz["tgt_offsets"], rtol=0, atol=1e-8)
        np.testing.assert_array_equal(skeleton.RAW_OFFSETS, npz["t2m_raw_offsets"])
    # Target offsets are raw directions times bone lengths.
    np.testing.assert_allclose(skeleton.TARGET_OFFSETS,
                               skeleton.RAW_OFFSETS * skeleton.BONE_LENGTHS[:, None], atol=1e-7)


def test_process_file_params(skel):
    p = skel["process_file_params"]
    assert p["feet_thre"] == skeleton.FEET_THRESHOLD
    assert (p["l_idx1"], p["l_idx2"]) == skeleton.LEG_SCALE_JOINTS
    assert tuple(p["fid_l"]) == skeleton.FOOT_LEFT
    assert tuple(p["fid_r"]) == skeleton.FOOT_RIGHT
    assert tuple(p["face_joint_indx"]) == skeleton.FACE_JOINTS
    assert p["ik_smooth_forward_sigma_frames"] == skeleton.IK_SMOOTH_SIGMA
    assert p["ik_smooth_mode"] == "nearest"


def test_mirror_permutation_is_a_left_right_involution():
    perm = skeleton.mirror_permutation()
    np.testing.assert_array_equal(perm[perm], np.arange(skeleton.NUM_JOINTS))
    assert sorted(perm.tolist()) == list(range(skeleton.NUM_JOINTS))
    for i, name in enumerate(skeleton.JOINT_NAMES):
        mirrored = skeleton.JOINT_NAMES[perm[i]]
        if name.startswith("left_"):
            assert mirrored == "right_" + name[len("left_") :]
        elif name.startswith("right_"):
            assert mirrored == "left_" + name[len("right_") :]
        else:
            assert mirrored == name

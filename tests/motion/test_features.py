"""HumanML3D features against the conformance fixtures made by running the official code.

Every stage of ``process_file`` and both recoveries are compared, per sequence and per feature
group, with the tolerances recommended in ``humanml3d_features.json``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hmu_core.errors import MotionError
from hmu_core.motion import features, quaternion
from hmu_core.motion.skeleton import PARENTS, TARGET_OFFSETS

SEQUENCES = (
    "walk_straight",
    "walk_turn_past_180deg",
    "idle_wave_arms",
    "jog_tall_turn_right",
    "jump_in_place",
)


@pytest.fixture(scope="module")
def fixtures(conformance_dir):
    with np.load(conformance_dir / "humanml3d_features.npz") as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture(scope="module")
def meta(conformance_dir):
    return json.loads((conformance_dir / "humanml3d_features.json").read_text())


@pytest.fixture(scope="module")
def tol(meta):
    t = meta["recommended_tolerances"]
    return {"features": t["features_atol"], "rot6d": t["rot6d_atol"], "joints": t["joints_atol"]}


@pytest.fixture(scope="module")
def processed(fixtures):
    return {s: features.process_joints(fixtures[f"{s}__input_joints"]) for s in SEQUENCES}


def _max_abs(a, b) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def test_fixture_list_matches_json(meta):
    assert tuple(s["name"] for s in meta["sequences"]) == SEQUENCES


def test_feature_layout_matches_json(meta):
    ours = [(sl.start, sl.stop) for sl in features.FEATURE_GROUPS.values()]
    assert ours == [(g["start"], g["stop"]) for g in meta["feature_layout"]]


@pytest.mark.parametrize("seq", SEQUENCES)
def test_uniform_skeleton(seq, fixtures, tol):
    ours = features.uniform_skeleton(fixtures[f"{seq}__input_joints"], fixtures["tgt_offsets"])
    assert ours.shape == fixtures[f"{seq}__uniform_skeleton_joints"].shape
    assert _max_abs(ours, fixtures[f"{seq}__uniform_skeleton_joints"]) < tol["joints"]


@pytest.mark.parametrize("seq", SEQUENCES)
@pytest.mark.parametrize("stage", ["global_positions", "local_positions"])
def test_positions_stages(seq, stage, fixtures, processed, tol):
    ours = getattr(processed[seq], stage)
    assert ours.dtype == np.float32
    assert _max_abs(ours, fixtures[f"{seq}__{stage}"]) < tol["joints"]


@pytest.mark.parametrize("seq", SEQUENCES)
@pytest.mark.parametrize("group", [g for g in features.FEATURE_GROUPS if g != "contacts"])
def test_feature_groups(seq, group, fixtures, processed, tol):
    ours = processed[seq].features[:, features.FEATURE_GROUPS[group]]
    ref = fixtures[f"{seq}__features"][:, features.FEATURE_GROUPS[group]]
    atol = tol["rot6d"] if group == "rot6d" else tol["features"]
    assert _max_abs(ours, ref) < atol


@pytest.mark.parametrize("seq", SEQUENCES)
def test_contacts_exact(seq, fixtures, processed):
    ours = processed[seq].features[:, features.CONTACTS]
    np.testing.assert_array_equal(ours, fixtures[f"{seq}__features"][:, features.CONTACTS])


@pytest.mark.parametrize("seq", SEQUENCES)
def test_joints_to_features_shape_dtype(seq, fixtures, processed):
    feats = features.joints_to_features(fixtures[f"{seq}__input_joints"])
    assert feats.dtype == np.float32
    assert feats.shape == fixtures[f"{seq}__features"].shape
    np.testing.assert_array_equal(feats, processed[seq].features)


@pytest.mark.parametrize("seq", SEQUENCES)
@pytest.mark.parametrize("source", ["official", "ours"])
def test_recovered_joints(seq, source, fixtures, processed, tol):
    feats = fixtures[f"{seq}__features"] if source == "official" else processed[seq].features
    ric = features.features_to_joints(feats)
    rot = features.features_to_joints_rot(feats)
    assert ric.dtype == np.float32 and rot.dtype == np.float32
    assert _max_abs(ric, fixtures[f"{seq}__recovered_joints_ric"]) < tol["joints"]
    assert _max_abs(rot, fixtures[f"{seq}__recovered_joints_rot"]) < tol["joints"]


def test_shipped_sample_recovers_shipped_joints(fixtures, tol):
    joints = features.features_to_joints(fixtures["sample_012314__new_joint_vecs"])
    assert _max_abs(joints, fixtures["sample_012314__new_joints"]) < tol["joints"]
    assert _max_abs(joints, fixtures["sample_012314__recovered_joints_ric"]) < tol["joints"]
    # The FK path agrees with the ric path on real data too (reference §5: about 1e-6).
    rot = features.features_to_joints_rot(fixtures["sample_012314__new_joint_vecs"])
    assert _max_abs(rot, fixtures["sample_012314__new_joints"]) < tol["joints"]


def test_recovered_root_matches_global_positions_before_the_turn(fixtures, processed):
    # recover_root_rot_pos: theta(0) = 0, root xz(0) = 0, y from the feature.
    r_quat, root = features.recover_root_rot_pos(processed["walk_straight"].features)
    np.testing.assert_array_equal(r_quat[0], [1, 0, 0, 0])
    np.testing.assert_array_equal(root[0, [0, 2]], [0, 0])
    glob = processed["walk_straight"].global_positions[:-1, 0]
    assert _max_abs(root, glob) < 1e-5


def test_yaw_sign_quirk_past_180_degrees(fixtures, processed, tol):
    """Frame 78 of walk_turn_past_180deg: r crosses w = 0, arcsin keeps the wrong sign."""
    seq = "walk_turn_past_180deg"
    ours = processed[seq].features[:, 0]
    ref = fixtures[f"{seq}__features"][:, 0]
    assert abs(ours[78] - ref[78]) < tol["features"]
    assert ours[78] > 0.01  # stored: about +0.020 rad

    # The hemisphere-fixed half-angle is about -0.020 there: the stored sign is the quirk.
    r = processed[seq].root_quat.astype(np.float64)
    dq = quaternion.qmul(r[1:], quaternion.qinv(r[:-1]))
    assert dq[78, 0] < 0
    dq = np.where(dq[:, :1] < 0, -dq, dq)
    true_half = np.arcsin(dq[:, 2])
    assert true_half[78] < -0.01
    # Everywhere else the two agree: only the crossing frame carries the quirk.
    others = np.delete(np.arange(len(ours)), 78)
    assert np.max(np.abs(true_half[others] - ours[others])) < 1e-5

    # Recovery therefore drifts from the global positions after frame 78 (0.144 m officially).
    rec = features.features_to_joints(fixtures[f"{seq}__features"])
    glob = fixtures[f"{seq}__global_positions"][:-1]
    assert np.max(np.abs(rec[:79] - glob[:79])) < 1e-5
    assert np.max(np.abs(rec - glob)) > 0.1


def test_batched_recovery_equals_per_item(fixtures):
    t = 59
    items = [fixtures[f"{s}__features"][:t] for s in SEQUENCES]
    batch = np.stack(items)  # (5, T, 263)
    for fn in (features.features_to_joints, features.features_to_joints_rot):
        out = fn(batch)
        assert out.shape == (len(SEQUENCES), t, 22, 3)
        for b, item in enumerate(items):
            np.testing.assert_array_equal(out[b], fn(item))
        deep = fn(batch[:4].reshape(2, 2, t, 263))
        np.testing.assert_array_equal(deep.reshape(4, t, 22, 3), out[:4])
    r_quat, root = features.recover_root_rot_pos(batch)
    assert r_quat.shape == (len(SEQUENCES), t, 4) and root.shape == (len(SEQUENCES), t, 3)


@pytest.mark.parametrize("seq", [s for s in SEQUENCES if s != "walk_turn_past_180deg"])
def test_recovery_reproduces_global_positions(seq, processed):
    # Two paths agree: features_to_joints(joints_to_features(x)) is process_file's global
    # positions (all frames but the last) wherever the heading never passes 180 degrees.
    proc = processed[seq]
    glob = proc.global_positions[:-1]
    assert _max_abs(features.features_to_joints(proc.features), glob) < 1e-5
    assert _max_abs(features.features_to_joints_rot(proc.features), glob) < 1e-5


def test_two_frames_is_enough(fixtures):
    feats = features.joints_to_features(fixtures["walk_straight__input_joints"][:2])
    assert feats.shape == (1, 263)
    assert features.features_to_joints(feats).shape == (1, 22, 3)


def test_three_frames_use_the_last_axis_cross(fixtures):
    # The official torch.cross without dim crosses along axis 0 for (3, 3) input (reference §11
    # item 10), which corrupts 3-frame clips; we do not reproduce that. Frame 0 does not depend
    # on the clip length (r(0) = identity, per-frame bone IK), so a 3-frame clip must give the
    # same frame-0 ric and 6-D rotations as the whole clip.
    joints = fixtures["walk_straight__input_joints"]
    short = features.process_joints(joints[:3])
    long = features.process_joints(joints)
    # The floor (min y over the clip) differs with the length: compare x and z only.
    xz = [0, 2]
    np.testing.assert_allclose(
        short.global_positions[..., xz], long.global_positions[:3, :, xz], atol=1e-6
    )
    np.testing.assert_allclose(
        short.local_positions[0, :, xz], long.local_positions[0, :, xz], atol=1e-6
    )
    for group in (features.ROT6D, features.LOCAL_VEL):
        np.testing.assert_allclose(short.features[0, group], long.features[0, group], atol=1e-5)


@pytest.mark.parametrize(
    "shape", [(10, 21, 3), (10, 22), (10, 22, 4), (2, 10, 22, 3), (1, 22, 3), (0, 22, 3)]
)
def test_bad_joint_shapes_raise(shape):
    with pytest.raises(MotionError) as err:
        features.joints_to_features(np.zeros(shape))
    assert str(shape) in str(err.value)
    assert "(T, 22, 3)" in str(err.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_joints_raise(fixtures, bad):
    joints = fixtures["walk_straight__input_joints"].copy()
    joints[5, 3, 1] = bad
    with pytest.raises(MotionError, match=r"\(100, 22, 3\)"):
        features.joints_to_features(joints)
    with pytest.raises(MotionError):
        features.uniform_skeleton(joints)


@pytest.mark.parametrize("shape", [(10, 262), (263,), (0, 263), (2, 10, 264)])
@pytest.mark.parametrize(
    "fn",
    [features.features_to_joints, features.features_to_joints_rot, features.recover_root_rot_pos],
)
def test_bad_feature_shapes_raise(fn, shape):
    with pytest.raises(MotionError) as err:
        fn(np.zeros(shape, dtype=np.float32))
    assert str(shape) in str(err.value)
    assert "(..., T, 263)" in str(err.value)


def test_non_finite_features_raise(fixtures):
    feats = fixtures["walk_straight__features"].copy()
    feats[3, 100] = np.nan
    with pytest.raises(MotionError, match=r"\(99, 263\)"):
        features.features_to_joints(feats)
    with pytest.raises(MotionError):
        features.features_to_joints_rot(feats[None])


def test_degenerate_pose_raises():
    # All joints at one point: no bone has a direction.
    with pytest.raises(MotionError):
        features.joints_to_features(np.zeros((5, 22, 3)))


def _rest_pose_clip(n_frames: int, step: float) -> np.ndarray:
    """Rest pose built from the target offsets (exact axis-aligned bones), moving along +z."""
    pose = np.zeros((22, 3))
    for j, parent in enumerate(PARENTS):
        if parent >= 0:
            pose[j] = pose[parent] + TARGET_OFFSETS[j]
    pose[:, 1] += 1.0
    clip = np.repeat(pose[None], n_frames, axis=0)
    clip[:, :, 2] += step * np.arange(n_frames)[:, None]
    return clip


def test_facing_exactly_minus_z_is_finite():
    # Facing exactly -z makes qbetween(forward, +z) divide by zero (NaN in the official code),
    # and every x- or z-pointing bone exactly opposite its raw direction: ours turns 180 degrees
    # about +y, which gives the same features as the same clip facing +z.
    clip = _rest_pose_clip(12, 0.03)
    flipped = clip * np.array([-1.0, 1.0, -1.0])
    feats = features.joints_to_features(clip)
    feats_flipped = features.joints_to_features(flipped)
    assert np.all(np.isfinite(feats_flipped))
    np.testing.assert_allclose(feats_flipped, feats, atol=1e-6)
    np.testing.assert_allclose(feats[:, features.ROOT_VEL], [[0.0, 0.03]] * 11, atol=1e-6)


def test_qbetween_of_opposite_vectors():
    q = features._qbetween32(
        np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
        np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    )
    np.testing.assert_allclose(q[:2], [[0, 0, 1, 0], [0, 0, 1, 0]], atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        quaternion.qrot(q[2].astype(np.float64), [0.0, -1.0, 0.0]), [0, 1, 0], atol=1e-6
    )

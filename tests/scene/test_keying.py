"""Keying: the keyed rig's forward kinematics (Blender's own, read after ``frame_set``)
reproduces the motion; the action is new, layered, LINEAR, sign-continuous, carries its
properties, and maps 20 fps onto another scene fps without changing it."""

from __future__ import annotations

import json

import bpy
import numpy as np
import pytest

from exporter.scene import formats, keying, rig
from hmu_core.errors import ConfigError
from hmu_core.motion.skeleton import NUM_JOINTS, PARENTS

pytestmark = pytest.mark.blender


def _rig_for(motion, name="hmu_smpl"):
    rest = rig.rest_joints_from_offsets(motion.smpl_pose().rest_offsets)
    return rig.build_smpl_armature(name, rest_joints=rest)


@pytest.mark.parametrize("which", ["walk_motion", "generated_motion"])
def test_keyed_rig_reproduces_the_motions_smpl_pose(which, request, world):
    motion = request.getfixturevalue(which)
    arm = _rig_for(motion)
    keying.key_motion(arm, motion, action_name="clip")
    got = rig.world_joints(arm, np.arange(motion.num_frames) + 1.0)
    np.testing.assert_allclose(got, world(motion.smpl_pose().joints()), atol=1e-4)


def test_keyed_rig_reproduces_the_joints_of_a_rigid_motion(walk_motion, world):
    # Only a rigid skeleton can be reproduced by a rig: the default model's generated joints
    # stretch bones by up to 25 % (std), so for them the pose above is the reference.
    arm = _rig_for(walk_motion)
    keying.key_motion(arm, walk_motion, action_name="clip")
    got = rig.world_joints(arm, np.arange(walk_motion.num_frames) + 1.0)
    err = np.linalg.norm(got[:, :NUM_JOINTS] - world(walk_motion.joints), axis=-1)
    assert err.max() < 0.01, f"max FK error {err.max():.3g} m"


def test_rig_with_other_proportions_keeps_root_path_and_limb_directions(walk_motion, world):
    arm = rig.build_smpl_armature()  # default T-pose, HumanML3D bone lengths (motion is 1.1x)
    keying.key_motion(arm, walk_motion, action_name="retarget")
    got = rig.world_joints(arm, np.arange(walk_motion.num_frames) + 1.0)[:, :NUM_JOINTS]
    want = world(walk_motion.joints)
    np.testing.assert_allclose(got[:, 0], want[:, 0], atol=1e-4)
    parents = np.array(PARENTS[1:])
    a, b = got[:, 1:] - got[:, parents], want[:, 1:] - want[:, parents]
    cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).max(axis=0)
    limbs = [j - 1 for j in (4, 5, 7, 8, 10, 11, 15, 16, 17, 18, 19, 20, 21)]
    assert angle[limbs].max() < 0.5, angle  # the torso is fitted, limbs are exact


def test_action_is_new_layered_linear_and_sign_continuous(walk_motion):
    arm = _rig_for(walk_motion)
    first = keying.key_motion(arm, walk_motion, action_name="clip")
    second = keying.key_motion(arm, walk_motion, action_name="clip", assign=False)
    assert first != second and (first.name, second.name) == ("clip", "clip.001")
    assert arm.animation_data.action == first  # assign=False left it alone
    assert arm.animation_data.action_slot == first.slots[0]
    assert first.use_fake_user
    assert first.is_action_layered and len(first.layers) == 1 and len(first.slots) == 1
    curves = first.layers[0].strips[0].channelbag(first.slots[0]).fcurves
    assert len(curves) == 24 * 4 + 3
    for curve in curves:
        assert len(curve.keyframe_points) == walk_motion.num_frames
        assert {k.interpolation for k in curve.keyframe_points} == {"LINEAR"}
    for name in ("pelvis", "left_knee", "right_shoulder"):
        quat = np.array([[k.co[1] for k in curves.find(
            f'pose.bones["{name}"].rotation_quaternion', index=i).keyframe_points]
            for i in range(4)]).T
        assert np.all(np.sum(quat[1:] * quat[:-1], axis=-1) > 0), name


def test_scene_fps_30_is_kept_and_keys_land_on_scene_time(walk_motion, empty_scene, world):
    empty_scene.render.fps = 30
    arm = _rig_for(walk_motion)
    action = keying.key_motion(arm, walk_motion, action_name="clip")
    assert (empty_scene.render.fps, empty_scene.render.fps_base) == (30, 1.0)
    steps = 1.0 + np.arange(walk_motion.num_frames) * 30 / 20
    curves = action.layers[0].strips[0].channelbag(action.slots[0]).fcurves
    for curve in curves:
        frames = np.array([k.co[0] for k in curve.keyframe_points])
        np.testing.assert_allclose(frames, steps, atol=1e-4)
    assert action.use_frame_range
    np.testing.assert_allclose(action.frame_range[:], (1.0, steps[-1]), atol=1e-4)
    # Model frame i is reached at scene frame 1 + 1.5 i (fractional frames included).
    got = rig.world_joints(arm, steps[::3])
    np.testing.assert_allclose(got, world(walk_motion.smpl_pose().joints()[::3]), atol=1e-4)


def test_start_frame_and_explicit_scene_fps(walk_motion):
    arm = _rig_for(walk_motion)
    action = keying.key_motion(arm, walk_motion, action_name="clip", start_frame=101.0,
                               scene_fps=40.0)
    np.testing.assert_allclose(action.frame_range[:],
                               (101.0, 101.0 + 2 * (walk_motion.num_frames - 1)), atol=1e-4)
    with pytest.raises(ConfigError, match="scene_fps"):
        keying.key_motion(arm, walk_motion, action_name="bad", scene_fps=0)


def test_action_properties(walk_motion):
    arm = _rig_for(walk_motion)
    props = keying.motion_properties(walk_motion, bundle_sha256="ab" * 32)
    action = keying.key_motion(arm, walk_motion, action_name="clip",
                               properties={**props, "hmu_note": {"take": 2}})
    assert action["hmu_prompt"] == "a person walks and turns left"
    assert action["hmu_seed"] == 7
    assert action["hmu_bundle_sha256"] == "ab" * 32
    assert action["hmu_frames"] == walk_motion.num_frames and action["hmu_fps"] == 20.0
    assert json.loads(action["hmu_unlearning"]) == {"method": "lcr"}
    assert json.loads(action["hmu_note"]) == {"take": 2}


def test_unique_action_name_and_bad_targets(walk_motion):
    assert keying.unique_action_name("  a   walk ") == "a walk"
    bpy.data.actions.new("a walk")
    bpy.data.actions.new("a walk.001")
    assert keying.unique_action_name("a walk") == "a walk.002"
    assert len(keying.unique_action_name("x" * 300)) == keying.MAX_NAME
    mesh = bpy.data.objects.new("mesh", bpy.data.meshes.new("mesh"))
    with pytest.raises(ConfigError, match="not an armature"):
        keying.key_motion(mesh, walk_motion, action_name="clip")
    assert "clip" not in bpy.data.actions  # nothing made on failure


def test_keying_a_z_up_rig_with_other_bone_axes(walk_motion, world, tmp_path):
    # Blender's BVH importer rebuilds our rig Z-up with its own bone orientations: keying must
    # read the axes and rest rotations off the rig (the general §2.2 conjugation).
    arm = _rig_for(walk_motion)
    action = keying.key_motion(arm, walk_motion, action_name="clip")
    z_up = formats.import_armature(formats.export_armature(arm, action, tmp_path / "a.bvh", "bvh"))
    np.testing.assert_allclose(rig.body_axes(z_up), world(np.eye(3)).T, atol=1e-9)
    keying.key_motion(z_up, walk_motion, action_name="again")
    got = rig.world_joints(z_up, np.arange(walk_motion.num_frames) + 1.0)
    np.testing.assert_allclose(got, world(walk_motion.smpl_pose().joints()), atol=1e-4)

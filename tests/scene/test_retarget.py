"""Retargeting in Blender: rigs built in each convention, keyed, evaluated by Blender.

The maths and its targets are tested in tests/motion/test_retarget.py; here Blender reads
the rigs back (rest frames = hmu's ``bone_rest_matrix``) and, evaluating the new action,
poses every keyed bone where hmu computed it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="needs the bpy module")

from exporter.scene.retarget import (  # noqa: E402
    bone_map_of,
    key_retarget,
    require_bone_map,
    rig_rest_of,
    world_heads,
)
from hmu_core.errors import ConfigError  # noqa: E402
from hmu_core.motion.foot_contact import clean_feet  # noqa: E402
from hmu_core.motion.retarget import BODY_TO_WORLD, retarget  # noqa: E402
from tests.motion.rig_builders import BUILDERS, build_in_blender  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.mark.parametrize("rig_name", ["mixamo", "ue5", "rigify"])
def test_blender_reads_the_rest_pose_hmu_builds(rig_name):
    spec = BUILDERS[rig_name]()
    obj = build_in_blender(spec)
    got, want = rig_rest_of(obj), spec.rest()
    assert sorted(got.names) == sorted(want.names)
    order = [want.index(n) for n in got.names]
    assert np.allclose(got.heads, want.heads[order], atol=1e-4)
    assert np.allclose(got.tails, want.tails[order], atol=1e-4)
    # Blender's matrix_local (float32) and hmu's vec_roll_to_mat3 agree.
    assert np.abs(got.rest_rotations - want.rest_rotations[order]).max() < 1e-5
    assert np.allclose(got.matrix_world, spec.matrix_world, atol=1e-6)
    for j, p in enumerate(got.parents):
        assert p < j and (p < 0) == (want.parents[order[j]] < 0)
    assert bone_map_of(obj).source == rig_name


@pytest.mark.parametrize("rig_name", ["mixamo", "ue5", "rigify"])
def test_keyed_action_poses_the_rig_as_computed(rig_name, walk_motion, empty_scene):
    obj = build_in_blender(BUILDERS[rig_name]())
    motion = clean_feet(walk_motion)
    bones = require_bone_map(obj)
    action, report = key_retarget(obj, motion, bones, action_name="hmu_walk_s7",
                                  bone_map_source=rig_name)
    assert report.warnings == ()
    assert obj.animation_data.action == action and action.name == "hmu_walk_s7"
    assert action["hmu_prompt"] == walk_motion.text and action["hmu_seed"] == 7
    assert json.loads(action["hmu_bone_map"]) == bones
    assert action["hmu_bone_map_source"] == rig_name and action["hmu_foot_cleanup"] is True
    result = retarget(motion, rig_rest_of(obj), bones)
    frames = list(range(1, motion.num_frames + 1, 3))
    got = world_heads(obj, list(result.keyed), [float(f) for f in frames], empty_scene)
    want = result.world_heads[[f - 1 for f in frames]][:, [result.rig.index(n)
                                                           for n in result.keyed]]
    assert np.abs(got - want).max() < 1e-3
    # and the feet are where hmu's are, scaled: the toes' path follows hmu's.
    toe = list(result.keyed).index(bones["left_foot"])
    hmu_toe = motion.smpl_pose().joints()[[f - 1 for f in frames], 10] @ BODY_TO_WORLD.T
    start = result.rig.world_heads()[result.rig.index(bones["pelvis"])]
    travel = got[:, toe, :2] - start[:2]
    assert np.abs(travel - result.report.scale * hmu_toe[:, :2]).max() < 0.1


def test_euler_bones_are_keyed_in_their_own_order(walk_motion, empty_scene):
    obj = build_in_blender(BUILDERS["mixamo"]())
    for bone in obj.pose.bones:
        bone.rotation_mode = "ZXY"
    bones = require_bone_map(obj)
    action, _ = key_retarget(obj, walk_motion, bones, action_name="euler", feet=None)
    bag = action.layers[0].strips[0].channelbag(obj.animation_data.action_slot)
    paths = {fc.data_path for fc in bag.fcurves}
    assert 'pose.bones["mixamorig:LeftArm"].rotation_euler' in paths
    assert not any(p.endswith("rotation_quaternion") for p in paths)
    result = retarget(walk_motion, rig_rest_of(obj), bones, feet=None)
    got = world_heads(obj, list(result.keyed), [1.0, 30.0, 60.0], empty_scene)
    want = result.world_heads[[0, 29, 59]][:, [result.rig.index(n) for n in result.keyed]]
    assert np.abs(got - want).max() < 1e-3


def test_new_action_never_overwrites_and_constraints_are_reported(walk_motion, empty_scene):
    obj = build_in_blender(BUILDERS["ue5"]())
    bones = require_bone_map(obj)
    first, _ = key_retarget(obj, walk_motion, bones, action_name="take")
    second, _ = key_retarget(obj, walk_motion, bones, action_name="take")
    assert (first.name, second.name) == ("take", "take.001")
    assert first.use_fake_user and obj.animation_data.action == second
    # A constraint that moves a keyed bone: the result is reported, not silently wrong.
    limit = obj.pose.bones["calf_l"].constraints.new("LIMIT_ROTATION")
    limit.use_limit_x = limit.use_limit_y = limit.use_limit_z = True
    limit.owner_space = "LOCAL"
    _, report = key_retarget(obj, walk_motion, bones, action_name="take")
    assert any("constraints or drivers" in w for w in report.warnings)


def test_unmappable_armature_is_refused_with_the_missing_parts(empty_scene):
    spec = BUILDERS["mixamo"]()
    arms_only = type(spec)(spec.name, tuple(b for b in spec.bones if "Leg" not in b[0]
                                             and "Foot" not in b[0] and "Toe" not in b[0]),
                           spec.matrix_world)
    obj = build_in_blender(arms_only, "torso_rig")
    with pytest.raises(ConfigError, match=r"torso_rig: .*left leg: left_hip"):
        require_bone_map(obj)
    mesh = bpy.data.objects.new("cube", bpy.data.meshes.new("cube"))
    with pytest.raises(ConfigError, match="must be an armature"):
        require_bone_map(mesh)


@pytest.fixture
def rigify_rig(empty_scene):
    """A real Rigify control rig: the human metarig generated by Blender's own Rigify (which
    registers only as an enabled add-on: it reads its preferences; disabled again after)."""
    import addon_utils

    if addon_utils.enable("rigify", default_set=True) is None:
        pytest.skip("this bpy has no Rigify add-on")
    try:
        bpy.ops.object.armature_human_metarig_add()
        bpy.ops.pose.rigify_generate()
        yield bpy.context.object
    finally:
        addon_utils.disable("rigify", default_set=True)


@pytest.mark.slow
def test_real_rigify_rig_is_keyed_through_its_fk_controls(rigify_rig, walk_motion, empty_scene):
    """Rigify's FK controls hang from helper bones with constraints (the thighs copy the
    world's rotation): the keys are solved through Blender, and its DEF bones, which follow
    the controls once the IK/FK switches are on FK, point where hmu's bones point."""
    rig = rigify_rig
    found = bone_map_of(rig)
    assert found.source == "rigify_fk" and not found.missing()
    motion = clean_feet(walk_motion)
    _, report = key_retarget(rig, motion, found.bones, action_name="walk")
    assert report.warnings == ()
    empty_scene.frame_set(30)
    assert rig.pose.bones["thigh_parent.L"]["IK_FK"] == 1.0  # keyed: FK while the clip plays
    result = retarget(motion, rig_rest_of(rig), found.bones)
    world = np.array(rig.matrix_world)[:3, :3]
    for control, deform in (("thigh_fk.L", "DEF-thigh.L"), ("shin_fk.R", "DEF-shin.R"),
                            ("upper_arm_fk.L", "DEF-upper_arm.L"),
                            ("forearm_fk.R", "DEF-forearm.R")):
        want = result.world_rotations[29, result.rig.index(control)][:, 1]
        got = world @ np.array(rig.pose.bones[deform].matrix)[:3, 1]
        cos = got @ want / np.linalg.norm(got)
        assert np.degrees(np.arccos(min(cos, 1.0))) < 2.0, deform
    # The body travels with the torso control, as hmu's pelvis does (scaled).
    hips = world @ np.array(rig.pose.bones["DEF-spine"].head) + np.array(rig.matrix_world)[:3, 3]
    start = result.rig.world_heads()[result.rig.index("DEF-spine")]
    hmu = motion.smpl_pose().joints()[29, 0] @ BODY_TO_WORLD.T
    assert np.linalg.norm(hips[:2] - start[:2] - result.report.scale * hmu[:2]) < 0.05
    # Its DEF bones follow the controls through constraints: a DEF map cannot drive it.
    with pytest.raises(ConfigError, match="not below the hips bone"):
        require_bone_map(rig, {**found.bones, **{j: f"DEF-{b}" for j, b in (
            ("pelvis", "spine"), ("left_hip", "thigh.L"))}})

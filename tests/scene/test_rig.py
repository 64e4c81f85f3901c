"""The SMPL armature: 24 SMPL bones in SMPL's hierarchy, upright, a skinned mannequin body, and the
checks that accept it (or its body) and reject other rigs with a useful message."""

from __future__ import annotations

import math

import bpy
import numpy as np
import pytest

from exporter.scene import rig
from hmu_core.errors import ConfigError
from hmu_core.motion import smpl
from hmu_core.motion.skeleton import SMPL_PARENTS

pytestmark = pytest.mark.blender


def test_armature_has_the_24_smpl_bones_in_smpl_hierarchy():
    arm = rig.build_smpl_armature()
    bones = arm.data.bones
    assert len(bones) == 24 and {b.name for b in bones} == set(rig.SMPL_JOINT_NAMES)
    for j, name in enumerate(rig.SMPL_JOINT_NAMES):
        parent = bones[name].parent
        want = rig.SMPL_JOINT_NAMES[SMPL_PARENTS[j]] if SMPL_PARENTS[j] >= 0 else None
        assert (parent.name if parent else None) == want
        assert arm.pose.bones[name].rotation_mode == "QUATERNION"
    assert rig.is_smpl_armature(arm)
    # Upright: +90° about X, so the Y-up armature's head is above its pelvis in Z-up world.
    np.testing.assert_allclose(arm.rotation_euler[:], (math.pi / 2, 0.0, 0.0), atol=1e-6)
    heads = rig.world_joints(arm, [1.0])[0]
    assert heads[15, 2] > heads[0, 2] + 0.4
    np.testing.assert_allclose(rig.body_axes(arm), np.eye(3))


def test_rest_joints_are_the_bone_heads_and_default_rest_stands_on_the_floor():
    rest = rig.rest_joints_from_offsets(smpl.rest_offsets(), on_floor=False)
    rest[:, 1] += 1.0
    arm = rig.build_smpl_armature("custom", rest_joints=rest, body=False)
    np.testing.assert_allclose(rig.rest_heads(arm), rest, atol=1e-6)
    np.testing.assert_allclose(rig.rest_offsets_of(arm)[1:], smpl.rest_offsets()[1:], atol=1e-6)
    assert not arm.children
    default = rig.rest_heads(rig.build_smpl_armature(body=False))
    assert abs(default[:, 1].min()) < 1e-6  # lowest joint on the floor (y = 0 in the rig)
    with pytest.raises(ConfigError, match="24, 3"):
        rig.build_smpl_armature(rest_joints=np.zeros((22, 3)))


def test_mannequin_is_a_skinned_child_mesh_with_a_material():
    arm = rig.build_smpl_armature("hmu_smpl")
    (body,) = arm.children
    assert body.type == "MESH" and body.name == "hmu_smpl_body"
    assert [g.name for g in body.vertex_groups] == list(rig.SMPL_JOINT_NAMES)
    modifier = body.modifiers["Armature"]
    assert modifier.type == "ARMATURE" and modifier.object == arm
    groups = [[(g.group, g.weight) for g in v.groups] for v in body.data.vertices]
    assert all(len(g) == 1 and g[0][1] == 1.0 for g in groups)  # rigid: one bone a vertex
    used = {g[0][0] for g in groups}
    assert used == set(range(24)) - {10, 11, 22, 23}  # toes and hands ride on ankle, wrist
    assert body.data.materials[0].diffuse_color[3] == 1.0
    assert rig.find_smpl_armature(body) == arm  # the user may click the body
    # A body's size: 1.6 to 1.9 m tall in the world, standing on the floor.
    world = np.array([arm.matrix_world @ v.co for v in body.data.vertices])  # parent space
    assert 1.6 < np.ptp(world[:, 2]) < 1.9 and abs(world[:, 2].min()) < 0.01


@pytest.mark.parametrize("which", ["default", "walk"])
def test_mannequin_has_no_gaps_a_head_that_faces_and_feet_on_the_floor(which, walk_motion):
    from exporter.scene.mannequin import mannequin_parts

    offsets = smpl.rest_offsets() if which == "default" else \
        walk_motion.smpl_pose().rest_offsets
    heads = rig.rest_joints_from_offsets(offsets)
    parts = mannequin_parts(heads)
    # Every segment between a joint and its parent (pelvis to hips, spine3 to collars too)
    # lies inside the body: the stick body left 17 cm gaps at the hips, 26 cm at the collars.
    for j, p in enumerate(SMPL_PARENTS[:22]):
        if p < 0:
            continue
        points = heads[p] + np.linspace(0.0, 1.0, 25)[:, None] * (heads[j] - heads[p])
        inside = np.any([part.contains(points, slack=1e-9) for part in parts], axis=0)
        assert inside.all(), f"gap between {rig.SMPL_JOINT_NAMES[p]} and {rig.SMPL_JOINT_NAMES[j]}"
    head = [p for p in parts if p.bone == 15]
    skull = max(head, key=lambda p: p.radii.min())
    nose = min(head, key=lambda p: p.radii.min())
    assert skull.radii.min() > 0.07 and nose.a[2] > skull.a[2] + 0.08  # a nose, in front
    for ankle, ball in ((7, 10), (8, 11)):
        (sole,) = [p for p in parts if p.bone == ankle and p.kind == "capsule"]
        assert sole.a[2] < heads[ankle][2] - 0.04  # a heel behind the ankle
        assert sole.b[2] > heads[ball][2] + 0.03  # toes beyond the ball of the foot
        floor = heads[:, 1].min()
        assert abs(sole.a[1] - sole.ra - floor) < 1e-9  # the sole on the floor


def test_other_armatures_are_rejected_with_what_is_wrong():
    assert rig.find_smpl_armature(None) is None
    arm = rig.build_smpl_armature("renamed", body=False)
    arm.data.bones["left_hand"].name = "hand.L"
    assert not rig.is_smpl_armature(arm)
    assert rig.find_smpl_armature(arm) is None
    with pytest.raises(ConfigError, match=r"missing bones \['left_hand'\].*extra bones"):
        rig.require_smpl_armature(arm)
    empty = bpy.data.objects.new("empty", None)
    with pytest.raises(ConfigError, match="not an armature"):
        rig.require_smpl_armature(empty)
    with pytest.raises(ConfigError, match="no target armature"):
        rig.require_smpl_armature(None)


def test_build_restores_the_active_object():
    first = rig.build_smpl_armature("first", body=False)
    bpy.context.view_layer.objects.active = first
    rig.build_smpl_armature("second", body=False)
    assert bpy.context.view_layer.objects.active == first
    assert first.mode == "OBJECT"

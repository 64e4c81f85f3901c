"""The SMPL armature: 24 SMPL bones in SMPL's hierarchy, upright, a skinned stick body, and the
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
    arm = rig.build_smpl_armature("custom", rest_joints=rest, stick_body=False)
    np.testing.assert_allclose(rig.rest_heads(arm), rest, atol=1e-6)
    np.testing.assert_allclose(rig.rest_offsets_of(arm)[1:], smpl.rest_offsets()[1:], atol=1e-6)
    assert not arm.children
    default = rig.rest_heads(rig.build_smpl_armature(stick_body=False))
    assert abs(default[:, 1].min()) < 1e-6  # lowest joint on the floor (y = 0 in the rig)
    with pytest.raises(ConfigError, match="24, 3"):
        rig.build_smpl_armature(rest_joints=np.zeros((22, 3)))


def test_stick_body_is_a_skinned_child_mesh_with_a_material():
    arm = rig.build_smpl_armature("hmu_smpl")
    (body,) = arm.children
    assert body.type == "MESH" and body.name == "hmu_smpl_body"
    assert [g.name for g in body.vertex_groups] == list(rig.SMPL_JOINT_NAMES)
    modifier = body.modifiers["Armature"]
    assert modifier.type == "ARMATURE" and modifier.object == arm
    weighted = {g.group for v in body.data.vertices for g in v.groups if g.weight == 1.0}
    assert weighted == set(range(24))  # every bone moves some of the body
    assert body.data.materials[0].diffuse_color[3] == 1.0
    assert rig.find_smpl_armature(body) == arm  # the user may click the body


def test_other_armatures_are_rejected_with_what_is_wrong():
    assert rig.find_smpl_armature(None) is None
    arm = rig.build_smpl_armature("renamed", stick_body=False)
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
    first = rig.build_smpl_armature("first", stick_body=False)
    bpy.context.view_layer.objects.active = first
    rig.build_smpl_armature("second", stick_body=False)
    assert bpy.context.view_layer.objects.active == first
    assert first.mode == "OBJECT"

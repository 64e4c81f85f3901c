"""A ``Motion`` -> a new action on the user's own armature (Mixamo, Rigify, UE5, any humanoid).

The maths is :mod:`hmu_core.motion.retarget` (numpy, tested without Blender); this module only
reads the armature's rest pose into a :class:`~hmu_core.motion.rig_rest.RigRest`, writes the
pose-bone values as a new layered action (``exporter.scene.keying.write_action``) and checks
that Blender, evaluating the action, really poses the rig as computed (a rig whose keyed
bones are also moved by constraints or drivers, such as a Rigify control rig left in IK, is
reported rather than silently wrong).

Bones keep their rotation mode: quaternion bones get ``rotation_quaternion`` keys, Euler
bones ``rotation_euler`` keys in their own order (sign- and wrap-continuous); axis-angle bones
are switched to quaternions. The root bone also gets ``location`` keys. On a Rigify control
rig the arms' and legs' IK/FK switches are keyed to FK.

Usage::

    from exporter.scene.retarget import key_retarget, require_bone_map
    bones = require_bone_map(armature)                    # ConfigError says what is missing
    action, report = key_retarget(armature, motion, bones, action_name="hmu_walk_s0")
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

import bpy
import numpy as np
from mathutils import Euler, Quaternion

from exporter.scene.keying import action_properties, check_timing, scene_frames, write_action
from hmu_core.errors import ConfigError
from hmu_core.motion.bone_maps import BoneMap, check_bone_map, detect_bone_map
from hmu_core.motion.foot_contact import FootParams
from hmu_core.motion.motion import Motion
from hmu_core.motion.retarget import DEFAULT_FEET, RetargetReport, RetargetResult, retarget
from hmu_core.motion.rig_rest import RigRest

__all__ = ["bone_map_of", "key_retarget", "require_bone_map", "rig_rest_of", "world_heads"]

FK_SWITCHES = ("upper_arm_parent.L", "upper_arm_parent.R", "thigh_parent.L", "thigh_parent.R")
"""Rigify's IK/FK switch holders; their ``IK_FK`` property is 1.0 for FK."""
POSE_TOLERANCE_M = 0.01
"""Evaluated bone heads further than this from the computed ones are reported."""
CHECK_FRAMES = 3


def _ordered_bones(armature: bpy.types.Object) -> list[Any]:
    """The armature's bones, every parent before its children (depth first, Blender's order
    among siblings)."""
    out: list[Any] = []

    def visit(bone: Any) -> None:
        out.append(bone)
        for child in bone.children:
            visit(child)

    for bone in armature.data.bones:
        if bone.parent is None:
            visit(bone)
    return out


def rig_rest_of(armature: bpy.types.Object) -> RigRest:
    """The armature's rest pose (armature space) and object transform.

    Raises:
        ConfigError: not an armature, no bones, or a non-uniform / mirrored object scale.
    """
    if armature is None or armature.type != "ARMATURE":
        what = "nothing" if armature is None else f"{armature.name!r} ({armature.type.lower()})"
        raise ConfigError(f"the target must be an armature, got {what}")
    bones = _ordered_bones(armature)
    if not bones:
        raise ConfigError(f"armature {armature.name!r} has no bones")
    index = {b.name: i for i, b in enumerate(bones)}
    return RigRest(
        names=tuple(b.name for b in bones),
        parents=tuple(index[b.parent.name] if b.parent else -1 for b in bones),
        heads=np.array([b.head_local for b in bones]),
        tails=np.array([b.tail_local for b in bones]),
        rest_rotations=np.array([np.array(b.matrix_local.to_3x3()) for b in bones]),
        matrix_world=np.array(armature.matrix_world))


def bone_map_of(armature: bpy.types.Object) -> BoneMap:
    """The built-in or detected map of the armature (possibly incomplete)."""
    rest = rig_rest_of(armature)
    return detect_bone_map(rest.names, rest.parents)


def require_bone_map(armature: bpy.types.Object,
                     bones: Mapping[str, str] | None = None) -> dict[str, str]:
    """A map that can drive the armature: ``bones`` (a user's edit) or the detected one.

    Raises:
        ConfigError: it cannot (which body parts are missing, or which entry is wrong), with
            the armature's name.
    """
    rest = rig_rest_of(armature)
    table = dict(bones) if bones is not None else \
        detect_bone_map(rest.names, rest.parents).bones
    try:
        return check_bone_map(table, rest.names, rest.parents)
    except ConfigError as exc:
        raise ConfigError(f"{armature.name}: {exc}") from None


def _rotation_channels(armature: bpy.types.Object, result: RetargetResult,
                       rest: RigRest) -> list[tuple[str, int, str, np.ndarray]]:
    channels = []
    for name in result.keyed:
        bone = armature.pose.bones[name]
        quats = result.rotations[:, rest.index(name)]
        if bone.rotation_mode == "AXIS_ANGLE":
            bone.rotation_mode = "QUATERNION"
        if bone.rotation_mode == "QUATERNION":
            path = f'pose.bones["{name}"].rotation_quaternion'
            channels += [(path, k, name, quats[:, k]) for k in range(4)]
            continue
        eulers = np.empty((len(quats), 3))
        previous = Euler((0.0, 0.0, 0.0), bone.rotation_mode)
        for t, q in enumerate(quats):
            previous = Quaternion(q).to_euler(bone.rotation_mode, previous)
            eulers[t] = previous
        path = f'pose.bones["{name}"].rotation_euler'
        channels += [(path, k, name, eulers[:, k]) for k in range(3)]
    root = result.root_bone
    channels += [(f'pose.bones["{root}"].location', k, root, result.root_location[:, k])
                 for k in range(3)]
    if any(n.endswith((".L", ".R")) and "_fk" in n for n in result.keyed):
        ones = np.ones(result.num_frames)
        channels += [(f'pose.bones["{s}"]["IK_FK"]', 0, s, ones) for s in FK_SWITCHES
                     if s in armature.pose.bones and "IK_FK" in armature.pose.bones[s]]
    return channels


def world_heads(armature: bpy.types.Object, names: list[str], frames: list[float],
                scene: bpy.types.Scene) -> np.ndarray:
    """(F, len(names), 3) evaluated world heads of the named pose bones at each scene frame
    (the scene's frame is restored)."""
    keep = (scene.frame_current, scene.frame_subframe)
    out = np.empty((len(frames), len(names), 3))
    try:
        for i, frame in enumerate(frames):
            whole = math.floor(frame)
            scene.frame_set(whole, subframe=float(frame) - whole)
            world = np.array(armature.matrix_world)
            heads = np.array([armature.pose.bones[n].head for n in names])
            out[i] = heads @ world[:3, :3].T + world[:3, 3]
    finally:
        scene.frame_set(keep[0], subframe=keep[1])
    return out


def _pose_mismatch(armature: bpy.types.Object, result: RetargetResult, frames: np.ndarray,
                   scene: bpy.types.Scene) -> float:
    """Largest distance (m) between evaluated and computed heads of the keyed bones over a
    few frames (first, middle, last)."""
    picks = sorted({0, len(frames) // 2, len(frames) - 1})[:CHECK_FRAMES]
    got = world_heads(armature, list(result.keyed), [float(frames[i]) for i in picks], scene)
    idx = [result.rig.index(n) for n in result.keyed]
    want = result.world_heads[picks][:, idx]
    return float(np.linalg.norm(got - want, axis=-1).max())


def key_retarget(armature: bpy.types.Object, motion: Motion, bones: Mapping[str, str], *,
                 action_name: str, start_frame: float = 1.0, scene_fps: float | None = None,
                 properties: Mapping[str, Any] | None = None, assign: bool = True,
                 fake_user: bool = True, feet: FootParams | None = DEFAULT_FEET,
                 bone_map_source: str = "user") -> tuple[bpy.types.Action, RetargetReport]:
    """Retarget ``motion`` onto ``armature`` through ``bones`` into a NEW action.

    Args:
        armature: any armature the map fits (its object transform and rest pose are read).
        motion: the clip (clean its feet first with ``clean_feet`` for hmu's own clean-up).
        bones: ``{smpl joint: bone name}`` (:func:`require_bone_map`).
        action_name, start_frame, scene_fps, properties, assign, fake_user: as
            :func:`exporter.scene.keying.key_motion`.
        feet: the target's own foot pinning (``None``: off).
        bone_map_source: where the map came from, recorded on the action.
    Returns:
        The action (mapped bones' rotations, the root bone's location, ``hmu_*`` properties
        with the map, the leg-length scale and whether feet were cleaned) and the report,
        whose lines include a warning when Blender poses the rig differently (constraints).
    Raises:
        ConfigError: the map cannot drive the armature, a bad fps or property.
    """
    scene_fps = check_timing(start_frame, scene_fps)
    scene = bpy.context.scene
    rest = rig_rest_of(armature)
    checked = check_bone_map(bones, rest.names, rest.parents)
    result = retarget(motion, rest, checked, feet=feet)
    frames = scene_frames(motion.num_frames, motion.fps, float(start_frame), scene_fps)
    extra = {"hmu_bone_map": json.dumps(checked, sort_keys=True),
             "hmu_bone_map_source": bone_map_source,
             "hmu_leg_scale": round(result.report.scale, 6),
             "hmu_foot_cleanup": feet is not None or "foot_cleanup" in motion.provenance,
             **(properties or {})}
    props = action_properties(motion, extra)
    channels = _rotation_channels(armature, result, rest)
    action = write_action(armature, action_name, frames, channels, props, assign=assign,
                          fake_user=fake_user)
    report = result.report
    if assign:
        mismatch = _pose_mismatch(armature, result, frames, scene)
        if mismatch > POSE_TOLERANCE_M:
            warning = (f"Blender poses {armature.name} up to {100 * mismatch:.0f} cm away "
                       f"from the retargeted pose: constraints or drivers move the keyed bones "
                       f"(a Rigify rig: animate its DEF bones, or its FK controls with IK/FK "
                       f"on FK)")
            report = dataclasses.replace(report, warnings=(*report.warnings, warning))
    return action, report

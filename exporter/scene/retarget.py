"""A ``Motion`` -> a new action on the user's own armature (Mixamo, Rigify, UE5, any humanoid).

The maths is :mod:`hmu_core.motion.retarget` (numpy, tested without Blender); this module only
reads the armature's rest pose into a :class:`~hmu_core.motion.rig_rest.RigRest`, writes the
pose-bone values as a new layered action (``exporter.scene.keying.write_action``) and checks
that Blender, evaluating the action, really poses the rig as computed.

A plain skeleton (an FBX import, a game rig) is keyed with the computed values as they are.
On a control rig, where constraints or drivers move the keyed bones' parents (Rigify's FK
controls hang from helper bones that copy the torso's or the world's rotation), the keys are
solved through Blender itself, frame by frame, parents first. A keyed bone whose own
constraints override its keys (Rigify's DEF bones) is reported rather than silently wrong.

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
from mathutils import Euler, Matrix, Quaternion

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
POSE_TOLERANCE_DEG, POSE_TOLERANCE_M = 2.0, 0.01
"""Evaluated bone axes (the root's head) further than this from the computed ones are
reported."""
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


def _chain_names(armature: bpy.types.Object, names: list[str]) -> set[str]:
    """The named bones and all their ancestors."""
    out: set[str] = set()
    for name in names:
        bone = armature.data.bones[name]
        while bone is not None and bone.name not in out:
            out.add(bone.name)
            bone = bone.parent
    return out


def driven_by_rig(armature: bpy.types.Object, names: list[str]) -> bool:
    """True when constraints or drivers act on the named bones or their ancestors: their
    pose is then not the plain composition of rest and keys (a control rig)."""
    chain = _chain_names(armature, names)
    if any(armature.pose.bones[n].constraints for n in chain):
        return True
    drivers = armature.animation_data.drivers if armature.animation_data else ()
    return any(d.data_path.startswith("pose.bones[") and d.data_path.split('"')[1] in chain
               for d in drivers)


def _solve_levels(armature: bpy.types.Object, keyed: list[str]) -> list[list[str]]:
    """The keyed bones in batches that can be solved together: a bone comes after every
    keyed bone it depends on, through its parents or its constraints' target bones (one
    evaluation of the rig per batch and frame)."""
    pbs = armature.pose.bones
    keyed_set = set(keyed)
    found: dict[str, frozenset[str]] = {}

    def sources(name: str) -> list[str]:
        pb = pbs[name]
        out = [pb.parent.name] if pb.parent is not None else []
        for con in pb.constraints:
            for attr in ("subtarget", "pole_subtarget"):
                other = getattr(con, attr, "")
                if other and other in pbs and getattr(con, attr.replace("sub", ""),
                                                      None) == armature:
                    out.append(other)
        return out

    def keyed_above(name: str, visiting: frozenset[str]) -> frozenset[str]:
        """Keyed bones ``name`` depends on (cycles, which Blender also rejects, are cut)."""
        if name in found:
            return found[name]
        out: set[str] = set()
        for other in sources(name):
            if other in visiting:
                continue
            if other in keyed_set:
                out.add(other)
            out |= keyed_above(other, visiting | {name})
        found[name] = frozenset(out)
        return found[name]

    level: dict[str, int] = {}

    def level_of(name: str) -> int:
        if name not in level:
            above = keyed_above(name, frozenset())
            level[name] = 1 + max((level_of(a) for a in above if a != name), default=-1)
        return level[name]

    batches: dict[int, list[str]] = {}
    for name in keyed:
        batches.setdefault(level_of(name), []).append(name)
    return [batches[k] for k in sorted(batches)]


def _bake_through_blender(armature: bpy.types.Object, result: RetargetResult,
                          rest: RigRest) -> RetargetResult:
    """The result's keyed values re-solved through Blender's own evaluation: frame by frame,
    parents before children, each keyed bone's armature-space matrix is set to the computed
    world frame (and the root's head to the computed path) and Blender works out the key
    under the rig's constraints and drivers (:func:`_solve_levels` orders the bones). The
    armature's pose and action are restored."""
    pbs = armature.pose.bones
    keyed = list(result.keyed)
    levels = _solve_levels(armature, keyed)
    anim = armature.animation_data
    kept_action = (anim.action, anim.action_slot) if anim is not None and anim.action else None
    kept_pose = {n: (pbs[n].rotation_mode, tuple(pbs[n].location),
                     tuple(pbs[n].rotation_quaternion), tuple(pbs[n].rotation_euler))
                 for n in keyed}
    rotation = rest.rotation
    origin, scale = rest.matrix_world[:3, 3], rest.scale
    index = [rest.index(n) for n in keyed]
    rotations = np.array(result.rotations, copy=True)
    root_location = np.array(result.root_location, copy=True)
    view_layer = bpy.context.view_layer
    try:
        if kept_action is not None:
            anim.action = None  # the rig's own action would override the pose being solved
        for name in keyed:
            pbs[name].rotation_mode = "QUATERNION"
        for t in range(result.num_frames):
            for batch in levels:
                for name in batch:
                    b = rest.index(name)
                    matrix = np.eye(4)
                    matrix[:3, :3] = rotation.T @ result.world_rotations[t, b]
                    matrix[:3, 3] = (result.world_heads[t, b] - origin) @ rotation / scale \
                        if name == result.root_bone else np.array(pbs[name].head)
                    pbs[name].matrix = Matrix(matrix.tolist())
                view_layer.update()
            rotations[t, index] = [tuple(pbs[n].rotation_quaternion) for n in keyed]
            root_location[t] = tuple(pbs[result.root_bone].location)
    finally:
        for name, (mode, location, quaternion, euler) in kept_pose.items():
            bone = pbs[name]
            bone.rotation_mode = "QUATERNION"
            bone.location, bone.rotation_quaternion = location, quaternion
            bone.rotation_mode = mode
            bone.rotation_euler = euler
        if kept_action is not None:
            anim.action, anim.action_slot = kept_action
        view_layer.update()
    return dataclasses.replace(result, rotations=rotations, root_location=root_location)


def _pose_error(armature: bpy.types.Object, result: RetargetResult, frames: np.ndarray,
                scene: bpy.types.Scene) -> tuple[float, float]:
    """Over a few frames (first, middle, last) of the assigned action: the largest angle
    (degrees) between an evaluated keyed bone's axis and the computed one, and the largest
    distance (m) of the root bone's head from its computed path."""
    picks = sorted({0, len(frames) // 2, len(frames) - 1})[:CHECK_FRAMES]
    keep = (scene.frame_current, scene.frame_subframe)
    world = np.array(armature.matrix_world)
    rotation = world[:3, :3] / np.linalg.norm(world[:3, 0])
    index = [result.rig.index(n) for n in result.keyed]
    root = result.rig.index(result.root_bone)
    angle, distance = 0.0, 0.0
    try:
        for i in picks:
            whole = math.floor(frames[i])
            scene.frame_set(whole, subframe=float(frames[i]) - whole)
            axes = np.array([np.array(armature.pose.bones[n].matrix)[:3, 1] for n in result.keyed])
            axes = axes @ rotation.T
            want = result.world_rotations[i, index][:, :, 1]
            cos = np.sum(axes * want, -1) / np.linalg.norm(axes, axis=-1)
            angle = max(angle, float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).max()))
            head = world[:3, :3] @ np.array(armature.pose.bones[result.root_bone].head) \
                + world[:3, 3]
            distance = max(distance, float(np.linalg.norm(head - result.world_heads[i, root])))
    finally:
        scene.frame_set(keep[0], subframe=keep[1])
    return angle, distance


def key_retarget(armature: bpy.types.Object, motion: Motion, bones: Mapping[str, str], *,
                 action_name: str, start_frame: float = 1.0, scene_fps: float | None = None,
                 properties: Mapping[str, Any] | None = None, assign: bool = True,
                 fake_user: bool = True, feet: FootParams | None = DEFAULT_FEET,
                 contacts: np.ndarray | None = None,
                 bone_map_source: str = "user") -> tuple[bpy.types.Action, RetargetReport]:
    """Retarget ``motion`` onto ``armature`` through ``bones`` into a NEW action.

    Args:
        armature: any armature the map fits (its object transform and rest pose are read).
        motion: the clip (clean its feet first with ``clean_feet`` for hmu's own clean-up).
        bones: ``{smpl joint: bone name}`` (:func:`require_bone_map`).
        action_name, start_frame, scene_fps, properties, assign, fake_user: as
            :func:`exporter.scene.keying.key_motion`.
        feet: the target's own foot pinning (``None``: off).
        contacts: (T, 4) bool foot contacts for the pinning; default: from the motion
            (``foot_contacts``; pass the uncleaned motion's to keep the model's own).
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
    result = retarget(motion, rest, checked, feet=feet, contacts=contacts)
    frames = scene_frames(motion.num_frames, motion.fps, float(start_frame), scene_fps)
    extra = {"hmu_bone_map": json.dumps(checked, sort_keys=True),
             "hmu_bone_map_source": bone_map_source,
             "hmu_leg_scale": round(result.report.scale, 6),
             "hmu_foot_cleanup": feet is not None or "foot_cleanup" in motion.provenance,
             **(properties or {})}
    props = action_properties(motion, extra)
    if driven_by_rig(armature, list(result.keyed)):
        result = _bake_through_blender(armature, result, rest)
    channels = _rotation_channels(armature, result, rest)
    action = write_action(armature, action_name, frames, channels, props, assign=assign,
                          fake_user=fake_user)
    report = result.report
    if assign:
        angle, distance = _pose_error(armature, result, frames, scene)
        if angle > POSE_TOLERANCE_DEG or distance > POSE_TOLERANCE_M:
            warning = (f"Blender poses {armature.name} up to {angle:.0f}° and "
                       f"{100 * distance:.0f} cm away from the retargeted pose: constraints "
                       f"or drivers on the keyed bones override them (a Rigify rig: map its "
                       f"FK controls, not its DEF bones)")
            report = dataclasses.replace(report, warnings=(*report.warnings, warning))
    return action, report

"""The SMPL-topology armature: build one, recognise one, read its rest and its posed joints.

Layout (reference/blender.md §2.2, the recommended variant): the armature *data* lives in
SMPL's own Y-up body frame (x = the body's left, y = up, z = forward, metres), and the armature
*object* is rotated +90° about X, so the character stands upright in Blender's Z-up world.
Keying then needs no change of axes, and BVH exported from the rig is Y-up, as most tools
expect. Bones sit at the SMPL rest joints (the T-pose of ``hmu_core.motion.smpl``), their tails
point at the chain child (pelvis -> spine1, spine3 -> neck), leaves end at the BVH writer's End
Sites. An optional mannequin body (``exporter.scene.mannequin``: capsules, a head, hands and
feet, rigidly skinned) makes the rig visible in renders and travels with FBX/GLB exports.

Rigs made elsewhere (an FBX or GLB of this rig re-imported, another SMPL-24 rig) may use other
armature axes; :func:`body_axes` reads them off the rest pose, so keying works on them too.

Usage::

    from exporter.scene.rig import build_smpl_armature, find_smpl_armature
    arm = build_smpl_armature("hmu_smpl")                # in the active scene's collection
    target = find_smpl_armature(bpy.context.object)      # None unless SMPL topology
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import bpy
import numpy as np
from mathutils import Matrix, Vector

from exporter.scene.mannequin import mannequin_mesh
from hmu_core.errors import ConfigError
from hmu_core.motion import smpl
from hmu_core.motion.bvh import END_SITES
from hmu_core.motion.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS

__all__ = [
    "SMPL_JOINT_NAMES", "body_axes", "build_smpl_armature", "find_smpl_armature",
    "is_smpl_armature", "require_smpl_armature", "rest_heads", "rest_joints_from_offsets",
    "rest_offsets_of", "world_joints",
]  # fmt: skip

NUM_BONES = len(SMPL_JOINT_NAMES)
TAIL_CHILD = {0: 3, 9: 12}
"""Joints with several children point their bone at this one (pelvis -> spine1, spine3 -> neck)."""
MIN_BONE_LENGTH = 0.01
"""Blender deletes zero-length bones on leaving edit mode; shorter bones get this length (m)."""
BODY_COLOR = (0.80, 0.62, 0.42, 1.0)
UPRIGHT = Matrix.Rotation(math.pi / 2.0, 4, "X")
"""Object matrix of our rig: +90° about X maps the Y-up armature data into Blender's Z-up world."""


def rest_joints_from_offsets(offsets: np.ndarray, on_floor: bool = True) -> np.ndarray:
    """(24, 3) absolute rest joint positions from (24, 3) rest offsets (SMPL frame, metres).

    ``on_floor`` lifts the skeleton so its lowest joint is at y = 0: the rig then stands on the
    ground in its rest pose (the keyed root location accounts for the lift).
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    if offsets.shape != (NUM_BONES, 3) or not np.all(np.isfinite(offsets)):
        raise ConfigError(f"rest offsets must be (24, 3) finite numbers, got {offsets.shape}")
    joints = np.zeros_like(offsets)
    joints[0] = offsets[0]
    for j in range(1, NUM_BONES):
        joints[j] = joints[SMPL_PARENTS[j]] + offsets[j]
    if on_floor:
        joints[:, 1] -= joints[:, 1].min()
    return joints


def _tails(heads: np.ndarray) -> np.ndarray:
    """(24, 3) bone tails: towards the chain child, or the End Site for the leaves."""
    tails = np.empty_like(heads)
    for j in range(NUM_BONES):
        kids = smpl.CHILDREN[j]
        if j in TAIL_CHILD:
            tails[j] = heads[TAIL_CHILD[j]]
        elif len(kids) == 1:
            tails[j] = heads[kids[0]]
        else:  # a leaf: head, feet, hands
            tails[j] = heads[j] + np.asarray(END_SITES[j])
        step = tails[j] - heads[j]
        if np.linalg.norm(step) < MIN_BONE_LENGTH:
            parent = SMPL_PARENTS[j]
            along = heads[j] - heads[parent] if parent >= 0 else np.array([0.0, 1.0, 0.0])
            norm = np.linalg.norm(along)
            tails[j] = heads[j] + (along / norm if norm > 1e-9 else np.array([0.0, 1.0, 0.0])) \
                * MIN_BONE_LENGTH
    return tails


def _edit_bones(obj: bpy.types.Object, heads: np.ndarray, tails: np.ndarray) -> None:
    """Create the 24 bones in edit mode, then restore the previous active object (left in
    object mode: edit mode needs every other object out of its edit or pose mode first).

    The active object is also passed through ``temp_override``: inside an overridden scene
    (``exporter.scene.library``) the mode operators read the context, not the view layer.
    """
    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    if previous is not None and previous.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = obj
    try:
        with bpy.context.temp_override(active_object=obj, object=obj):
            bpy.ops.object.mode_set(mode="EDIT")
            try:
                bones = []
                for j, name in enumerate(SMPL_JOINT_NAMES):
                    bone = obj.data.edit_bones.new(name)
                    bone.head = Vector(heads[j])
                    bone.tail = Vector(tails[j])
                    bone.roll = 0.0
                    bone.use_connect = False
                    if SMPL_PARENTS[j] >= 0:
                        bone.parent = bones[SMPL_PARENTS[j]]
                    bones.append(bone)
            finally:
                bpy.ops.object.mode_set(mode="OBJECT")
    finally:
        view_layer.objects.active = previous


def _body_material(name: str) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    material.diffuse_color = BODY_COLOR  # what Workbench shows
    if material.node_tree is not None:
        bsdf = material.node_tree.nodes.get("Principled BSDF")
        if bsdf is not None:
            bsdf.inputs["Base Color"].default_value = BODY_COLOR
    return material


def _add_body(rig: bpy.types.Object, collection: bpy.types.Collection,
              heads: np.ndarray) -> bpy.types.Object:
    mesh = mannequin_mesh(f"{rig.name}_body", heads)
    mesh.materials.append(_body_material(f"{rig.name}_body"))
    body = bpy.data.objects.new(f"{rig.name}_body", mesh)
    for name in SMPL_JOINT_NAMES:
        body.vertex_groups.new(name=name)
    modifier = body.modifiers.new("Armature", "ARMATURE")
    modifier.object = rig
    body.parent = rig  # mesh coordinates are armature space: no parent inverse needed
    collection.objects.link(body)
    return body


def build_smpl_armature(name: str = "hmu_smpl", *, collection: bpy.types.Collection | None = None,
                        body: bool = True,
                        rest_joints: np.ndarray | None = None) -> bpy.types.Object:
    """Build the SMPL-topology armature (and its mannequin body) and return the armature.

    Args:
        name: object name (Blender appends .001 etc. if taken); the data and the body mesh
            are named after the object.
        collection: where to link the objects; default the active scene's collection. It must
            be in the current view layer (bones are made in edit mode).
        body: add ``<name>_body``, the mannequin (``exporter.scene.mannequin``), a rigidly
            skinned mesh child that renders everywhere.
        rest_joints: (24, 3) absolute rest joint positions, SMPL frame (Y-up, faces +Z,
            metres); default: hmu's T-pose (HumanML3D bone lengths) standing on the floor.
            :func:`rest_joints_from_offsets` turns a ``SMPLPose.rest_offsets`` into these.
    Returns:
        The armature object: 24 bones named ``SMPL_JOINT_NAMES``, quaternion rotation mode,
        object rotated +90° about X.
    Raises:
        ConfigError: ``rest_joints`` is not (24, 3) finite numbers.
    """
    if rest_joints is None:
        heads = rest_joints_from_offsets(smpl.rest_offsets())
    else:
        heads = np.asarray(rest_joints, dtype=np.float64)
        if heads.shape != (NUM_BONES, 3) or not np.all(np.isfinite(heads)):
            raise ConfigError(f"rest_joints must be (24, 3) finite positions, got {heads.shape}")
    tails = _tails(heads)
    target = collection if collection is not None else bpy.context.scene.collection
    data = bpy.data.armatures.new(name)
    rig = bpy.data.objects.new(name, data)
    data.name = rig.name
    rig.rotation_mode = "XYZ"
    rig.matrix_world = UPRIGHT
    target.objects.link(rig)
    _edit_bones(rig, heads, tails)
    for bone in rig.pose.bones:
        bone.rotation_mode = "QUATERNION"
    if body:
        _add_body(rig, target, heads)
    return rig


def is_smpl_armature(obj: bpy.types.Object | None) -> bool:
    """True for an armature with exactly the 24 SMPL bones and SMPL's parent hierarchy."""
    return obj is not None and obj.type == "ARMATURE" and not _topology_problems(obj)


def _topology_problems(obj: bpy.types.Object) -> list[str]:
    bones = obj.data.bones
    names = {bone.name for bone in bones}
    problems = []
    missing = [n for n in SMPL_JOINT_NAMES if n not in names]
    if missing:
        problems.append(f"missing bones {missing}")
    extra = sorted(names - set(SMPL_JOINT_NAMES))
    if extra:
        problems.append(f"extra bones {extra[:5]}{' ...' if len(extra) > 5 else ''}")
    if not problems:
        for j, name in enumerate(SMPL_JOINT_NAMES):
            parent = bones[name].parent
            want = SMPL_JOINT_NAMES[SMPL_PARENTS[j]] if SMPL_PARENTS[j] >= 0 else None
            if (parent.name if parent else None) != want:
                problems.append(f"bone {name} has parent {parent.name if parent else None}, "
                                f"SMPL has {want}")
    return problems


def find_smpl_armature(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """The SMPL armature for a user's selection: ``obj`` itself, or the armature it is parented
    to (its body, a skinned mesh); None when neither has SMPL topology."""
    while obj is not None:
        if is_smpl_armature(obj):
            return obj
        obj = obj.parent
    return None


def require_smpl_armature(obj: bpy.types.Object | None) -> bpy.types.Object:
    """Like :func:`find_smpl_armature`, but raise ``ConfigError`` saying what is wrong."""
    found = find_smpl_armature(obj)
    if found is not None:
        return found
    if obj is None:
        raise ConfigError("no target armature: select an SMPL armature or build one first")
    if obj.type != "ARMATURE":
        raise ConfigError(f"{obj.name!r} is a {obj.type.lower()}, not an armature: select an "
                          "SMPL armature or build one")
    raise ConfigError(f"armature {obj.name!r} is not SMPL-24: "
                      f"{'; '.join(_topology_problems(obj))}; build an SMPL armature instead")


def rest_heads(armature: bpy.types.Object) -> np.ndarray:
    """(24, 3) rest bone heads in armature space, SMPL joint order."""
    bones = armature.data.bones
    return np.array([bones[name].head_local for name in SMPL_JOINT_NAMES], dtype=np.float64)


def _snap_axis(vector: np.ndarray) -> np.ndarray:
    out = np.zeros(3)
    k = int(np.argmax(np.abs(vector)))
    out[k] = math.copysign(1.0, vector[k])
    return out


def body_axes(armature: bpy.types.Object) -> np.ndarray:
    """(3, 3) rotation C taking SMPL's body frame (x left, y up, z forward) to armature space.

    Read off the rest pose (left = left minus right shoulder, up = pelvis to spine3) and snapped
    to the nearest axes: identity for our rig, +90° about X for a Z-up re-import of it.

    Raises:
        ConfigError: the rest pose is not upright with level shoulders.
    """
    heads = rest_heads(armature)
    names = SMPL_JOINT_NAMES
    left = _snap_axis(heads[names.index("left_shoulder")] - heads[names.index("right_shoulder")])
    up = _snap_axis(heads[names.index("spine3")] - heads[names.index("pelvis")])
    if abs(float(left @ up)) > 0.5:
        raise ConfigError(f"armature {armature.name!r}: its rest pose is not upright with level "
                          "shoulders, so its axes cannot be told; use an SMPL T-pose rig")
    return np.stack([left, up, np.cross(left, up)], axis=1)


def rest_offsets_of(armature: bpy.types.Object) -> np.ndarray:
    """(24, 3) rest offsets of the armature in SMPL's body frame (row 0 is zero), the ``rest``
    that ``hmu_core.motion.smpl.inverse_kinematics`` takes."""
    heads = rest_heads(armature) @ body_axes(armature)  # rows: C^T · head
    offsets = heads - heads[np.maximum(np.array(SMPL_PARENTS), 0)]
    offsets[0] = 0.0
    return offsets


def world_joints(armature: bpy.types.Object, frames: Sequence[float],
                 scene: bpy.types.Scene | None = None) -> np.ndarray:
    """(F, 24, 3) world positions of the posed bone heads at each (possibly fractional) frame.

    Sets ``scene``'s frame (default: the context scene) to each frame in turn and restores it.
    """
    scene = scene if scene is not None else bpy.context.scene
    keep = (scene.frame_current, scene.frame_subframe)
    bones = armature.pose.bones
    order = [bones.find(name) for name in SMPL_JOINT_NAMES]
    flat = np.empty(len(bones) * 3, dtype=np.float32)
    out = np.empty((len(frames), NUM_BONES, 3))
    try:
        for i, frame in enumerate(frames):
            whole = math.floor(frame)
            scene.frame_set(whole, subframe=float(frame) - whole)
            bones.foreach_get("head", flat)
            heads = flat.reshape(-1, 3)[order].astype(np.float64)
            world = np.array(armature.matrix_world)
            out[i] = heads @ world[:3, :3].T + world[:3, 3]
    finally:
        scene.frame_set(keep[0], subframe=keep[1])
    return out

"""A ``Motion`` -> a new Blender 5.0 layered action on an SMPL-topology armature.

Retargeting (reference/blender.md §2.2): with SMPL local rotations ``L_j`` (body frame), the
change of axes ``C`` from the body frame to armature space (:func:`~exporter.scene.rig.body_axes`,
identity for our Y-up rig) and bone rest rotations ``B_j`` (``bone.matrix_local``), the pose-bone
rotation is ``q_j = B_jᵀ · C · L_j · Cᵀ · B_j`` and the pelvis location is
``B_0ᵀ · (C · p_0 - h_0)`` with ``p_0`` the pelvis position and ``h_0`` its rest head. The
conjugation is linear in the quaternion, so the IK's sign continuity carries over (it is
enforced again anyway: a sign flip between keys makes interpolation spin the long way round).

The rig keeps its proportions: if its rest skeleton differs from the one the motion's SMPL pose
was solved for, the joints are solved again against the rig's rest (the IK is exact on bone
directions; bone lengths are the rig's). Build the rig with the motion's rest
(``rest_joints_from_offsets(motion.smpl_pose().rest_offsets)``) to reproduce the joints exactly.

Timing (§2.4 option (a)): model frame i lands on scene frame ``start_frame + i·scene_fps/fps``
with LINEAR interpolation; the scene's fps is never changed. Keys are written with
``foreach_set`` into one F-curve per channel (24 × 4 rotations + 3 root location), 20x faster
than ``keyframe_insert``.

Usage::

    from exporter.scene.keying import key_motion, motion_properties, unique_action_name
    action = key_motion(arm, motion, action_name=unique_action_name("hmu_wave_s0"),
                        properties=motion_properties(motion, bundle_sha256=sha))
    action["hmu_prompt"]  # the prompt, also exported as glTF animation extras
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import bpy
import numpy as np

from exporter.scene.rig import body_axes, require_smpl_armature, rest_heads, rest_offsets_of
from hmu_core.errors import ConfigError, MotionError
from hmu_core.motion import quaternion
from hmu_core.motion.motion import Motion
from hmu_core.motion.skeleton import SMPL_JOINT_NAMES
from hmu_core.motion.smpl import SMPLPose, inverse_kinematics

__all__ = ["action_properties", "bone_channels", "check_timing", "key_motion",
           "motion_properties", "pose_for_rig", "scene_frames", "unique_action_name",
           "write_action"]  # fmt: skip

REST_TOLERANCE_M = 1e-4
"""Rig and motion rest offsets closer than this (m) count as the same skeleton (no new IK)."""
LINEAR = 1
"""``Keyframe.interpolation`` enum value of 'LINEAR' (0 CONSTANT, 1 LINEAR, 2 BEZIER)."""
MAX_NAME = 60
"""Action names are cut to this many characters before a .001-style suffix (Blender 4.x
allowed 63 bytes; shorter names also stay readable in the action list)."""
PROPERTY_PREFIX = "hmu_"


def unique_action_name(base: str) -> str:
    """``base`` (cleaned, at most 60 characters) if no action has that name, else the first
    free ``base.001``, ``base.002``, ... (Blender's own convention)."""
    name = re.sub(r"\s+", " ", base).strip()[:MAX_NAME] or "hmu_motion"
    if name not in bpy.data.actions:
        return name
    k = 1
    while f"{name}.{k:03d}" in bpy.data.actions:
        k += 1
    return f"{name}.{k:03d}"


def motion_properties(motion: Motion, *, bundle_sha256: str | None = None) -> dict[str, Any]:
    """The ID properties hmu stores on an action: prompt, seed, fps, frame count, model kind,
    bundle sha256 and the unlearning record (JSON; ``null`` for an unedited model)."""
    prov = motion.provenance
    props: dict[str, Any] = {
        "hmu_prompt": motion.text,
        "hmu_fps": float(motion.fps),
        "hmu_frames": motion.num_frames,
        "hmu_unlearning": json.dumps(prov.get("unlearning"), sort_keys=True),
    }
    if prov.get("seed") is not None:
        props["hmu_seed"] = int(prov["seed"])
    if prov.get("model_kind"):
        props["hmu_model_kind"] = str(prov["model_kind"])
    sha = bundle_sha256 if bundle_sha256 is not None else prov.get("bundle_sha256")
    if sha:
        props["hmu_bundle_sha256"] = str(sha)
    return props


def _id_value(key: str, value: Any) -> Any:
    """ID properties hold str/int/float/bool as is; anything else is stored as JSON text."""
    if not isinstance(key, str) or not key:
        raise ConfigError(f"action property names must be non-empty strings, got {key!r}")
    if isinstance(value, bool | int | float | str):
        return value
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError as exc:
        raise ConfigError(f"action property {key!r}: {exc}; pass JSON-serialisable values") \
            from exc


def pose_for_rig(armature: bpy.types.Object, motion: Motion) -> SMPLPose:
    """The motion's SMPL pose if it was solved for the rig's rest skeleton, else the IK of its
    joints against the rig's rest (rig proportions kept, bone directions exact)."""
    rig_rest = rest_offsets_of(armature)
    pose = motion.smpl_pose()
    if np.max(np.abs(pose.rest_offsets[1:] - rig_rest[1:])) <= REST_TOLERANCE_M:
        return pose
    return inverse_kinematics(motion.joints, rig_rest)


def bone_channels(armature: bpy.types.Object, pose: SMPLPose) -> tuple[np.ndarray, np.ndarray]:
    """Pose-bone values for every frame: rotations (T, 24, 4) (w, x, y, z) in each bone's rest
    frame, sign-continuous, and the pelvis location (T, 3), by the §2.2 conjugation."""
    axes = body_axes(armature)
    c = quaternion.from_matrix(axes)
    bones = armature.data.bones
    rest = np.array([np.array(bones[n].matrix_local.to_3x3()) for n in SMPL_JOINT_NAMES])
    b = quaternion.from_matrix(rest)  # (24, 4)
    local = pose.local_rotations  # (T, 24, 4), body frame
    c_all, b_all = np.broadcast_to(c, local.shape), np.broadcast_to(b, local.shape)
    c_inv, b_inv = quaternion.qinv(c_all), quaternion.qinv(b_all)
    in_armature = quaternion.qmul(quaternion.qmul(c_all, local), c_inv)
    rotations = quaternion.qmul(quaternion.qmul(b_inv, in_armature), b_all)
    rotations = quaternion.normalize(rotations)
    rotations[0] = np.where(rotations[0, :, :1] < 0, -rotations[0], rotations[0])
    rotations = quaternion.make_continuous(rotations, axis=0)
    pelvis = (pose.root_translation + pose.rest_offsets[0]) @ axes.T - rest_heads(armature)[0]
    location = quaternion.qrot(np.broadcast_to(quaternion.qinv(b[0]), (len(pelvis), 4)), pelvis)
    return rotations, location


def scene_frames(num_frames: int, fps: float, start_frame: float, scene_fps: float) -> np.ndarray:
    """(T,) scene frame of each model frame: ``start_frame + i · scene_fps / fps``."""
    return start_frame + np.arange(num_frames) * (scene_fps / fps)


def _scene_fps() -> float:
    render = bpy.context.scene.render
    return render.fps / render.fps_base


def _add_fcurve(bag: Any, path: str, index: int, group: str, frames: np.ndarray,
                values: np.ndarray) -> None:
    curve = bag.fcurves.new(path, index=index, group_name=group)
    points = curve.keyframe_points
    points.add(len(frames))
    co = np.empty(2 * len(frames), dtype=np.float32)
    co[0::2], co[1::2] = frames, values
    points.foreach_set("co", co)
    points.foreach_set("interpolation", np.full(len(frames), LINEAR, dtype=np.int32))
    curve.update()


def check_timing(start_frame: float, scene_fps: float | None) -> float:
    """The timeline's fps (the context scene's when None), checked with ``start_frame``."""
    scene_fps = _scene_fps() if scene_fps is None else float(scene_fps)
    if not np.isfinite(scene_fps) or scene_fps <= 0:
        raise ConfigError(f"scene_fps must be a number > 0, got {scene_fps}")
    if not np.isfinite(start_frame):
        raise ConfigError(f"start_frame must be a finite number, got {start_frame}")
    return scene_fps


def write_action(armature: bpy.types.Object, action_name: str, frames: np.ndarray,
                 channels: list[tuple[str, int, str, np.ndarray]], properties: Mapping[str, Any],
                 *, assign: bool, fake_user: bool) -> bpy.types.Action:
    """A NEW layered action for ``armature`` holding ``channels`` keyed at ``frames``.

    Args:
        armature: the object the action's slot is for.
        action_name: its name; a taken name gets a .001-style suffix.
        frames: (T,) scene frames of the keys.
        channels: ``(data_path, index, group, values (T,))`` per F-curve (LINEAR keys).
        properties: ID properties for the action (already ID-property values).
        assign: make it the armature's active action (with its slot).
        fake_user: keep the action in the file even when no object uses it.
    """
    action = bpy.data.actions.new(unique_action_name(action_name))
    action.use_fake_user = fake_user
    slot = action.slots.new(id_type="OBJECT", name=armature.name)
    strip = action.layers.new("Layer").strips.new(type="KEYFRAME")
    bag = strip.channelbag(slot, ensure=True)
    for path, index, group, values in channels:
        _add_fcurve(bag, path, index, group, frames, values)
    action.use_frame_range = True
    action.frame_start = float(frames[0])
    action.frame_end = float(frames[-1])
    for key, value in properties.items():
        action[key] = value
    if assign:
        if armature.animation_data is None:
            armature.animation_data_create()
        armature.animation_data.action = action
        armature.animation_data.action_slot = slot
    return action


def action_properties(motion: Motion, properties: Mapping[str, Any] | None) -> dict[str, Any]:
    """:func:`motion_properties` plus ``properties`` as ID-property values."""
    props = motion_properties(motion)
    props.update({k: _id_value(k, v) for k, v in (properties or {}).items()})
    return props


def key_motion(armature: bpy.types.Object, motion: Motion, *, action_name: str,
               start_frame: float = 1.0, scene_fps: float | None = None,
               properties: Mapping[str, Any] | None = None, assign: bool = True,
               fake_user: bool = True) -> bpy.types.Action:
    """Key ``motion`` into a NEW action for ``armature`` (never edits an existing action).

    Args:
        armature: an SMPL-24 armature (:func:`~exporter.scene.rig.build_smpl_armature`, or
            any rig :func:`~exporter.scene.rig.find_smpl_armature` accepts); its pose bones
            are switched to quaternion rotation mode.
        motion: the clip; its SMPL pose is used (solved again if the rig's rest differs).
        action_name: the action's name; a taken name gets a .001-style suffix.
        start_frame: scene frame of the motion's first frame.
        scene_fps: frames per second of the timeline; default the context scene's
            (``render.fps / fps_base``), which is read, never changed.
        properties: extra ID properties for the action, on top of :func:`motion_properties`
            (non-scalar values are stored as JSON text).
        assign: make it the armature's active action (with its slot).
        fake_user: keep the action in the file even when no object uses it.
    Returns:
        The action: one slot for the armature, one layer, one keyframe strip, 99 LINEAR
        F-curves, ``use_frame_range`` on, from ``start_frame`` to the last key.
    Raises:
        ConfigError: not an SMPL armature, or a bad fps / property.
    """
    armature = require_smpl_armature(armature)
    scene_fps = check_timing(start_frame, scene_fps)
    props = action_properties(motion, properties)
    rotations, location = bone_channels(armature, pose_for_rig(armature, motion))
    if not (np.all(np.isfinite(rotations)) and np.all(np.isfinite(location))):
        raise MotionError("retargeting produced non-finite values; check the motion's joints")
    frames = scene_frames(motion.num_frames, motion.fps, float(start_frame), scene_fps)
    channels = []
    for j, name in enumerate(SMPL_JOINT_NAMES):
        armature.pose.bones[name].rotation_mode = "QUATERNION"
        path = f'pose.bones["{name}"].rotation_quaternion'
        channels += [(path, k, name, rotations[:, j, k]) for k in range(4)]
    root = SMPL_JOINT_NAMES[0]
    channels += [(f'pose.bones["{root}"].location', k, root, location[:, k]) for k in range(3)]
    return write_action(armature, action_name, frames, channels, props, assign=assign,
                        fake_user=fake_user)

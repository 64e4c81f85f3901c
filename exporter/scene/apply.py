"""Apply generated motions to the scene (main thread only): rig, actions, NLA strips.

All scene changes of one Generate happen here, in one call, so one undo step removes them;
if anything fails half-way the objects, actions and strips made so far are removed again, so
a failed generation leaves the scene as it was. The rig building and keying themselves are the
rest of this package, shared with the clip library and the renders:
hmu's SMPL rig is keyed directly (``keying``), any other armature through its bone map
(``retarget``). The foot clean-up (``hmu_core.motion.foot_contact``) runs first, unless off.
On the timeline (``exporter.scene.placement``) each clip starts where the character stands
and faces at the frame Generate was clicked, as an NLA strip on its own track, variations
muted. A request made again with the same seed re-uses its action instead of a copy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np

from exporter.scene.keying import key_motion, unique_action_name
from exporter.scene.placement import (
    BLEND_SECONDS,
    Anchor,
    add_strip,
    align_action,
    anchor_of,
    has_animation,
)
from exporter.scene.retarget import key_retarget, require_bone_map
from exporter.scene.rig import (
    build_smpl_armature,
    is_smpl_armature,
    rest_joints_from_offsets,
)
from hmu_core.motion.foot_contact import clean_feet, foot_contacts
from hmu_core.motion.retarget import DEFAULT_FEET, RetargetReport

DEFAULT_RIG_NAME = "hmu_smpl"


@dataclass
class Applied:
    """What one generation added: the rig (``built`` if new), its actions (new or re-used),
    the NLA strips, and the last retarget's report (None on hmu's own rig)."""

    armature: Any
    actions: list[Any]
    built: bool
    report: RetargetReport | None = None
    strips: list[Any] = field(default_factory=list)
    reused: int = 0


@dataclass(frozen=True)
class Placement:
    """Where the clips go: scene ``frame`` of their start (read when Generate was clicked),
    the character's ``anchor`` there (None: leave the clip where the model put it), and
    ``nla`` (strips; else the first clip becomes the active action)."""

    frame: int
    anchor: Anchor | None = None
    nla: bool = True


def key_bones(armature: Any, bone_map: Mapping[str, str] | None) -> tuple[str, str, str]:
    """(root, left hip, right hip) bones of a target: hmu's SMPL names or through its map."""
    joints = ("pelvis", "left_hip", "right_hip")
    if bone_map is None:
        return joints
    return tuple(bone_map[j] for j in joints)  # type: ignore[return-value]


def character_anchor(context: Any, armature: Any, bone_map: Mapping[str, str] | None,
                     frame: int) -> Anchor | None:
    """Where ``armature`` stands and faces at ``frame`` (None without an armature: the rig
    Generate builds stands at the origin, where the model puts the clip)."""
    if armature is None:
        return None
    return anchor_of(armature, *key_bones(armature, bone_map), frame, context.scene)


def action_base_name(prompt: str, seed: int) -> str:
    """``hmu_<first words of the prompt>_s<seed>``: readable in the action list, and the same
    for the same request, which is what "replace the existing action" matches on."""
    words = re.findall(r"[a-z0-9]+", prompt.lower())
    slug = "_".join(words)[:40].rstrip("_") or "motion"
    return f"hmu_{slug}_s{seed}"


def rest_joints(motion: Any) -> np.ndarray:
    """(24, 3) rest joints of the motion's own IK skeleton (on the floor), so a rig built for
    it reproduces the generated joints exactly: bone lengths come from the motion."""
    return rest_joints_from_offsets(motion.smpl_pose().rest_offsets)


def clip_properties(bundle: str, bundle_hash: str, provider: str) -> dict[str, Any]:
    """Custom properties on top of the exporter's (prompt, seed, fps, unlearning record):
    which bundle file set made the clip and on which device, to reproduce and audit it."""
    return {"hmu_bundle": bundle, "hmu_bundle_sha256": bundle_hash, "hmu_provider": provider}


def request_key(prompt: str, seed: int, motion: Any, armature: Any, bundle_hash: str,
                bone_map: Mapping[str, str] | None, foot_cleanup: bool, placement: Placement,
                scene_fps: float) -> str:
    """What makes two clips identical: the same request on the same bundle, keyed the same
    way onto the same character at the same place. Stored on the action (``hmu_request``)."""
    anchor = placement.anchor
    return json.dumps({
        "prompt": prompt, "seed": seed, "frames": motion.num_frames, "bundle": bundle_hash,
        "target": armature.name, "bone_map": dict(bone_map or {}), "feet": foot_cleanup,
        "frame": placement.frame, "fps": round(scene_fps, 6),
        "anchor": None if anchor is None else [round(anchor.x, 5), round(anchor.y, 5),
                                               round(anchor.heading, 5)]}, sort_keys=True)


def _identical(key: str) -> Any:
    return next((a for a in bpy.data.actions if a.get("hmu_request") == key), None)


def apply_motions(context: Any, target: Any, motions: Sequence[Any], *,
                  prompts: Sequence[str], seeds: Sequence[int], bundle: str,
                  bundle_hash: str, provider: str, placement: Placement,
                  bone_map: Mapping[str, str] | None = None, bone_map_source: str = "detected",
                  foot_cleanup: bool = True, library: bool = False) -> Applied:
    """Key ``motions`` (one per prompt and seed) onto ``target``: hmu's SMPL rig (a new one,
    built for the first motion's skeleton, when ``target`` is None) or any armature
    ``bone_map`` (default: the detected one) can drive.

    With ``placement.nla`` every clip becomes an NLA strip at ``placement.frame`` on its own
    track, the first one playing, the others (variations) muted, blended in when the
    character is already animated (the strips are the actions' users); otherwise the first
    action becomes the active one and all keep a fake user (a later one replaces it).
    ``library`` keys a library instead: actions only, fake users, none assigned. With an
    ``anchor`` each clip starts where the character stands and faces. A clip identical to one
    made before (``request_key``) re-uses that action. Prompt, seed and unlearning record come
    with each motion's provenance (``exporter.scene.keying.motion_properties``).
    ``foot_cleanup`` plants the feet (hmu's joints, then the target's own legs).

    Raises:
        ConfigError: ``target`` is not an armature, or its bone map cannot drive a body.
    """
    smpl_rig = target is None or is_smpl_armature(target)
    if not smpl_rig:
        bone_map = require_bone_map(target, bone_map)
    contacts = [foot_contacts(m) for m in motions]  # the model's own, before any clean-up
    clips = [clean_feet(m, contacts=c) if foot_cleanup else m
             for m, c in zip(motions, contacts, strict=True)]
    built = target is None
    applied = Applied(armature=target, actions=[], built=built)
    made: list[Any] = []
    scene = context.scene
    fps = scene.render.fps / scene.render.fps_base
    blend = BLEND_SECONDS * fps if target is not None and has_animation(target) else 0.0
    try:
        if built:
            applied.armature = build_smpl_armature(DEFAULT_RIG_NAME, collection=scene.collection,
                                                   rest_joints=rest_joints(clips[0]))
        armature = applied.armature
        bones = key_bones(armature, None if smpl_rig else bone_map)
        extra = clip_properties(bundle, bundle_hash, provider)
        for i, (motion, prompt, seed) in enumerate(zip(clips, prompts, seeds, strict=True)):
            key = request_key(prompt, seed, motion, armature, bundle_hash, bone_map,
                              foot_cleanup, placement, fps)
            action = None if library else _identical(key)
            if action is not None:
                applied.reused += 1
            else:
                action, report = _key(armature, motion, smpl_rig, bone_map, contacts[i],
                                      bone_map_source, foot_cleanup, placement,
                                      name=action_base_name(prompt, seed),
                                      properties={**extra, "hmu_request": key},
                                      fake_user=library or not placement.nla)
                made.append(action)
                applied.report = report or applied.report
                if placement.anchor is not None and not library:
                    align_action(armature, action, bones, placement.frame, placement.anchor,
                                 scene)
            applied.actions.append(action)
            if library:
                continue
            if placement.nla:
                applied.strips.append(add_strip(armature, action, placement.frame,
                                                action.name, blend_in=blend, mute=i > 0))
            elif i == 0:
                _assign(armature, action)
    except Exception:
        if applied.strips:
            tracks = applied.armature.animation_data.nla_tracks
            for track in [t for t in tracks if any(s in applied.strips for s in t.strips)]:
                tracks.remove(track)
        for action in made:
            bpy.data.actions.remove(action)
        if built and applied.armature is not None:
            _remove_rig(applied.armature)
        raise
    return applied


def _key(armature: Any, motion: Any, smpl_rig: bool, bone_map: Mapping[str, str] | None,
         contacts: Any, bone_map_source: str, foot_cleanup: bool, placement: Placement, *,
         name: str, properties: dict[str, Any], fake_user: bool
         ) -> tuple[Any, RetargetReport | None]:
    """One new action (not assigned) for the motion on the armature."""
    common = {"action_name": unique_action_name(name), "start_frame": float(placement.frame),
              "scene_fps": None, "properties": properties, "assign": False,
              "fake_user": fake_user}
    if smpl_rig:
        return key_motion(armature, motion, **common), None
    return key_retarget(armature, motion, bone_map, feet=DEFAULT_FEET if foot_cleanup else None,
                        contacts=contacts, bone_map_source=bone_map_source, **common)


def _assign(armature: Any, action: Any) -> None:
    data = armature.animation_data or armature.animation_data_create()
    data.action = action
    data.action_slot = action.slots[0]


def _remove_rig(armature: Any) -> None:
    """Delete a rig this generation built, with its children (its body) and data."""
    for child in list(armature.children):
        data = child.data
        bpy.data.objects.remove(child)
        if data is not None and data.users == 0 and isinstance(data, bpy.types.Mesh):
            bpy.data.meshes.remove(data)
    data = armature.data
    bpy.data.objects.remove(armature)
    if data.users == 0:
        bpy.data.armatures.remove(data)

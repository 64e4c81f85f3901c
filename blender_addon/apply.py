"""Apply generated motions to the scene (main thread only): rig, one new action per variation.

All scene changes of one Generate happen here, in one call, so one undo step removes them;
if anything fails half-way the objects and actions made so far are removed again, so a
failed generation leaves the scene as it was. The rig building and keying themselves are the
exporter's scene code (``exporter.scene``), shared with the clip library and the renders:
hmu's SMPL rig is keyed directly (``keying``), any other armature through its bone map
(``retarget``). The foot clean-up (``hmu_core.motion.foot_contact``) runs first, unless off.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bpy
import numpy as np

from exporter.scene.keying import key_motion, unique_action_name
from exporter.scene.retarget import key_retarget, require_bone_map
from exporter.scene.rig import build_smpl_armature, is_smpl_armature, rest_joints_from_offsets
from hmu_core.motion.foot_contact import clean_feet, foot_contacts
from hmu_core.motion.retarget import DEFAULT_FEET, RetargetReport

DEFAULT_RIG_NAME = "hmu_smpl"


@dataclass
class Applied:
    """What one generation added: the rig (``built`` if new), its new actions, and the last
    retarget's report (None on hmu's own rig)."""

    armature: Any
    actions: list[Any]
    built: bool
    report: RetargetReport | None = None


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


def _remove_existing(name: str) -> None:
    old = bpy.data.actions.get(name)
    if old is not None:
        bpy.data.actions.remove(old)


def apply_motions(context: Any, target: Any, motions: Sequence[Any], *,
                  prompts: Sequence[str], seeds: Sequence[int], bundle: str,
                  bundle_hash: str, provider: str, start_frame: float, replace: bool = False,
                  assign_first: bool = True, bone_map: Mapping[str, str] | None = None,
                  bone_map_source: str = "detected", foot_cleanup: bool = True) -> Applied:
    """Key ``motions`` (one per prompt and seed) as new actions on ``target``: hmu's SMPL rig
    (a new one, built for the first motion's skeleton, when ``target`` is None) or any
    armature ``bone_map`` (default: the detected one) can drive.

    The first action is assigned to the rig (if ``assign_first``); all keep a fake user, so
    the others stay in the file for the user to switch to. Prompt, seed and unlearning record
    come with each motion's provenance (``exporter.scene.keying.motion_properties``).
    ``replace`` reuses (deletes, then re-creates) an action that has this prompt's and seed's
    name instead of making a numbered copy. ``foot_cleanup`` plants the feet (hmu's joints,
    then the target's own legs).

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
    made: list[Any] = []
    report = None
    armature = target
    try:
        if built:
            armature = build_smpl_armature(DEFAULT_RIG_NAME,
                                           collection=context.scene.collection,
                                           rest_joints=rest_joints(clips[0]))
        extra = clip_properties(bundle, bundle_hash, provider)
        for i, (motion, prompt, seed) in enumerate(zip(clips, prompts, seeds, strict=True)):
            base = action_base_name(prompt, seed)
            if replace:
                _remove_existing(base)
            common = {"action_name": unique_action_name(base), "start_frame": start_frame,
                      "scene_fps": None, "properties": extra,
                      "assign": assign_first and i == 0}
            if smpl_rig:
                action = key_motion(armature, motion, **common)
            else:
                action, report = key_retarget(
                    armature, motion, bone_map, feet=DEFAULT_FEET if foot_cleanup else None,
                    contacts=contacts[i], bone_map_source=bone_map_source, **common)
            made.append(action)
    except Exception:
        for action in made:
            bpy.data.actions.remove(action)
        if built and armature is not None:
            _remove_rig(armature)
        raise
    return Applied(armature=armature, actions=made, built=built, report=report)


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

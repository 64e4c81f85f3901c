"""Apply generated motions to the scene (main thread only): rig, one new action per variation.

All scene changes of one Generate happen here, in one call, so one undo step removes them;
if anything fails half-way the objects and actions made so far are removed again, so a
failed generation leaves the scene as it was. The rig building and keying themselves are the
exporter's scene code (``exporter.scene``), shared with the clip library and the renders.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import bpy
import numpy as np

from exporter.scene.keying import key_motion, unique_action_name
from exporter.scene.rig import build_smpl_armature, is_smpl_armature, rest_joints_from_offsets
from hmu_core.errors import ConfigError

DEFAULT_RIG_NAME = "hmu_smpl"


@dataclass
class Applied:
    """What one generation added: the rig (``built`` if new) and its new actions."""

    armature: Any
    actions: list[Any]
    built: bool


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
                  assign_first: bool = True) -> Applied:
    """Key ``motions`` (one per prompt and seed) as new actions on ``target``, or on a new
    SMPL rig built for the first motion's skeleton.

    The first action is assigned to the rig (if ``assign_first``); all keep a fake user, so
    the others stay in the file for the user to switch to. Prompt, seed and unlearning record
    come with each motion's provenance (``exporter.scene.keying.motion_properties``).
    ``replace`` reuses (deletes, then re-creates) an action that has this prompt's and seed's
    name instead of making a numbered copy.

    Raises:
        ConfigError: ``target`` is not an SMPL-topology armature.
    """
    if target is not None and not is_smpl_armature(target):
        raise ConfigError(f"{target.name} is not an SMPL-topology armature (24 bones with SMPL "
                          f"names); clear the target to let hmu build one")
    built = target is None
    made: list[Any] = []
    armature = target
    try:
        if built:
            armature = build_smpl_armature(DEFAULT_RIG_NAME,
                                           collection=context.scene.collection,
                                           rest_joints=rest_joints(motions[0]))
        extra = clip_properties(bundle, bundle_hash, provider)
        for i, (motion, prompt, seed) in enumerate(zip(motions, prompts, seeds, strict=True)):
            base = action_base_name(prompt, seed)
            if replace:
                _remove_existing(base)
            action = key_motion(armature, motion, action_name=unique_action_name(base),
                                start_frame=start_frame, scene_fps=None,
                                properties=extra, assign=assign_first and i == 0)
            made.append(action)
    except Exception:
        for action in made:
            bpy.data.actions.remove(action)
        if built and armature is not None:
            _remove_rig(armature)
        raise
    return Applied(armature=armature, actions=made, built=built)


def _remove_rig(armature: Any) -> None:
    """Delete a rig this generation built, with its children (the stick body) and data."""
    for child in list(armature.children):
        data = child.data
        bpy.data.objects.remove(child)
        if data is not None and data.users == 0 and isinstance(data, bpy.types.Mesh):
            bpy.data.meshes.remove(data)
    data = armature.data
    bpy.data.objects.remove(armature)
    if data.users == 0:
        bpy.data.armatures.remove(data)

"""The Target's bone map as the panel shows and edits it, and the checked plan for Generate.

The map lives in ``Scene.hmu.bone_map`` (one row per SMPL joint, the bone chosen for it),
filled by detection whenever the Target changes (``hmu_core.motion.bone_maps``), edited by
the user, saved and loaded as a preset. Before the model runs, :func:`target_plan` turns it
into what ``apply.apply_motions`` needs, or refuses the target with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.scene.retarget import bone_map_of, require_bone_map
from exporter.scene.rig import is_smpl_armature
from hmu_core.errors import ConfigError
from hmu_core.motion.bone_maps import BoneMap, missing_parts
from hmu_core.motion.skeleton import JOINT_NAMES

SOURCE_LABELS = {"mixamo": "Mixamo", "rigify": "Rigify (deform bones)",
                 "rigify_fk": "Rigify (FK controls)", "ue5": "Unreal mannequin",
                 "smpl": "SMPL", "smpl_caps": "SMPL", "detected": "detected from names",
                 "preset": "preset", "user": "edited"}


@dataclass(frozen=True)
class TargetPlan:
    """What Generate applies to: ``armature`` (None: build hmu's rig), the checked
    ``bone_map`` (None for an SMPL rig), where it came from, and the foot clean-up switch."""

    armature: Any
    bone_map: dict[str, str] | None
    source: str
    foot_cleanup: bool


def set_rows(props: Any, found: BoneMap, armature_name: str) -> None:
    """Fill the panel's rows from ``found`` (every joint, empty where no bone)."""
    props.bone_map.clear()
    for joint in JOINT_NAMES:
        row = props.bone_map.add()
        row.joint = joint
        row.bone = found.bones.get(joint, "")
    props.bone_map_for = armature_name
    props.bone_map_source = found.source  # after the rows: their update marks "user"


def fill_bone_map(props: Any) -> None:
    """Detect the Target's map into the rows (clears them without a Target)."""
    target = props.target
    if target is None or target.type != "ARMATURE":
        props.bone_map.clear()
        props.bone_map_for = props.bone_map_source = ""
        return
    try:
        found = bone_map_of(target)
    except ConfigError:  # no bones, or an object scale hmu refuses: Generate says why
        found = BoneMap(bones={}, source="detected")
    set_rows(props, found, target.name)


def rows_map(props: Any) -> dict[str, str] | None:
    """The rows as ``{joint: bone}`` if they were made for the current Target, else None."""
    if props.target is None or props.bone_map_for != props.target.name or not props.bone_map:
        return None
    return {row.joint: row.bone for row in props.bone_map if row.bone}


def map_summary(props: Any) -> tuple[str, list[str]]:
    """One line on the map (source, joints mapped) and one per incomplete body part."""
    bones = rows_map(props)
    if bones is None:
        return "", []
    label = SOURCE_LABELS.get(props.bone_map_source, props.bone_map_source)
    parts = [f"{part}: no {', '.join(joints)}" for part, joints in missing_parts(bones).items()]
    return f"Bone map: {label}, {len(bones)} of {len(JOINT_NAMES)} joints", parts


def target_plan(props: Any) -> TargetPlan:
    """The checked target for Generate (runs before the model does).

    Raises:
        ConfigError: the Target cannot be mapped to a human body (says which parts are
            missing, or which row is wrong).
    """
    target = props.target
    if target is None or is_smpl_armature(target):
        return TargetPlan(target, None, "smpl", props.foot_cleanup)
    bones = rows_map(props)
    source = props.bone_map_source if bones is not None else "detected"
    return TargetPlan(target, require_bone_map(target, bones), source, props.foot_cleanup)

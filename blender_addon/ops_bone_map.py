"""Bone map operators (Bone Map subpanel): detect it again, save and load a preset file."""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper


def _has_target(cls: Any, context: Any) -> bool:
    if context.scene.hmu.target is None:
        cls.poll_message_set("Pick a Target armature first")
        return False
    return True


class HMU_OT_detect_bone_map(bpy.types.Operator):
    """Detect the Target's bone map again from its bone names and hierarchy (drops edits)"""

    bl_idname = "hmu.detect_bone_map"
    bl_label = "Detect Bone Map"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    @classmethod
    def poll(cls, context: Any) -> bool:
        return _has_target(cls, context)

    def execute(self, context: Any) -> set[str]:
        from .bone_map import fill_bone_map, map_summary

        props = context.scene.hmu
        fill_bone_map(props)
        line, missing = map_summary(props)
        self.report({"WARNING"} if missing else {"INFO"},
                    f"hmu: {line}" + (f"; missing {'; '.join(missing)}" if missing else ""))
        return {"FINISHED"}


class HMU_OT_save_bone_map(bpy.types.Operator, ExportHelper):
    """Save the bone map as a JSON preset to share with other characters and artists"""

    bl_idname = "hmu.save_bone_map"
    bl_label = "Save Bone Map"
    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    @classmethod
    def poll(cls, context: Any) -> bool:
        return _has_target(cls, context)

    def execute(self, context: Any) -> set[str]:
        from hmu_core.errors import HmuError
        from hmu_core.motion.bone_maps import save_preset

        from .bone_map import rows_map

        props = context.scene.hmu
        try:
            path = save_preset(self.filepath, rows_map(props) or {}, name=props.target.name)
        except (HmuError, OSError) as exc:
            self.report({"ERROR"}, f"hmu: cannot save the bone map: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"hmu: bone map saved to {path}")
        return {"FINISHED"}


class HMU_OT_load_bone_map(bpy.types.Operator, ImportHelper):
    """Load a JSON bone map preset onto the Target's bone map"""

    bl_idname = "hmu.load_bone_map"
    bl_label = "Load Bone Map"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)
    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    @classmethod
    def poll(cls, context: Any) -> bool:
        return _has_target(cls, context)

    def execute(self, context: Any) -> set[str]:
        from hmu_core.errors import HmuError
        from hmu_core.motion.bone_maps import load_preset

        from .bone_map import set_rows

        props = context.scene.hmu
        try:
            preset = load_preset(self.filepath)
        except HmuError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        set_rows(props, preset, props.target.name)
        absent = sorted(b for b in preset.bones.values() if b not in props.target.data.bones)
        if absent:
            self.report({"WARNING"}, f"hmu: {len(absent)} bone(s) of the preset are not in "
                                     f"{props.target.name}: {', '.join(absent[:5])}")
        else:
            self.report({"INFO"}, f"hmu: bone map loaded from {self.filepath}")
        return {"FINISHED"}


CLASSES = (HMU_OT_detect_bone_map, HMU_OT_save_bone_map, HMU_OT_load_bone_map)

"""Add and remove bundles of the preferences' list (the built-in one cannot be removed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
from bpy.props import StringProperty

from . import bundles
from .prefs import add_bundle, get_prefs


class HMU_OT_bundle_add(bpy.types.Operator):
    """Add a bundle directory made by 'hmu export' to the list and make it the active one"""

    bl_idname = "hmu.bundle_add"
    bl_label = "Add Bundle"
    bl_options = {"REGISTER", "INTERNAL"}  # noqa: RUF012 (Blender reads a plain set)

    directory: StringProperty(name="Bundle", subtype="DIR_PATH",
                              description="Bundle directory (with manifest.json)")

    def invoke(self, context: Any, _event: Any) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: Any) -> set[str]:
        folder = bpy.path.abspath(self.directory)
        if not (Path(folder) / bundles.MANIFEST).is_file():
            self.report({"ERROR"}, f"hmu: {folder} has no {bundles.MANIFEST}; choose a folder "
                                   f"made by 'hmu export'")
            return {"CANCELLED"}
        add_bundle(get_prefs(context), self.directory)
        context.preferences.is_dirty = True
        return {"FINISHED"}


class HMU_OT_bundle_remove(bpy.types.Operator):
    """Remove the active bundle from the list (its files stay on disk); the built-in one stays"""

    bl_idname = "hmu.bundle_remove"
    bl_label = "Remove Bundle"
    bl_options = {"REGISTER", "INTERNAL"}  # noqa: RUF012 (Blender reads a plain set)

    @classmethod
    def poll(cls, context: Any) -> bool:
        prefs = get_prefs(context)
        index = prefs.active_bundle
        if not 0 <= index < len(prefs.bundles) or prefs.bundles[index].builtin:
            cls.poll_message_set("The built-in bundle cannot be removed")
            return False
        return True

    def execute(self, context: Any) -> set[str]:
        prefs = get_prefs(context)
        prefs.bundles.remove(prefs.active_bundle)
        prefs.active_bundle = max(0, prefs.active_bundle - 1)
        context.preferences.is_dirty = True
        return {"FINISHED"}


CLASSES = (HMU_OT_bundle_add, HMU_OT_bundle_remove)

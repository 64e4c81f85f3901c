"""The N-panel tab "hmu": main panel plus four subpanels, closed by default."""

from __future__ import annotations

from typing import Any

import bpy

from . import prefs as P
from .props import MODEL_FPS


class _HmuPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "hmu"


class HMU_PT_main(_HmuPanel, bpy.types.Panel):
    bl_idname = "HMU_PT_main"
    bl_label = "Text to Motion"

    def draw(self, context: Any) -> None:
        layout = self.layout
        props = context.scene.hmu
        layout.prop(props, "target")
        if props.target is None:
            layout.label(text="No target: Generate builds an SMPL rig", icon="INFO")
        layout.prop(props, "prompt", text="")
        col = layout.column(align=True)
        row = col.row(align=True)
        row.prop(props, "seconds")
        row.prop(props, "frames")
        col.label(text=f"Model frames: {round(props.seconds * MODEL_FPS)} at 20 fps, keyed "
                       f"from frame {context.scene.frame_current}")
        row = layout.row(align=True)
        row.prop(props, "seed")
        row.prop(props, "variations")
        layout.prop(props, "replace_action")
        layout.operator("hmu.generate", icon="PLAY")
        job = context.window_manager.hmu_job
        if job.running:
            layout.progress(factor=job.progress, type="BAR", text=job.status)
        else:
            layout.label(text=job.status)


class HMU_PT_model(_HmuPanel, bpy.types.Panel):
    bl_idname = "HMU_PT_model"
    bl_parent_id = "HMU_PT_main"
    bl_label = "Model and Runtime"
    bl_options = {"DEFAULT_CLOSED"}  # noqa: RUF012 (Blender reads a plain set)

    def draw(self, context: Any) -> None:
        layout = self.layout
        prefs = P.get_prefs(context)
        layout.prop(prefs, "bundle_path")
        layout.row().prop(prefs, "device", expand=True)
        layout.prop(prefs, "threads")
        layout.operator("hmu.test_bundle", icon="CHECKMARK")
        P.draw_session(layout)


class HMU_PT_retarget(_HmuPanel, bpy.types.Panel):
    bl_idname = "HMU_PT_retarget"
    bl_parent_id = "HMU_PT_main"
    bl_label = "Retarget"
    bl_options = {"DEFAULT_CLOSED"}  # noqa: RUF012 (Blender reads a plain set)

    def draw(self, context: Any) -> None:
        layout = self.layout
        props = context.scene.hmu
        layout.prop(props, "smpl_model")
        if not props.smpl_model:
            layout.label(text="No SMPL model file: the rig gets a stick body", icon="INFO")
        layout.operator("hmu.build_rig", icon="ARMATURE_DATA")


class HMU_PT_library(_HmuPanel, bpy.types.Panel):
    bl_idname = "HMU_PT_library"
    bl_parent_id = "HMU_PT_main"
    bl_label = "Library"
    bl_options = {"DEFAULT_CLOSED"}  # noqa: RUF012 (Blender reads a plain set)

    def draw(self, context: Any) -> None:
        layout = self.layout
        props = context.scene.hmu
        layout.prop(props, "library_prompts")
        layout.row().prop(props, "library_mode", expand=True)
        if props.library_mode == "FILES":
            layout.prop(props, "library_dir")
            layout.row().prop(props, "library_formats")
        layout.operator("hmu.generate_library", icon="ASSET_MANAGER")


class HMU_PT_render(_HmuPanel, bpy.types.Panel):
    bl_idname = "HMU_PT_render"
    bl_parent_id = "HMU_PT_main"
    bl_label = "Render"
    bl_options = {"DEFAULT_CLOSED"}  # noqa: RUF012 (Blender reads a plain set)

    def draw(self, context: Any) -> None:
        layout = self.layout
        props = context.scene.hmu
        layout.prop(props, "render_original")
        layout.prop(props, "render_unlearned")
        layout.prop(props, "render_output")
        layout.prop(props, "render_engine")
        row = layout.row(align=True)
        row.prop(props, "render_width")
        row.prop(props, "render_height")
        layout.operator("hmu.render_eval", icon="RENDER_ANIMATION")


CLASSES = (HMU_PT_main, HMU_PT_model, HMU_PT_retarget, HMU_PT_library, HMU_PT_render)

"""The N-panel tab "hmu": main panel, the Target's bone map (shown while a Target is set) and
four subpanels closed by default."""

from __future__ import annotations

import textwrap
from typing import Any

import bpy

from . import bundles
from .prefs import draw_bundles, draw_session, get_prefs
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
        else:
            draw_map_summary(layout, props)
        layout.prop(props, "prompt", text="")
        col = layout.column(align=True)
        row = col.row(align=True)
        row.prop(props, "seconds")
        row.prop(props, "frames")
        draw_duration(col, context, props.seconds)
        row = layout.row(align=True)
        row.prop(props, "seed")
        row.prop(props, "seed_lock", text="", icon="LOCKED" if props.seed_lock else "UNLOCKED")
        row.prop(props, "variations")
        row = layout.row(align=True)
        row.prop(props, "use_nla")
        row.prop(props, "align")
        layout.prop(props, "foot_cleanup")
        draw_model_line(layout, context)
        layout.operator("hmu.generate", icon="PLAY")
        draw_job(layout, context)
        draw_variations(layout, props.target)


def draw_variations(layout: Any, target: Any) -> None:
    """The latest generation's variations, one button each; the one that plays is pressed."""
    from .ops_variation import variation_group

    group = variation_group(target)
    if len(group) < 2:
        return
    box = layout.box()
    box.label(text=f"Variations at frame {group[0].strips[0].frame_start:g}:")
    row = box.row(align=True)
    for track in group:
        op = row.operator("hmu.use_variation", depress=not track.mute,
                          text=f"seed {track.strips[0].action.get('hmu_seed', '?')}")
        op.track = track.name


def draw_duration(layout: Any, context: Any, seconds: float) -> None:
    """The model frames, where they go, and the range of durations the model accepts."""
    from .ops_generate import seconds_problem, seconds_range

    bundle = bpy.path.abspath(get_prefs(context).bundle_path)
    span = seconds_range(bundle) if bundle else None
    accepts = f"; model: {span[0]:g} to {span[1]:g} s" if span else ""
    layout.label(text=f"Model frames: {round(seconds * MODEL_FPS)} at 20 fps, from frame "
                      f"{context.scene.frame_current}{accepts}")
    why = seconds_problem(bundle, seconds) if bundle else ""
    if why:
        layout.label(text=why, icon="ERROR")


def draw_job(layout: Any, context: Any) -> None:
    """The job's progress bar while it runs (Esc cancels), else the last result."""
    job = context.window_manager.hmu_job
    if job.running:
        layout.progress(factor=job.progress, type="BAR", text=job.status)
        layout.label(text="Esc cancels; the UI stays usable", icon="INFO")
    else:
        layout.label(text=job.status)


def draw_path(layout: Any, path: str, what: str) -> None:
    """Where a panel path really goes, or why it cannot be used."""
    from .paths import path_problem

    why = path_problem(path, what)
    if why:
        layout.label(text=why, icon="ERROR")
    elif path.startswith("//"):
        layout.label(text=f"Goes to {bpy.path.abspath(path)}", icon="FILE_FOLDER")


def draw_map_summary(layout: Any, props: Any) -> None:
    """The Target's map in one line, or why Generate will refuse it (before the model runs)."""
    from .bone_map import map_summary

    line, missing = map_summary(props)
    if not line:
        layout.label(text="Bone map not made yet: Detect Bone Map", icon="INFO")
        return
    why = _refusal(props)
    layout.label(text=line, icon="ERROR" if why else "ARMATURE_DATA")
    for part in missing:
        layout.label(text=part, icon="DOT")
    if why:
        layout.label(text=f"Generate refuses this target: {why}", icon="CANCEL")


_REFUSALS: dict[tuple, str] = {}
"""The last answer of :func:`_refusal` (panels redraw often; a control rig has 700 bones)."""


def _refusal(props: Any) -> str:
    """Why Generate would refuse the Target ('' when it would not)."""
    from hmu_core.errors import ConfigError

    from .bone_map import target_plan

    target = props.target
    key = (target.name, tuple(target.data.bones.keys()),
           tuple(tuple(row) for row in target.matrix_world),
           tuple((row.joint, row.bone) for row in props.bone_map), props.bone_map_for)
    if key not in _REFUSALS:
        try:
            target_plan(props)
            why = ""
        except ConfigError as exc:
            why = str(exc)
        _REFUSALS.clear()
        _REFUSALS[key] = why
    return _REFUSALS[key]


class HMU_UL_bone_map(bpy.types.UIList):
    """One row per SMPL joint: the joint and the Target's bone chosen for it."""

    def draw_item(self, context: Any, layout: Any, _data: Any, item: Any, _icon: int,
                  _active_data: Any, _active_property: str, _index: int = 0,
                  _flt_flag: int = 0) -> None:
        target = context.scene.hmu.target
        row = layout.row(align=True)
        row.label(text=item.joint.replace("_", " "))
        if target is not None and target.type == "ARMATURE":
            row.prop_search(item, "bone", target.data, "bones", text="")
        else:
            row.prop(item, "bone", text="")


class HMU_PT_bone_map(_HmuPanel, bpy.types.Panel):
    bl_idname = "HMU_PT_bone_map"
    bl_parent_id = "HMU_PT_main"
    bl_label = "Bone Map"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene.hmu.target is not None

    def draw(self, context: Any) -> None:
        layout = self.layout
        props = context.scene.hmu
        draw_map_summary(layout, props)
        layout.template_list("HMU_UL_bone_map", "", props, "bone_map", props,
                             "bone_map_index", rows=6)
        row = layout.row(align=True)
        row.operator("hmu.detect_bone_map", icon="VIEWZOOM")
        row.operator("hmu.load_bone_map", icon="IMPORT", text="Load")
        row.operator("hmu.save_bone_map", icon="EXPORT", text="Save")


class HMU_PT_model(_HmuPanel, bpy.types.Panel):
    bl_idname = "HMU_PT_model"
    bl_parent_id = "HMU_PT_main"
    bl_label = "Model and Runtime"
    bl_options = {"DEFAULT_CLOSED"}  # noqa: RUF012 (Blender reads a plain set)

    def draw(self, context: Any) -> None:
        layout = self.layout
        prefs = get_prefs(context)
        draw_bundles(layout, prefs)
        draw_unlearning(layout, prefs.bundle_path)
        layout.row().prop(prefs, "device", expand=True)
        layout.prop(prefs, "threads")
        layout.operator("hmu.test_bundle", icon="CHECKMARK")
        draw_session(layout)


_STATUS_ICONS = {"unlearned": "CHECKMARK", "original": "ERROR", "missing": "CANCEL"}


def draw_model_line(layout: Any, context: Any) -> None:
    """One line above Generate: which bundle runs and whether its model is unlearned."""
    prefs = get_prefs(context)
    path = prefs.bundle_path
    if not path:
        layout.label(text="No model bundle: add one in Model and Runtime", icon="CANCEL")
        return
    index = min(max(prefs.active_bundle, 0), len(prefs.bundles) - 1)
    name = prefs.bundles[index].name if len(prefs.bundles) else bundles.BUILTIN_NAME
    info = bundles.bundle_info(path)
    layout.label(text=f"{name}: {info.title}", icon=_STATUS_ICONS[info.status])


def draw_unlearning(layout: Any, bundle: str, width: int = 46) -> None:
    """What the active bundle's model has unlearned, in words: concept, keywords, method and
    strength from its manifest's unlearning record, or that it was not unlearned."""
    box = layout.box()
    if not bundle:
        box.label(text="No bundle: add one to the list (Model and Runtime)", icon="CANCEL")
        return
    info = bundles.bundle_info(bundle)
    box.label(text=info.title, icon=_STATUS_ICONS[info.status])
    col = box.column(align=True)
    for line in info.lines:
        for part in textwrap.wrap(line, width):
            col.label(text=part)


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
            layout.label(text="No SMPL model file: the rig gets a mannequin body", icon="INFO")
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
        draw_path(layout, props.library_prompts, "prompt file")
        layout.row().prop(props, "library_mode", expand=True)
        if props.library_mode == "FILES":
            layout.prop(props, "library_dir")
            draw_path(layout, props.library_dir, "output folder")
            layout.row().prop(props, "library_formats")
        layout.operator("hmu.generate_library", icon="ASSET_MANAGER")
        draw_job(layout, context)


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
        draw_path(layout, props.render_output, "video file")
        layout.prop(props, "render_engine")
        row = layout.row(align=True)
        row.prop(props, "render_width")
        row.prop(props, "render_height")
        layout.operator("hmu.render_eval", icon="RENDER_ANIMATION")
        draw_job(layout, context)


CLASSES = (HMU_UL_bone_map, HMU_PT_main, HMU_PT_bone_map, HMU_PT_model, HMU_PT_retarget,
           HMU_PT_library, HMU_PT_render)

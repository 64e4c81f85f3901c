"""Per-scene settings (``Scene.hmu``): what the N-panel edits and the operators read.

Saved in the .blend, so a scene remembers its prompt, target rig and library/render setup.
The duration is stored once, in seconds; ``frames`` is a view of it in the scene's own frame
rate (the model runs at 20 fps and its keys are mapped onto scene time, never the reverse).
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from hmu_core.sampling.lengths import HUMANML3D

MODEL_FPS = HUMANML3D.fps
DEFAULT_SECONDS = 4.0


def scene_fps(scene: Any) -> float:
    return scene.render.fps / scene.render.fps_base


def _is_armature(_self: Any, obj: Any) -> bool:
    return obj.type == "ARMATURE"


def _target_changed(self: Any, _context: Any) -> None:
    from .bone_map import fill_bone_map

    fill_bone_map(self)


def _bone_edited(self: Any, _context: Any) -> None:
    self.id_data.hmu.bone_map_source = "user"


def _get_frames(self: Any) -> int:
    return max(1, round(self.seconds * scene_fps(self.id_data)))


def _set_frames(self: Any, value: int) -> None:
    self.seconds = max(0.05, value / scene_fps(self.id_data))


def _busy(_self: Any) -> bool:
    from .threaded import busy

    return busy()


def operator_inputs(*names: str) -> dict[str, Any]:
    """Operator properties made from these ``Scene.hmu`` properties' definitions (same name,
    type, range, tooltip), so a script can pass every input (``bpy.ops.hmu.generate(prompt=
    ...)``) and the redo panel edits them. ``SKIP_SAVE``: a click never reuses a previous
    call's values; whatever is not given comes from the panel (the operators' ``fill``)."""
    out = {}
    for name in names:
        # The annotation's text (``from __future__ import annotations``), evaluated here as
        # Blender does when it registers the class.
        deferred = eval(HMU_PG_scene.__annotations__[name], globals())
        keywords = {k: v for k, v in deferred.keywords.items()
                    if k not in ("update", "get", "set", "poll")}
        keywords["options"] = {*keywords.get("options", ()), "SKIP_SAVE"}
        out[name] = deferred.function(**keywords)
    return out


def fill_from_scene(operator: Any, context: Any, names: Any) -> None:
    """Set each operator property in ``names`` the caller did not give from ``Scene.hmu``."""
    props = context.scene.hmu
    for name in names:
        if not operator.properties.is_property_set(name):
            setattr(operator, name, getattr(props, name))


class HMU_PG_bone(bpy.types.PropertyGroup):
    """One row of the bone map: which of the target's bones plays an SMPL joint."""

    joint: StringProperty(name="Joint", description="SMPL joint (hmu's skeleton)")
    bone: StringProperty(name="Bone", update=_bone_edited,
                         description="The target's bone for this joint; empty: none")


class HMU_PG_scene(bpy.types.PropertyGroup):
    """Scene-level hmu settings."""

    target: PointerProperty(
        name="Target", type=bpy.types.Object, poll=_is_armature, update=_target_changed,
        description="Armature to animate: your character (Mixamo, Rigify, UE5 or any "
        "humanoid, through the bone map below) or hmu's SMPL rig; empty: hmu builds one")
    bone_map: CollectionProperty(type=HMU_PG_bone, name="Bone Map")
    bone_map_index: IntProperty(name="Active Row", default=0)
    bone_map_for: StringProperty(
        name="Mapped Armature", description="The armature the bone map was made for")
    bone_map_source: StringProperty(
        name="Bone Map Source", description="mixamo, rigify, ue5, smpl, detected, preset or "
        "user (edited)")
    foot_cleanup: BoolProperty(
        name="Plant Feet", default=True,
        description="Clean up foot contacts: planted feet do not slide and never go below "
        "the floor (legs re-solved by IK)")
    prompt: StringProperty(
        name="Prompt", default="a person walks forward and waves",
        description="What the character should do, in plain English")
    seconds: FloatProperty(
        name="Seconds", default=DEFAULT_SECONDS, min=0.2, soft_max=10.0, step=10, precision=2,
        unit="NONE", description="Clip duration; the panel shows the range the model accepts "
        f"(HumanML3D-trained models: {HUMANML3D.describe()})")
    frames: IntProperty(
        name="Frames", get=_get_frames, set=_set_frames, min=1,
        description="The duration in this scene's frames (the scene's fps is never changed)")
    seed: IntProperty(name="Seed", default=0, min=0,
                      description="Random seed; variation i uses seed + i. Each Generate "
                      "moves it past the seeds it used, unless Lock Seed is on")
    seed_lock: BoolProperty(
        name="Lock Seed", default=False,
        description="Keep the seed: Generate makes the same motion again (an identical clip "
        "re-uses its action)")
    variations: IntProperty(name="Variations", default=1, min=1, soft_max=8, max=32,
                            description="How many clips to make; each gets its own NLA track, "
                            "muted except the first")
    use_nla: BoolProperty(
        name="Add to NLA", default=True,
        description="Put each clip on the Target's NLA at the frame where Generate was "
        "clicked, blended in; off: make it the Target's active action")
    align: BoolProperty(
        name="Align to Character", default=True,
        description="Start the clip where the character stands and faces at that frame "
        "(root position and heading); off: where the model puts it")
    # Retarget
    smpl_model: StringProperty(
        name="SMPL Model", subtype="FILE_PATH", options={"PATH_SUPPORTS_BLEND_RELATIVE"},
        description="Optional SMPL model as .npz (v_template, weights, f, J_regressor) for a "
        "real body mesh; empty: a mannequin body")

    # Library
    library_prompts: StringProperty(
        name="Prompt File", subtype="FILE_PATH", options={"PATH_SUPPORTS_BLEND_RELATIVE"},
        description="Text file with one prompt per line")
    library_mode: EnumProperty(
        name="Output", default="ACTIONS",
        items=[("ACTIONS", "Actions", "One action per prompt in this file"),
               ("FILES", "Files", "A folder of clip files plus index.json (resumable)")])
    library_dir: StringProperty(name="Folder", subtype="DIR_PATH",
                                options={"PATH_SUPPORTS_BLEND_RELATIVE"},
                                description="Where the clip files and index.json go")
    library_formats: EnumProperty(
        name="Formats", options={"ENUM_FLAG"}, default={"BVH"},
        items=[("BVH", "BVH", "Biovision hierarchy (Y-up)"),
               ("NPZ", "NPZ", "AMASS-style SMPL parameters"),
               ("FBX", "FBX", "Autodesk FBX"),
               ("GLB", "GLB", "Binary glTF")])

    # Render
    render_original: StringProperty(
        name="Original Bundle", subtype="DIR_PATH", options={"PATH_SUPPORTS_BLEND_RELATIVE"},
        description="Bundle of the model before unlearning (left side)")
    render_unlearned: StringProperty(
        name="Unlearned Bundle", subtype="DIR_PATH", options={"PATH_SUPPORTS_BLEND_RELATIVE"},
        description="Bundle of the unlearned model (right side); empty: the preferences' one")
    render_output: StringProperty(
        name="Video", subtype="FILE_PATH", options={"PATH_SUPPORTS_BLEND_RELATIVE"},
        default="//hmu_eval.mp4", description="MP4 file to write ('//': beside the saved "
        ".blend file)")
    render_engine: EnumProperty(
        name="Engine", default="BLENDER_WORKBENCH",
        items=[("BLENDER_WORKBENCH", "Workbench", "Fast, the evaluation default"),
               ("BLENDER_EEVEE", "EEVEE", "Nicer, slow without a GPU"),
               ("CYCLES", "Cycles", "Path traced, slowest")])
    render_width: IntProperty(name="Width", default=640, min=64, max=3840,
                              description="Video width in pixels (both sides together)")
    render_height: IntProperty(name="Height", default=360, min=64, max=2160,
                               description="Video height in pixels")


class HMU_PG_job(bpy.types.PropertyGroup):
    """The running job's state (``WindowManager.hmu_job``): never saved in the .blend, so a
    file saved mid-generation does not reopen with Generate greyed out."""

    status: StringProperty(name="Status", default="Ready")
    running: BoolProperty(name="Running", get=_busy,
                          description="A job's worker thread runs (until it has ended)")
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")

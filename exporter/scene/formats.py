"""Export an armature's action as FBX, GLB or BVH through Blender's own exporters, atomically.

The options are those measured in reference/blender.md §3: selection through real selection
plus ``context.temp_override`` (the exporters read both), ``add_leaf_bones=False`` (a clean
24-joint skeleton), the frame range passed explicitly (the exporters default to the scene
range, BVH to 0/0), every frame sampled (no key reduction), and ``export_extras`` so the
action's ID properties (prompt, seed, bundle hash, unlearning record) travel as glTF animation
extras. Each file is written to a temporary name beside the target, then renamed: an export
that fails or is interrupted never leaves a half-written file under the final name.

The importers undo the known traps: FBX ``anim_offset=0`` (the default 1 shifts the clip by a
frame); BVH with the importer's default axes (our rig's BVH is Y-up) and no fps scaling.

Usage::

    from exporter.scene.formats import export_armature, import_armature
    export_armature(arm, action, "clip.glb", "glb")
    rig = import_armature("clip.glb", "glb")
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import bpy

from hmu_core.errors import ConfigError

__all__ = ["EXPORT_FORMATS", "export_armature", "frame_range", "import_armature"]

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("fbx", "glb", "bvh")


def frame_range(action: bpy.types.Action) -> tuple[int, int]:
    """Integer scene frames to export: from the action's start to the first whole frame at or
    after its last key (fractional keys from an fps change are sampled, none dropped)."""
    start, end = action.frame_range
    first = math.floor(start + 1e-6)
    return first, max(first, math.ceil(end - 1e-6))


@contextlib.contextmanager
def _exporting(armature: bpy.types.Object, action: bpy.types.Action,
               with_children: bool) -> Iterator[dict]:
    """Select the rig (and its children), make it active, give it ``action`` and the scene the
    action's range; restore all of it afterwards. Yields ``temp_override`` keywords."""
    context = bpy.context
    scene, view_layer = context.scene, context.view_layer
    objects = [armature, *(armature.children if with_children else ())]
    selected = list(context.selected_objects)
    active = view_layer.objects.active
    anim = armature.animation_data or armature.animation_data_create()
    kept_action, kept_slot = anim.action, anim.action_slot
    kept_range = (scene.frame_start, scene.frame_end, scene.frame_current)
    try:
        for obj in selected:
            obj.select_set(False)
        for obj in objects:
            obj.select_set(True)
        view_layer.objects.active = armature
        anim.action = action
        slots = [s for s in action.slots if s.target_id_type == "OBJECT"]
        if anim.action_slot is None and slots:
            anim.action_slot = slots[0]
        scene.frame_start, scene.frame_end = frame_range(action)
        scene.frame_set(scene.frame_start)
        yield {"active_object": armature, "object": armature, "selected_objects": objects,
               "selected_editable_objects": objects}
    finally:
        anim.action = kept_action
        if kept_action is not None and kept_slot is not None:
            anim.action_slot = kept_slot
        scene.frame_start, scene.frame_end = kept_range[0], kept_range[1]
        scene.frame_set(kept_range[2])
        for obj in objects:
            obj.select_set(False)
        for obj in selected:
            obj.select_set(True)
        view_layer.objects.active = active


def _run_exporter(fmt: str, path: str, start: int, end: int, name: str) -> set[str]:
    if fmt == "fbx":
        return bpy.ops.export_scene.fbx(
            filepath=path, check_existing=False, use_selection=True,
            object_types={"ARMATURE", "MESH"}, add_leaf_bones=False, bake_anim=True,
            bake_anim_use_all_actions=False, bake_anim_use_nla_strips=False,
            bake_anim_force_startend_keying=True, bake_anim_simplify_factor=0.0,
            primary_bone_axis="Y", secondary_bone_axis="X", axis_forward="-Z", axis_up="Y",
            use_custom_props=True)
    if fmt == "glb":
        return bpy.ops.export_scene.gltf(
            filepath=path, check_existing=False, export_format="GLB", use_selection=True,
            export_animations=True, export_animation_mode="ACTIVE_ACTIONS",
            export_nla_strips_merged_animation_name=name,  # ACTIVE_ACTIONS names it so
            export_frame_range=True, export_force_sampling=True, export_yup=True,
            export_skins=True, export_extras=True, export_def_bones=False,
            use_active_scene=True)
    return bpy.ops.export_anim.bvh(
        filepath=path, check_existing=False, frame_start=start, frame_end=end,
        rotate_mode="NATIVE", root_transform_only=True, global_scale=1.0)


def export_armature(armature: bpy.types.Object, action: bpy.types.Action,
                    path: str | os.PathLike, fmt: str, *, with_children: bool = True) -> Path:
    """Write ``armature`` animated by ``action`` to ``path`` as ``fmt`` (fbx | glb | bvh).

    The armature's active action, the selection, the active object and the scene frame range
    are set for the export and restored afterwards. BVH is in armature space (Y-up for our
    rig) at the scene's fps; FBX and GLB carry the object transform (Z-up scene, Y-up files).

    Args:
        with_children: also export the rig's child objects (the mannequin body) in FBX/GLB.
    Returns:
        The written path.
    Raises:
        ConfigError: an unknown format, or a path whose suffix does not match the format.
    """
    fmt = fmt.lower()
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    target = Path(path)
    if target.suffix.lower() != f".{fmt}":
        raise ConfigError(f"{target}: a {fmt} file must end in .{fmt}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # The exporters force their own suffix, so the temporary name keeps it.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp.{fmt}", dir=target.parent)
    os.close(fd)
    try:
        with _exporting(armature, action, with_children) as override:
            start, end = frame_range(action)
            # The exporters print progress to stdout, and the glTF one also logs INFO through a
            # logger that would reach the CLI's root handler: keep both out of the output.
            chatter = io.StringIO()
            gltf_log = logging.getLogger("glTFImporter")
            propagate, gltf_log.propagate = gltf_log.propagate, False
            try:
                with bpy.context.temp_override(**override), contextlib.redirect_stdout(chatter):
                    result = _run_exporter(fmt, tmp, start, end, action.name)
            finally:
                gltf_log.propagate = propagate
            log.debug("%s exporter said: %s", fmt, chatter.getvalue().strip())
        if "FINISHED" not in result or os.path.getsize(tmp) == 0:
            raise RuntimeError(f"Blender's {fmt} exporter returned {result} for {target}")
        umask = os.umask(0)  # mkstemp made the file 0600: give it what open() would
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def import_armature(path: str | os.PathLike, fmt: str | None = None) -> bpy.types.Object:
    """Import a file written by :func:`export_armature` into the context scene and return its
    armature object (FBX with ``anim_offset=0``; BVH with default axes, no fps scaling).

    Raises:
        ConfigError: unknown format, or the file holds no armature.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    before = set(bpy.data.objects)
    if fmt == "fbx":
        bpy.ops.wm.fbx_import(filepath=str(path), anim_offset=0.0, ignore_leaf_bones=False)
    elif fmt == "glb":
        bpy.ops.import_scene.gltf(filepath=str(path))
    elif fmt == "bvh":
        bpy.ops.import_anim.bvh(filepath=str(path), use_fps_scale=False, update_scene_fps=False,
                                update_scene_duration=False)
    else:
        raise ConfigError(f"unknown import format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    armatures = [o for o in bpy.data.objects if o not in before and o.type == "ARMATURE"]
    if len(armatures) != 1:
        raise ConfigError(f"{path} holds {len(armatures)} armatures, expected one")
    return armatures[0]

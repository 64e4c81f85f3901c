"""One motion -> FBX/GLB/BVH files through headless Blender, leaving the open file as it was.

``hmu clips`` and the add-on's Library panel export many clips from one process (possibly the
user's Blender session), so nothing may leak into the user's file: each clip is built in a
scratch scene (a new ``Scene`` used through ``context.temp_override``; the window keeps showing
the user's scene) and every datablock made for it (armature, body, material, action, the
scene itself) is removed afterwards, also when an export fails. The scratch scene runs at the
motion's fps, so model frame i is scene frame 1 + i and the files hold exactly the model frames.

Usage::

    from exporter.scene.library import export_motion
    export_motion(motion, {"fbx": Path("clip.fbx"), "glb": Path("clip.glb")},
                  properties={"hmu_bundle_sha256": sha}, action_name="000_wave_s0")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import bpy

from exporter.scene.formats import export_armature
from exporter.scene.keying import key_motion
from exporter.scene.rig import build_smpl_armature, rest_joints_from_offsets
from hmu_core.motion.motion import Motion

__all__ = ["export_motion", "scratch_scene"]

_COLLECTIONS = ("objects", "meshes", "armatures", "materials", "actions")
"""bpy.data collections a clip may add to; all of their new members are removed."""


@contextlib.contextmanager
def scratch_scene(fps: float, name: str = "hmu_scratch") -> Iterator[bpy.types.Scene]:
    """A new scene at ``fps``, made the context scene; on exit the previous scene is back and
    it and every object, mesh, armature, material and action created meanwhile are removed.

    The window shows the scratch scene while it is in use (a ``temp_override`` only where
    there is no window): the glTF exporter sets ``window.scene`` itself and crashes Blender
    (segfault, bpy 5.0.1) when the context scene is an override.
    """
    before = {kind: set(getattr(bpy.data, kind)) for kind in _COLLECTIONS}
    window = bpy.context.window
    previous = window.scene if window is not None else None
    scene = bpy.data.scenes.new(name)
    whole = max(1, round(fps))
    scene.render.fps, scene.render.fps_base = whole, whole / fps
    try:
        if window is not None:
            window.scene = scene
            yield scene
        else:
            with bpy.context.temp_override(scene=scene, view_layer=scene.view_layers[0]):
                yield scene
    finally:
        if window is not None:
            window.scene = previous
        bpy.data.scenes.remove(scene)
        for kind in _COLLECTIONS:
            data = getattr(bpy.data, kind)
            for item in [i for i in data if i not in before[kind]]:
                data.remove(item)


def export_motion(motion: Motion, targets: Mapping[str, str | Path], *,
                  properties: Mapping[str, Any] | None = None, rig_name: str = "hmu_smpl",
                  action_name: str = "hmu_clip") -> dict[str, Path]:
    """Write ``motion`` once per ``{format: path}`` (fbx | glb | bvh) from a scratch scene.

    The rig is built with the motion's own rest skeleton, so the files reproduce its joints
    (not only its bone directions). The action gets :func:`~exporter.scene.keying.motion_properties`
    plus ``properties`` as ID properties (GLB animation extras). Returns the paths by format.
    """
    pose = motion.smpl_pose()
    written: dict[str, Path] = {}
    with scratch_scene(motion.fps) as scene:
        rig = build_smpl_armature(rig_name, collection=scene.collection,
                                  rest_joints=rest_joints_from_offsets(pose.rest_offsets))
        action = key_motion(rig, motion, action_name=action_name, start_frame=1.0,
                            scene_fps=scene.render.fps / scene.render.fps_base,
                            properties=properties)
        for fmt, path in targets.items():
            written[fmt] = export_armature(rig, action, path, fmt)
    return written

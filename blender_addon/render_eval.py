"""Evaluation video: the original and the unlearned model's motion for one prompt, side by
side, with the prompt burned in, rendered headless to MP4 (Workbench by default).

Everything happens in the clip library's throw-away scene (``exporter.scene.library.
scratch_scene``), removed afterwards with every data-block made in it (the camera and the
label curves, which that helper does not track, are removed here), so the user's scene, frame
rate and render settings are never touched. Shared by
the add-on's Render operator and ``scripts/render_eval_videos.py`` (plain Python with the bpy
module, or ``blender -b -P``). Uses the 5.0 movie API (``media_type='VIDEO'`` before FFMPEG,
reference/blender.md §5.1).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy
from mathutils import Matrix, Vector

from exporter.scene.keying import key_motion
from exporter.scene.library import scratch_scene
from exporter.scene.rig import UPRIGHT, build_smpl_armature, rest_joints_from_offsets
from hmu_core.errors import ConfigError

ENGINES = ("BLENDER_WORKBENCH", "BLENDER_EEVEE", "CYCLES")
SPACING = 1.6
"""Metres between the two characters."""
FLOOR_COLOR = (0.35, 0.37, 0.40, 1.0)


@dataclass(frozen=True)
class RenderSettings:
    width: int = 640
    height: int = 360
    engine: str = "BLENDER_WORKBENCH"
    frames: int | None = None
    """Render only the first ``frames`` frames (None: the whole longer clip)."""


def _label(text: str, location: Vector, collection: Any) -> Any:
    curve = bpy.data.curves.new(f"hmu_label_{text}", "FONT")
    curve.body = text
    curve.align_x = "CENTER"
    curve.size = 0.18
    obj = bpy.data.objects.new(curve.name, curve)
    obj.location = location
    obj.rotation_euler = (math.pi / 2.0, 0.0, 0.0)  # stand up, facing the camera (-Y)
    collection.objects.link(obj)
    return obj


def _floor(collection: Any) -> None:
    mesh = bpy.data.meshes.new("hmu_floor")
    s = 4.0
    mesh.from_pydata([(-s, -s, 0), (s, -s, 0), (s, s, 0), (-s, s, 0)], [], [(0, 1, 2, 3)])
    material = bpy.data.materials.new("hmu_floor")
    material.diffuse_color = FLOOR_COLOR
    mesh.materials.append(material)
    collection.objects.link(bpy.data.objects.new("hmu_floor", mesh))


def _camera(scene: Any, target: Vector) -> Any:
    data = bpy.data.cameras.new("hmu_eval_camera")
    data.lens = 35.0
    camera = bpy.data.objects.new("hmu_eval_camera", data)
    camera.location = Vector((0.0, -5.0, 1.4))
    camera.rotation_euler = (target - camera.location).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(camera)
    scene.camera = camera
    return camera


def _remove_extras(objects: list[Any]) -> None:
    """Remove camera and text objects with their data (cameras, curves)."""
    for obj in objects:
        data = obj.data
        bpy.data.objects.remove(obj)
        if isinstance(data, bpy.types.Camera):
            bpy.data.cameras.remove(data)
        else:
            bpy.data.curves.remove(data)


def _setup_render(scene: Any, settings: RenderSettings, caption: str, frames: int,
                  out_stem: str) -> None:
    render = scene.render
    if settings.engine not in ENGINES:
        raise ConfigError(f"render engine must be one of {', '.join(ENGINES)}, got "
                          f"{settings.engine!r}")
    render.engine = settings.engine
    if settings.engine == "BLENDER_WORKBENCH":
        scene.display.shading.light = "STUDIO"
        scene.display.shading.color_type = "MATERIAL"
    render.resolution_x, render.resolution_y = settings.width, settings.height
    render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = 1, frames
    render.image_settings.media_type = "VIDEO"  # must precede FFMPEG in 5.0
    render.image_settings.file_format = "FFMPEG"
    render.ffmpeg.format = "MPEG4"
    render.ffmpeg.codec = "H264"
    render.ffmpeg.constant_rate_factor = "MEDIUM"
    render.ffmpeg.audio_codec = "NONE"
    render.filepath = out_stem
    render.use_stamp = True
    for name in dir(render):
        if name.startswith("use_stamp_"):
            setattr(render, name, False)
    render.use_stamp_frame = True
    render.use_stamp_note = True
    render.stamp_note_text = caption
    render.stamp_font_size = max(12, settings.height // 24)


def render_comparison(motions: Sequence[Any], caption: str, out_path: str | os.PathLike,
                      settings: RenderSettings | None = None,
                      labels: Sequence[str] = ("original", "unlearned")) -> Path:
    """Render ``motions`` (20 fps ``Motion`` values, left to right) to ``out_path`` (.mp4).

    Returns:
        ``out_path``, written atomically (rendered beside it, then moved into place).
    Raises:
        ConfigError: bad settings, no motions, or ``out_path`` not ending in .mp4.
    """
    settings = settings or RenderSettings()
    out = Path(out_path)
    if out.suffix.lower() != ".mp4":
        raise ConfigError(f"{out}: the evaluation video is an .mp4 file")
    if not motions or len(motions) != len(labels):
        raise ConfigError(f"give one motion per label {list(labels)}, got {len(motions)}")
    longest = max(m.num_frames for m in motions)
    frames = min(longest, settings.frames) if settings.frames else longest
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".hmu_render_", dir=out.parent) as tmp, \
            scratch_scene(20.0, "hmu_eval") as scene:
        extras: list[Any] = []  # objects whose data scratch_scene does not remove
        try:
            _setup_render(scene, settings, caption, frames, str(Path(tmp) / "clip_"))
            _floor(scene.collection)
            offset = (len(motions) - 1) / 2.0
            for i, (motion, label) in enumerate(zip(motions, labels, strict=True)):
                x = (i - offset) * SPACING
                rig = build_smpl_armature(f"hmu_{label}", collection=scene.collection,
                                          rest_joints=rest_joints_from_offsets(
                                              motion.smpl_pose().rest_offsets))
                rig.matrix_world = Matrix.Translation((x, 0.0, 0.0)) @ UPRIGHT
                key_motion(rig, motion, action_name=f"hmu_eval_{label}", start_frame=1.0,
                           scene_fps=20.0)
                extras.append(_label(label, Vector((x, 0.0, 2.05)), scene.collection))
            extras.append(_camera(scene, Vector((0.0, 0.0, 0.95))))
            bpy.ops.render.render(animation=True, scene=scene.name)
            written = Path(bpy.path.abspath(scene.render.frame_path(frame=scene.frame_start)))
            if not written.is_file():
                raise ConfigError(f"Blender wrote no video at {written}; check that the "
                                  f"output folder is writable")
            os.replace(written, out)
        finally:
            _remove_extras(extras)
    return out

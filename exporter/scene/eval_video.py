"""Evaluation video: the original and the unlearned model's motion for one prompt, side by
side, with the prompt burned in, rendered headless to MP4 (Workbench by default).

The camera frames both figures over the whole clip (:func:`camera_matrix`): a clip that walks
away stays in the picture. Everything happens in the clip library's throw-away scene
(``exporter.scene.library.scratch_scene``), removed afterwards with every data-block made in
it (the camera and the label curves, which that helper does not track, are removed here), so
the user's scene, frame rate and render settings are never touched. Shared by the add-on's
Render operator (through its background process, ``exporter.scene.worker``) and
``scripts/render_eval_videos.py`` (plain Python with the bpy module, or ``blender -b -P``).
Uses the 5.0 movie API (``media_type='VIDEO'`` before FFMPEG, reference/blender.md §5.1).
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
import numpy as np
from mathutils import Matrix, Vector

from exporter.scene.keying import key_motion
from exporter.scene.library import scratch_scene
from exporter.scene.rig import UPRIGHT, build_smpl_armature, rest_joints_from_offsets
from hmu_core.errors import ConfigError
from hmu_core.motion.retarget import BODY_TO_WORLD

ENGINES = ("BLENDER_WORKBENCH", "BLENDER_EEVEE", "CYCLES")
SPACING = 1.6
"""Metres between the two characters."""
FLOOR_COLOR = (0.35, 0.37, 0.40, 1.0)
LENS_MM, SENSOR_MM = 35.0, 36.0
"""The camera's focal length and (horizontal) sensor width."""
TILT = math.radians(10.0)
"""The camera looks this far down."""
BODY_MARGIN = 0.3
"""Metres around the joints' box: the body's flesh, the head above its joint, some air."""
LABEL_HEIGHT = 2.05


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


def _floor(collection: Any, low: np.ndarray, high: np.ndarray) -> None:
    """A floor under the box ``low``..``high`` (world x, y), a metre wider on every side."""
    mesh = bpy.data.meshes.new("hmu_floor")
    (x0, y0), (x1, y1) = low[:2] - 1.0, high[:2] + 1.0
    mesh.from_pydata([(x0, y0, 0), (x1, y0, 0), (x1, y1, 0), (x0, y1, 0)], [], [(0, 1, 2, 3)])
    material = bpy.data.materials.new("hmu_floor")
    material.diffuse_color = FLOOR_COLOR
    mesh.materials.append(material)
    collection.objects.link(bpy.data.objects.new("hmu_floor", mesh))


def camera_matrix(points: np.ndarray, aspect: float, lens: float = LENS_MM,
                  sensor: float = SENSOR_MM, tilt: float = TILT) -> np.ndarray:
    """(4, 4) world matrix of a camera looking along +Y (``tilt`` down) that sees every
    point of ``points`` (N, 3), world metres, in a ``aspect`` = width / height frame.

    The camera sits on the line through the points' box centre along its view direction,
    as close as the frustum allows: a point at lateral offset ``x`` and depth ``a`` past the
    centre is inside when ``|x| <= tan(half fov) * (a + distance)``, one bound per point.
    """
    pts = np.asarray(points, dtype=np.float64)
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2.0
    forward = np.array([0.0, math.cos(tilt), -math.sin(tilt)])
    up = np.array([0.0, math.sin(tilt), math.cos(tilt)])
    right = np.cross(forward, up)
    tan_x = sensor / 2.0 / lens
    tan_y = tan_x / aspect
    rel = pts - centre
    depth = rel @ forward
    distance = max(float(np.max(np.abs(rel @ right) / tan_x - depth)),
                   float(np.max(np.abs(rel @ up) / tan_y - depth)), 1.0)
    out = np.eye(4)
    out[:3, :3] = np.stack([right, up, -forward], axis=1)  # camera x, y, -z (view)
    out[:3, 3] = centre - forward * distance
    return out


def _camera(scene: Any, points: np.ndarray, aspect: float) -> Any:
    data = bpy.data.cameras.new("hmu_eval_camera")
    data.lens, data.sensor_width, data.sensor_fit = LENS_MM, SENSOR_MM, "HORIZONTAL"
    data.clip_end = 1000.0
    camera = bpy.data.objects.new("hmu_eval_camera", data)
    camera.matrix_world = Matrix(camera_matrix(points, aspect).tolist())
    scene.collection.objects.link(camera)
    scene.camera = camera
    return camera


def figure_box(motions: Sequence[Any], xs: Sequence[float]) -> np.ndarray:
    """(8, 3) corners of the world box holding every joint of every figure on every frame
    (figure i shifted to x = ``xs[i]``), its label, and ``BODY_MARGIN`` around them."""
    points = [np.asarray(m.joints).reshape(-1, 3) @ BODY_TO_WORLD.T + (x, 0.0, 0.0)
              for m, x in zip(motions, xs, strict=True)]
    points.append(np.array([(x, 0.0, LABEL_HEIGHT) for x in xs]))
    allp = np.concatenate(points)
    low, high = allp.min(axis=0) - BODY_MARGIN, allp.max(axis=0) + BODY_MARGIN
    low[2] = min(low[2], 0.0)
    return np.array([[(low, high)[i][0], (low, high)[j][1], (low, high)[k][2]]
                     for i in (0, 1) for j in (0, 1) for k in (0, 1)])


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
            offset = (len(motions) - 1) / 2.0
            xs = [(i - offset) * SPACING for i in range(len(motions))]
            box = figure_box(motions, xs)
            _floor(scene.collection, box.min(axis=0), box.max(axis=0))
            for motion, label, x in zip(motions, labels, xs, strict=True):
                rig = build_smpl_armature(f"hmu_{label}", collection=scene.collection,
                                          rest_joints=rest_joints_from_offsets(
                                              motion.smpl_pose().rest_offsets))
                rig.matrix_world = Matrix.Translation((x, 0.0, 0.0)) @ UPRIGHT
                key_motion(rig, motion, action_name=f"hmu_eval_{label}", start_frame=1.0,
                           scene_fps=20.0)
                extras.append(_label(label, Vector((x, 0.0, LABEL_HEIGHT)), scene.collection))
            extras.append(_camera(scene, box, settings.width / settings.height))
            bpy.ops.render.render(animation=True, scene=scene.name)
            written = Path(bpy.path.abspath(scene.render.frame_path(frame=scene.frame_start)))
            if not written.is_file():
                raise ConfigError(f"Blender wrote no video at {written}; check that the "
                                  f"output folder is writable")
            os.replace(written, out)
        finally:
            _remove_extras(extras)
    return out

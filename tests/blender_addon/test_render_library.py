"""Render, Library and Build Rig operators, the export round trips, the eval-video script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="needs the bpy module")

pytestmark = pytest.mark.blender

REPO = Path(__file__).resolve().parents[2]


def _movie_frames(path: Path) -> tuple[int, tuple[int, int]]:
    clip = bpy.data.movieclips.load(str(path))
    try:
        return clip.frame_duration, tuple(clip.size)
    finally:
        bpy.data.movieclips.remove(clip)


def test_render_eval_writes_a_three_frame_mp4_and_leaves_the_scene(scene, default_bundle,
                                                                   tmp_path):
    from exporter.runtime import Generator
    from exporter.scene.eval_video import RenderSettings, render_comparison

    gen = Generator(default_bundle, device="cpu", threads=1)
    motions = [gen.generate(["a person jumps"], seconds=2.0, seeds=[s]).motions[0]
               for s in (0, 1)]
    counts = {k: len(getattr(bpy.data, k)) for k in ("objects", "actions", "cameras",
                                                     "curves", "scenes", "materials")}
    fps = scene.render.fps
    out = render_comparison(motions, "a person jumps", tmp_path / "v" / "eval.mp4",
                            RenderSettings(width=160, height=96, frames=3))
    assert out.is_file() and out.stat().st_size > 1000
    assert _movie_frames(out) == (3, (160, 96))
    assert [p.name for p in out.parent.iterdir()] == ["eval.mp4"]  # no temp files left
    assert counts == {k: len(getattr(bpy.data, k)) for k in counts}
    assert bpy.context.window.scene == scene and scene.render.fps == fps


def test_render_operator(scene, default_bundle, tmp_path):
    props = scene.hmu
    props.render_original = str(default_bundle)
    props.render_output = str(tmp_path / "op.mp4")
    props.render_width, props.render_height, props.seconds = 128, 64, 2.0
    assert bpy.ops.hmu.render_eval() == {"FINISHED"}
    frames, size = _movie_frames(tmp_path / "op.mp4")
    assert size == (128, 64) and frames == 40  # 2 s at 20 fps


def test_library_into_actions(scene, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# a library\na person waves\na person jumps | 2.5 | 7\n",
                       encoding="utf-8")
    props = scene.hmu
    props.library_prompts, props.seconds, props.seed = str(prompts), 2.0, 4
    assert bpy.ops.hmu.generate_library() == {"FINISHED"}
    assert sorted(bpy.data.actions.keys()) == ["hmu_a_person_jumps_s7", "hmu_a_person_waves_s4"]
    jumps = bpy.data.actions["hmu_a_person_jumps_s7"]
    assert jumps["hmu_frames"] == 52 and jumps.use_fake_user  # 2.5 s -> 13 tokens x 4
    assert props.target is not None and props.target.animation_data is None


def test_library_into_actions_on_a_ue5_character(scene, tmp_path):
    from tests.motion.rig_builders import BUILDERS, build_in_blender

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a person waves\na person jumps\n", encoding="utf-8")
    props = scene.hmu
    props.target = build_in_blender(BUILDERS["ue5"](), "Manny")
    props.library_prompts, props.seconds, props.seed = str(prompts), 2.0, 0
    assert bpy.ops.hmu.generate_library() == {"FINISHED"}
    assert sorted(bpy.data.actions.keys()) == ["hmu_a_person_jumps_s1", "hmu_a_person_waves_s0"]
    assert all(a["hmu_bone_map_source"] == "ue5" for a in bpy.data.actions)
    assert props.target.name == "Manny" and len(bpy.data.armatures) == 1  # no rig built


def test_library_into_files_resumes(scene, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a person waves | 2\na person bows | 2\n", encoding="utf-8")
    props = scene.hmu
    props.library_prompts, props.library_mode = str(prompts), "FILES"
    props.library_dir, props.library_formats = str(tmp_path / "lib"), {"BVH", "GLB"}
    assert bpy.ops.hmu.generate_library() == {"FINISHED"}
    index = json.loads((tmp_path / "lib" / "index.json").read_text())
    assert [c["files"]["glb"] for c in index["clips"]] == ["000_a-person-waves_s0.glb",
                                                          "001_a-person-bows_s1.glb"]
    assert bpy.ops.hmu.generate_library() == {"FINISHED"}
    status = bpy.context.window_manager.hmu_job.status
    assert status.startswith("0 clips written, 2 already there")
    assert len(bpy.data.objects) == 0  # exported from a scratch scene


@pytest.mark.parametrize("fmt", ["bvh", "fbx", "glb"])
def test_export_and_reimport_matches_keyed_rig(scene, fmt, tmp_path):
    from exporter.scene.formats import export_armature, frame_range, import_armature
    from exporter.scene.rig import world_joints

    bpy.ops.hmu.generate(seconds=2.0, use_nla=False)  # the clip as the active action
    rig = scene.hmu.target
    action = rig.animation_data.action
    start, end = frame_range(action)
    frames = np.arange(start, end + 1, 5, dtype=float)
    want = world_joints(rig, frames, scene)
    path = export_armature(rig, action, tmp_path / f"clip.{fmt}", fmt)
    imported = import_armature(path, fmt)
    got = world_joints(imported, frames, scene)
    assert np.abs(got - want).max() < 0.01


def _npz_model(path: Path) -> Path:
    """A synthetic 3-triangles-per-bone SMPL-layout model (the real one cannot be shipped)."""
    from exporter.scene.rig import rest_joints_from_offsets
    from hmu_core.motion.smpl import rest_offsets

    joints = rest_joints_from_offsets(rest_offsets())
    verts = np.concatenate([joints + d for d in ([0.02, 0, 0], [0, 0.02, 0], [0, 0, 0.02])])
    weights = np.tile(np.eye(24), (3, 1))
    faces = np.array([[j, 24 + j, 48 + j] for j in range(24)])
    regressor = np.tile(np.eye(24), (1, 3)) / 3.0
    np.savez(path, v_template=verts, weights=weights, f=faces, J_regressor=regressor)
    return path


def test_build_rig_with_mannequin_or_smpl_mesh(scene, tmp_path):
    assert bpy.ops.hmu.build_rig() == {"FINISHED"}
    built = scene.hmu.target
    assert [c.name for c in built.children] == [f"{built.name}_body"]
    scene.hmu.target = None
    scene.hmu.smpl_model = str(_npz_model(tmp_path / "smpl.npz"))
    assert bpy.ops.hmu.build_rig() == {"FINISHED"}
    rig = scene.hmu.target
    (body,) = rig.children
    assert len(body.data.vertices) == 72 and len(body.vertex_groups) == 24
    assert body.modifiers["Armature"].object == rig
    scene.hmu.smpl_model = str(tmp_path / "SMPL_NEUTRAL.pkl")
    with pytest.raises(RuntimeError, match=r"\.npz"):
        bpy.ops.hmu.build_rig()


def test_render_eval_videos_script_under_plain_python(default_bundle, tmp_path):
    out = tmp_path / "videos"
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "render_eval_videos.py"), "--original",
         str(default_bundle), "--unlearned", str(default_bundle), "--prompt", "a person kicks",
         "--out", str(out), "--seconds", "2", "--frames", "3", "--width", "96", "--height",
         "64", "--device", "cpu", "--threads", "1"],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (out / "000_a-person-kicks_s0.mp4").stat().st_size > 500

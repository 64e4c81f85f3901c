"""The animator's workflow: clips laid on the timeline where the character stands, operators a
script drives, jobs that never block the UI and cancel cleanly."""

from __future__ import annotations

import math
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="needs the bpy module")

pytestmark = pytest.mark.blender

STEP_LIMIT_S = 0.1
"""The longest a main-thread step of a background job may take (the UI redraws between)."""


def _root_and_heading(rig, frames, bones=("pelvis", "left_hip", "right_hip")):
    """(F, 2) world floor position of the root and (F,) heading (radians) of the hips."""
    from exporter.scene.retarget import world_heads

    heads = world_heads(rig, list(bones), list(frames), bpy.context.scene)
    across = heads[:, 1] - heads[:, 2]
    return heads[:, 0, :2], np.arctan2(-across[:, 0], across[:, 1])


def _angle(a: float, b: float) -> float:
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)


@pytest.mark.parametrize("character", ["smpl", "mixamo"])
def test_second_clip_starts_where_the_character_stands_and_blends_in(scene, character):
    from tests.motion.rig_builders import BUILDERS, build_in_blender

    scene.render.fps = 24
    props = scene.hmu
    bones = ("pelvis", "left_hip", "right_hip")
    if character == "mixamo":
        props.target = build_in_blender(BUILDERS["mixamo"](), "Hero")
        bones = ("mixamorig:Hips", "mixamorig:LeftUpLeg", "mixamorig:RightUpLeg")
    assert bpy.ops.hmu.generate(prompt="a person walks forward", seconds=2.0, seed=0,
                                frame=1) == {"FINISHED"}
    rig = props.target
    first = rig.animation_data.nla_tracks[0].strips[0]
    assert first.blend_in == 0.0  # nothing to blend from yet
    # Frame 40: the first clip has walked somewhere; the second one starts there.
    path, headings = _root_and_heading(rig, [40], bones)
    before, heading = path[0], headings[0]
    scene.frame_set(40)
    assert bpy.ops.hmu.generate(prompt="a person turns around and walks", seconds=2.0,
                                seed=1) == {"FINISHED"}
    tracks = rig.animation_data.nla_tracks
    assert len(tracks) == 2 and not tracks[1].mute
    second = tracks[1].strips[0]
    assert second.frame_start == 40 and second.blend_in == pytest.approx(0.25 * 24)
    # Continuous across the strips: the root moves less than 1 cm per 0.1 frame through the
    # start of the second strip and its blend (and the first one keeps walking under it).
    frames = np.arange(38.0, 40.0 + second.blend_in + 2.0, 0.1)
    path, _ = _root_and_heading(rig, frames, bones)
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert steps.max() < 0.01, f"root jumps {steps.max():.3f} m at frame " \
                               f"{frames[1:][steps.argmax()]:.1f}"
    # The second clip itself (its track alone, not blended) starts where the character stood
    # and faced.
    tracks[1].is_solo, second.blend_in = True, 0.0
    path, headings = _root_and_heading(rig, [40], bones)
    start, turned = path[0], headings[0]
    tracks[1].is_solo = False
    assert np.linalg.norm(start - before) < 0.01
    assert math.degrees(_angle(turned, heading)) < 2.0
    assert np.linalg.norm(before) > 0.05, "the first clip did not move: nothing was tested"


def test_alignment_off_leaves_the_clip_where_the_model_puts_it(scene):
    props = scene.hmu
    bpy.ops.hmu.generate(prompt="a person walks forward", seconds=2.0, seed=0)
    rig = props.target
    scene.frame_set(30)
    bpy.ops.hmu.generate(prompt="a person walks forward", seconds=2.0, seed=0, align=False)
    tracks = rig.animation_data.nla_tracks
    tracks[1].is_solo, tracks[1].strips[0].blend_in = True, 0.0
    start = _root_and_heading(rig, [30])[0][0]
    tracks[1].is_solo = False
    origin_start = _root_and_heading(rig, [1])[0][0]  # the same clip, unmoved, at frame 1
    assert np.linalg.norm(start - origin_start) < 0.01


def test_operator_properties_from_a_script(scene, tmp_path):
    props = scene.hmu
    props.prompt, props.seed = "a person waves", 0
    assert bpy.ops.hmu.generate(prompt="a person jumps", seconds=2.0, seed=7,
                                variations=2) == {"FINISHED"}
    assert props.prompt == "a person waves"  # the panel keeps its own prompt
    assert sorted(bpy.data.actions.keys()) == ["hmu_a_person_jumps_s7", "hmu_a_person_jumps_s8"]
    assert props.seed == 9  # moved past the seeds used
    assert bpy.data.actions["hmu_a_person_jumps_s7"]["hmu_frames"] == 40
    # Refused before the model runs: a duration the model does not make, a missing target.
    before = len(bpy.data.actions)
    with pytest.raises(RuntimeError, match=r"Seconds must be 2 to 9\.8 for this model, got 12"):
        bpy.ops.hmu.generate(seconds=12.0)
    with pytest.raises(RuntimeError, match="'Nobody' is not an armature"):
        bpy.ops.hmu.generate(seconds=2.0, target="Nobody")
    assert len(bpy.data.actions) == before and props.seed == 9
    props.seed_lock = True
    bpy.ops.hmu.generate(seconds=2.0, seed=3)
    assert props.seed == 9  # locked: the panel's seed stays
    # The other operators take their inputs the same way.
    prompts = tmp_path / "p.txt"
    prompts.write_text("a person bows | 2\n", encoding="utf-8")
    assert bpy.ops.hmu.generate_library(library_prompts=str(prompts), library_mode="FILES",
                                        library_dir=str(tmp_path / "lib"),
                                        library_formats={"NPZ"}, seed=0) == {"FINISHED"}
    assert (tmp_path / "lib" / "000_a-person-bows_s0.npz").is_file()
    assert props.library_prompts == ""


def test_seconds_range_shown_and_relative_paths_refused_in_an_unsaved_file(scene, tmp_path):
    from tests.blender_addon.test_addon import _Layout

    props = scene.hmu
    props.seconds = 0.5
    drawn = _Layout()
    bpy.types.HMU_PT_main.draw(SimpleNamespace(layout=drawn), bpy.context)
    assert any(t.endswith("; model: 2 to 9.8 s") for t in drawn.labels), drawn.labels
    assert "Seconds must be 2 to 9.8 for this model, got 0.5" in drawn.labels
    assert bpy.data.filepath == ""
    props.render_original = str(tmp_path)
    props.render_output = "//hmu_eval.mp4"
    drawn = _Layout()
    bpy.types.HMU_PT_render.draw(SimpleNamespace(layout=drawn), bpy.context)
    assert any("//hmu_eval.mp4 is relative to the .blend file, which is not saved" in t
               for t in drawn.labels)
    with pytest.raises(RuntimeError, match=r"relative to the \.blend file"):
        bpy.ops.hmu.render_eval(render_output="//v.mp4")
    assert not list(tmp_path.iterdir())


def _FakeOperator(job):
    """The job-loop mixin without Blender's operator machinery (background mode has no
    window for a modal handler): the same ``modal``/``cancel`` code, fed fake events."""
    from blender_addon.threaded import JobRunner, ThreadedOperator

    class Fake(ThreadedOperator):
        def __init__(self):
            self.reports, self.finished = [], []
            self._runner = JobRunner(job)

        def report(self, kind, text):
            self.reports.append((set(kind), text))

        def finish(self, _context, done):
            self.finished.append(done)
            return {"FINISHED"}

    return Fake()


class _Gate:
    """A job whose worker waits until the test opens the gate."""

    def __init__(self):
        from blender_addon.job import GenerationJob, GenerationRequest

        gate = self.gate = threading.Event()

        class Blocked(GenerationJob):
            def run(self):
                gate.wait(30)
                self.result = "computed"  # the worker finishes its step regardless
                return self.result

        self.job = Blocked(GenerationRequest(bundle="", prompt="x", seconds=2.0, seed=0))


def _event(kind):
    return SimpleNamespace(type=kind, value="PRESS")


def test_esc_keeps_the_job_running_until_its_thread_ends(scene):
    from blender_addon import threaded

    blocked = _Gate()
    op = _FakeOperator(blocked.job)
    wm = bpy.context.window_manager
    op._runner.start(bpy.context)
    assert wm.hmu_job.running and not bpy.ops.hmu.generate.poll()
    assert op.modal(bpy.context, _event("ESC")) == {"RUNNING_MODAL"}
    assert blocked.job.cancelled and wm.hmu_job.running, "Esc cleared running too early"
    assert op.modal(bpy.context, _event("TIMER")) == {"PASS_THROUGH"}
    assert wm.hmu_job.status.startswith("cancelling")
    blocked.gate.set()
    assert blocked.job.wait(10)
    while blocked.job.alive:
        time.sleep(0.01)
    assert op.modal(bpy.context, _event("TIMER")) == {"CANCELLED"}
    assert not op.finished, "a cancelled job's result was applied"
    assert not wm.hmu_job.running and wm.hmu_job.status == "Cancelled"
    assert not threaded.busy() and bpy.ops.hmu.generate.poll()


def test_blender_cancelling_the_operator_stops_the_job(scene):
    """``cancel()`` (Blender ends the modal operator: a file load, a closed window)."""
    blocked = _Gate()
    op = _FakeOperator(blocked.job)
    op._runner.start(bpy.context)
    op.cancel(bpy.context)
    assert blocked.job.cancelled and bpy.context.window_manager.hmu_job.running
    blocked.gate.set()
    assert blocked.job.wait(10)
    while blocked.job.alive:
        time.sleep(0.01)
    assert not bpy.context.window_manager.hmu_job.running


def test_a_real_generation_cancelled_mid_way_leaves_the_scene(scene, default_bundle):
    from blender_addon.job import GenerationJob, GenerationRequest

    job = GenerationJob(GenerationRequest(bundle=str(default_bundle), prompt="a person waves",
                                          seconds=2.0, seed=0, variations=8, device="cpu",
                                          threads=1))
    op = _FakeOperator(job)
    before = len(bpy.data.objects), len(bpy.data.actions)
    op._runner.start(bpy.context)
    while job.stage != "variation 2/8" and not job.done:
        time.sleep(0.005)
    op.modal(bpy.context, _event("ESC"))
    while op.modal(bpy.context, _event("TIMER")) == {"PASS_THROUGH"}:
        time.sleep(0.01)
    assert job.result is None and not op.finished
    assert (len(bpy.data.objects), len(bpy.data.actions)) == before


def _timed_steps(monkeypatch, operator_cls):
    """Time every main-thread step of the operator's job loop: make_job, start, each tick,
    finish. Returns the list the durations (s) and the stages seen go into."""
    from blender_addon.threaded import JobRunner

    steps, stages = [], []

    def timed(fn, seen=None):
        def wrapper(self, context, *args):
            t = time.perf_counter()
            try:
                return fn(self, context, *args)
            finally:
                steps.append(time.perf_counter() - t)
                if seen is not None:
                    stages.append(context.window_manager.hmu_job.status)
        return wrapper

    monkeypatch.setattr(JobRunner, "start", timed(JobRunner.start))
    monkeypatch.setattr(JobRunner, "tick", timed(JobRunner.tick, stages))
    monkeypatch.setattr(operator_cls, "make_job", timed(operator_cls.make_job))
    monkeypatch.setattr(operator_cls, "finish", timed(operator_cls.finish))
    return steps, stages


def test_library_files_export_keeps_each_main_thread_step_short(scene, tmp_path,
                                                                monkeypatch):
    steps, stages = _timed_steps(monkeypatch, bpy.types.HMU_OT_generate_library)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a person waves | 2\na person bows | 2\n", encoding="utf-8")
    assert bpy.ops.hmu.generate_library(
        library_prompts=str(prompts), library_mode="FILES", library_dir=str(tmp_path / "lib"),
        library_formats={"FBX", "GLB"}) == {"FINISHED"}
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == [
        "000_a-person-waves_s0.fbx", "000_a-person-waves_s0.glb", "001_a-person-bows_s1.fbx",
        "001_a-person-bows_s1.glb", "index.json"]
    assert len(bpy.data.objects) == 0  # exported in the other process
    assert len(steps) > 10 and any(s.startswith("clip 1/2") for s in stages), stages
    assert max(steps) < STEP_LIMIT_S, f"a main-thread step took {max(steps) * 1000:.0f} ms"


def test_render_keeps_each_main_thread_step_short(scene, default_bundle, tmp_path, monkeypatch):
    steps, stages = _timed_steps(monkeypatch, bpy.types.HMU_OT_render_eval)
    out = tmp_path / "eval.mp4"
    assert bpy.ops.hmu.render_eval(render_original=str(default_bundle), render_output=str(out),
                                   render_width=96, render_height=64, prompt="a person kicks",
                                   seconds=2.0) == {"FINISHED"}
    assert out.stat().st_size > 1000
    assert len(steps) > 10 and any(s.startswith("frame ") for s in stages), stages
    assert max(steps) < STEP_LIMIT_S, f"a main-thread step took {max(steps) * 1000:.0f} ms"


def test_background_errors_come_back_as_one_message(scene, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a person waves | 60\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match=r"p\.txt:1: .*duration"):
        bpy.ops.hmu.generate_library(library_prompts=str(prompts), library_mode="FILES",
                                     library_dir=str(tmp_path / "lib"), library_formats={"BVH"})
    job = bpy.context.window_manager.hmu_job
    assert job.status.startswith("Error: ") and not job.running


def test_a_cancelled_render_leaves_no_file(scene, default_bundle, tmp_path):
    from blender_addon.background import process_job
    from blender_addon.job import GenerationRequest, RenderJob

    request = GenerationRequest(bundle=str(default_bundle), prompt="a person kicks", seconds=9.0,
                                seed=0, device="cpu", threads=1)
    task = {"task": "render", "bundles": [str(default_bundle)] * 2, "prompt": request.prompt,
            "seconds": 9.0, "seed": 0, "device": "cpu", "threads": 1, "trusted_keys": [],
            "caption": "x", "out": str(tmp_path / "v" / "eval.mp4"),
            "settings": {"width": 96, "height": 64}}
    op = _FakeOperator(process_job(request, task, kind=RenderJob))
    op._runner.start(bpy.context)
    job = op._runner.job
    while not job.stage.startswith("frame ") and not job.done:
        time.sleep(0.01)
    assert job.stage.startswith("frame "), job.error
    op.modal(bpy.context, _event("ESC"))
    t = time.perf_counter()
    while op.modal(bpy.context, _event("TIMER")) == {"PASS_THROUGH"}:
        time.sleep(0.01)
    assert time.perf_counter() - t < 10, "the render went on after Esc"
    assert list((tmp_path / "v").iterdir()) == []  # no video, no hidden render folder


def test_eval_camera_frames_both_figures_on_every_frame(scene):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Matrix, Vector

    from exporter.scene.eval_video import SPACING, camera_matrix, figure_box
    from exporter.scene.rig import rest_joints_from_offsets
    from hmu_core.motion.motion import Motion
    from hmu_core.motion.retarget import BODY_TO_WORLD
    from hmu_core.motion.smpl import rest_offsets

    stand = rest_joints_from_offsets(rest_offsets())[:22]  # (22, 3) Y-up, on the floor
    t = np.linspace(0.0, 1.0, 60)[:, None, None]
    stays = Motion.from_joints(np.repeat(stand[None], 60, axis=0))
    walks_away = Motion.from_joints(stand[None] + t * np.array([3.0, 0.0, -8.0]))  # 8.5 m
    xs = [-SPACING / 2, SPACING / 2]
    camera = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    camera.data.lens, camera.data.sensor_width, camera.data.sensor_fit = 35.0, 36.0, \
        "HORIZONTAL"
    scene.render.resolution_x, scene.render.resolution_y = 640, 360
    camera.matrix_world = Matrix(camera_matrix(figure_box([stays, walks_away], xs),
                                               640 / 360).tolist())
    bpy.context.view_layer.update()
    for motion, x in zip((stays, walks_away), xs, strict=True):
        world = motion.joints.reshape(-1, 3) @ BODY_TO_WORLD.T + (x, 0.0, 0.0)
        for p in world:
            u, v, depth = world_to_camera_view(scene, camera, Vector(p))
            assert 0.0 <= u <= 1.0 and 0.0 <= v <= 1.0 and depth > 0, (p, u, v)
    bpy.data.objects.remove(camera)

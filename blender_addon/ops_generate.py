"""Generate and Test Bundle: the prompt -> a new action on the Target (any humanoid armature,
through its bone map, or hmu's SMPL rig), off the UI thread; a Target that cannot be mapped
is refused before the model runs."""

from __future__ import annotations

import time
from typing import Any

import bpy

from . import prefs as P
from .job import GenerationJob, GenerationRequest
from .threaded import ThreadedOperator

TEST_PROMPT = "a person walks forward"
TEST_SECONDS = 2.0


def bundle_missing(context: Any) -> str:
    """Why there is no usable bundle setting ('' when there is one), for ``poll`` messages."""
    path = P.get_prefs(context).bundle_path
    if not path:
        return "Set the model bundle in the hmu preferences first"
    return ""


def make_request(context: Any, prompt: str, seconds: float, seed: int,
                 variations: int) -> GenerationRequest:
    prefs = P.get_prefs(context)
    device, threads = P.runtime_settings(context)
    return GenerationRequest(bundle=bpy.path.abspath(prefs.bundle_path), prompt=prompt,
                             seconds=seconds, seed=seed, variations=variations, device=device,
                             threads=threads, cuda_library_path=prefs.cuda_library_path,
                             trusted_keys=bpy.path.abspath(prefs.trusted_keys)
                             if prefs.trusted_keys else "")


def provider_note(provider: str, reason: str, device: str) -> str:
    """'' on the device asked for; otherwise the visible CPU-fallback message."""
    if device == "cpu" or provider.startswith("CUDA") or not reason:
        return ""
    if device == "auto" and "no CUDA provider" in reason:
        return ""  # the CPU build: CPU is what Auto means there
    return f"CUDA not used, running on CPU: {reason}"


def report_retarget(operator: Any, report: Any) -> None:
    """The retarget's summary as INFO lines, its warnings as WARNING lines."""
    if report is None:
        return
    for line in report.lines():
        operator.report({"WARNING"} if line in report.warnings else {"INFO"}, f"hmu: {line}")


class HMU_OT_generate(ThreadedOperator, bpy.types.Operator):
    """Generate motion for the prompt as new action(s) on the Target armature (built if
    none); runs in the background, Esc cancels"""

    bl_idname = "hmu.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    _started: float = 0.0

    @classmethod
    def poll(cls, context: Any) -> bool:
        props = context.scene.hmu
        why = bundle_missing(context) \
            or ("Generation is running" if context.window_manager.hmu_job.running else "") \
            or ("Type a prompt" if not props.prompt.strip() else "") \
            or ("Switch to Object Mode" if context.mode != "OBJECT" else "")
        if why:
            cls.poll_message_set(why)
        return not why

    _plan: Any = None

    def make_job(self, context: Any) -> GenerationJob:
        from .bone_map import target_plan

        props = context.scene.hmu
        self._plan = target_plan(props)  # refuses an unmappable target before the model runs
        self._started = time.perf_counter()
        return GenerationJob(make_request(context, props.prompt, props.seconds, props.seed,
                                          props.variations))

    def finish(self, context: Any, job: GenerationJob) -> set[str]:
        from hmu_core.errors import HmuError

        from .apply import apply_motions

        props = context.scene.hmu
        result, req, plan = job.result, job.request, self._plan
        if result is None:
            return self._fail(context, "generation was cancelled")
        try:
            applied = apply_motions(
                context, plan.armature, result.motions,
                prompts=[req.prompt] * len(result.motions), seeds=result.seeds,
                bundle=req.bundle, bundle_hash=result.bundle_hash, provider=result.provider,
                start_frame=float(context.scene.frame_current),
                replace=props.replace_action, bone_map=plan.bone_map,
                bone_map_source=plan.source, foot_cleanup=plan.foot_cleanup)
        except HmuError as exc:
            return self._fail(context, str(exc))
        if props.target != applied.armature:  # a new rig (setting it again re-detects the map)
            props.target = applied.armature
        seconds = time.perf_counter() - self._started
        names = ", ".join(a.name for a in applied.actions)
        note = provider_note(result.provider, result.provider_reason, req.device)
        short = result.provider.replace("ExecutionProvider", "")
        self._done(context, f"{names} ({short}, {seconds:.1f} s)")
        if note:
            self.report({"WARNING"}, note)
        self.report({"INFO"}, f"hmu: keyed {names} on {applied.armature.name} ({short}, "
                              f"{seconds:.1f} s)")
        report_retarget(self, applied.report)
        return {"FINISHED"}


class HMU_OT_test_bundle(ThreadedOperator, bpy.types.Operator):
    """Load the bundle from the preferences, run a short test clip and show which device the
    session really got"""

    bl_idname = "hmu.test_bundle"
    bl_label = "Test Bundle"
    bl_options = {"REGISTER"}  # noqa: RUF012 (Blender reads a plain set)

    _started: float = 0.0

    @classmethod
    def poll(cls, context: Any) -> bool:
        why = bundle_missing(context) or \
            ("Generation is running" if context.window_manager.hmu_job.running else "")
        if why:
            cls.poll_message_set(why)
        return not why

    def make_job(self, context: Any) -> GenerationJob:
        self._started = time.perf_counter()
        return GenerationJob(make_request(context, TEST_PROMPT, TEST_SECONDS, 0, 1))

    def finish(self, context: Any, job: GenerationJob) -> set[str]:
        result = job.result
        if result is None:
            return self._fail(context, "test was cancelled")
        seconds = time.perf_counter() - self._started
        short = result.provider.replace("ExecutionProvider", "")
        status = f"Bundle OK: {short}, {result.motions[0].num_frames} frames in {seconds:.1f} s"
        self._done(context, status)
        note = provider_note(result.provider, result.provider_reason, job.request.device)
        if note:
            self.report({"WARNING"}, note)
        self.report({"INFO"}, f"hmu: {status} (hash {result.bundle_hash[:12]})")
        return {"FINISHED"}

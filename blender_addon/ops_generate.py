"""Generate and Test Bundle: the prompt -> a new clip on the Target's timeline (any humanoid
armature, through its bone map, or hmu's SMPL rig), off the UI thread. A Target that cannot be
mapped and a duration the model refuses are refused before the model runs; the frame and the
character's place are read when Generate is clicked, not when the model is done."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import bpy
from bpy.props import IntProperty, StringProperty

from .job import GenerationJob, GenerationRequest
from .prefs import get_prefs, runtime_settings
from .props import fill_from_scene, operator_inputs
from .threaded import ThreadedOperator, busy

TEST_PROMPT = "a person walks forward"
TEST_SECONDS = 2.0


def bundle_missing(context: Any) -> str:
    """Why there is no usable bundle setting ('' when there is one), for ``poll`` messages."""
    path = get_prefs(context).bundle_path
    if not path:
        return "Set the model bundle in the hmu preferences first"
    return ""


def seconds_range(bundle: str) -> tuple[float, float] | None:
    """The durations (s) the bundle's model accepts: ``min_tokens..max_tokens`` tokens of
    ``unit_length`` frames at ``fps`` (None when its manifest cannot be read: loading the
    bundle then says why)."""
    from exporter.runtime.bundle import read_manifest
    from hmu_core.errors import HmuError

    path = Path(bundle) / "manifest.json"
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    if _RANGES.get(bundle, (None,))[0] != stamp:
        try:
            m = read_manifest(bundle)
            step = int(m["unit_length"]) / float(m["fps"])
            _RANGES[bundle] = (stamp, (int(m["min_tokens"]) * step, int(m["max_tokens"]) * step))
        except (HmuError, KeyError, ValueError):
            _RANGES[bundle] = (stamp, None)
    return _RANGES[bundle][1]


_RANGES: dict[str, tuple[int, tuple[float, float] | None]] = {}
"""``seconds_range`` by bundle path, with the manifest's mtime (panels redraw often)."""


def seconds_problem(bundle: str, seconds: float) -> str:
    """Why the model would refuse ``seconds`` ('' when it accepts it)."""
    span = seconds_range(bundle)
    if span is None or span[0] - 1e-6 <= seconds <= span[1] + 1e-6:
        return ""
    return f"Seconds must be {span[0]:g} to {span[1]:g} for this model, got {seconds:g}"


def check_request(request: GenerationRequest) -> GenerationRequest:
    """``request`` if its bundle's model accepts its duration.

    Raises:
        ConfigError: the duration is out of the bundle's range (before the model runs).
    """
    from hmu_core.errors import ConfigError

    why = seconds_problem(request.bundle, request.seconds)
    if why:
        raise ConfigError(why)
    return request


def make_request(context: Any, prompt: str, seconds: float, seed: int,
                 variations: int) -> GenerationRequest:
    """The job's request, from the operator's inputs and the add-on's preferences."""
    prefs = get_prefs(context)
    device, threads = runtime_settings(context)
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


GENERATE_INPUTS = ("prompt", "seconds", "seed", "variations", "foot_cleanup", "use_nla",
                   "align")
"""The Generate inputs a script may pass; the rest of the panel (bone map) is the Target's."""


class HMU_OT_generate(ThreadedOperator, bpy.types.Operator):
    """Generate motion for the prompt onto the Target (an SMPL rig is built if none): an NLA
    strip from the current frame, where the character stands; runs in the background, Esc
    cancels"""

    bl_idname = "hmu.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    __annotations__ = {
        **operator_inputs(*GENERATE_INPUTS),
        "target": StringProperty(
            name="Target", options={"SKIP_SAVE"},
            description="Name of the armature to animate; empty: the panel's Target"),
        "frame": IntProperty(
            name="Frame", options={"SKIP_SAVE"},
            description="Scene frame where the clip starts; default: the current frame"),
    }

    _started: float = 0.0
    _plan: Any = None
    _placement: Any = None

    @classmethod
    def poll(cls, context: Any) -> bool:
        why = bundle_missing(context) \
            or ("Generation is running" if busy() else "") \
            or ("Switch to Object Mode" if context.mode != "OBJECT" else "")
        if why:
            cls.poll_message_set(why)
        return not why

    def fill(self, context: Any) -> None:
        fill_from_scene(self, context, GENERATE_INPUTS)
        if not self.properties.is_property_set("frame"):
            self.frame = context.scene.frame_current

    def make_job(self, context: Any) -> GenerationJob:
        """Check everything the model does not need (target, prompt, duration), read the frame
        and the character's place now, and advance the panel's seed."""
        from exporter.scene.apply import Placement, character_anchor
        from hmu_core.errors import ConfigError

        from .bone_map import target_plan

        props = context.scene.hmu
        if self.target and (props.target is None or props.target.name != self.target):
            obj = bpy.data.objects.get(self.target)
            if obj is None or obj.type != "ARMATURE":
                raise ConfigError(f"target {self.target!r} is not an armature in this file")
            props.target = obj  # detects its bone map
        if not self.prompt.strip():
            raise ConfigError("type a prompt: what the character should do")
        plan = target_plan(props)  # refuses an unmappable target before the model runs
        self._plan = replace(plan, foot_cleanup=self.foot_cleanup)
        request = check_request(make_request(context, self.prompt, self.seconds, self.seed,
                                             self.variations))
        anchor = character_anchor(context, plan.armature, plan.bone_map, self.frame) \
            if self.align else None
        self._placement = Placement(frame=self.frame, anchor=anchor, nla=self.use_nla)
        if not props.seed_lock:
            props.seed = self.seed + self.variations  # the next click makes new motions
        self._started = time.perf_counter()
        return GenerationJob(request)

    def finish(self, context: Any, job: GenerationJob) -> set[str]:
        from exporter.scene.apply import apply_motions
        from hmu_core.errors import HmuError

        props = context.scene.hmu
        result, req, plan = job.result, job.request, self._plan
        try:
            applied = apply_motions(
                context, plan.armature, result.motions,
                prompts=[req.prompt] * len(result.motions), seeds=result.seeds,
                bundle=req.bundle, bundle_hash=result.bundle_hash, provider=result.provider,
                placement=self._placement, bone_map=plan.bone_map,
                bone_map_source=plan.source, foot_cleanup=plan.foot_cleanup)
        except HmuError as exc:
            return self._fail(context, str(exc))
        if props.target != applied.armature:  # a new rig (setting it again re-detects the map)
            props.target = applied.armature
        seconds = time.perf_counter() - self._started
        names = ", ".join(a.name for a in applied.actions)
        note = provider_note(result.provider, result.provider_reason, req.device)
        short = result.provider.replace("ExecutionProvider", "")
        where = f"NLA from frame {self._placement.frame}" if self._placement.nla \
            else "active action"
        self._done(context, f"{names} ({where}, {short}, {seconds:.1f} s)")
        if note:
            self.report({"WARNING"}, note)
        self.report({"INFO"}, f"hmu: keyed {names} on {applied.armature.name} ({where}, "
                              f"{short}, {seconds:.1f} s)")
        if applied.reused:
            self.report({"INFO"}, f"hmu: {applied.reused} clip(s) identical to earlier ones "
                                  "(Lock Seed): their actions are re-used")
        data = applied.armature.animation_data
        if self._placement.nla and data is not None and data.action is not None:
            self.report({"WARNING"}, f"hmu: the active action {data.action.name} plays over "
                                     "the NLA strips; push it down or unlink it to see them")
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
        why = bundle_missing(context) or ("Generation is running" if busy() else "")
        if why:
            cls.poll_message_set(why)
        return not why

    def make_job(self, context: Any) -> GenerationJob:
        self._started = time.perf_counter()
        return GenerationJob(make_request(context, TEST_PROMPT, TEST_SECONDS, 0, 1))

    def finish(self, context: Any, job: GenerationJob) -> set[str]:
        result = job.result
        seconds = time.perf_counter() - self._started
        short = result.provider.replace("ExecutionProvider", "")
        status = f"Bundle OK: {short}, {result.motions[0].num_frames} frames in {seconds:.1f} s"
        self._done(context, status)
        note = provider_note(result.provider, result.provider_reason, job.request.device)
        if note:
            self.report({"WARNING"}, note)
        self.report({"INFO"}, f"hmu: {status} (hash {result.bundle_hash[:12]})")
        return {"FINISHED"}

"""Library (Library subpanel): a prompt file -> one action per line, or a folder of files.

Both modes read the prompt file with the clip library's parser (``prompt[ | seconds[ |
seed]]`` per line, ``exporter.clips``), so a file works the same here and in ``hmu clips``.
Actions are generated in a worker thread and keyed on the main thread; the Files mode is
``exporter.clips.make_clips`` itself (resumable, ``index.json``) in a background Blender
process, since Blender's FBX and GLB exporters need a main thread of their own.
"""

from __future__ import annotations

from typing import Any

import bpy

from .background import process_job
from .job import GenerationJob, LibraryJob, ProcessJob
from .ops_generate import bundle_missing, make_request
from .paths import resolve
from .props import fill_from_scene, operator_inputs
from .threaded import ThreadedOperator, busy

LIBRARY_INPUTS = ("library_prompts", "library_mode", "library_dir", "library_formats",
                  "seconds", "seed", "foot_cleanup")
"""What a script may pass (``bpy.ops.hmu.generate_library(library_prompts=...)``)."""


class HMU_OT_generate_library(ThreadedOperator, bpy.types.Operator):
    """Generate one clip per line of the prompt file ('prompt | seconds | seed'): as actions
    on the target rig, or as files plus index.json in a folder (resumable, as 'hmu clips'),
    in the background; Esc cancels"""

    bl_idname = "hmu.generate_library"
    bl_label = "Generate Library"
    # UNDO without REGISTER: one Ctrl-Z removes the actions, but no redo panel (it would run
    # the whole library again, synchronously).
    bl_options = {"UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    __annotations__ = operator_inputs(*LIBRARY_INPUTS)

    _plan: Any = None

    @classmethod
    def poll(cls, context: Any) -> bool:
        why = bundle_missing(context) \
            or ("Generation is running" if busy() else "") \
            or ("Switch to Object Mode" if context.mode != "OBJECT" else "")
        if why:
            cls.poll_message_set(why)
        return not why

    def fill(self, context: Any) -> None:
        fill_from_scene(self, context, LIBRARY_INPUTS)

    def make_job(self, context: Any) -> GenerationJob:
        from hmu_core.errors import ConfigError

        prompt_file = str(resolve(self.library_prompts, "prompt file"))
        request = make_request(context, "", self.seconds, self.seed, 1)
        if self.library_mode == "FILES":
            if not self.library_formats:
                raise ConfigError("choose at least one format for the library files")
            formats = [f.lower() for f in ("BVH", "NPZ", "FBX", "GLB")
                       if f in self.library_formats]
            params = {"formats": formats, "device": request.device, "seconds": self.seconds,
                      "seed": self.seed, "threads": request.threads,
                      "trusted_keys": list(request.key_files),
                      "foot_cleanup": self.foot_cleanup}
            return process_job(request, {
                "task": "clips", "prompt_file": prompt_file, "bundle": request.bundle,
                "out_dir": str(resolve(self.library_dir, "output folder")), "params": params})
        from exporter.clips import read_prompts

        from .bone_map import target_plan

        self._plan = target_plan(context.scene.hmu)  # refuses an unmappable target first
        clips = read_prompts(prompt_file, seconds=self.seconds, seed=self.seed)
        return LibraryJob(request, clips=tuple(clips))

    def finish(self, context: Any, job: GenerationJob) -> set[str]:
        if isinstance(job, ProcessJob):
            out = job.outcome
            message = f"{out['generated']} clips written, {out['skipped']} already there, " \
                      f"in {out['out_dir']}"
        else:
            message = self._apply_actions(context, job)
            if message is None:
                return {"CANCELLED"}
        self._done(context, message)
        self.report({"INFO"}, f"hmu: {message}")
        return {"FINISHED"}

    def _apply_actions(self, context: Any, job: LibraryJob) -> str | None:
        from exporter.scene.apply import Placement, apply_motions
        from hmu_core.errors import HmuError

        from .ops_generate import report_retarget

        props, result, plan = context.scene.hmu, job.result, self._plan
        try:
            applied = apply_motions(
                context, plan.armature, result.motions, prompts=[c.prompt for c in job.clips],
                seeds=result.seeds, bundle=job.request.bundle, bundle_hash=result.bundle_hash,
                provider=result.provider,
                placement=Placement(frame=context.scene.frame_current, nla=False),
                bone_map=plan.bone_map, bone_map_source=plan.source,
                foot_cleanup=self.foot_cleanup, library=True)
        except HmuError as exc:
            self._fail(context, str(exc))
            return None
        report_retarget(self, applied.report)
        if props.target != applied.armature:
            props.target = applied.armature
        return f"{len(applied.actions)} actions on {applied.armature.name}"

"""Library (Library subpanel): a prompt file -> one action per line, or a folder of files.

Both modes read the prompt file with the clip library's parser (``prompt[ | seconds[ |
seed]]`` per line, ``exporter.clips``), so a file works the same here and in ``hmu clips``;
the Files mode is ``exporter.clips.make_clips`` itself (resumable, ``index.json``).
"""

from __future__ import annotations

from typing import Any

import bpy

from .job import FilesJob, GenerationJob, LibraryJob
from .ops_generate import bundle_missing, make_request
from .threaded import ThreadedOperator

BPY_FORMATS = {"FBX", "GLB"}


class HMU_OT_generate_library(ThreadedOperator, bpy.types.Operator):
    """Generate one clip per line of the prompt file ('prompt | seconds | seed'): as actions
    on the target rig, or as files plus index.json in a folder (resumable, as 'hmu clips')"""

    bl_idname = "hmu.generate_library"
    bl_label = "Generate Library"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    _plan: Any = None

    @classmethod
    def poll(cls, context: Any) -> bool:
        props = context.scene.hmu
        why = bundle_missing(context) \
            or ("Choose a prompt file" if not props.library_prompts else "") \
            or ("Choose an output folder" if props.library_mode == "FILES"
                and not props.library_dir else "") \
            or ("Choose at least one format" if props.library_mode == "FILES"
                and not props.library_formats else "") \
            or ("Generation is running" if context.window_manager.hmu_job.running else "") \
            or ("Switch to Object Mode" if context.mode != "OBJECT" else "")
        if why:
            cls.poll_message_set(why)
        return not why

    def invoke(self, context: Any, event: Any) -> set[str]:
        props = context.scene.hmu
        if props.library_mode == "FILES" and BPY_FORMATS & set(props.library_formats):
            return self.execute(context)  # Blender's exporters need the main thread
        return super().invoke(context, event)

    def make_job(self, context: Any) -> GenerationJob:
        from exporter.clips import read_prompts

        props = context.scene.hmu
        prompt_file = bpy.path.abspath(props.library_prompts)
        request = make_request(context, "", props.seconds, props.seed, 1)
        if props.library_mode == "FILES":
            formats = tuple(f.lower() for f in ("BVH", "NPZ", "FBX", "GLB")
                            if f in props.library_formats)
            return FilesJob(request, prompt_file=prompt_file,
                            out_dir=bpy.path.abspath(props.library_dir), formats=formats)
        from .bone_map import target_plan

        self._plan = target_plan(props)  # refuses an unmappable target before the model runs
        clips = read_prompts(prompt_file, seconds=props.seconds, seed=props.seed)
        return LibraryJob(request, clips=tuple(clips))

    def finish(self, context: Any, job: GenerationJob) -> set[str]:
        if job.cancelled:
            return self._fail(context, "library was cancelled")
        if isinstance(job, FilesJob):
            report = job.clips_report
            message = f"{len(report.generated)} clips written, {len(report.skipped)} " \
                      f"already there, in {report.out_dir}"
        else:
            message = self._apply_actions(context, job)
            if message is None:
                return {"CANCELLED"}
        self._done(context, message)
        self.report({"INFO"}, f"hmu: {message}")
        return {"FINISHED"}

    def _apply_actions(self, context: Any, job: LibraryJob) -> str | None:
        from hmu_core.errors import HmuError

        from .apply import apply_motions
        from .ops_generate import report_retarget

        props, result, plan = context.scene.hmu, job.result, self._plan
        try:
            applied = apply_motions(
                context, plan.armature, result.motions, prompts=[c.prompt for c in job.clips],
                seeds=result.seeds, bundle=job.request.bundle, bundle_hash=result.bundle_hash,
                provider=result.provider, start_frame=float(context.scene.frame_current),
                replace=props.replace_action, assign_first=False, bone_map=plan.bone_map,
                bone_map_source=plan.source, foot_cleanup=plan.foot_cleanup)
        except HmuError as exc:
            self._fail(context, str(exc))
            return None
        report_retarget(self, applied.report)
        if props.target != applied.armature:
            props.target = applied.armature
        return f"{len(applied.actions)} actions on {applied.armature.name}"

"""A modal-operator base for work that must not freeze the UI.

``invoke()`` starts the job's worker thread and a window timer; ``modal()`` shows progress
(progress bar, status bar, the panel's status line) and, once the thread is done, calls
``finish()`` on the main thread, where bpy may be used. Esc cancels: the worker's result is
dropped. ``execute()`` stays synchronous (scripts, ``blender -b -P``, pytest): in background
mode Blender never calls ``invoke()`` and timers never fire (reference/blender.md §9).

The undo step: an operator with ``'UNDO'`` in ``bl_options`` that returns ``{'FINISHED'}``
gets one undo push from Blender when it ends, modal or not, so ``finish()`` must make every
scene change of the operation (one Ctrl-Z then removes all of it).
"""

from __future__ import annotations

from typing import Any

from .job import GenerationJob

TIMER_SECONDS = 0.1


class ThreadedOperator:
    """Mixin for ``bpy.types.Operator`` subclasses; subclasses give ``make_job``/``finish``."""

    _job: GenerationJob | None = None
    _timer: Any = None

    def make_job(self, context: Any) -> GenerationJob:
        raise NotImplementedError

    def finish(self, context: Any, job: GenerationJob) -> set[str]:
        raise NotImplementedError

    def execute(self, context: Any) -> set[str]:
        from hmu_core.errors import HmuError

        try:
            job = self.make_job(context)
            job.run()
        except HmuError as exc:
            return self._fail(context, str(exc))
        return self.finish(context, job)

    def invoke(self, context: Any, _event: Any) -> set[str]:
        from hmu_core.errors import HmuError

        if context.window is None:  # no window to attach a timer to: run in place
            return self.execute(context)
        try:
            self._job = self.make_job(context)
        except HmuError as exc:
            return self._fail(context, str(exc))
        self._job.start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_SECONDS, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 100)
        self._show(context, "starting", 0.0, running=True)
        return {"RUNNING_MODAL"}

    def modal(self, context: Any, event: Any) -> set[str]:
        job = self._job
        if event.type == "ESC" and event.value == "PRESS":
            job.cancel()
            self._cleanup(context)
            self._show(context, "Cancelled", 0.0, running=False)
            self.report({"WARNING"}, "hmu: cancelled; the result will be dropped")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if not job.done:
            self._show(context, job.stage, job.progress, running=True)
            context.window_manager.progress_update(int(job.progress * 100))
            return {"PASS_THROUGH"}
        self._cleanup(context)
        if job.error is not None:
            return self._fail(context, job.error)
        return self.finish(context, job)

    # -- helpers -----------------------------------------------------------------------------

    def _cleanup(self, context: Any) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)

    def _show(self, context: Any, stage: str, progress: float, *, running: bool) -> None:
        props = context.window_manager.hmu_job
        props.status = f"{stage} ({progress:.0%})" if running else stage
        props.progress = progress
        props.running = running
        if running and context.workspace is not None:
            context.workspace.status_text_set(f"hmu: {stage} {progress:.0%} (Esc cancels)")
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()

    def _done(self, context: Any, message: str) -> None:
        """The panel's status line after a successful run."""
        props = context.window_manager.hmu_job
        props.running, props.progress, props.status = False, 1.0, message

    def _fail(self, context: Any, message: str) -> set[str]:
        props = context.window_manager.hmu_job
        props.running = False
        props.progress = 0.0
        props.status = f"Error: {message}"[:200]
        self.report({"ERROR"}, message)
        return {"CANCELLED"}

"""A modal-operator base for work that must not freeze the UI, and its job loop.

The job loop (:class:`JobRunner`) is the main thread's side of one job: ``start()`` the
worker, ``tick()`` (show progress; True while the worker runs), ``cancel()``. Each step only
reads the job's progress and sets a few properties, so the UI stays responsive; the result is
applied by the operator's ``finish()`` once the worker has ended. The modal operator calls
``tick()`` from a window timer; ``execute()`` (scripts, ``blender -b -P``, pytest, the redo
panel: in background mode Blender never calls ``invoke()`` and timers never fire,
reference/blender.md §9) runs the very same loop, waiting between ticks.

Esc (or Blender cancelling the operator, ``cancel()``) tells the job to stop; the job still
counts as running (:func:`busy`, shown in the panel, greying out the other operators) until its
worker thread has really ended, since an onnxruntime call cannot be interrupted.

The undo step: an operator with ``'UNDO'`` in ``bl_options`` that returns ``{'FINISHED'}``
gets one undo push from Blender when it ends, modal or not, so ``finish()`` must make every
scene change of the operation (one Ctrl-Z then removes all of it).
"""

from __future__ import annotations

from typing import Any

from .job import GenerationJob

TIMER_SECONDS = 0.1

_active: JobRunner | None = None
"""The job the panel shows; one at a time."""


def busy() -> bool:
    """True while a job's worker thread runs or its result waits to be applied."""
    return _active is not None and (_active.job.alive or not _active.closed)


class JobRunner:
    """The main-thread steps of one job (no operator, no window needed)."""

    def __init__(self, job: GenerationJob) -> None:
        self.job = job
        self.closed = False

    def start(self, context: Any) -> None:
        """Start the worker thread and make this the job the panel shows."""
        global _active
        _active = self
        self.job.start()
        show(context, "starting", 0.0)

    def tick(self, context: Any) -> bool:
        """Show the job's progress; True while its worker thread runs."""
        job = self.job
        if job.alive or not job.done:
            stage = f"cancelling ({job.stage})" if job.cancelled else job.stage
            show(context, stage, job.progress)
            return True
        return False

    def cancel(self, context: Any) -> None:
        """Tell the job to stop; it stays running (``busy``) until its thread has ended."""
        self.job.cancel()
        show(context, f"cancelling ({self.job.stage})", self.job.progress)

    def close(self) -> None:
        """The result was applied (or dropped): the next job may start."""
        self.closed = True

    def run(self, context: Any) -> None:
        """The loop without a window: tick until the worker has ended (``execute()``)."""
        self.start(context)
        while self.tick(context):
            self.job.wait(TIMER_SECONDS)


def show(context: Any, stage: str, progress: float) -> None:
    """The panel's status line and bar, the status bar, the window's progress cursor."""
    props = context.window_manager.hmu_job
    props.status = f"{stage} ({progress:.0%})"
    props.progress = progress
    if context.workspace is not None:
        context.workspace.status_text_set(f"hmu: {stage} {progress:.0%} (Esc cancels)")
    if context.window is not None:
        context.window_manager.progress_update(int(progress * 100))
    for area in context.screen.areas if context.screen else ():
        if area.type == "VIEW_3D":
            area.tag_redraw()


class ThreadedOperator:
    """Mixin for ``bpy.types.Operator`` subclasses; subclasses give ``make_job``/``finish``
    (and may give ``fill`` to take unset operator properties from the panel)."""

    _runner: JobRunner | None = None
    _timer: Any = None

    def make_job(self, context: Any) -> GenerationJob:
        raise NotImplementedError

    def finish(self, context: Any, job: GenerationJob) -> set[str]:
        raise NotImplementedError

    def fill(self, context: Any) -> None:
        """Take every input not given to the operator from the panel (``Scene.hmu``)."""

    def execute(self, context: Any) -> set[str]:
        from hmu_core.errors import HmuError

        self.fill(context)
        try:
            runner = JobRunner(self.make_job(context))
        except HmuError as exc:
            return self._fail(context, str(exc))
        runner.run(context)
        self._remove_timer(context)  # none here: clears the status bar text
        return self._end(context, runner)

    def invoke(self, context: Any, _event: Any) -> set[str]:
        from hmu_core.errors import HmuError

        if context.window is None:  # no window to attach a timer to: run in place
            return self.execute(context)
        self.fill(context)
        try:
            self._runner = JobRunner(self.make_job(context))
        except HmuError as exc:
            return self._fail(context, str(exc))
        wm = context.window_manager
        wm.progress_begin(0, 100)
        self._runner.start(context)
        self._timer = wm.event_timer_add(TIMER_SECONDS, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: Any, event: Any) -> set[str]:
        runner = self._runner
        if event.type == "ESC" and event.value == "PRESS" and not runner.job.cancelled:
            runner.cancel(context)
            self.report({"WARNING"}, "hmu: cancelling; the result will be dropped")
            return {"RUNNING_MODAL"}
        if event.type != "TIMER" or runner.tick(context):
            return {"PASS_THROUGH"}
        self._remove_timer(context)
        return self._end(context, runner)

    def cancel(self, context: Any) -> None:
        """Blender ends the operator (a file is loaded, the window closes): stop the job; it
        still counts as running until its thread has ended."""
        if self._runner is not None:
            self._runner.cancel(context)
            self._runner.close()
        self._remove_timer(context)

    # -- helpers -----------------------------------------------------------------------------

    def _end(self, context: Any, runner: JobRunner) -> set[str]:
        """After the worker ended: the error, the cancellation or ``finish()``."""
        job = runner.job
        try:
            if job.error is not None:
                return self._fail(context, job.error)
            if job.cancelled:
                context.window_manager.hmu_job.status = "Cancelled"
                context.window_manager.hmu_job.progress = 0.0
                self.report({"WARNING"}, "hmu: cancelled")
                return {"CANCELLED"}
            return self.finish(context, job)
        finally:
            runner.close()

    def _remove_timer(self, context: Any) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
            wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)

    def _done(self, context: Any, message: str) -> None:
        """The panel's status line after a successful run."""
        props = context.window_manager.hmu_job
        props.progress, props.status = 1.0, message

    def _fail(self, context: Any, message: str) -> set[str]:
        props = context.window_manager.hmu_job
        props.progress = 0.0
        props.status = f"Error: {message}"[:200]
        self.report({"ERROR"}, message)
        return {"CANCELLED"}

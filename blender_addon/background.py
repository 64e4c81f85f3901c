"""Jobs for a background Blender process (``exporter.scene.worker``), started from this one.

Inside Blender the process is ``bpy.app.binary_path`` in background mode with factory
settings (no user add-ons, fast to start); where bpy is a Python module (tests, scripts)
``bpy.app.binary_path`` is empty and this Python runs the worker. Either way the child gets
this process's module path, so it imports the same hmu code and onnxruntime.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import bpy

from .job import GenerationRequest, ProcessJob


def worker_command() -> tuple[str, ...]:
    """The command line that runs the worker script (the task file is added last)."""
    import exporter.scene

    worker = str(Path(exporter.scene.__file__).with_name("worker.py"))
    if bpy.app.binary_path:
        return (bpy.app.binary_path, "--background", "--factory-startup",
                "--python-exit-code", "2", "--python", worker, "--")
    return (sys.executable, worker)


def process_job(request: GenerationRequest, task: dict[str, Any],
                kind: type[ProcessJob] = ProcessJob) -> ProcessJob:
    """A job (``kind``) that runs ``task`` (the worker's ``TASKS``) in a background process,
    which first loads the CUDA libraries of the preferences as this one does."""
    if request.device != "cpu" and request.cuda_library_path:
        from . import cuda_libs

        task = {**task, "cuda": {"module": cuda_libs.__file__,
                                 "folder": request.cuda_library_path}}
    return kind(request, command=worker_command(), task=task,
                sys_path=tuple(p for p in sys.path if p))

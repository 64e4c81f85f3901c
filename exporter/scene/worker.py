"""One add-on task in a background Blender process, so the user's Blender never freezes.

Blender's FBX/GLB exporters and its renderer must run on a main thread; in the user's session
that is the UI thread. The add-on (``blender_addon.job.ProcessJob``) therefore starts

    blender --background --factory-startup --python worker.py -- TASK.json
    python worker.py TASK.json                      (bpy as a Python module: tests, scripts)

and reads the lines this script prints: ``HMU {"progress": 0.4, "stage": "clip 2/5"}``, then
``HMU {"result": {...}}``, or ``HMU {"error": "..."}`` (an ``HmuError``, exit status 2).
``TASK.json`` names the task (``TASKS``), its arguments, and ``sys_path``: the parent's module
path, put in front of this process's own so it imports the same hmu code and onnxruntime.
Only the standard library and bpy are imported before that.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PREFIX = "HMU "


def say(**message: Any) -> None:
    """One line for the parent (flushed at once: the parent shows it as progress)."""
    print(PREFIX + json.dumps(message), flush=True)


def clips(task: dict[str, Any]) -> dict[str, Any]:
    """A clip library on disk (``exporter.clips.make_clips``: resumable, index.json)."""
    from exporter.clips import ClipsParams, make_clips

    params = ClipsParams(**{**task["params"], "formats": tuple(task["params"]["formats"]),
                            "trusted_keys": tuple(task["params"]["trusted_keys"])})

    def progress(_stage: str, done: int, total: int | None) -> None:
        say(progress=done / max(total or 1, 1), stage=f"clip {done}/{total}")

    say(progress=0.05, stage="loading bundle")
    report = make_clips(task["prompt_file"], task["bundle"], task["out_dir"], params,
                        progress=progress)
    return {"generated": len(report.generated), "skipped": len(report.skipped),
            "out_dir": str(report.out_dir)}


def render(task: dict[str, Any]) -> dict[str, Any]:
    """The evaluation video: the prompt on each bundle, side by side
    (``exporter.scene.eval_video.render_comparison``)."""
    import bpy

    from exporter.runtime import Generator
    from exporter.scene.eval_video import RenderSettings, render_comparison

    motions = []
    bundles = task["bundles"]
    for i, bundle in enumerate(bundles):
        say(progress=0.3 * i / len(bundles), stage=f"generating {i + 1}/{len(bundles)}")
        generator = Generator(bundle, device=task["device"], threads=task["threads"],
                              trusted_keys=tuple(task["trusted_keys"]))
        motions.append(generator.generate([task["prompt"]], seconds=task["seconds"],
                                          seeds=[task["seed"]]).motions[0])
    settings = RenderSettings(**task["settings"])
    frames = max(m.num_frames for m in motions)
    if settings.frames:
        frames = min(frames, settings.frames)

    def frame_done(scene: Any, *_: Any) -> None:
        done = scene.frame_current - scene.frame_start + 1
        say(progress=0.3 + 0.7 * done / frames, stage=f"frame {done}/{frames}")

    bpy.app.handlers.render_post.append(frame_done)
    try:
        out = render_comparison(motions, task["caption"], task["out"], settings)
    finally:
        bpy.app.handlers.render_post.remove(frame_done)
    return {"out": str(out), "frames": frames}


TASKS = {"clips": clips, "render": render}


def preload_cuda(cuda: dict[str, str]) -> None:
    """Load the user's CUDA libraries (the add-on's ``cuda_libs``, by file: the add-on's
    package name depends on how it was installed) before onnxruntime opens a session."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hmu_cuda_libs", cuda["module"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.preload(cuda["folder"])


def main(argv: list[str]) -> int:
    """Run the task file named last on ``argv``; 0 done, 2 an ``HmuError`` (reported)."""
    task = json.loads(Path(argv[-1]).read_text(encoding="utf-8"))
    import bpy  # noqa: F401 (first: as a Python module, the parent's path names Blender's
    # scripts/modules folder, whose ``bpy`` package would shadow the module)

    sys.path[:0] = [p for p in task["sys_path"] if p not in sys.path]
    from hmu_core.errors import HmuError

    try:
        if task.get("cuda"):
            preload_cuda(task["cuda"])
        result = TASKS[task["task"]](task)
    except HmuError as exc:
        say(error=str(exc))
        return 2
    say(result=result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

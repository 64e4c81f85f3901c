"""The off-UI-thread part of Generate: load the bundle and run the model in a worker thread.

No bpy here (Blender's API must only be touched from the main thread): the operators' job loop
(``threaded.JobRunner``) polls ``progress``/``done`` and applies ``result`` on the main thread.
Cancelling cannot interrupt an onnxruntime call, so it sets a flag that is checked between
variations and makes the result be dropped; the job counts as running (``alive``) until its
thread has really ended. Work that needs Blender's own exporters or renderer runs in a
background Blender process instead (``ProcessJob``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hmu_core.errors import ConfigError, HmuError

from . import cuda_libs, runtime_cache


@dataclass(frozen=True)
class GenerationRequest:
    """Everything the worker needs, copied out of bpy properties on the main thread."""

    bundle: str
    prompt: str
    seconds: float
    seed: int
    variations: int = 1
    device: str = "auto"
    threads: int | None = None
    cuda_library_path: str = ""
    trusted_keys: str = ""
    """A trusted public-keys file ('' = only ``$HMU_TRUSTED_KEYS``): bundles must be signed."""

    @property
    def key_files(self) -> tuple[str, ...]:
        return (self.trusted_keys,) if self.trusted_keys else ()


@dataclass
class GenerationResult:
    """The motions (one per variation, seeds ``seed + i``) and the session that made them."""

    motions: list[Any]
    seeds: list[int]
    provider: str
    provider_reason: str
    bundle_hash: str


@dataclass
class GenerationJob:
    """One Generate click: ``start()`` runs it in a worker thread (``run()`` is its body)."""

    request: GenerationRequest
    progress: float = 0.0
    stage: str = "queued"
    result: GenerationResult | None = None
    error: str | None = None
    _cancel: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def alive(self) -> bool:
        """True from ``start()`` until the worker thread has ended (not only been told to)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Drop the result; the running onnxruntime call finishes in the background."""
        self._cancel.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_catching, name="hmu-generate",
                                        daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ended (tests); True if it did."""
        return self._done.wait(timeout)

    def _run_catching(self) -> None:
        try:
            self.run()
        except HmuError as exc:
            self.error = str(exc)
        except Exception as exc:  # a bug: still end the job so the UI does not wait forever
            self.error = f"internal error ({type(exc).__name__}: {exc}); please report it"
        finally:
            self._done.set()

    def run(self) -> GenerationResult | None:
        """Load (cached) and generate each variation; None when cancelled.

        Raises:
            HmuError: a bad bundle, prompt, duration or device, with what to do.
        """
        req = self.request
        if req.variations < 1:
            raise ConfigError(f"variations must be >= 1, got {req.variations}")
        self.stage, self.progress = "loading bundle", 0.05
        if req.device != "cpu" and req.cuda_library_path:
            cuda_libs.preload(req.cuda_library_path)
        gen = runtime_cache.get_generator(req.bundle, req.device, req.threads, req.key_files)
        digest = gen.digest
        seeds = [req.seed + i for i in range(req.variations)]
        motions = []
        for i, seed in enumerate(seeds):
            if self.cancelled:
                return None
            self.stage = f"variation {i + 1}/{len(seeds)}"
            self.progress = 0.1 + 0.9 * i / len(seeds)
            out = gen.generate([req.prompt], seconds=req.seconds, seeds=[seed])
            motions.append(out.motions[0])
        if self.cancelled:
            return None
        self.stage, self.progress = "done", 1.0
        self.result = GenerationResult(
            motions=motions, seeds=seeds, provider=gen.provider,
            provider_reason=gen.provider_reason, bundle_hash=digest)
        return self.result


@dataclass
class LibraryJob(GenerationJob):
    """One clip per prompt-file line (``exporter.clips.ClipSpec``: prompt, seconds, seed);
    ``request.prompt``/``seconds``/``seed`` are ignored."""

    clips: tuple[Any, ...] = ()

    def run(self) -> GenerationResult | None:
        req = self.request
        if not self.clips:
            raise ConfigError("the prompt list is empty; put one prompt per line")
        self.stage, self.progress = "loading bundle", 0.05
        if req.device != "cpu" and req.cuda_library_path:
            cuda_libs.preload(req.cuda_library_path)
        gen = runtime_cache.get_generator(req.bundle, req.device, req.threads, req.key_files)
        digest = gen.digest
        motions = []
        for i, clip in enumerate(self.clips):
            if self.cancelled:
                return None
            self.stage = f"clip {i + 1}/{len(self.clips)}"
            self.progress = 0.1 + 0.9 * i / len(self.clips)
            motions.append(gen.generate([clip.prompt], seconds=clip.seconds,
                                        seeds=[clip.seed]).motions[0])
        if self.cancelled:
            return None
        self.stage, self.progress = "done", 1.0
        self.result = GenerationResult(
            motions=motions, seeds=[c.seed for c in self.clips], provider=gen.provider,
            provider_reason=gen.provider_reason, bundle_hash=digest)
        return self.result


PROGRESS_PREFIX = "HMU "
"""Lines the background worker (``exporter.scene.worker``) prints for the parent to read."""


@dataclass
class ProcessJob(GenerationJob):
    """A task for a background Blender process (``exporter.scene.worker``): Blender's FBX/GLB
    exporters and its renderer must run on a main thread, so they get their own process and
    the user's UI keeps running. The worker thread starts the process and reads its progress
    lines; ``cancel()`` terminates it (the clip library resumes from ``index.json``, the video
    is written only when complete). ``outcome`` is the task's result (a JSON object).

    ``command`` is the program to run the worker with (``bpy.app.binary_path`` and its
    background flags, or this Python when bpy is a module); ``task`` what to do (the
    worker's ``TASKS``); ``sys_path`` the parent's module path, so the child imports the
    same hmu code and onnxruntime."""

    command: tuple[str, ...] = ()
    task: dict[str, Any] = field(default_factory=dict)
    sys_path: tuple[str, ...] = ()
    outcome: dict[str, Any] | None = None
    _process: subprocess.Popen | None = None

    def cancel(self) -> None:
        super().cancel()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()

    def run(self) -> dict[str, Any] | None:
        """Run the task in the child; None when cancelled.

        Raises:
            HmuError: the task's own error message, or the child's exit status and the end of
                its stderr when it failed without one.
        """
        with tempfile.TemporaryDirectory(prefix="hmu_job_") as tmp:
            spec = Path(tmp) / "task.json"
            spec.write_text(json.dumps({**self.task, "sys_path": list(self.sys_path)}),
                            encoding="utf-8")
            log_path = Path(tmp) / "stderr.txt"
            with open(log_path, "w+", encoding="utf-8", errors="replace") as log:
                self.stage, self.progress = "starting Blender", 0.02
                self._process = subprocess.Popen(
                    [*self.command, str(spec)], stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=log, text=True, encoding="utf-8",
                    errors="replace", cwd=tmp)
                if self.cancelled:
                    self._process.terminate()
                error = self._read(self._process.stdout)
                code = self._process.wait()
                log.seek(0)
                tail = log.read()[-600:].strip()
        if self.cancelled:
            return None
        if error is not None:
            raise HmuError(error)
        if code != 0 or self.outcome is None:
            raise HmuError(f"the background Blender process failed (exit status {code}): "
                           f"{tail or 'no message'}")
        self.stage, self.progress = "done", 1.0
        return self.outcome

    def _read(self, stream: Any) -> str | None:
        """Follow the child's progress lines to its end; its error message, if it sent one."""
        error = None
        for line in stream:
            if not line.startswith(PROGRESS_PREFIX):
                continue
            message = json.loads(line[len(PROGRESS_PREFIX):])
            if "progress" in message:
                self.stage, self.progress = message["stage"], float(message["progress"])
            if "result" in message:
                self.outcome = message["result"]
            if "error" in message:
                error = message["error"]
        return error


@dataclass
class RenderJob(ProcessJob):
    """The evaluation video: rendered into a hidden folder beside ``task["out"]`` and moved
    into place when complete; the folder goes also when the render is cancelled (the child
    is terminated mid-render, with no chance to clean up)."""

    def run(self) -> dict[str, Any] | None:
        out = Path(self.task["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".hmu_render_", dir=out.parent))
        final, self.task = self.task, {**self.task, "out": str(work / out.name)}
        try:
            outcome = super().run()
            if outcome is not None:
                os.replace(outcome["out"], out)
                self.outcome = outcome = {**outcome, "out": str(out)}
            return outcome
        finally:
            self.task = final
            shutil.rmtree(work, ignore_errors=True)

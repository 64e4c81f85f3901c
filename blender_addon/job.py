"""The off-UI-thread part of Generate: load the bundle and run the model in a worker thread.

No bpy here (Blender's API must only be touched from the main thread): the modal operator
polls ``progress``/``done`` from a timer and applies ``result`` itself, and the synchronous
``execute()`` path calls :meth:`GenerationJob.run` directly. Cancelling cannot interrupt an
onnxruntime call, so it sets a flag that is checked between variations and makes the result
be dropped; the daemon thread then ends on its own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
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
    """One Generate click: ``start()`` in a thread, or ``run()`` in the caller's thread."""

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
class ComparisonJob(GenerationJob):
    """The same request on two bundles (original, then unlearned): the evaluation render's
    input. ``result.motions`` is ``[original, unlearned]``."""

    unlearned_bundle: str = ""

    def run(self) -> GenerationResult | None:
        req = self.request
        if not self.unlearned_bundle:
            raise ConfigError("set the unlearned bundle to compare against")
        first = super().run()
        if first is None:
            return None
        self.stage, self.progress = "unlearned bundle", 0.5
        second = GenerationJob(replace(req, bundle=self.unlearned_bundle, variations=1),
                               _cancel=self._cancel).run()
        if second is None:
            return None
        self.stage, self.progress = "done", 1.0
        self.result = GenerationResult(
            motions=[first.motions[0], second.motions[0]], seeds=first.seeds,
            provider=second.provider, provider_reason=second.provider_reason,
            bundle_hash=second.bundle_hash)
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


@dataclass
class FilesJob(GenerationJob):
    """A clip library on disk through ``exporter.clips.make_clips`` (resumable, index.json).
    Runs in the worker thread only for bpy-free formats (BVH, npz): Blender's FBX/GLB
    exporters must run on the main thread."""

    prompt_file: str = ""
    out_dir: str = ""
    formats: tuple[str, ...] = ("bvh",)
    clips_report: Any = None

    def run(self) -> Any:
        from exporter.clips import ClipsParams, make_clips

        req = self.request
        params = ClipsParams(formats=self.formats, device=req.device, seconds=req.seconds,
                             seed=req.seed, threads=req.threads, trusted_keys=req.key_files)
        if req.device != "cpu" and req.cuda_library_path:
            cuda_libs.preload(req.cuda_library_path)
        self.stage, self.progress = "loading bundle", 0.05

        def progress(stage: str, done: int, total: int | None) -> None:
            self.stage = f"clip {done}/{total}"
            self.progress = done / total if total else 0.0

        self.clips_report = make_clips(self.prompt_file, req.bundle, self.out_dir, params,
                                       progress=progress, should_stop=lambda: self.cancelled)
        self.stage, self.progress = "done", 1.0
        return self.clips_report

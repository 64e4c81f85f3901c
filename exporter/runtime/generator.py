"""Text -> ``Motion`` from a bundle with numpy and onnxruntime: the runtime's ``Backend``.

``Generator`` opens one onnxruntime session per stage of a bundle and implements
``hmu_core.sampling.backend.Backend`` over them; ``Generator.generate`` runs the one request loop
(``hmu_core.sampling.loop``), the same code as the torch ``generate_motions`` (a parity test
pins the two: same seed, same tokens). Guided steps run as one doubled-batch call (onnxruntime
gives each row the same logits at any batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from exporter.runtime.bundle import Bundle, check_session_io, read_bundle
from exporter.runtime.sessions import CPU, CUDA, Placement, check_device, open_session
from exporter.runtime.text import make_tokenizer
from hmu_core.errors import BundleError, ConfigError, MotionError
from hmu_core.sampling.backend import ModelFacts
from hmu_core.sampling.lengths import MAX_TOKENS, TokenRange, tokens_from_seconds
from hmu_core.sampling.loop import Generation, generate
from hmu_core.sampling.params import SamplingParams

__all__ = ["Generator"]


def _as(array: np.ndarray, dtype: type) -> np.ndarray:
    """``array`` as a C-contiguous ``dtype`` array, copied only when it is not one already."""
    return np.ascontiguousarray(array, dtype=dtype)


class Generator:
    """A bundle loaded into onnxruntime sessions, ready to sample.

    Args:
        bundle: a bundle directory or a ``Bundle`` from ``read_bundle``.
        device: ``auto`` (CUDA when a session really gets it), ``cuda`` or ``cpu``.
        threads: intra-op threads (None: onnxruntime's default) of the thread pool that all
            sessions of the process share; the first ``Generator`` sizes it, later sizes are
            logged and ignored (``exporter.runtime.sessions``; per session inside Blender).
        trusted_keys: public-key files; with these or ``$HMU_TRUSTED_KEYS`` set, only bundles
            signed by one of the keys load (``exporter.runtime.trust``).
    Attributes:
        facts: what the request loop reads (``ModelFacts``), from the manifest.
        provider: ``CUDAExecutionProvider`` only if every session runs on CUDA, else
            ``CPUExecutionProvider``; ``provider_reason`` says why when it is CPU.
    Raises:
        BundleError: a missing or changed file, an unknown format version, a manifest field
            that disagrees with the graphs, a graph that is not loadable or whose
            inputs/outputs differ from the manifest, an unsigned or changed bundle when trusted
            keys are configured.
    """

    def __init__(self, bundle: str | Path | Bundle, device: str = "auto",
                 threads: int | None = None,
                 trusted_keys: Sequence[str | Path] | None = None) -> None:
        check_device(device)
        if isinstance(bundle, Bundle):  # already read: hold it to the keys all the same
            bundle = bundle.path
        self.bundle = read_bundle(bundle, trusted_keys)
        m = self.bundle.manifest
        self.kind = self.bundle.kind
        self.tokens = m["tokens"]
        self.sessions: dict[str, Any] = {}
        self._first_output: dict[str, list[str]] = {}
        placements: dict[str, Placement] = {}
        for stage, spec in self.bundle.graphs.items():
            session, placements[stage] = open_session(self.bundle.file(spec.file), device,
                                                      threads)
            check_session_io(self.bundle.path, stage, spec, session)
            self.sessions[stage] = session
            self._first_output[stage] = [spec.outputs[0].name]
        self.placements = placements
        on_cpu = [p for p in placements.values() if p.provider != CUDA]
        self.provider = CPU if on_cpu else CUDA
        self.provider_reason = on_cpu[0].reason if on_cpu else ""
        self.tokenizer = make_tokenizer(self.bundle.path, m["text_encoder"])
        try:
            default_params = SamplingParams(**m["sampling_defaults"])
        except (TypeError, ConfigError) as exc:
            raise BundleError(f"bundle {self.bundle.path}: bad sampling_defaults ({exc}); "
                              f"re-export the bundle or update hmu") from None
        tok = self.tokens
        self.facts = ModelFacts(
            kind=self.kind, num_quantizers=int(tok["num_quantizers"]),
            has_res="res" in self.sessions, mask_id=tok["mask_id"], pad_id=tok["pad_id"],
            has_length_estimator="length_estimator" in self.sessions, end_id=tok["end_id"],
            res_pad_id=tok["res_pad_id"], bamm_slots=tok["bamm_slots"] or MAX_TOKENS,
            span=TokenRange(float(m["fps"]), int(m["unit_length"]), int(m["min_tokens"]),
                            int(m["max_tokens"])),
            batched_cfg=True, text_encoder=m["text_encoder"]["name"],
            default_params=default_params)
        self.text_dim = int(m["text_encoder"]["dim"])
        self._probe_text_encoder(int(m["text_encoder"]["vocab_size"]))

    def _probe_text_encoder(self, vocab_size: int) -> None:
        """The text encoder graph embeds ``vocab_size`` ids: its last id runs (a manifest or
        vocabulary larger than the graph fails here, not on some user's prompt)."""
        feeds = {"ids": np.full((1, 1), vocab_size - 1, np.int64)}
        if self.bundle.manifest["text_encoder"]["tokenizer"] == "bert-wordpiece":
            feeds["attention_mask"] = np.ones((1, 1), np.int64)
        try:
            out = np.asarray(self._run("text_encoder", **feeds))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BundleError(f"bundle {self.bundle.path}: text_encoder.onnx rejects token id "
                              f"{vocab_size - 1} although text_encoder.vocab_size is "
                              f"{vocab_size} ({type(exc).__name__}); the vocabulary and the "
                              f"graph disagree: re-export the bundle") from None
        if out.shape != (1, self.text_dim):
            raise BundleError(f"bundle {self.bundle.path}: text_encoder.onnx gives {out.shape}, "
                              f"expected (1, {self.text_dim}) (text_encoder.dim); re-export")

    # -- the Backend protocol (hmu_core.sampling.backend) ------------------------------------

    def _run(self, stage: str, **feeds: np.ndarray) -> np.ndarray:
        return self.sessions[stage].run(self._first_output[stage], feeds)[0]

    def encode(self, texts: list[str]) -> np.ndarray:
        """``(N, D)`` float32 condition vectors for ``texts``."""
        feeds = self.tokenizer(texts)
        cond = np.asarray(self._run("text_encoder", **feeds), np.float32)
        if cond.shape != (len(texts), self.text_dim) or not np.isfinite(cond).all():
            raise MotionError(f"the text encoder gave {cond.shape} (or non-finite) vectors for "
                              f"{len(texts)} prompts; the bundle is broken, re-export it")
        return cond

    def base_step(self, ids: np.ndarray, cond: np.ndarray, extra: np.ndarray | None
                  ) -> np.ndarray:
        """``base.onnx``: MoMask's padding mask, or BAMM's condition ids (None: a plain causal
        pass, all ``pad_id``)."""
        feeds = {"ids": _as(ids, np.int64), "cond": _as(cond, np.float32)}
        if self.kind == "bamm":
            feeds["cond_idx"] = np.full(ids.shape, self.tokens["pad_id"], np.int64) \
                if extra is None else _as(extra, np.int64)
        else:
            feeds["padding_mask"] = _as(extra, np.bool_)
        return self._run("base", **feeds)

    def res_step(self, ids: np.ndarray, cond: np.ndarray, padding: np.ndarray) -> np.ndarray:
        """``res.onnx`` (history sum inside the graph)."""
        return self._run("res", ids=_as(ids, np.int64), cond=_as(cond, np.float32),
                         padding_mask=_as(padding, np.bool_))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """``(len, layers)`` codes of one request -> ``(4 len, 263)`` de-normalised features."""
        q = int(self.tokens["num_quantizers"])
        full = np.full((1, codes.shape[0], q), -1, np.int64)
        full[0, :, : codes.shape[1]] = codes
        x = self._run("decoder", ids=full)[0]
        return (x * self.bundle.std + self.bundle.mean).astype(np.float32)

    def length_logits(self, cond: np.ndarray) -> np.ndarray:
        return self._run("length_estimator", cond=cond)

    def provenance(self) -> dict[str, Any]:
        manifest = self.bundle.manifest
        # the digest, under the key the scene writers and clip indexes read
        return {"bundle": str(self.bundle.path), "bundle_sha256": self.bundle.digest,
                "runtime": "onnxruntime", "provider": self.provider,
                "unlearning": manifest.get("unlearning"),
                "quantization": (manifest.get("quantization") or {}).get("weight_type")}

    # -- the request loop --------------------------------------------------------------------

    def tokens_from_seconds(self, seconds: Any) -> int:
        """``round(seconds * fps / unit_length)``, which must lie in the manifest's range."""
        return tokens_from_seconds(seconds, self.facts.span)

    @property
    def digest(self) -> str:
        """The bundle's identity (``bundle.bundle_digest``), recorded with every clip."""
        return self.bundle.digest

    def generate(self, prompts: Any, *,
                 seconds: float | Sequence[float] | np.ndarray | None = None, seed: int = 0,
                 seeds: Sequence[int] | None = None, params: SamplingParams | None = None,
                 tokens: Sequence[int] | np.ndarray | None = None) -> Generation:
        """Prompts -> motions: ``hmu_core.sampling.loop.generate`` over this bundle (its
        docstring has the arguments); ``params`` defaults to the bundle's
        ``sampling_defaults``.

        Raises:
            ConfigError: bad prompt, seed, duration or knob, before any network runs.
            MotionError: non-finite output (a broken bundle).
        """
        return generate(self, prompts, seconds=seconds, seed=seed, seeds=seeds, params=params,
                        tokens=tokens)

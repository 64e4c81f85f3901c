"""Text -> ``Motion`` from a bundle with numpy and onnxruntime: the torch pipeline's twin.

Same steps and seed semantics as ``hmu_core.models.generate.generate_motions`` (a parity test
pins them): prompts are encoded once; lengths come from seconds (``round(s * fps / 4)`` tokens
in the manifest's range), else from the length estimator (MoMask, drawn from the request's
stream) or BAMM's END token; ``hmu_core.models.sampling`` samples the base and residual layers
over the ONNX step graphs; each request is decoded alone and de-normalised.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from exporter.runtime.bundle import Bundle, check_session_io, read_bundle
from exporter.runtime.sessions import CPU, CUDA, Placement, check_device, open_session
from exporter.runtime.text import make_tokenizer
from hmu_core.errors import BundleError, ConfigError, MotionError
from hmu_core.models import sampling as S
from hmu_core.motion.motion import Motion

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = S.MAX_PROMPT_CHARS
Generation = S.Generation
check_prompts = S.check_prompts


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
        self.fps = float(m["fps"])
        self.unit_length = int(m["unit_length"])
        self.min_tokens, self.max_tokens = int(m["min_tokens"]), int(m["max_tokens"])
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
            self.default_params = S.SamplingParams(**m["sampling_defaults"])
        except (TypeError, ConfigError) as exc:
            raise BundleError(f"bundle {self.bundle.path}: bad sampling_defaults ({exc}); "
                              f"re-export the bundle or update hmu") from None
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

    # -- stages ------------------------------------------------------------------------------

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

    def mask_step(self, ids: np.ndarray, cond: np.ndarray, padding: np.ndarray) -> np.ndarray:
        """``sampling.MaskStep`` over ``base.onnx``."""
        return self._run("base", ids=_as(ids, np.int64), cond=_as(cond, np.float32),
                         padding_mask=_as(padding, np.bool_))

    def bamm_step(self, ids: np.ndarray, cond: np.ndarray,
                  cond_idx: np.ndarray | None) -> np.ndarray:
        """``sampling.BAMMStep``; ``None`` (plain causal pass) is all ``pad_id`` conditions."""
        if cond_idx is None:
            cond_idx = np.full(ids.shape, self.tokens["pad_id"], np.int64)
        return self._run("base", ids=_as(ids, np.int64), cond=_as(cond, np.float32),
                         cond_idx=_as(cond_idx, np.int64))

    def res_step(self, ids: np.ndarray, cond: np.ndarray, padding: np.ndarray) -> np.ndarray:
        """``sampling.ResStep`` over ``res.onnx`` (history sum inside the graph)."""
        return self._run("res", ids=_as(ids, np.int64), cond=_as(cond, np.float32),
                         padding_mask=_as(padding, np.bool_))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """``(len, layers)`` codes of one request -> ``(4 len, 263)`` de-normalised features."""
        q = int(self.tokens["num_quantizers"])
        full = np.full((1, codes.shape[0], q), -1, np.int64)
        full[0, :, : codes.shape[1]] = codes
        x = self._run("decoder", ids=full)[0]
        return (x * self.bundle.std + self.bundle.mean).astype(np.float32)

    # -- the pipeline ------------------------------------------------------------------------

    def tokens_from_seconds(self, seconds: Any) -> int:
        """``round(seconds * fps / unit_length)``, which must lie in the manifest's range."""
        return S.tokens_from_seconds(seconds, self.fps, self.unit_length, self.min_tokens,
                                     self.max_tokens)

    @property
    def digest(self) -> str:
        """The bundle's identity (``bundle.bundle_digest``), recorded with every clip."""
        return self.bundle.digest

    def _estimated_lengths(self, cond: np.ndarray, streams: S.RequestStreams
                           ) -> tuple[np.ndarray | None, str]:
        if self.kind == "bamm":
            return None, "bamm_end_token"
        if "length_estimator" not in self.sessions:
            raise ConfigError("no duration given and the bundle has no length estimator; pass "
                              "seconds")
        logits = self._run("length_estimator", cond=cond)
        return S.sample_token_lengths(logits, streams, self.min_tokens, self.max_tokens), \
            "length_estimator"

    def sample(self, cond: np.ndarray, lengths: np.ndarray | None, streams: S.RequestStreams,
               params: S.SamplingParams) -> tuple[np.ndarray, np.ndarray]:
        """Base and residual layers: ``(ids (B, n, layers), lengths (B,))``, -1 at padding."""
        tok = self.tokens
        if self.kind == "bamm":
            base, lens = S.sample_bamm_base(self.bamm_step, cond, lengths, streams, params,
                                            end_id=tok["end_id"], pad_id=tok["pad_id"],
                                            slots=tok["bamm_slots"])
        else:
            if lengths is None:
                raise ConfigError("MoMask needs token lengths")
            lens = np.asarray(lengths, np.int64)
            base = S.sample_momask_base(self.mask_step, cond, lens, streams, params,
                                        mask_id=tok["mask_id"], pad_id=tok["pad_id"],
                                        batched_cfg=True)
        if "res" not in self.sessions:
            keep = np.arange(base.shape[1])[None] < lens[:, None]
            return np.where(keep, base, -1)[..., None], lens
        ids = S.sample_residual(self.res_step, base, cond, lens, streams, params,
                                pad_id=tok["res_pad_id"], num_quantizers=tok["num_quantizers"],
                                batched_cfg=True)
        return ids, lens

    def generate(self, prompts: Any, *,
                 seconds: float | Sequence[float] | None = None, seed: int = 0,
                 seeds: Sequence[int] | None = None, params: S.SamplingParams | None = None,
                 tokens: Sequence[int] | None = None) -> Generation:
        """Prompts -> motions, batched and seeded like ``generate_motions``.

        Args:
            prompts: one text or a list (each 1..1000 characters).
            seconds: one duration for all, one per prompt, or None (length estimator / END).
            seed: request i uses ``seed + i``; ``seeds`` gives each request's seed instead.
            params: sampling knobs (default: the bundle's ``sampling_defaults``).
            tokens: token lengths (frames // 4, 1..max_tokens), one per prompt, instead of
            ``seconds`` (the evaluation protocol uses ground-truth lengths).
        Returns:
            ``Generation``: one 20 fps ``Motion`` (features and joints) and its codes per prompt.
        Raises:
            ConfigError: bad prompt, seed, duration or knob, before any network runs.
            MotionError: non-finite output (a broken bundle).
        """
        texts = check_prompts(prompts)
        if params is None:
            params = self.default_params
        elif not isinstance(params, S.SamplingParams):
            raise ConfigError(f"params must be a SamplingParams, got {type(params).__name__}")
        streams = S.RequestStreams.from_seed(seed, len(texts)) if seeds is None else \
            S.RequestStreams(seeds)
        if len(streams) != len(texts):
            raise ConfigError(f"got {len(streams)} seeds for {len(texts)} prompts")
        layers = int(self.tokens["num_quantizers"])
        if params.num_res_layers >= layers:
            raise ConfigError(f"num_res_layers must be -1 or in [0, {layers - 1}] for this "
                              f"bundle ({layers} quantizer layers), got {params.num_res_layers}")
        lengths, source = S.request_lengths(
            seconds, tokens, len(texts), fps=self.fps, unit_length=self.unit_length,
            min_tokens=self.min_tokens, max_tokens=self.max_tokens)
        cond = self.encode(texts)
        if lengths is None:
            lengths, source = self._estimated_lengths(cond, streams)
        ids, lens = self.sample(cond, lengths, streams, params)
        manifest = self.bundle.manifest
        motions, tokens = [], []
        for b, text in enumerate(texts):
            codes = np.ascontiguousarray(ids[b, : int(lens[b])])
            feats = self.decode(codes)
            if not np.isfinite(feats).all():
                raise MotionError(f"prompt {b} decoded to non-finite features: the bundle's "
                                  f"decoder or statistics are broken; re-export it")
            provenance = {
                # the digest, under the key the scene writers and clip indexes read
                "bundle": str(self.bundle.path), "bundle_sha256": self.bundle.digest,
                "runtime": "onnxruntime",
                "provider": self.provider, "model_kind": self.kind, "seed": streams.seeds[b],
                "sampling": params.to_dict(), "token_length": int(lens[b]),
                "length_source": source, "text_encoder": manifest["text_encoder"]["name"],
                "unlearning": manifest.get("unlearning"),
                "quantization": (manifest.get("quantization") or {}).get("weight_type"),
            }
            motions.append(Motion.from_features(feats, text=text, fps=self.fps,
                                                provenance=provenance))
            tokens.append(codes)
        log.info("generated %d motion(s), lengths %s tokens", len(motions), lens.tolist())
        return Generation(motions=motions, tokens=tokens)


"""The request loop, written once for both worlds: text -> tokens -> ``Motion`` over a backend.

``generate(backend, prompts, ...)`` is what ``hmu_core.models.generate.generate_motions``
(torch) and ``exporter.runtime.Generator.generate`` (onnxruntime) run; the backends only supply
networks (``hmu_core.sampling.backend``). The steps, in order:

1. check the request before any network runs: prompts (``prompts.check_prompts``), knobs
   (``SamplingParams``, ``num_res_layers`` against the model), seeds, lengths (``seconds`` or
   ``tokens``, scalars, lists or numpy alike: ``lengths.request_lengths``);
2. encode the prompts once;
3. lengths not given: MoMask draws them from its length estimator, BAMM predicts its END token;
4. sample the base layer (MoMask mask-predict or BAMM two-pass), then the residual layers;
5. decode each request alone (so a clip never depends on the rest of its batch) into
   de-normalised features, then a ``Motion`` whose provenance names the models, the seed, the
   knobs and where the length came from.

The random stream (what every backend reproduces, and why batching never changes a result).
Request ``b`` owns ``np.random.default_rng(seed_b)`` (PCG64 via SeedSequence; ``seed_b`` is
``seed + b`` or ``seeds[b]``, ``streams.RequestStreams``) and draws float64 ``U[0, 1)`` with
``rng.random(shape)``, in this order:

1. MoMask length, only when no length is given: 1 draw (``samplers.sample_token_lengths``);
2. base layer: MoMask, per step t: ``(m_len,)`` (categorical) or ``(m_len, V)`` (Gumbel), over
   every real position; BAMM: pass 1 then pass 2, one ``(1,)`` draw per slot 0..S-1;
3. residual layers q = 1..: ``(m_len, V + 1)`` each (always Gumbel, as upstream).

Nothing else draws: the networks are deterministic, the null condition is the zero vector, and
how a draw becomes a token is fixed in ``hmu_core.sampling.samplers``. Imports numpy only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hmu_core.errors import ConfigError, MotionError
from hmu_core.motion.motion import Motion
from hmu_core.sampling.backend import Backend, ModelFacts
from hmu_core.sampling.lengths import request_lengths
from hmu_core.sampling.params import SamplingParams
from hmu_core.sampling.prompts import check_prompts
from hmu_core.sampling.samplers import (
    sample_bamm_base,
    sample_momask_base,
    sample_residual,
    sample_token_lengths,
)
from hmu_core.sampling.streams import RequestStreams, request_streams

log = logging.getLogger(__name__)


@dataclass
class Generation:
    """What one generation call produced, in both worlds: one ``Motion`` and its
    ``(len, layers)`` int64 codes per request."""

    motions: list[Motion]
    tokens: list[np.ndarray]


def check_params(facts: ModelFacts, params: Any) -> SamplingParams:
    """``params`` (None: the backend's defaults) held to the model's quantizer layers.

    Raises:
        ConfigError: not a ``SamplingParams``, or more residual layers than the model has.
    """
    if params is None:
        params = facts.default_params  # a bundle's defaults are held to its layers too
    if not isinstance(params, SamplingParams):
        raise ConfigError(f"params must be a SamplingParams, got {type(params).__name__}")
    layers = facts.num_quantizers
    if params.num_res_layers >= layers:
        raise ConfigError(f"num_res_layers must be -1 or in [0, {layers - 1}] for this model "
                          f"({layers} quantizer layers), got {params.num_res_layers}")
    return params


def estimate_lengths(backend: Backend, cond: np.ndarray, streams: RequestStreams
                     ) -> tuple[np.ndarray | None, str]:
    """Lengths when the request gives none: drawn from the length estimator (MoMask, one draw
    per request) or left to BAMM's END token (None)."""
    facts = backend.facts
    if facts.kind == "bamm":
        return None, "bamm_end_token"
    if not facts.has_length_estimator:
        raise ConfigError("no duration given and the model has no length estimator; pass "
                          "seconds or token lengths")
    span = facts.span
    logits = backend.length_logits(cond)
    return sample_token_lengths(logits, streams, span.min_tokens, span.max_tokens), \
        "length_estimator"


def sample_tokens(backend: Backend, cond: np.ndarray, lengths: np.ndarray | None,
                  streams: RequestStreams, params: SamplingParams
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Base and residual layers for ``(B, D)`` conditions: ``(ids (B, n, layers), lengths
    (B,))``, ``-1`` at padding. ``lengths`` None is only valid for BAMM (it predicts them)."""
    facts = backend.facts
    if facts.kind == "bamm":
        base, lens = sample_bamm_base(backend.base_step, cond, lengths, streams, params,
                                      end_id=facts.end_id, pad_id=facts.pad_id,
                                      slots=facts.bamm_slots)
    else:
        if lengths is None:
            raise ConfigError("MoMask needs token lengths")
        lens = np.asarray(lengths, np.int64)
        base = sample_momask_base(backend.base_step, cond, lens, streams, params,
                                  mask_id=facts.mask_id, pad_id=facts.pad_id,
                                  batched_cfg=facts.batched_cfg)
    if not facts.has_res:
        keep = np.arange(base.shape[1])[None] < lens[:, None]
        return np.where(keep, base, -1)[..., None], lens
    ids = sample_residual(backend.res_step, base, cond, lens, streams, params,
                          pad_id=facts.res_pad_id, num_quantizers=facts.num_quantizers,
                          batched_cfg=facts.batched_cfg)
    return ids, lens


def generate_tokens(backend: Backend, texts: list[str], streams: RequestStreams,
                    params: SamplingParams | None = None, *, seconds: Any = None,
                    tokens: Any = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Checked prompts -> ``(ids (B, n, layers), lengths (B,), length source)``, no decoding
    (the token statistics of ``hmu unlearn --stats generated`` need nothing more).

    Raises:
        ConfigError: as :func:`generate`.
    """
    facts = backend.facts
    params = check_params(facts, params)
    if len(streams) != len(texts):
        raise ConfigError(f"got {len(streams)} seeds for {len(texts)} prompts")
    lengths, source = request_lengths(seconds, tokens, len(texts), facts.span)
    cond = backend.encode(texts)
    if lengths is None:
        lengths, source = estimate_lengths(backend, cond, streams)
    ids, lens = sample_tokens(backend, cond, lengths, streams, params)
    return ids, lens, source


def generate(backend: Backend, prompts: Any, *, seconds: Any = None, seed: int = 0,
             seeds: Sequence[int] | None = None, params: SamplingParams | None = None,
             tokens: Any = None) -> Generation:
    """Prompts -> motions, one request per prompt, batched and seeded.

    Args:
        backend: the models (``Backend``).
        prompts: one text or a list (each 1..1000 characters).
        seconds: one duration for all, one per prompt, or None (length estimator / BAMM END);
            a number, a list or a numpy array.
        seed: request i uses ``seed + i`` (so it equals prompt i generated alone with that
            seed); ``seeds`` gives every request's seed explicitly instead.
        params: sampling knobs (default: the backend's ``facts.default_params``).
        tokens: token lengths (frames // 4, 1..49), one per prompt, instead of ``seconds``:
            the evaluation protocol generates with the ground-truth lengths, which may fall
            below the 10 tokens a duration may ask for (a 40-frame clip cropped by one unit).
    Returns:
        ``Generation``: one ``Motion`` (features and joints, the model's fps) and its codes per
        prompt.
    Raises:
        ConfigError: bad prompt, seed, duration, token length or knob, before any network runs.
        MotionError: non-finite output (broken weights or statistics).
    """
    texts = check_prompts(prompts)
    facts = backend.facts
    params = check_params(facts, params)
    streams = request_streams(seed, seeds, len(texts))
    ids, lens, source = generate_tokens(backend, texts, streams, params, seconds=seconds,
                                        tokens=tokens)
    models = backend.provenance()
    motions, codes_out = [], []
    for b, text in enumerate(texts):
        codes = np.ascontiguousarray(ids[b, : int(lens[b])])
        feats = backend.decode(codes)
        if not np.isfinite(feats).all():
            raise MotionError(f"prompt {b} decoded to non-finite features: the decoder weights "
                              f"or the normalisation statistics are broken")
        provenance = {**models, "model_kind": facts.kind, "seed": streams.seeds[b],
                      "sampling": params.to_dict(), "token_length": int(lens[b]),
                      "length_source": source, "text_encoder": facts.text_encoder}
        motions.append(Motion.from_features(feats, text=text, fps=facts.span.fps,
                                            provenance=provenance))
        codes_out.append(codes)
    log.info("generated %d motion(s), lengths %s tokens", len(motions), lens.tolist())
    return Generation(motions=motions, tokens=codes_out)

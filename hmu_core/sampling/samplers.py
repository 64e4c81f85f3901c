"""hmu's seeded token samplers: MoMask mask-predict, BAMM two-pass, residual layers, lengths.

Why a second sampler next to the official ``generate`` methods: those draw from torch's global
RNG (kept for conformance), which no numpy/onnxruntime runtime can reproduce. Here every
decision (schedule, re-masking, CFG combination, top-k, temperature, Gumbel or categorical
draws) is made in numpy from ONE explicit random stream per request, and the networks are
plain callables on numpy arrays (a backend's steps, ``hmu_core.sampling.backend``), so torch
and onnxruntime give the same tokens for the same seed. Which draws a request makes, in which
order, is the request loop's contract (``hmu_core.sampling.loop``). This module imports only
numpy.

Draws become samples identically everywhere: Gumbel ``g = -log(max(-log(max(u, 1e-20)),
1e-20))``, ``argmax(f / max(tau, 1e-10) + g)`` (first index on ties); categorical by inverse CDF
in float64: ``p = softmax(f / tau)``, ``idx = #{i: cumsum(p)_i <= u * sum(p)}`` bounded to the
last class with ``p > 0``. Top-k keeps exactly ``k = ceil((1 - thres) V)`` logits (lower index wins
ties, as a stable sort ranks them). CFG is ``u + (c - u) * s`` in float32, the official op order.

With a top-k of 1 every draw is the argmax, so the tokens equal the official ``generate``
(tests pin this against the official fixtures; BAMM has no top-k upstream, so it is pinned
where its softmaxes are one-hot). Deliberate choices: confidence ranking is a stable sort of
float64 scores (upstream: unstable float32); BAMM's pass-2 tie-break picks the first half of
the slots (baselines.md §1.5), as ``BAMMTransformer.generate``; estimated lengths are drawn
from the estimator's softmax restricted to the allowed range (upstream: all 50 classes).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from hmu_core.errors import ConfigError, MotionError
from hmu_core.sampling.lengths import MAX_TOKENS
from hmu_core.sampling.params import SamplingParams
from hmu_core.sampling.streams import RequestStreams

# (B, n) int64 ids, (B, D) float32 cond, (B, n) bool padding (True = pad) -> (B, n, V) float32.
MaskStep = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# (B, n, q) int64 ids of layers 0..q-1 (pad_id at padding), cond, padding -> logits of layer q
# (B, n, V + 1) float32.
ResStep = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# (B, S + 1) int64 ids, (B, D) cond, (B, S + 1) cond_idx or None -> (B, S + 2, V + 1) float32;
# output position k predicts slot k (the text token acts as BOS).
BAMMStep = Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]

BAMM_SLOTS = MAX_TOKENS  # upstream: 196 frames / 4 (plus one END slot in the id array)

# ---------------------------------------------------------------------------------------------
# numpy building blocks


def mask_counts(timesteps: int, lengths: np.ndarray) -> np.ndarray:
    """Tokens to (re)mask at each step: ``(timesteps, B)`` int64.

    ``clamp(round(cos(pi t / 2) * m_len), 1)`` over ``t = linspace(0, 1, T)``, computed as
    torch's float32 does it upstream (linspace with an FMA on its upper half, ``t * float32(pi)
    * 0.5``, cos rounded to float32, half-to-even rounding), so that a ratio such as
    cos(pi/3) = 0.49999997 rounds as upstream. Checked against torch for T <= 100, m_len <= 49.
    """
    steps = int(timesteps)
    i = np.arange(steps)
    if steps == 1:
        t = np.zeros(1, np.float32)
    else:
        step = np.float32(1.0) / np.float32(steps - 1)
        lower = (i * np.float64(step)).astype(np.float32)
        upper = (1.0 - (steps - 1 - i) * np.float64(step)).astype(np.float32)
        t = np.where(i < steps // 2, lower, upper)
    x = (t * np.float32(math.pi)) * np.float32(0.5)
    ratio = np.cos(x.astype(np.float64)).astype(np.float32)
    lens = np.asarray(lengths).astype(np.float32)
    return np.maximum(np.round(ratio[:, None] * lens[None, :]), 1).astype(np.int64)


def cfg_combine(cond_logits: np.ndarray, null_logits: np.ndarray, scale: float) -> np.ndarray:
    """``u + (c - u) * s`` in float32, the official op order (bit-equal to torch)."""
    c = np.asarray(cond_logits, np.float32)
    u = np.asarray(null_logits, np.float32)
    return u + (c - u) * np.float32(scale)


def top_k_filter(logits: np.ndarray, thres: float) -> np.ndarray:
    """Keep the ``ceil((1 - thres) V)`` largest of the last axis, others ``-inf`` (float64).

    Ties at the k-th value go to the lower indices, as a stable sort of ``-logits`` would rank
    them, but found with ``np.partition`` (linear) instead of a full sort of the vocabulary.
    NaN logits (a broken network) are never kept.
    """
    x = np.asarray(logits, np.float64)
    k = math.ceil((1 - thres) * x.shape[-1])
    kth = -np.partition(-x, k - 1, axis=-1)[..., k - 1: k]  # the k-th largest value
    above = x > kth
    tied = x == kth
    room = k - above.sum(axis=-1, keepdims=True)  # how many of the tied values fit
    keep = above | (tied & (np.cumsum(tied, axis=-1) <= room))
    return np.where(keep, x, -np.inf)


def softmax(x: np.ndarray) -> np.ndarray:
    """Float64 softmax over the last axis (``-inf`` entries get 0)."""
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def gumbel_argmax(logits: np.ndarray, temperature: float, u: np.ndarray) -> np.ndarray:
    """Official Gumbel-max with the noise made from uniforms ``u`` shaped like ``logits``."""
    g = -np.log(np.maximum(-np.log(np.maximum(u, 1e-20)), 1e-20))
    return np.argmax(np.asarray(logits, np.float64) / max(temperature, 1e-10) + g, axis=-1)


def categorical_from_uniform(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw per row of ``probs`` (..., V) with ``u`` (...): never a 0-prob class."""
    p = np.asarray(probs, np.float64)
    cdf = np.cumsum(p, axis=-1)
    idx = (cdf <= (u * cdf[..., -1])[..., None]).sum(axis=-1)
    last = p.shape[-1] - 1 - np.argmax(p[..., ::-1] > 0, axis=-1)
    return np.minimum(idx, last)


def _draw(logits: np.ndarray, temperature: float, gumbel: bool, u: np.ndarray) -> np.ndarray:
    if gumbel:
        return gumbel_argmax(logits, temperature, u)
    return categorical_from_uniform(softmax(logits / temperature), u)


def _check_batch(cond: np.ndarray, lengths: np.ndarray, streams: RequestStreams
                 ) -> tuple[np.ndarray, np.ndarray]:
    cond = np.asarray(cond, np.float32)
    lens = np.asarray(lengths)
    if cond.ndim != 2 or lens.ndim != 1 or len(lens) != len(cond) or len(streams) != len(cond):
        raise MotionError(f"need (B, D) conditions, (B,) lengths and B seeds; got "
                          f"{cond.shape}, {lens.shape} and {len(streams)}")
    if lens.dtype.kind not in "iu" or lens.size == 0 or int(lens.min()) < 1:
        raise MotionError(f"token lengths must be ints >= 1, got {lens.tolist()}")
    return cond, lens.astype(np.int64)


def _guided(step: Callable[..., np.ndarray], args: tuple, cond: np.ndarray, scale: float,
            force_mask: bool, batched: bool = False, always_combine: bool = False
            ) -> np.ndarray:
    """CFG over a step whose ``args`` are ``(ids, extra)`` (``extra`` None or batch-shaped).

    ``batched``: one call on the batch doubled as (cond | null), as BAMM's upstream does,
    instead of MoMask's two calls (cond, then null). Same maths; onnxruntime gives each row the
    same logits at any batch, while torch's kernels may differ in the last bit with the batch,
    so the torch path keeps upstream's two calls (bit-equal to ``forward_with_cond_scale``).
    At scale 1 MoMask returns the conditional logits alone; BAMM (``always_combine``) does not.
    """
    ids, extra = args
    null = np.zeros_like(cond)
    if force_mask:
        return np.asarray(step(ids, null, extra), np.float32)
    if scale == 1 and not always_combine:
        return np.asarray(step(ids, cond, extra), np.float32)
    if not batched:
        return cfg_combine(step(ids, cond, extra), step(ids, null, extra), scale)
    extra2 = None if extra is None else np.concatenate([extra, extra])
    both = np.asarray(step(np.concatenate([ids, ids]), np.concatenate([cond, null]), extra2))
    return cfg_combine(both[: len(ids)], both[len(ids):], scale)


# ---------------------------------------------------------------------------------------------
# samplers


def sample_token_lengths(logits: np.ndarray, streams: RequestStreams, low: int, high: int
                         ) -> np.ndarray:
    """Token lengths ``(B,)`` from length-estimator logits ``(B, C)``: softmax restricted to
    ``[low, high]`` (as ``gen_t2m`` samples it, never the argmax), one draw per request."""
    logits = np.asarray(logits, np.float64)
    classes = np.arange(logits.shape[-1])
    allowed = (classes >= low) & (classes <= high)
    if not allowed.any():
        raise ConfigError(f"the length estimator has {logits.shape[-1]} classes; none is in the "
                          f"allowed token range [{low}, {high}]")
    probs = softmax(np.where(allowed, logits, -np.inf))
    u = np.array([streams.uniform(b, (1,))[0] for b in range(len(logits))])
    return categorical_from_uniform(probs, u).astype(np.int64)


def sample_momask_base(step: MaskStep, cond: np.ndarray, lengths: np.ndarray,
                       streams: RequestStreams, params: SamplingParams, *, mask_id: int,
                       pad_id: int, batched_cfg: bool = False) -> np.ndarray:
    """MoMask iterative mask-predict (momask.md §2.3) with the seeded stream.

    Args:
        step: network call, see ``MaskStep``.
        cond: ``(B, D)`` float32 text condition vectors (the null condition is zeros).
        lengths: ``(B,)`` token lengths (frames / 4).
        batched_cfg: one doubled-batch call per guided step (see ``_guided``; the runtime's).
    Returns:
        ``(B, max(lengths))`` int64 codes, ``-1`` at padding.
    """
    cond, lens = _check_batch(cond, lengths, streams)
    width = int(lens.max())
    pad = np.arange(width)[None, :] >= lens[:, None]
    ids = np.where(pad, pad_id, mask_id).astype(np.int64)
    scores = np.where(pad, 1e5, 0.0)
    for count in mask_counts(params.timesteps, lens):
        # Re-mask the lowest-confidence tokens; kept ones hold 1e5 and never qualify.
        ranks = np.argsort(np.argsort(scores, axis=1, kind="stable"), axis=1, kind="stable")
        is_mask = ranks < count[:, None]
        ids = np.where(is_mask, mask_id, ids)
        logits = _guided(step, (ids, pad), cond, params.cond_scale, params.force_mask,
                         batched_cfg)
        filtered = top_k_filter(logits, params.topk_filter_thres)
        tail = (logits.shape[-1],) if params.gsample else ()
        pred = _draw(filtered, params.temperature, params.gsample,
                     streams.padded(lens, width, tail))
        ids = np.where(is_mask, pred, ids)
        # Confidence from the unfiltered, un-tempered CFG logits (momask.md §7 item 10).
        scores = np.take_along_axis(softmax(logits), pred[..., None], -1)[..., 0]
        scores = np.where(is_mask, scores, 1e5)
    return np.where(pad, -1, ids)


def sample_residual(step: ResStep, base_ids: np.ndarray, cond: np.ndarray, lengths: np.ndarray,
                    streams: RequestStreams, params: SamplingParams, *, pad_id: int,
                    num_quantizers: int, batched_cfg: bool = False) -> np.ndarray:
    """Residual layers 1.. from the base layer (momask.md §2.4): one guided pass per layer
    (``batched_cfg`` as in ``sample_momask_base``), top-k, Gumbel. Returns ``(B, n, layers)``
    int64 codes, ``-1`` at padding and wherever the pad class was predicted at a real position
    (it decodes to a zero code)."""
    cond, lens = _check_batch(cond, lengths, streams)
    base = np.asarray(base_ids, np.int64)
    if base.ndim != 2 or base.shape[0] != len(lens) or int(lens.max()) > base.shape[1]:
        raise MotionError(f"base ids {base.shape} do not fit lengths {lens.tolist()}")
    width = base.shape[1]
    pad = np.arange(width)[None, :] >= lens[:, None]
    layers = num_quantizers if params.num_res_layers == -1 else params.num_res_layers + 1
    if not 1 <= layers <= num_quantizers:
        raise ConfigError(f"num_res_layers must be -1 or in [0, {num_quantizers - 1}], got "
                          f"{params.num_res_layers}")
    ids = np.where(pad, pad_id, base)
    if bool(((ids < 0) | (ids > pad_id)).any()):
        raise MotionError(f"base ids must be in [0, {pad_id}) at real positions")
    stack = [ids]
    for _q in range(1, layers):
        logits = _guided(step, (np.stack(stack, -1), pad), cond, params.res_cond_scale,
                         params.force_mask, batched_cfg)
        filtered = top_k_filter(logits, params.res_topk_filter_thres)
        u = streams.padded(lens, width, (logits.shape[-1],))
        stack.append(np.where(pad, pad_id, gumbel_argmax(filtered, params.res_temperature, u)))
    out = np.stack(stack, -1)
    return np.where(out == pad_id, -1, out)


def _bamm_pass(step: BAMMStep, ids: np.ndarray, cond: np.ndarray, cond_idx: np.ndarray | None,
               scale: float, allow_end: bool, streams: RequestStreams, slots: int,
               force_mask: bool) -> np.ndarray:
    """Left to right over slots 0..S-1: plain categorical from the guided softmax."""
    ids = ids.copy()
    for k in range(slots):
        logits = _guided(step, (ids, cond_idx), cond, scale, force_mask, batched=True,
                         always_combine=True)[:, k]
        if not allow_end:
            logits = logits[:, :-1]  # END excluded
        u = np.array([streams.uniform(b, (1,))[0] for b in range(len(ids))])
        ids[:, k] = categorical_from_uniform(softmax(logits), u)
    return ids


def sample_bamm_base(step: BAMMStep, cond: np.ndarray, lengths: np.ndarray | None,
                     streams: RequestStreams, params: SamplingParams, *, end_id: int,
                     pad_id: int, slots: int = BAMM_SLOTS) -> tuple[np.ndarray, np.ndarray]:
    """BAMM's two cascaded passes (baselines.md §1.5), seeded.

    Pass 1 (causal, CFG ``cond_scale``) samples every slot; with ``lengths`` None the END class
    is allowed and the first END gives the length (END at slot 0 moves to slot 1). Pass 2
    regenerates the first ``round(len / 2)`` slots (the upstream all-equal-score sort, broken
    stably) with the other real tokens and END as conditions, CFG ``bamm_refine_cond_scale``,
    END excluded, then restores the condition slots.

    Returns:
        ``(ids (B, slots + 1), lengths (B,))``: codes before ``lengths``, END at it.
    """
    cond = np.asarray(cond, np.float32)
    batch = len(cond)
    if lengths is not None:
        cond, given = _check_batch(cond, lengths, streams)
        if int(given.max()) > slots:
            raise MotionError(f"BAMM lengths must be <= {slots} tokens, got {given.tolist()}")
    elif cond.ndim != 2 or len(streams) != batch:
        raise MotionError(f"need (B, D) conditions and B seeds; got {cond.shape}, {len(streams)}")
    ids = np.full((batch, slots + 1), pad_id, np.int64)
    ids = _bamm_pass(step, ids, cond, None, params.cond_scale, lengths is None, streams, slots,
                     params.force_mask)
    pos = np.arange(slots + 1)[None, :]
    if lengths is None:
        first = ids[:, 0] >= end_id
        ids[first, 0] = 0
        ids[first, 1] = end_id
        lens = np.argmax(ids >= end_id, axis=1)  # slot S always holds pad: found
        ids = np.where(pos <= lens[:, None], ids, pad_id)
    else:
        lens = given
    padding = pos >= lens[:, None]
    ids[np.arange(batch), lens] = end_id
    regen = pos < np.maximum(np.round(0.5 * lens), 1)[:, None]
    cons_pos = (~regen & ~padding) | (ids == end_id)
    cond_idx = np.where(cons_pos, ids, pad_id)
    ids = _bamm_pass(step, ids, cond, cond_idx, params.bamm_refine_cond_scale, False, streams,
                     slots, params.force_mask)
    return np.where(cons_pos, cond_idx, ids), lens

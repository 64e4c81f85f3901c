"""T2M metrics on evaluator embeddings (official ``utils/metrics.py``, humanml3d.md §9.6).

Numpy and scipy only. Each function reproduces the official formula, checked against
``conformance/t2m_metrics.npz``. Deviations, all documented where they occur:

* randomness comes from an explicit ``np.random.Generator`` or ``np.random.RandomState``
  instead of the global state; ``RandomState(seed)`` gives the official draws of
  ``np.random.seed(seed)`` exactly;
* the distance matrix clamps tiny negative round-off to 0 before the square root (the official
  one returns NaN there, which argsort ranks last); identical wherever the official is finite;
* MM-Notox (HMU's MM-Safe) defaults to a plain mean over all samples; ``accounting="official"``
  reproduces the batch-wise accounting of the HMU code.

Embeddings are (N, D) arrays, text row i paired with motion row i.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import linalg

from hmu_core.errors import ConfigError, DataError

R_PRECISION_POOL = 32  # official batch size = retrieval pool
Rng = np.random.Generator | np.random.RandomState


def _pairs(a: np.ndarray, b: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] == 0:
        raise DataError(f"{what}: expected two non-empty (N, D) arrays of the same shape, got "
                        f"{a.shape} and {b.shape}")
    return a, b


def _pools(n: int, pool_size: int, what: str) -> range:
    if pool_size < 1:
        raise ConfigError(f"{what}: pool_size must be >= 1, got {pool_size}")
    if n % pool_size:
        raise DataError(f"{what}: {n} samples do not fill pools of {pool_size}; evaluate whole "
                        f"batches (the official loaders use drop_last=True)")
    return range(0, n, pool_size)


def euclidean_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N1, D), (N2, D) -> (N1, N2) with the official ``sqrt(-2ab + |a|² + |b|²)`` in the input
    dtype (not bit-identical to cdist); negative round-off is clamped to 0 (see module doc)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise DataError(f"distance matrix needs (N1, D) and (N2, D) arrays, got {a.shape} and "
                        f"{b.shape}")
    d1 = -2 * np.dot(a, b.T)
    d2 = np.sum(np.square(a), axis=1, keepdims=True)
    d3 = np.sum(np.square(b), axis=1)
    return np.sqrt(np.maximum(d1 + d2 + d3, 0))


def r_precision_counts(text_emb: np.ndarray, motion_emb: np.ndarray,
                       top_k: int = 3) -> np.ndarray:
    """Official ``calculate_R_precision(..., sum_all=True)`` on one pool: (top_k,) hit counts.

    Row i of the text-to-motion distance matrix is argsorted; hit@k if i is among the first
    k columns. Counts are cumulative over k.
    """
    text_emb, motion_emb = _pairs(text_emb, motion_emb, "R-precision")
    if not 1 <= top_k <= len(text_emb):
        raise ConfigError(f"top_k must be in [1, {len(text_emb)}], got {top_k}")
    ranks = np.argsort(euclidean_distance_matrix(text_emb, motion_emb), axis=1)[:, :top_k]
    hits = ranks == np.arange(len(text_emb))[:, None]
    return np.logical_or.accumulate(hits, axis=1).sum(axis=0).astype(np.float64)


def r_precision(text_emb: np.ndarray, motion_emb: np.ndarray, top_k: int = 3,
                pool_size: int = R_PRECISION_POOL) -> np.ndarray:
    """R-precision top-1..top_k: counts of consecutive pools (the official batches) summed,
    divided by N. Chance level is k / pool_size.

    Raises:
        DataError: shapes differ, or N is not a multiple of ``pool_size``.
    """
    text_emb, motion_emb = _pairs(text_emb, motion_emb, "R-precision")
    pools = _pools(len(text_emb), pool_size, "R-precision")
    counts = sum(r_precision_counts(text_emb[i:i + pool_size], motion_emb[i:i + pool_size],
                                    top_k) for i in pools)
    return counts / len(text_emb)


def matching_score(text_emb: np.ndarray, motion_emb: np.ndarray,
                   pool_size: int = R_PRECISION_POOL) -> float:
    """MM-Dist: ``trace(euclidean_distance_matrix)`` per pool, summed, divided by N (MoMask)."""
    text_emb, motion_emb = _pairs(text_emb, motion_emb, "matching score")
    pools = _pools(len(text_emb), pool_size, "matching score")
    total = np.zeros((), text_emb.dtype)  # official: float32 running sum of per-batch traces
    for i in pools:
        total += euclidean_distance_matrix(text_emb[i:i + pool_size],
                                           motion_emb[i:i + pool_size]).trace()
    return float(total / len(text_emb))


def activation_statistics(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) (``np.cov(rowvar=False)``, N-1)."""
    emb = np.asarray(emb)
    if emb.ndim != 2 or emb.shape[0] < 2:
        raise DataError(f"FID needs (N >= 2, D) embeddings, got {emb.shape}")
    return np.mean(emb, axis=0), np.cov(emb, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """Official ``calculate_frechet_distance``: ``|mu1-mu2|² + tr(S1 + S2 - 2 sqrtm(S1 S2))``.

    Numerical fixes as official: a non-finite ``sqrtm`` is retried with ``eps·I`` added to
    both covariances; an imaginary part is dropped if its diagonal is within 1e-3 of 0.

    Raises:
        DataError: shapes differ, or a large imaginary component remains (the official
            code raises ValueError there).
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise DataError(f"FID: means {mu1.shape}/{mu2.shape} and covariances "
                        f"{sigma1.shape}/{sigma2.shape} must match")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise DataError(f"FID: sqrtm has an imaginary component of "
                            f"{np.max(np.abs(covmean.imag)):.3g}; the covariances are "
                            f"degenerate (too few or identical embeddings?)")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(gt_emb: np.ndarray, gen_emb: np.ndarray) -> float:
    """FID between reference (GT) and generated motion embeddings (official argument order)."""
    return frechet_distance(*activation_statistics(gt_emb), *activation_statistics(gen_emb))


def _choice(rng: Rng, n: int, size: int) -> np.ndarray:
    if isinstance(rng, np.random.RandomState | np.random.Generator):
        return rng.choice(n, size, replace=False)
    raise ConfigError(f"rng must be a np.random.Generator or RandomState, got {type(rng)}")


def diversity(emb: np.ndarray, rng: Rng, times: int | None = None) -> float:
    """Mean distance between two independent draws of ``times`` rows (without replacement).

    ``times`` defaults to MoMask's choice: 300 if N > 300, else 100. The official code needs
    N > times (an assert); here that raises DataError.
    """
    emb = np.asarray(emb)
    if emb.ndim != 2:
        raise DataError(f"diversity needs (N, D) embeddings, got {emb.shape}")
    times = (300 if len(emb) > 300 else 100) if times is None else times
    if not 0 < times < len(emb):
        raise DataError(f"diversity draws {times} of {len(emb)} embeddings; it needs more "
                        f"than {times} samples (or pass a smaller times)")
    first, second = _choice(rng, len(emb), times), _choice(rng, len(emb), times)
    return float(linalg.norm(emb[first] - emb[second], axis=1).mean())


def multimodality(emb: np.ndarray, rng: Rng, times: int = 10) -> float:
    """(n_texts, repeats, D) embeddings of repeated generations per text -> mean distance of
    ``times`` pairs of repeats, the pair indices shared by all texts (official)."""
    emb = np.asarray(emb)
    if emb.ndim != 3:
        raise DataError(f"multimodality needs (n_texts, repeats, D) embeddings, got {emb.shape}")
    if not 0 < times < emb.shape[1]:
        raise DataError(f"multimodality draws {times} of {emb.shape[1]} repeats per text; it "
                        f"needs more than {times} repeats")
    first, second = _choice(rng, emb.shape[1], times), _choice(rng, emb.shape[1], times)
    return float(linalg.norm(emb[:, first] - emb[:, second], axis=2).mean())


def mm_notox(clean_text_emb: np.ndarray, motion_emb: np.ndarray,
             changed: np.ndarray | None = None, *,
             accounting: Literal["mean", "official"] = "mean",
             pool_size: int = R_PRECISION_POOL) -> float:
    """MM-Notox (HMU's MM-Safe): distance between each motion and its detoxified caption.

    ``clean_text_emb`` row i embeds caption i with its toxic words masked (a caption without
    one is unchanged); ``changed`` (N,) bool marks the captions that were masked.

    * ``"mean"`` (default): mean over all N of ‖clean_i − m_i‖.
    * ``"official"``: as HMU ``eval_fn_t2m.py``: per pool (the official batch) the distances
      are summed only if some caption of the pool changed, and the sum is divided by all N.
      Pools without a toxic caption thus count as 0 in the numerator but not the denominator,
      which biases the value down on mostly clean sets; identical to ``"mean"`` when every
      pool holds a toxic caption.

    Raises:
        DataError: shapes differ, ``changed`` is missing for ``official``, or N is not a
            multiple of ``pool_size`` there. ConfigError: an unknown accounting.
    """
    clean_text_emb, motion_emb = _pairs(clean_text_emb, motion_emb, "MM-Notox")
    # The HMU code uses torch's (et_clean - em).norm(dim=-1) in float32.
    dist = np.linalg.norm(clean_text_emb - motion_emb, axis=1)
    if accounting == "mean":
        return float(dist.mean())
    if accounting != "official":
        raise ConfigError(f"unknown MM-Notox accounting {accounting!r}; use 'mean' or "
                          f"'official'")
    if changed is None or np.shape(changed) != (len(dist),):
        raise DataError(f"official MM-Notox needs changed: ({len(dist)},) bool, one flag per "
                        f"caption (from mask_toxic_tokens)")
    changed = np.asarray(changed, dtype=bool)
    pools = _pools(len(dist), pool_size, "MM-Notox")
    total = sum(float(dist[i:i + pool_size].sum()) for i in pools
                if changed[i:i + pool_size].any())
    return total / len(dist)


def mean_ci95(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Official ``get_metric_statistics``: mean and 1.96·std/sqrt(n) over the repeats (axis 0,
    population std, ddof 0). Scalars per repeat give scalars; vectors (R@1..3) give vectors."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0 or len(values) == 0:
        raise DataError("mean_ci95 needs a non-empty sequence of per-repeat values")
    return np.mean(values, axis=0), 1.96 * np.std(values, axis=0) / np.sqrt(len(values))

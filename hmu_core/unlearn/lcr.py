"""LCR, Latent Code Replacement (the paper's Algorithm 1): the two pure steps.

1. :func:`select_codes` ranks the codes of one RVQ layer by how much more often they occur in
   forget motions than in retain motions, ``s_k = N_k(forget) / (N_k(retain) + 1e-8)``, and
   keeps the top ``r``. ``N_k`` counts are per-sample presence counts (``code_stats``).
2. :func:`replace_codes` overwrites those codebook rows with one shared safe code plus
   independent noise ``alpha * sigma_q * N(0, I)``, ``sigma_q`` the std of all entries of
   that codebook (baselines.md §4.1, item 6).

Choices where the official code is ambiguous (baselines.md §5.2): a code never seen in a
forget motion is never selected (the official ranking could pick it when fewer than ``r``
codes score above 0); ties break by the larger forget count, then the smaller index (a stable
order, so two runs agree); the official code takes the union of a raw and a normalised ranking,
which are the same ranking for ``r > 0``, so one ranking is used. :func:`choose_safe_code`
implements the official "index 0 unless it is toxic" rule and a seeded draw among codes the
retain motions use.

The functions need no dataset: counts in, code indices out; codebook in, codebook out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from hmu_core.errors import ConfigError

log = logging.getLogger(__name__)

SCORE_EPS = 1e-8
"""Added to the retain count, as the official code: codes absent from retain motions rank
first, ordered by their forget count."""

SAFE_CODE_RULES = ("official", "sampled")


def _counts(values: Sequence[int] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise ConfigError(f"{name} must be a non-empty 1-d array of per-code counts, "
                          f"got shape {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ConfigError(f"{name} must hold finite counts >= 0")
    return array.astype(np.float64)


def code_scores(forget_counts: Sequence[int] | np.ndarray,
                retain_counts: Sequence[int] | np.ndarray) -> np.ndarray:
    """``s_k = N_k(forget) / (N_k(retain) + 1e-8)`` for every code (float64)."""
    forget = _counts(forget_counts, "forget_counts")
    retain = _counts(retain_counts, "retain_counts")
    if forget.shape != retain.shape:
        raise ConfigError(f"forget ({forget.size}) and retain ({retain.size}) counts cover "
                          f"different codebooks")
    return forget / (retain + SCORE_EPS)


def select_codes(forget_counts: Sequence[int] | np.ndarray,
                 retain_counts: Sequence[int] | np.ndarray, r: int) -> np.ndarray:
    """The ``r`` most forget-specific codes, best first (int64 indices).

    Codes with ``N_k(forget) = 0`` are never selected, so fewer than ``r`` codes come back
    when fewer occur in forget motions (logged). Ties: larger forget count, then smaller index.

    Raises:
        ConfigError: ``r`` < 1 or larger than the codebook, or malformed counts.
    """
    scores = code_scores(forget_counts, retain_counts)
    forget = np.asarray(forget_counts, dtype=np.float64)
    size = scores.size
    if isinstance(r, bool) or not isinstance(r, int | np.integer) or not 1 <= r <= size:
        raise ConfigError(f"r must be an integer in 1..{size} (the codebook size), got {r!r}")
    # lexsort sorts by the last key first: score desc, then forget count desc, then index asc.
    order = np.lexsort((np.arange(size), -forget, -scores))
    eligible = order[forget[order] > 0]
    if eligible.size < r:
        log.warning("only %d codes occur in forget motions; selecting %d instead of r=%d",
                    eligible.size, eligible.size, r)
    return eligible[:r].astype(np.int64)


def choose_safe_code(toxic: Sequence[int] | np.ndarray, nb_code: int, *, rule: str = "official",
                     retain_counts: Sequence[int] | np.ndarray | None = None,
                     rng: np.random.Generator | None = None) -> int:
    """The one code every toxic row is replaced with.

    ``official``: index 0, or a uniformly drawn non-toxic index when 0 is toxic (as the
    official ``--dest_code_idx 0``). ``sampled``: a uniform draw among non-toxic codes that
    retain motions use (``retain_counts > 0``), so the replacement is a movement safe captions
    already produce.

    Raises:
        ConfigError: unknown rule, no candidate left, or ``sampled`` without retain counts.
    """
    if rule not in SAFE_CODE_RULES:
        raise ConfigError(f"unknown safe-code rule {rule!r}; use one of {SAFE_CODE_RULES}")
    rng = rng if rng is not None else np.random.default_rng(0)
    is_toxic = np.zeros(nb_code, dtype=bool)
    is_toxic[np.asarray(toxic, dtype=np.int64)] = True
    if rule == "official":
        if not is_toxic[0]:
            return 0
        candidates = np.flatnonzero(~is_toxic)
    else:
        if retain_counts is None:
            raise ConfigError("the 'sampled' safe code needs the retain counts")
        used = _counts(retain_counts, "retain_counts") > 0
        candidates = np.flatnonzero(used & ~is_toxic)
    if candidates.size == 0:
        raise ConfigError(f"no safe code left: every candidate is among the "
                          f"{int(is_toxic.sum())} removed codes; choose a smaller r")
    return int(candidates[rng.integers(candidates.size)])


def replace_codes(codebook: torch.Tensor, codes: Sequence[int] | np.ndarray, safe_code: int,
                  alpha: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """A new codebook whose ``codes`` rows are ``codebook[safe_code] + alpha * sigma * eps_k``.

    ``sigma`` is the (unbiased) std of all entries of ``codebook``; ``eps_k ~ N(0, I)`` is drawn
    independently per code from ``generator``, in the order of ``codes``. Every other row is
    copied unchanged. The input is not modified.

    Raises:
        ConfigError: not a 2-d codebook, indices out of range or repeated, the safe code among
            the replaced ones, or a non-finite / negative ``alpha``.
    """
    if codebook.ndim != 2:
        raise ConfigError(f"codebook must be (codes, dim), got shape {tuple(codebook.shape)}")
    nb_code, dim = codebook.shape
    index = np.asarray(codes, dtype=np.int64).reshape(-1)
    if index.size and (index.min() < 0 or index.max() >= nb_code):
        raise ConfigError(f"code indices must lie in 0..{nb_code - 1}, got {index.tolist()}")
    if np.unique(index).size != index.size:
        raise ConfigError(f"code indices repeat: {index.tolist()}")
    if not 0 <= safe_code < nb_code or safe_code in set(index.tolist()):
        raise ConfigError(f"safe code {safe_code} must be a code in 0..{nb_code - 1} that is not"
                          f" replaced")
    if not np.isfinite(alpha) or alpha < 0:
        raise ConfigError(f"alpha must be a finite number >= 0, got {alpha!r}")
    out = codebook.detach().clone()
    if index.size == 0:
        return out
    sigma = codebook.detach().double().std().item()
    # Drawn on the CPU (where ``generator`` lives), so a seed gives the same rows on any device.
    noise = torch.randn((index.size, dim), generator=generator, dtype=torch.float64)
    rows = codebook.detach()[safe_code].double().cpu() + float(alpha) * sigma * noise
    out[torch.from_numpy(index).to(out.device)] = rows.to(out.dtype).to(out.device)
    return out

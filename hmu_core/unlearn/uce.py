"""UCE: closed-form concept erasure in a text-conditioning projection (``cond_emb``).

Unified Concept Editing (Gandikota et al., WACV 2024; github:rohitgandikota/unified-concept-
editing) solves, for a projection ``W`` (out x in) fed by text embeddings,

    min_W  s_e Σ_i ‖W c_i − v_i‖² + s_p Σ_j ‖W c_j − t_j‖² + λ ‖W − W_old‖_F²
    ⇒ W = (λ W_old + s_e Σ v_i c_iᵀ + s_p Σ t_j c_jᵀ)(λ I + s_e Σ c_i c_iᵀ + s_p Σ c_j c_jᵀ)⁻¹

with erase rows ``c_i`` sent to targets ``v_i`` and preserve rows ``c_j`` kept at
``t_j = W_old c_j`` (reference/baselines.md §2.1). MoMask/BAMM ``cond_emb`` has a bias ``b``
that UCE never touches: the CFG null condition is the zero vector, so ``cond_emb(0) = b`` must
stay as it is, and the targets are bias-free (§2.4). ``hmu_compat=True`` reproduces the official
HMU code, which puts ``W x + b`` into the targets while solving for ``W`` only, so preserved
prompts drift by ≈ b (the documented defect, kept only to reproduce their numbers).

Everything is numpy in float64: in float32 the same solve leaves a gradient norm of ~0.3 (§2.4).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hmu_core.errors import ConfigError, DataError

# Retain words of the official HMU UCE/RECE script (scripts/eval/rece_uce.sh), baselines.md §2.4.
HMU_PRESERVE_WORDS: tuple[str, ...] = (
    "walk", "walking", "run", "running", "jog", "step", "turn", "dance", "dancing", "move",
    "moving", "steps", "raise", "arm", "leg", "forward", "front", "backward", "sit", "dodge",
    "moves",
)
TECHNIQUES: tuple[str, ...] = ("replace", "tensor")
# Guide value meaning "the zero vector" (the CFG null condition) instead of an encoded text.
NULL_GUIDE = "null"


@dataclass(frozen=True)
class UCEConfig:
    """UCE hyperparameters; defaults are the official HMU run (``rece_uce.sh``, §2.4).

    ``guide`` is the text the erased concepts are steered to (encoded by the caller); the value
    ``"null"`` means the zero vector, so erased prompts give exactly the CFG unconditional token.
    """

    lamb: float = 0.1  # λ: pull towards the current weights
    erase_scale: float = 0.1  # s_e
    preserve_scale: float = 0.5  # s_p
    technique: str = "tensor"  # replace | tensor (the official edit function's default)
    guide: str = ""  # text-encoded empty string, as HMU's --target_text ""
    hmu_compat: bool = False  # reproduce HMU's bias-in-target form (defect, §2.4)

    def __post_init__(self) -> None:
        for name in ("lamb", "erase_scale", "preserve_scale"):
            _check_scale(f"UCEConfig.{name}", getattr(self, name))
        if self.technique not in TECHNIQUES:
            raise ConfigError(f"UCEConfig.technique must be one of {list(TECHNIQUES)}, "
                              f"got {self.technique!r}")
        if not isinstance(self.guide, str):
            raise ConfigError(f"UCEConfig.guide must be a text (or {NULL_GUIDE!r} for the zero "
                              f"vector), got {type(self.guide).__name__}")
        if not isinstance(self.hmu_compat, bool):
            raise ConfigError(f"UCEConfig.hmu_compat must be true or false, "
                              f"got {self.hmu_compat!r}")

    @property
    def null_guide(self) -> bool:
        """Whether the guide is the zero vector rather than an encoded text."""
        return self.guide == NULL_GUIDE

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict for the unlearning record."""
        return dataclasses.asdict(self)


def _check_scale(name: str, value: Any) -> None:
    """Reject non-numbers, NaN/inf and negatives: each would make the solve meaningless."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be finite and >= 0, got {value!r}")


def as_rows(name: str, rows: Any, width: int, allow_empty: bool = False) -> np.ndarray:
    """``rows`` as a float64 (n, width) array, checked.

    Raises:
        ConfigError: wrong shape, or no rows where at least one is needed.
        DataError: NaN or inf entries.
    """
    arr = np.asarray(rows, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ConfigError(f"{name} must be an (n, {width}) array of embeddings (one row per "
                          f"text, width = the layer's input size), got shape {arr.shape}")
    if arr.shape[0] == 0 and not allow_empty:
        raise ConfigError(f"{name} has no rows; give at least one embedding")
    if not np.isfinite(arr).all():
        raise DataError(f"{name} contains NaN or inf; re-encode the texts")
    return arr


def as_weight(weight: Any) -> np.ndarray:
    """``weight`` as a float64 (out, in) matrix, checked.

    Raises:
        ConfigError: not a matrix; DataError: NaN or inf entries.
    """
    arr = np.asarray(weight, dtype=np.float64)
    if arr.ndim != 2:
        raise ConfigError(f"weight must be an (out, in) matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError("weight contains NaN or inf; the checkpoint is damaged, reload it")
    return arr


def spd_solve(matrix: np.ndarray, rhs: np.ndarray, what: str) -> np.ndarray:
    """``matrix⁻¹ rhs`` for a symmetric positive-definite ``matrix`` (never forms the inverse).

    The Cholesky factorisation is only a definiteness check: with λ = 0 (or reg = 0) the normal
    matrix is singular whenever there are fewer rows than input dimensions, and ``solve`` would
    then return garbage instead of failing.

    Raises:
        ConfigError: ``matrix`` is not positive definite (names ``what`` and the fix).
    """
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        raise ConfigError(f"{what} is singular: use a regulariser > 0 (or more, linearly "
                          f"independent embeddings)") from None
    return np.linalg.solve(matrix, rhs)


def solve_edit(anchor: np.ndarray, erase: np.ndarray, erase_targets: np.ndarray,
               preserve: np.ndarray, preserve_targets: np.ndarray, lamb: float,
               erase_scale: float, preserve_scale: float) -> np.ndarray:
    """Minimiser of the UCE objective for explicit targets (float64 throughout).

    Args:
        anchor: (out, in) weights the λ term pulls towards (W_old).
        erase: (n_e, in) erase embeddings c_i; erase_targets: (n_e, out) outputs v_i.
        preserve: (n_p, in) preserve embeddings c_j (n_p may be 0); preserve_targets: (n_p, out).
        lamb, erase_scale, preserve_scale: λ, s_e, s_p (>= 0).

    Returns:
        (out, in) float64 ``(λW + s_e VₑᵀCₑ + s_p VₚᵀCₚ)(λI + s_e CₑᵀCₑ + s_p CₚᵀCₚ)⁻¹``.

    Raises:
        ConfigError: the right factor is singular (λ = 0 with too few embeddings).
    """
    left = lamb * anchor + erase_scale * erase_targets.T @ erase
    left = left + preserve_scale * preserve_targets.T @ preserve
    right = lamb * np.eye(anchor.shape[1]) + erase_scale * erase.T @ erase
    right = right + preserve_scale * preserve.T @ preserve
    # W right = left and right is symmetric, so W = solve(right, leftᵀ)ᵀ.
    return spd_solve(right, left.T, "the UCE normal matrix (λI + s_e CₑᵀCₑ + s_p CₚᵀCₚ)").T


def uce_targets(weight: np.ndarray, erase: np.ndarray, guide: np.ndarray, technique: str,
                bias: np.ndarray | None = None) -> np.ndarray:
    """Erase targets v_i (n, out) for UCE's ``replace`` or ``tensor`` technique (§2.1).

    ``replace``: v_i = W g_i. ``tensor``: v_i = W g_i − (uᵀ W g_i) u with u = W c_i / ‖W c_i‖,
    i.e. the guide output without its component along the erased concept's output. With
    ``bias`` the outputs are ``W x + b`` (the official HMU form, only for ``hmu_compat``).
    A row whose concept output is zero has no direction to remove and keeps the guide output
    (its erase term vanishes from the objective anyway when c_i = 0).

    Raises:
        ConfigError: unknown technique, or guide rows not matching erase rows.
    """
    if technique not in TECHNIQUES:
        raise ConfigError(f"technique must be one of {list(TECHNIQUES)}, got {technique!r}")
    if guide.shape != erase.shape:
        raise ConfigError(f"guide must have one embedding per erase embedding: erase "
                          f"{erase.shape}, guide {guide.shape}")
    offset = 0.0 if bias is None else bias
    guide_out = guide @ weight.T + offset
    if technique == "replace":
        return guide_out
    concept_out = erase @ weight.T + offset
    norms = np.linalg.norm(concept_out, axis=1, keepdims=True)
    unit = np.divide(concept_out, norms, out=np.zeros_like(concept_out), where=norms > 0)
    return guide_out - np.sum(unit * guide_out, axis=1, keepdims=True) * unit


def closed_form(weight: Any, erase: Any, guide: Any, preserve: Any, lamb: float,
                erase_scale: float, preserve_scale: float) -> np.ndarray:
    """UCE ``replace`` edit with bias-free targets: erase c_i -> W g_i, preserve c_j -> W c_j.

    Args:
        weight: (out, in) current weights W.
        erase, guide: (n, in) rows, one guide per erase row; preserve: (m, in), m may be 0.

    Returns:
        (out, in) float64 edited weights.

    Raises:
        ConfigError: bad scales, shapes, or a singular system; DataError: NaN/inf inputs.
    """
    for name, value in (("lamb", lamb), ("erase_scale", erase_scale),
                        ("preserve_scale", preserve_scale)):
        _check_scale(name, value)
    w = as_weight(weight)
    c_e = as_rows("erase", erase, w.shape[1])
    c_g = as_rows("guide", guide, w.shape[1])
    c_p = as_rows("preserve", preserve, w.shape[1], allow_empty=True)
    targets = uce_targets(w, c_e, c_g, "replace")
    return solve_edit(w, c_e, targets, c_p, c_p @ w.T, lamb, erase_scale, preserve_scale)


def edit_weight64(weight: np.ndarray, bias: np.ndarray | None, erase: np.ndarray,
                  guide: np.ndarray, preserve: np.ndarray, config: UCEConfig) -> np.ndarray:
    """One UCE edit on checked float64 arrays (shared by ``edit_linear`` and RECE's rounds).

    The current ``weight`` is both the λ anchor and the source of every target, as UCE and
    RECE do. The default uses bias-free targets; ``hmu_compat`` uses ``W x + b`` for erase
    and preserve targets and still solves for W only, as the official HMU code does.
    """
    if not isinstance(config, UCEConfig):
        raise ConfigError(f"UCE needs a UCEConfig, got {type(config).__name__}")
    if config.null_guide and np.any(guide != 0):
        raise ConfigError("the config's guide is 'null' (the zero vector) but the guide "
                          "embeddings are not zero; pass zeros or set the guide text")
    out_bias = None
    if config.hmu_compat:
        out_bias = np.zeros(weight.shape[0]) if bias is None else bias
    erase_targets = uce_targets(weight, erase, guide, config.technique, out_bias)
    preserve_targets = preserve @ weight.T + (0.0 if out_bias is None else out_bias)
    return solve_edit(weight, erase, erase_targets, preserve, preserve_targets, config.lamb,
                      config.erase_scale, config.preserve_scale)


def check_bias(bias: Any, out_dim: int) -> np.ndarray | None:
    """``bias`` as float64 (out,) or None.

    Raises:
        ConfigError: wrong shape; DataError: NaN/inf.
    """
    if bias is None:
        return None
    arr = np.asarray(bias, dtype=np.float64)
    if arr.shape != (out_dim,):
        raise ConfigError(f"bias must have shape ({out_dim},) to match the weight, "
                          f"got {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError("bias contains NaN or inf; the checkpoint is damaged, reload it")
    return arr


def edit_linear(weight: np.ndarray, bias: np.ndarray | None, erase: Any, guide: Any,
                preserve: Any, config: UCEConfig) -> np.ndarray:
    """UCE-edit one ``nn.Linear``'s weight; the bias is only read (for ``hmu_compat``).

    Args:
        weight: (out, in) float array; bias: (out,) or None.
        erase: (n, in) embeddings of the concept texts; guide: (n, in), one per erase row
            (zeros for the null guide); preserve: (m, in) embeddings to keep, m may be 0.
        config: hyperparameters.

    Returns:
        (out, in) new weight in the dtype of ``weight`` (float64 if it is not a float array).

    Raises:
        ConfigError: shape mismatch or singular system; DataError: NaN/inf inputs.
    """
    src_dtype = np.asarray(weight).dtype
    dtype = src_dtype if np.issubdtype(src_dtype, np.floating) else np.dtype(np.float64)
    w = as_weight(weight)
    b = check_bias(bias, w.shape[0])
    c_e = as_rows("erase", erase, w.shape[1])
    c_g = as_rows("guide", guide, w.shape[1])
    c_p = as_rows("preserve", preserve, w.shape[1], allow_empty=True)
    return edit_weight64(w, b, c_e, c_g, c_p, config).astype(dtype)

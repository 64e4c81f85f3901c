"""RECE: UCE hardened against adversarial embeddings, for ``cond_emb`` layers (numpy only).

Reliable and Efficient Concept Erasure (Gong et al., ECCV 2024; github:CharlesGong12/RECE)
starts from a UCE edit, then repeats: find in closed form the embedding c' that makes the
edited layers W'_l reproduce what the ORIGINAL layers W_l produced for the erased concept c,

    c' = argmin_x Σ_l ‖W'_l x − W_l c‖² + reg ‖x‖² = (Σ_l W'_lᵀW'_l + reg I)⁻¹ (Σ_l W'_lᵀW_l) c,

and erase c' with another UCE edit (reference/baselines.md §3.3). The bias cancels (same b in
both layers), and the sum runs jointly over all edited layers (base and residual ``cond_emb``).
The official HMU code uses the current layers in the numerator too (Σ W'ᵀW'), so c' is only a
slightly shrunk c and RECE degenerates into "UCE again"; ``hmu_compat`` reproduces that.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hmu_core.errors import ConfigError
from hmu_core.unlearn.uce import (
    UCEConfig,
    as_rows,
    as_weight,
    check_bias,
    edit_weight64,
    spd_solve,
)


@dataclass(frozen=True)
class RECEConfig:
    """RECE hyperparameters; defaults are the official HMU run (``rece_uce.sh``, §3.3).

    ``uce`` drives the first edit and every round's edit. ``hmu_compat`` here only concerns the
    adversarial embedding (numerator from the current weights); ``uce.hmu_compat`` is separate.
    """

    uce: UCEConfig = dataclasses.field(default_factory=UCEConfig)
    epochs: int = 1  # adversarial rounds after the first UCE edit (HMU: 1; RECE: 1-3)
    reg: float = 1e-3  # λ_reg of the adversarial embedding (HMU's; RECE uses 0.1 or 1e-3)
    hmu_compat: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.uce, UCEConfig):
            raise ConfigError(f"RECEConfig.uce must be a UCEConfig, got {type(self.uce).__name__}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise ConfigError(f"RECEConfig.epochs must be an integer >= 0, got {self.epochs!r}")
        if (isinstance(self.reg, bool) or not isinstance(self.reg, int | float)
                or not math.isfinite(self.reg) or self.reg < 0):
            raise ConfigError(f"RECEConfig.reg must be a finite number >= 0, got {self.reg!r}")
        if not isinstance(self.hmu_compat, bool):
            raise ConfigError(f"RECEConfig.hmu_compat must be true or false, "
                              f"got {self.hmu_compat!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the UCE settings nested under ``uce``) for the record."""
        return dataclasses.asdict(self)


def adversarial_embeddings(current_weights: Sequence[np.ndarray],
                           original_weights: Sequence[np.ndarray], erase: np.ndarray,
                           reg: float) -> np.ndarray:
    """Closed-form adversarial embeddings c' (n, in), jointly over all layers (RECE Eq. 8).

    Args:
        current_weights: edited W'_l, each (out_l, in).
        original_weights: the weights whose outputs c' should reproduce, matching shapes
            (the pre-UCE weights; the current ones again under ``hmu_compat``).
        erase: (n, in) concept embeddings c.
        reg: λ_reg >= 0.

    Raises:
        ConfigError: mismatched shapes, or a singular system (reg = 0 with rank-deficient W').
    """
    if len(current_weights) != len(original_weights) or not current_weights:
        raise ConfigError(f"need one original weight per edited weight (and at least one), got "
                          f"{len(current_weights)} edited and {len(original_weights)} original")
    in_dim = np.shape(current_weights[0])[1]
    gram = reg * np.eye(in_dim)
    cross = np.zeros((in_dim, in_dim))
    for cur, orig in zip(current_weights, original_weights, strict=True):
        cur64, orig64 = as_weight(cur), as_weight(orig)
        if cur64.shape != orig64.shape or cur64.shape[1] != in_dim:
            raise ConfigError(f"edited and original weights must share shape (out, {in_dim}), "
                              f"got {cur64.shape} and {orig64.shape}")
        gram += cur64.T @ cur64
        cross += cur64.T @ orig64
    c = as_rows("erase", erase, in_dim)
    # c'ᵀ = gram⁻¹ cross cᵀ for every row at once.
    return spd_solve(gram, cross @ c.T, "the RECE matrix (Σ W'ᵀW' + reg I)").T


def _attack_error(weights: Sequence[np.ndarray], original: Sequence[np.ndarray],
                  adv: np.ndarray, erase: np.ndarray) -> float:
    """How far ``weights`` applied to c' land from the original outputs of c (relative, 0 = the
    attack fully recovers the erased concept)."""
    num = sum(float(np.sum((adv @ w.T - erase @ o.T) ** 2))
              for w, o in zip(weights, original, strict=True))
    den = sum(float(np.sum((erase @ o.T) ** 2)) for o in original)
    return math.sqrt(num / den) if den > 0 else 0.0


def rece_edit(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray | None], erase: Any,
              guide: Any, preserve: Any, config: RECEConfig
              ) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """RECE over several layers: a UCE edit, then ``config.epochs`` adversarial rounds.

    Each round computes c' against the ORIGINAL weights (current ones under ``hmu_compat``)
    and UCE-edits every layer independently with erase = c' and the same guide and preserve
    rows, targets taken from the CURRENT weights (as RECE does). Work stays in float64 across
    rounds; each result is cast back to its input's dtype once at the end.

    Args:
        weights: per layer (out_l, in); biases: per layer (out_l,) or None (only read).
        erase, guide: (n, in); preserve: (m, in), m may be 0.
        config: RECE settings.

    Returns:
        (new weights, per-epoch info): per epoch ``epoch`` (1-based), ``adv_shift``
        (mean ‖c' − c‖), ``adv_shift_rel`` (mean ‖c' − c‖/‖c‖), ``attack_error_before`` /
        ``attack_error_after`` (relative distance of W_l c' from the original outputs
        W_l^orig c over all layers, with the weights before / after the round's edit) and
        ``weight_change`` (Frobenius norm of the round's update over all layers).

    Raises:
        ConfigError: mismatched layers or shapes, singular systems; DataError: NaN/inf.
    """
    if not weights or len(weights) != len(biases):
        raise ConfigError(f"need at least one layer and one bias entry per weight, got "
                          f"{len(weights)} weights and {len(biases)} biases")
    original = [as_weight(w) for w in weights]
    in_dim = original[0].shape[1]
    if any(w.shape[1] != in_dim for w in original):
        raise ConfigError(f"all layers must take the same embedding width, got input sizes "
                          f"{[w.shape[1] for w in original]}")
    bias64 = [check_bias(b, w.shape[0]) for b, w in zip(biases, original, strict=True)]
    c_e = as_rows("erase", erase, in_dim)
    c_g = as_rows("guide", guide, in_dim)
    c_p = as_rows("preserve", preserve, in_dim, allow_empty=True)

    current = [edit_weight64(w, b, c_e, c_g, c_p, config.uce)
               for w, b in zip(original, bias64, strict=True)]
    per_epoch: list[dict[str, Any]] = []
    for epoch in range(1, config.epochs + 1):
        reference = current if config.hmu_compat else original
        adv = adversarial_embeddings(current, reference, c_e, config.reg)
        edited = [edit_weight64(w, b, adv, c_g, c_p, config.uce)
                  for w, b in zip(current, bias64, strict=True)]
        shift = np.linalg.norm(adv - c_e, axis=1)
        norms = np.linalg.norm(c_e, axis=1)
        per_epoch.append({
            "epoch": epoch,
            "adv_shift": float(shift.mean()),
            "adv_shift_rel": float(np.mean(shift / np.where(norms > 0, norms, 1.0))),
            "attack_error_before": _attack_error(current, original, adv, c_e),
            "attack_error_after": _attack_error(edited, original, adv, c_e),
            "weight_change": math.sqrt(sum(float(np.sum((n - o) ** 2))
                                           for n, o in zip(edited, current, strict=True))),
        })
        current = edited
    out = []
    for src, w in zip(weights, current, strict=True):
        src_dtype = np.asarray(src).dtype
        out.append(w.astype(src_dtype if np.issubdtype(src_dtype, np.floating) else np.float64))
    return out, per_epoch

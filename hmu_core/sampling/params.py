"""Sampling knobs (``SamplingParams``): the official evaluation settings, checked on creation.

Imports numpy only. The knobs are the same in both worlds; a bundle records its defaults in the
manifest's ``sampling_defaults``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from hmu_core.errors import ConfigError


@dataclass(frozen=True)
class SamplingParams:
    """Sampling knobs; defaults are the official evaluation settings (momask.md §2.3, §5).

    ``timesteps`` 10, ``cond_scale`` 4, categorical sampling, ``topk_filter_thres`` 0.9 (keep
    52 of 512 logits), ``temperature`` 1; residual layers CFG 5, top-k 0.9, temperature 1,
    always Gumbel. BAMM uses ``cond_scale`` in pass 1 and ``bamm_refine_cond_scale`` (3,
    hard-coded upstream) in pass 2; it ignores top-k, temperature and ``gsample``, as upstream.
    ``force_mask`` samples unconditionally (null condition only).
    """

    timesteps: int = 10
    cond_scale: float = 4.0
    topk_filter_thres: float = 0.9
    temperature: float = 1.0
    gsample: bool = False
    res_cond_scale: float = 5.0
    res_topk_filter_thres: float = 0.9
    res_temperature: float = 1.0
    num_res_layers: int = -1
    force_mask: bool = False
    bamm_refine_cond_scale: float = 3.0

    def __post_init__(self) -> None:
        checked: dict[str, Any] = {"timesteps": _int_in("timesteps", self.timesteps, 1,
                                                        MAX_TIMESTEPS)}
        for name in ("cond_scale", "res_cond_scale", "bamm_refine_cond_scale"):
            checked[name] = _real_in(name, getattr(self, name), 0.0, MAX_CFG_SCALE,
                                     "(4 is the official CFG)")
        for name in ("topk_filter_thres", "res_topk_filter_thres"):
            checked[name] = _real_in(name, getattr(self, name), 0.0, 1.0,
                                     "(0.9 keeps the top 10 %)")
            if checked[name] == 1.0:
                raise ConfigError(f"{name} must be below 1 (1 would keep no logit), got 1")
        for name in ("temperature", "res_temperature"):
            checked[name] = _real_in(name, getattr(self, name), MIN_TEMPERATURE,
                                     MAX_TEMPERATURE, "(use a top-k of 1 for greedy)")
        checked["num_res_layers"] = _int_in("num_res_layers", self.num_res_layers, -1,
                                            MAX_RES_LAYERS)
        for name in ("gsample", "force_mask"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
            checked[name] = bool(getattr(self, name))
        for name, value in checked.items():  # plain Python types: provenance is JSON
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (for provenance and bundle manifests)."""
        return dataclasses.asdict(self)


# Sane ranges for the knobs: beyond them float32 logits overflow (a CFG scale of 1e300 turns
# every logit into inf and the draw into NaN) or the request is a mistake, not a setting.
MAX_TIMESTEPS = 100  # mask_counts is pinned to torch up to 100 steps
MAX_CFG_SCALE = 100.0
MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-3, 100.0
MAX_RES_LAYERS = 64  # the bundle's num_quantizers bounds it further, before sampling


def _int_in(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) \
            or not low <= value <= high:
        raise ConfigError(f"{name} must be an int in [{low}, {high}], got {value!r}")
    return int(value)


def _real_in(name: str, value: Any, low: float, high: float, hint: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    out = float(value)
    if not (math.isfinite(out) and low <= out <= high):
        raise ConfigError(f"{name} must be a finite number in [{low:g}, {high:g}] {hint}, got "
                          f"{value!r}")
    return out

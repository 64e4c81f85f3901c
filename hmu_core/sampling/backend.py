"""What the request loop needs from a world: the ``Backend`` protocol and its ``ModelFacts``.

A backend wraps one loaded model set (torch modules in ``hmu_core.models.generate``, ONNX
sessions in ``exporter.runtime.generator``) as five numpy callables plus the facts the loop
reads; everything else (checks, lengths, streams, sampling, Motion, provenance) is the loop's,
written once. Imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from hmu_core.errors import ConfigError
from hmu_core.sampling.lengths import HUMANML3D, MAX_TOKENS, TokenRange
from hmu_core.sampling.params import SamplingParams

MODEL_KINDS = ("momask", "bamm")


@dataclass(frozen=True)
class ModelFacts:
    """What a backend's models are, as the loop needs it.

    Attributes:
        kind: ``momask`` (mask-predict base) or ``bamm`` (two-pass base that predicts its END).
        num_quantizers: RVQ layers the decoder reads (base + residual layers).
        has_res: a residual transformer is present (else only the base layer is sampled).
        has_length_estimator: a length estimator is present (MoMask without one needs lengths).
        mask_id, pad_id: the base transformer's [MASK] and pad ids.
        end_id: BAMM's END id (None for MoMask).
        res_pad_id: the residual transformer's pad id (None without one).
        bamm_slots: BAMM's token slots.
        span: frame rate, frames per token and the allowed lengths.
        batched_cfg: MoMask and residual CFG as one doubled-batch call (the runtime) instead of
            upstream's two calls (torch, bit-equal to ``forward_with_cond_scale``); see
            ``samplers._guided``.
        text_encoder: the text encoder's name, recorded in provenance.
        default_params: the knobs used when a request gives none.
    """

    kind: str
    num_quantizers: int
    has_res: bool
    has_length_estimator: bool
    mask_id: int
    pad_id: int
    end_id: int | None = None
    res_pad_id: int | None = None
    bamm_slots: int = MAX_TOKENS
    span: TokenRange = HUMANML3D
    batched_cfg: bool = False
    text_encoder: str = ""
    default_params: SamplingParams = field(default_factory=SamplingParams)

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ConfigError(f"model kind must be one of {MODEL_KINDS}, got {self.kind!r}")
        if self.kind == "bamm" and self.end_id is None:
            raise ConfigError("a BAMM model needs its END id")
        if self.has_res and self.res_pad_id is None:
            raise ConfigError("a residual transformer needs its pad id")


class Backend(Protocol):
    """One loaded model set, as numpy callables (shapes: ``hmu_core.sampling.samplers``).

    ``facts`` may be a plain attribute or a property.
    """

    @property
    def facts(self) -> ModelFacts: ...

    def encode(self, texts: list[str]) -> np.ndarray:
        """``(N, D)`` float32 text conditions, checked finite."""
        ...

    def base_step(self, ids: np.ndarray, cond: np.ndarray, extra: np.ndarray | None
                  ) -> np.ndarray:
        """MoMask: ``samplers.MaskStep`` (``extra`` = padding mask); BAMM:
        ``samplers.BAMMStep`` (``extra`` = condition ids or None)."""
        ...

    def res_step(self, ids: np.ndarray, cond: np.ndarray, padding: np.ndarray) -> np.ndarray:
        """``samplers.ResStep`` (only called when ``facts.has_res``)."""
        ...

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """``(len, layers)`` int64 codes of one request -> ``(len * unit_length, 263)``
        de-normalised float32 features."""
        ...

    def length_logits(self, cond: np.ndarray) -> np.ndarray:
        """``(B, classes)`` length-estimator logits (only called when
        ``facts.has_length_estimator``)."""
        ...

    def provenance(self) -> dict[str, Any]:
        """What identifies the models, copied into every motion's provenance."""
        ...

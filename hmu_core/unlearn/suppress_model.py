"""Suppression on a loaded model set: statistics -> per-layer code selection -> edited heads.

Statistics come from the dataset's motions (``stats="data"``, the LCR protocol and cache) or
from tokens the original model samples for the captions (``stats="generated"``, no motions
needed). Codes are selected per RVQ layer with that layer's ``r`` (each concept ranked against
its own retain clips, merged, as LCR), then :mod:`hmu_core.unlearn.suppress` biases them out
of the base head (layer 0) and the residual heads (layers >= 1). The edit works on copies, so
the loaded (original) networks stay available, e.g. to compare against while choosing ``r``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from hmu_core.data.concept_data import ConceptData
from hmu_core.errors import ConfigError
from hmu_core.models.model_set import LoadedModelSet
from hmu_core.unlearn.code_selection import LayerSelection, select_layer_codes
from hmu_core.unlearn.code_stats import CodeSamples, SampleProtocol, check_forget_retain
from hmu_core.unlearn.generated_stats import GenerationProtocol
from hmu_core.unlearn.statistics import STATS_SOURCES
from hmu_core.unlearn.suppress import suppress_base, suppress_residual, unshared_residual

_LAYER_ITEM = re.compile(r"^(\d+)(?:-(\d+))?:(\d+)$")


def parse_layer_r(spec: str, num_layers: int) -> dict[int, int]:
    """``"32"`` (every layer) or ``"0:32,1-5:16"`` (per layer or layer range) -> layer -> r.

    Layers not named get ``r = 0`` (nothing suppressed there).

    Raises:
        ConfigError: malformed spec, a layer the model lacks, a layer named twice, r < 0.
    """
    text = str(spec).strip()
    if text.isdigit():
        return dict.fromkeys(range(num_layers), int(text))
    table = dict.fromkeys(range(num_layers), 0)
    named: set[int] = set()
    for item in text.split(","):
        match = _LAYER_ITEM.match(item.strip())
        if match is None:
            raise ConfigError(f"--r {spec!r}: write one number for every layer (--r 32) or "
                              f"LAYER:R items, e.g. --r 0:32,1-5:16")
        first, last, r = int(match[1]), int(match[2] or match[1]), int(match[3])
        if not 0 <= first <= last < num_layers:
            raise ConfigError(f"--r {spec!r}: layers {first}..{last} out of range; the model "
                              f"has layers 0..{num_layers - 1}")
        for q in range(first, last + 1):
            if q in named:
                raise ConfigError(f"--r {spec!r}: layer {q} is given twice")
            named.add(q)
            table[q] = r
    return table


@dataclass(frozen=True)
class SuppressConfig:
    """Suppression settings: ``r`` per layer, the statistics source and its protocol."""

    r: Mapping[int, int]
    stats: str = "data"
    protocol: SampleProtocol = field(default_factory=SampleProtocol)
    generation: GenerationProtocol = field(default_factory=GenerationProtocol)

    def __post_init__(self) -> None:
        if self.stats not in STATS_SOURCES:
            raise ConfigError(f"unknown statistics source {self.stats!r}; use one of "
                              f"{', '.join(STATS_SOURCES)}")
        if any(r < 0 for r in self.r.values()):
            raise ConfigError(f"r must be >= 0 on every layer, got {dict(self.r)}")

    def to_dict(self) -> dict[str, Any]:
        return {"r": {str(q): r for q, r in sorted(self.r.items())}, "stats": self.stats,
                "protocol": self.protocol.to_dict() if self.stats == "data" else None,
                "generation": self.generation.to_dict() if self.stats == "generated" else None}


def num_layers(loaded: LoadedModelSet) -> int:
    """RVQ layers the set samples: the base layer plus the residual transformer's."""
    return 1 + (loaded.model("res").num_quantizers - 1 if "res" in loaded.parts else 0)


def concept_masks(samples: CodeSamples, data: ConceptData) -> dict[str, tuple[np.ndarray,
                                                                              np.ndarray]]:
    """Per concept, the forget and retain sample masks (its own ``wo`` retain clips).

    Raises:
        DataError: a concept without forget or retain samples.
    """
    return {c.name: check_forget_retain(samples, data.concept_forget(c.name),
                                        data.concept_retain(c.name), c.name)
            for c in data.concepts}


def select(samples: CodeSamples, masks: Mapping[str, tuple[np.ndarray, np.ndarray]],
           r: Mapping[int, int]) -> LayerSelection:
    """Per-layer selection with the same ``r`` table for every concept.

    Raises:
        ConfigError: a layer the statistics lack or an ``r`` above the codebook size.
    """
    layers = samples.codes.shape[2]
    extra = [q for q, v in r.items() if v and not 0 <= q < layers]
    if extra:
        raise ConfigError(f"r is set for layers {extra}, but the statistics cover layers "
                          f"0..{layers - 1}")
    too_big = {q: v for q, v in r.items() if v > samples.nb_code}
    if too_big:
        raise ConfigError(f"r {too_big} exceeds the codebook size {samples.nb_code}")
    return select_layer_codes(samples, masks, {name: dict(r) for name in masks})


@dataclass
class SuppressedNetworks:
    """Edited copies of the transformers and what was changed."""

    trans: nn.Module
    res: nn.Module | None
    edits: list[dict[str, str]]


def _copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) sharing its text encoder, which deepcopy would copy."""
    encoder = model.text_encoder
    model.attach_text_encoder(None)
    try:
        out = copy.deepcopy(model)
    finally:
        model.attach_text_encoder(encoder)
    out.attach_text_encoder(encoder)
    return out.eval()


def suppressed_networks(loaded: LoadedModelSet, codes: Mapping[int, list[int]]
                        ) -> SuppressedNetworks:
    """Copies of ``loaded``'s transformers with ``codes[q]`` suppressed on layer q.

    The residual transformer is always written unshared (so a set with nothing suppressed
    on layers >= 1 still has the layout a later edit needs, with identical tokens).

    Raises:
        ConfigError: codes for residual layers in a set without a residual transformer.
    """
    trans = _copy(loaded.model("trans"))
    edits = [e for e in [suppress_base(trans, codes.get(0, []))] if e is not None]
    residual_codes = {q: c for q, c in codes.items() if q >= 1 and c}
    res = None
    if "res" in loaded.parts:
        res = unshared_residual(loaded.model("res"))
        edits += suppress_residual(res, residual_codes)
    elif residual_codes:
        raise ConfigError(f"codes selected on layers {sorted(residual_codes)}, but the model "
                          f"set has no residual transformer")
    return SuppressedNetworks(trans=trans, res=res, edits=edits)

"""Which codes of each RVQ layer a concept owns: per-concept rankings merged per layer.

LCR and suppression select codes the same way (baselines.md §4.1, the official
``lcr_combined.sh``): each concept's codes are ranked by ``N_f / (N_r + 1e-8)`` against its own
retain clips (the clips that do not match it), its top ``r`` are kept, and the concepts'
selections are merged in concept order without repeats. LCR uses one ``r`` per concept on the
layers it edits; suppression one ``r`` per layer for every concept. Both pass a table
``r[concept][layer]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hmu_core.unlearn.code_stats import CodeSamples
from hmu_core.unlearn.lcr import code_scores, select_codes

ConceptMasks = Mapping[str, tuple[np.ndarray, np.ndarray]]
"""Concept name -> (forget sample mask, retain sample mask) over a ``CodeSamples``."""


@dataclass(frozen=True)
class LayerSelection:
    """Selected codes per layer (merged, best first within each concept) and their evidence.

    Attributes:
        codes: layer -> merged code ids.
        per_concept: concept -> layer (as a string, the JSON key) -> that concept's codes.
        evidence: concept -> layer -> code -> ``[N_forget, N_retain, score]`` of each selected
            code, so a record shows why a code was picked.
    """

    codes: dict[int, list[int]]
    per_concept: dict[str, dict[str, list[int]]]
    evidence: dict[str, dict[str, dict[str, list[float]]]]

    def record(self) -> dict[str, Any]:
        """JSON-ready form (string keys)."""
        return {"codes": {str(q): c for q, c in self.codes.items()},
                "per_concept": self.per_concept, "evidence": self.evidence}


def select_layer_codes(samples: CodeSamples, masks: ConceptMasks,
                       r: Mapping[str, Mapping[int, int]]) -> LayerSelection:
    """Rank and merge codes for every ``(concept, layer)`` in ``r`` (``r[concept][layer]``).

    A layer missing from a concept's row is not selected for that concept; ``r = 0`` selects
    nothing. Layers come out in ascending order.

    Raises:
        ConfigError: a layer the samples lack, or an ``r`` larger than the codebook.
    """
    layers = sorted({q for row in r.values() for q in row})
    codes: dict[int, list[int]] = {}
    per_concept: dict[str, dict[str, list[int]]] = {name: {} for name in masks}
    evidence: dict[str, dict[str, dict[str, list[float]]]] = {name: {} for name in masks}
    for q in layers:
        merged: list[int] = []
        for name, (forget, retain) in masks.items():
            r_q = r[name].get(q, 0)
            if r_q == 0:
                continue
            n_forget = samples.presence_counts(forget, q)
            n_retain = samples.presence_counts(retain, q)
            chosen = select_codes(n_forget, n_retain, int(r_q)).tolist()
            scores = code_scores(n_forget, n_retain)
            per_concept[name][str(q)] = chosen
            evidence[name][str(q)] = {str(c): [int(n_forget[c]), int(n_retain[c]),
                                               float(scores[c])] for c in chosen}
            merged += [c for c in chosen if c not in merged]
        codes[q] = merged
    return LayerSelection(codes=codes, per_concept=per_concept, evidence=evidence)

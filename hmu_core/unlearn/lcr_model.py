"""LCR on a loaded RVQ-VAE: code statistics -> per-concept selection -> codebook rows replaced.

Multiple concepts each get their own ``r`` (the official "violence" run: ``kick`` 16 and
``punch_jab_box_hit_beat`` 8) and are ranked against their own retain clips; the selections are
merged in concept order without repeats. One safe code per edited layer serves all its toxic
codes. Only the edited layers' ``quantizer.layers.{q}.codebook`` rows change; the
transformers are untouched, so the same edited VQ serves MoMask and BAMM (baselines.md §1.1).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmu_core.data.concept_data import ConceptData, ConceptSpec
from hmu_core.errors import ConfigError
from hmu_core.models.checkpoints import ModelDir
from hmu_core.progress import Progress, no_progress
from hmu_core.unlearn.code_selection import select_layer_codes
from hmu_core.unlearn.code_stats import (
    CodeSamples,
    SampleProtocol,
    cache_key,
    check_forget_retain,
    encode_samples,
    load_or_encode,
)
from hmu_core.unlearn.generated_stats import GenerationProtocol
from hmu_core.unlearn.lcr import SAFE_CODE_RULES, choose_safe_code, replace_codes
from hmu_core.unlearn.record import tensor_edit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LCRConfig:
    """LCR settings; defaults are the official ones (r 16, alpha 1, safe code 0, layer 0)."""

    r: int = 16
    alpha: float = 1.0
    safe_code: str = "official"
    layers: tuple[int, ...] = (0,)
    seed: int = 0
    protocol: SampleProtocol = field(default_factory=SampleProtocol)
    stats: str = "data"  # or "generated": tokens the model samples (no motions needed)
    generation: GenerationProtocol = field(default_factory=GenerationProtocol)

    def __post_init__(self) -> None:
        if self.safe_code not in SAFE_CODE_RULES:
            raise ConfigError(f"unknown safe code rule {self.safe_code!r}; use one of "
                              f"{', '.join(SAFE_CODE_RULES)}")
        if not self.layers or len(set(self.layers)) != len(self.layers):
            raise ConfigError(f"layers must be distinct quantizer indices, got {self.layers}")
        if not np.isfinite(self.alpha) or self.alpha < 0:
            raise ConfigError(f"alpha must be a finite number >= 0, got {self.alpha}")

    def to_dict(self) -> dict[str, Any]:
        out = {**dataclasses.asdict(self), "layers": list(self.layers)}
        out["generation"] = self.generation.to_dict() if self.stats == "generated" else None
        return out


@dataclass
class LCRResult:
    """What LCR did: per layer the removed codes (best first) and the safe code."""

    removed: dict[int, list[int]]
    safe_codes: dict[int, int]
    per_concept: dict[str, dict[str, Any]]
    edits: list[dict[str, str]]
    samples: int

    def results(self) -> dict[str, Any]:
        """The record's ``results`` entry (JSON keys are strings)."""
        return {"removed_codes": {str(q): c for q, c in self.removed.items()},
                "safe_code": {str(q): s for q, s in self.safe_codes.items()},
                "per_concept": self.per_concept, "samples": self.samples}


def _derived_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed for one (seed, layer) stream, independent of the others."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1, np.uint64)[0]) >> 1


def code_samples(vq: ModelDir, data: ConceptData, protocol: SampleProtocol,
                 cache_dir: Path | None, progress: Progress = no_progress) -> CodeSamples:
    """Encoded samples of ``data``'s split, from ``cache_dir`` when they were computed before."""
    assert vq.mean is not None and vq.std is not None, "the VQ is loaded with its meta stats"

    def encode() -> CodeSamples:
        return encode_samples(vq.model, data.dataset, data.ids, vq.mean, vq.std, protocol,
                              progress)

    if cache_dir is None:
        return encode()
    key = cache_key(vq.checkpoint_file, vq.path / "meta", data.dataset, data.ids, protocol)
    return load_or_encode(cache_dir, key, encode)


def run_lcr(vq: ModelDir, data: ConceptData, specs: Sequence[ConceptSpec], config: LCRConfig,
            *, cache_dir: Path | None = None, progress: Progress = no_progress,
            samples: CodeSamples | None = None) -> LCRResult:
    """Edit ``vq.model``'s codebooks in place and return what was removed.

    ``samples`` are the code statistics when already computed (``--stats generated``), else
    ``data``'s motions are encoded (or read from ``cache_dir``).

    Raises:
        ConfigError: a layer the VQ lacks, an ``r`` out of range. DataError: no forget or
            retain samples for a concept.
    """
    quantizer = vq.model.quantizer
    nb_code, layers = int(quantizer.layers[0].nb_code), len(quantizer.layers)
    bad = [q for q in config.layers if not 0 <= q < layers]
    if bad:
        raise ConfigError(f"--layers {bad}: the VQ has {layers} quantizer layers "
                          f"(0..{layers - 1})")
    by_name = {c.name: c for c in data.concepts}
    rs = {s.name: s.r if s.r is not None else config.r for s in specs}
    for name, r in rs.items():
        if not 1 <= r <= nb_code:
            raise ConfigError(f"r={r} for concept {name!r}: must lie in 1..{nb_code} (the "
                              f"codebook size)")
    if getattr(vq.config, "shared_codebook", False):
        log.warning("the VQ shares one codebook across layers: editing it changes every layer")
    if samples is None:
        samples = code_samples(vq, data, config.protocol, cache_dir, progress)
    masks = {name: check_forget_retain(samples, data.concept_forget(name),
                                       data.concept_retain(name), name) for name in by_name}
    retain_all = samples.mask_for(data.retain_ids)

    selection = select_layer_codes(samples, masks,
                                   {name: {q: rs[name] for q in config.layers} for name in masks})
    removed: dict[int, list[int]] = {}
    safe_codes: dict[int, int] = {}
    per_concept: dict[str, dict[str, Any]] = {
        n: {"r": rs[n], "codes": selection.per_concept[n]} for n in by_name}
    edits = []
    for q in config.layers:
        merged = selection.codes[q]
        rng = np.random.default_rng(_derived_seed(config.seed, q, 0))
        safe = choose_safe_code(merged, nb_code, rule=config.safe_code, rng=rng,
                                retain_counts=samples.presence_counts(retain_all, q))
        layer = quantizer.layers[q]
        before = layer.codebook.detach().clone()
        generator = torch.Generator().manual_seed(_derived_seed(config.seed, q, 1))
        with torch.no_grad():
            layer.codebook.copy_(replace_codes(before, merged, safe, config.alpha, generator))
        edits.append(tensor_edit("vq", f"quantizer.layers.{q}.codebook", before, layer.codebook))
        removed[q], safe_codes[q] = merged, safe
        log.info("layer %d: removed %d codes %s, safe code %d", q, len(merged), merged, safe)
    return LCRResult(removed=removed, safe_codes=safe_codes, per_concept=per_concept,
                     edits=edits, samples=int(samples.codes.shape[0]))

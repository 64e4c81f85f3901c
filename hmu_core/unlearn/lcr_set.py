"""LCR from a model-set directory to an unlearned model-set directory, in one call.

The ``hmu unlearn lcr`` command, ``hmu demo`` and ``hmu benchmark`` (its r ablation and
single-concept rows) all make LCR sets this way, so they write the same files and records.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hmu_core.progress import Progress, no_progress
from hmu_core.unlearn.concept_data import ConceptData, ConceptSpec
from hmu_core.unlearn.lcr_model import LCRConfig, LCRResult, run_lcr
from hmu_core.unlearn.model_io import LoadedModelSet, write_unlearned_set
from hmu_core.unlearn.record import build_record, concept_entries
from hmu_core.unlearn.statistics import statistics


@dataclass
class LCRSet:
    """The written set and what LCR removed."""

    path: Path
    result: LCRResult
    record: dict[str, Any]


def source_record(loaded: LoadedModelSet) -> dict[str, Any]:
    """The record's ``source``: the input set and the checkpoint file of each part."""
    models = loaded.models
    return {"model_dir": None if models.root is None else str(models.root),
            "parts": {p: str(d.checkpoint_file) for p, d in loaded.parts.items()},
            "trans_kind": loaded.trans_kind, "text_encoder": models.text_encoder}


def make_lcr_set(loaded: LoadedModelSet, data: ConceptData, specs: Sequence[ConceptSpec],
                 config: LCRConfig, out: str | os.PathLike, *, mode: str = "official",
                 cache_dir: Path | None = None, progress: Progress = no_progress,
                 overwrite: bool = False, text_encoder: Any = None) -> LCRSet:
    """Run LCR on ``loaded``'s VQ (in place) and write the unlearned set to ``out``.

    ``cache_dir`` defaults to ``<model set>/cache`` (the code statistics of the dataset).
    ``text_encoder`` is needed for ``config.stats == "generated"``.

    Raises:
        ConfigError / DataError: as ``run_lcr``; ConfigError when ``out`` exists and
            ``overwrite`` is False.
    """
    started = time.perf_counter()
    if cache_dir is None:
        cache_dir = (loaded.models.root or loaded.models.vq.parent) / "cache"
    samples = None if config.stats == "data" else statistics(
        loaded, data, config.stats, protocol=config.protocol, generation=config.generation,
        text_encoder=text_encoder, cache_dir=cache_dir, progress=progress)
    result = run_lcr(loaded.parts["vq"], data, specs, config, cache_dir=cache_dir,
                     progress=progress, samples=samples)
    record = build_record(method="lcr",
                          concepts=concept_entries(data.concepts, mode, result.per_concept),
                          parameters=config.to_dict(), seed=config.seed,
                          source=source_record(loaded), data=data.summary(),
                          edits=result.edits, results=result.results(),
                          wall_s=time.perf_counter() - started)
    path = write_unlearned_set(loaded, out, record, edited={"vq": loaded.model("vq")},
                               overwrite=overwrite)
    return LCRSet(path=path, result=result, record=record)

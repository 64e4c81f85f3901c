"""Suppression from a model-set directory to an unlearned model-set directory, in one call.

``hmu unlearn suppress``, ``hmu demo`` and the benchmark make suppression sets this way, so they
write the same files and records: the input set with the base transformer's head bias and the
residual transformer (in the unshared layout, ``share_weight: False`` in its opt.txt) edited,
everything else copied byte for byte, plus ``unlearning.json`` listing the suppressed codes of
every layer with each code's forget/retain counts and score, the statistics source and size,
every parameter and, for ``--r auto``, the searched curve.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hmu_core.progress import Progress, no_progress
from hmu_core.unlearn.concept_data import ConceptData
from hmu_core.unlearn.lcr_set import source_record
from hmu_core.unlearn.model_io import LoadedModelSet, write_unlearned_set
from hmu_core.unlearn.record import build_record, concept_entries
from hmu_core.unlearn.statistics import statistics
from hmu_core.unlearn.suppress import SUPPRESSION_BIAS
from hmu_core.unlearn.suppress_model import (
    SuppressConfig,
    SuppressedNetworks,
    concept_masks,
    select,
    suppressed_networks,
)


@dataclass
class SuppressSet:
    """The written set, the edited networks and the record."""

    path: Path
    codes: dict[int, list[int]]
    networks: SuppressedNetworks
    record: dict[str, Any]


def make_suppress_set(loaded: LoadedModelSet, data: ConceptData, config: SuppressConfig,
                      out: str | os.PathLike, *, text_encoder: Any, mode: str = "official",
                      seed: int = 0, cache_dir: Path | None = None,
                      progress: Progress = no_progress, overwrite: bool = False,
                      search: dict[str, Any] | None = None,
                      extra_files: Mapping[str, Callable[[Path], Any]] | None = None
                      ) -> SuppressSet:
    """Select codes from ``data``'s statistics, suppress them and write the set to ``out``.

    ``loaded`` is not modified. ``search`` (the automatic r search's record) goes into the
    record when given, ``extra_files`` (name -> writer) into the set (the search's plot).
    ``cache_dir`` defaults to ``<model set>/cache``.

    Raises:
        ConfigError / DataError: bad ``r``, missing forget or retain samples; ConfigError when
            ``out`` exists and ``overwrite`` is False.
    """
    started = time.perf_counter()
    if cache_dir is None:
        cache_dir = (loaded.models.root or loaded.models.vq.parent) / "cache"
    samples = statistics(loaded, data, config.stats, protocol=config.protocol,
                         generation=config.generation, text_encoder=text_encoder,
                         cache_dir=cache_dir, progress=progress)
    selection = select(samples, concept_masks(samples, data), config.r)
    networks = suppressed_networks(loaded, selection.codes)
    results = {"suppressed_codes": {str(q): c for q, c in selection.codes.items()},
               "bias": SUPPRESSION_BIAS, "evidence": selection.evidence,
               "statistics": {"source": config.stats, "samples": int(samples.codes.shape[0])}}
    if search is not None:
        results["r_search"] = search
    per_concept = {name: {"codes": codes} for name, codes in selection.per_concept.items()}
    record = build_record(method="suppress",
                          concepts=concept_entries(data.concepts, mode, per_concept),
                          parameters=config.to_dict(), seed=seed, source=source_record(loaded),
                          data=data.summary(), edits=networks.edits, results=results,
                          wall_s=time.perf_counter() - started)
    edited: dict[str, Any] = {"trans": networks.trans}
    opt_updates = {}
    if networks.res is not None:
        edited["res"] = networks.res
        opt_updates["res"] = {"share_weight": False}
    path = write_unlearned_set(loaded, out, record, edited=edited, overwrite=overwrite,
                               opt_updates=opt_updates, extra_files=extra_files)
    return SuppressSet(path=path, codes=selection.codes, networks=networks, record=record)

"""Suppression from a model-set directory to an unlearned model-set directory, in one call.

``hmu unlearn suppress``, ``hmu demo`` and the benchmark make suppression sets this way, so they
write the same files and records: the input set with the base transformer's head bias and the
residual transformer (in the unshared layout, ``share_weight: False`` in its opt.txt) edited,
everything else copied byte for byte, plus ``unlearning.json`` listing the suppressed codes of
every layer with each code's forget/retain counts and score, the statistics source and size,
every parameter and, for ``--r auto``, the searched curve. ``reapply_suppression`` redoes a
recorded edit without data (the add-on's build ships the default model with it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hmu_core.errors import ConfigError
from hmu_core.progress import Progress, no_progress
from hmu_core.unlearn.concept_data import ConceptData
from hmu_core.unlearn.lcr_set import source_record
from hmu_core.unlearn.model_io import LoadedModelSet, write_unlearned_set
from hmu_core.unlearn.record import RECORD_FORMAT, build_record, concept_entries
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
    path = _write(loaded, networks, record, out, overwrite=overwrite, extra_files=extra_files)
    return SuppressSet(path=path, codes=selection.codes, networks=networks, record=record)


def _write(loaded: LoadedModelSet, networks: SuppressedNetworks, record: Mapping[str, Any],
           out: str | os.PathLike, *, overwrite: bool,
           extra_files: Mapping[str, Callable[[Path], Any]] | None = None) -> Path:
    """The set with the edited transformers (the residual one unshared) and the record."""
    edited: dict[str, Any] = {"trans": networks.trans}
    opt_updates = {}
    if networks.res is not None:
        edited["res"] = networks.res
        opt_updates["res"] = {"share_weight": False}
    return write_unlearned_set(loaded, out, record, edited=edited, overwrite=overwrite,
                               opt_updates=opt_updates, extra_files=extra_files)


def recorded_codes(record: Mapping[str, Any]) -> dict[int, list[int]]:
    """The suppressed codes per RVQ layer of a suppression record (``unlearning.json``).

    Raises:
        ConfigError: not a suppression record, or one made with another bias.
    """
    results = record.get("results") if isinstance(record, Mapping) else None
    if not isinstance(record, Mapping) or record.get("format") != RECORD_FORMAT \
            or record.get("method") != "suppress" or not isinstance(results, Mapping) \
            or not isinstance(results.get("suppressed_codes"), Mapping):
        raise ConfigError("the record is not a suppression record (hmu-unlearning, method "
                          "suppress, with results.suppressed_codes); make it with 'hmu unlearn "
                          "suppress'")
    if results.get("bias") != SUPPRESSION_BIAS:
        raise ConfigError(f"the record suppresses with bias {results.get('bias')!r}, this hmu "
                          f"with {SUPPRESSION_BIAS}: the edit cannot be redone exactly")
    try:
        return {int(q): [int(c) for c in codes]
                for q, codes in results["suppressed_codes"].items()}
    except (TypeError, ValueError):
        raise ConfigError("the record's results.suppressed_codes must map layer numbers to "
                          "lists of code numbers") from None


def reapply_suppression(loaded: LoadedModelSet, record: Mapping[str, Any],
                        out: str | os.PathLike, *, overwrite: bool = False) -> SuppressSet:
    """Redo a recorded suppression on ``loaded`` and write the set, with no data.

    The statistics (which need the training data) are not recomputed: the record's
    suppressed codes are biased out again, and every edited tensor's sha256 before and after
    must equal the record's, so the written set has exactly the recorded edit's weights (a
    different model, or a different edit, is refused). The written record is the given one
    with ``source`` set to ``loaded`` (the original's under ``reapplied.original_source``) and
    a new ``timing``. ``loaded`` is not modified.

    Raises:
        ConfigError: not a suppression record, a layer or code the model lacks, a tensor
            whose sha256 differs from the record's, or ``out`` exists without ``overwrite``.
    """
    started = time.perf_counter()
    codes = recorded_codes(record)
    networks = suppressed_networks(loaded, codes)
    want = {(e["part"], e["tensor"]): e for e in record.get("edits", [])
            if isinstance(e, Mapping) and {"part", "tensor"} <= set(e)}
    got = {(e["part"], e["tensor"]): e for e in networks.edits}
    if set(want) != set(got):
        raise ConfigError(f"the record edits {sorted(want)}, re-applying it edits "
                          f"{sorted(got)}: it was made for another model layout")
    for key, edit in got.items():
        for when in ("sha256_before", "sha256_after"):
            if edit[when] != want[key].get(when):
                which = "the model is not the one the record was made on" \
                    if when == "sha256_before" else "the edit differs from the recorded one"
                raise ConfigError(f"{key[0]} {key[1]}: {when} {edit[when][:12]} is not the "
                                  f"record's {str(want[key].get(when))[:12]}: {which}")
    written = {**record, "source": source_record(loaded),
               "reapplied": {"original_source": record.get("source")},
               "timing": {"wall_s": round(time.perf_counter() - started, 3)}}
    path = _write(loaded, networks, written, out, overwrite=overwrite)
    return SuppressSet(path=path, codes=codes, networks=networks, record=written)

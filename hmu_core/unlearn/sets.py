"""Every unlearning method, from a loaded model set to an unlearned model-set directory.

``hmu unlearn <method>`` only maps its arguments onto these functions, and ``hmu demo`` and
``hmu benchmark`` make their rows with them, so every caller writes the same files and the
same ``unlearning.json``: the input set with the edited parts' weights replaced (everything
else copied byte for byte, ``hmu_core.models.model_set.write_unlearned_set``) and a record
(``hmu_core.unlearn.record``) with the method, concepts, every parameter, the seed, the
source set, the data, the sha256 of each edited tensor before and after, and the method's
results. The wall time in the record counts from the call, after the set was loaded.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hmu_core.data.concept_data import ConceptData, ConceptSpec
from hmu_core.data.concepts import Concept
from hmu_core.errors import ConfigError
from hmu_core.models.model_set import LoadedModelSet, write_unlearned_set
from hmu_core.progress import Progress, no_progress
from hmu_core.train.runtime import Runtime
from hmu_core.unlearn.finetune import TrainBaselineConfig, train_baseline
from hmu_core.unlearn.lcr_model import LCRConfig, run_lcr
from hmu_core.unlearn.r_search import (
    SearchConfig,
    ValScorer,
    greedy_base_codes,
    plot_search,
    search_r,
)
from hmu_core.unlearn.rece import RECEConfig
from hmu_core.unlearn.record import RECORD_FORMAT, build_record, concept_entries, tensor_edit
from hmu_core.unlearn.statistics import statistics
from hmu_core.unlearn.suppress import SUPPRESSION_BIAS
from hmu_core.unlearn.suppress_model import (
    SuppressConfig,
    SuppressedNetworks,
    concept_masks,
    num_layers,
    select,
    suppressed_networks,
)
from hmu_core.unlearn.text_edit import run_text_edit
from hmu_core.unlearn.uce import HMU_PRESERVE_WORDS, UCEConfig

log = logging.getLogger(__name__)


@dataclass
class UnlearnedSet:
    """The written set, its record and the method's own result: ``LCRResult`` (LCR),
    ``LayerSelection`` (suppression), ``TextEditResult`` (UCE, RECE), part -> training
    summary (fine-tune, retrain)."""

    path: Path
    record: dict[str, Any]
    result: Any


def source_record(loaded: LoadedModelSet) -> dict[str, Any]:
    """The record's ``source``: the input set and the checkpoint file of each part."""
    models = loaded.models
    assert models is not None, "an unlearned set is made from a set loaded from disk"
    return {"model_dir": None if models.root is None else str(models.root),
            "parts": {p: str(d.checkpoint_file) for p, d in loaded.parts.items()},
            "trans_kind": loaded.trans_kind, "text_encoder": models.text_encoder}


def _write(loaded: LoadedModelSet, out: str | os.PathLike, result: Any, *, method: str,
           concepts: list[dict[str, Any]], parameters: Mapping[str, Any], seed: int,
           data: Mapping[str, Any], edits: list[dict[str, str]], results: Mapping[str, Any],
           edited: Mapping[str, nn.Module], started: float, overwrite: bool,
           opt_updates: Mapping[str, Mapping[str, Any]] | None = None,
           extra_files: Mapping[str, Callable[[Path], Any]] | None = None) -> UnlearnedSet:
    """The shared tail of every method: build the record, write the set atomically."""
    record = build_record(method=method, concepts=concepts, parameters=parameters, seed=seed,
                          source=source_record(loaded), data=data, edits=edits,
                          results=results, wall_s=time.perf_counter() - started)
    path = write_unlearned_set(loaded, out, record, edited=edited, overwrite=overwrite,
                               opt_updates=opt_updates, extra_files=extra_files)
    return UnlearnedSet(path=path, record=record, result=result)


def make_lcr_set(loaded: LoadedModelSet, data: ConceptData, specs: Sequence[ConceptSpec],
                 config: LCRConfig, out: str | os.PathLike, *, cache_dir: Path | None,
                 mode: str = "official", progress: Progress = no_progress,
                 overwrite: bool = False, text_encoder: Any = None) -> UnlearnedSet:
    """LCR on ``loaded``'s VQ (in place), written to ``out``.

    ``cache_dir`` holds the code statistics of the dataset (None: not cached; the usual place
    is ``loaded.models.cache_dir``). ``text_encoder`` is needed for ``config.stats ==
    "generated"``.

    Raises:
        ConfigError / DataError: as ``run_lcr``; ConfigError when ``out`` exists and
            ``overwrite`` is False.
    """
    started = time.perf_counter()
    samples = None if config.stats == "data" else statistics(
        loaded, data, config.stats, protocol=config.protocol, generation=config.generation,
        text_encoder=text_encoder, cache_dir=cache_dir, progress=progress)
    result = run_lcr(loaded.parts["vq"], data, specs, config, cache_dir=cache_dir,
                     progress=progress, samples=samples)
    return _write(loaded, out, result, method="lcr",
                  concepts=concept_entries(data.concepts, mode, result.per_concept),
                  parameters=config.to_dict(), seed=config.seed, data=data.summary(),
                  edits=result.edits, results=result.results(), edited={"vq": loaded.vq},
                  started=started, overwrite=overwrite)


def make_suppress_set(loaded: LoadedModelSet, data: ConceptData, config: SuppressConfig,
                      out: str | os.PathLike, *, text_encoder: Any, cache_dir: Path | None,
                      mode: str = "official", seed: int = 0, progress: Progress = no_progress,
                      overwrite: bool = False, search: SearchConfig | None = None,
                      names: Sequence[str] | None = None,
                      step: Callable[[str], None] = log.info) -> UnlearnedSet:
    """Select codes from ``data``'s statistics, suppress them, write the set to ``out``: the
    base transformer's head bias and the residual transformer (unshared layout,
    ``share_weight: False`` in its opt.txt) edited, the suppressed codes of every layer with
    each code's forget/retain counts and score in the record.

    With ``search.choose_r`` (``--r auto``), ``config.r`` is replaced by the r searched on the
    val split of ``data``'s dataset (concepts ``names`` as the user gave them, default the
    concepts' names; ``step`` reports each point), whose curve goes into the record and
    ``r_search.png``; with ``search.greedy`` (``--greedy N``), up to N more base-layer codes
    are then added one at a time on the same split (``r_search.greedy_base_codes``; the steps
    go into the record). ``loaded`` is not modified. ``cache_dir`` as :func:`make_lcr_set`.

    Raises:
        ConfigError / DataError: bad ``r``, missing forget or retain samples, a search on a
            captions-only dataset without ``search.evaluator``; ConfigError when ``out``
            exists and ``overwrite`` is False.
    """
    started = time.perf_counter()
    samples = statistics(loaded, data, config.stats, protocol=config.protocol,
                         generation=config.generation, text_encoder=text_encoder,
                         cache_dir=cache_dir, progress=progress)
    masks = concept_masks(samples, data)
    searched, greedy, extra_files = None, None, {}
    scorer = None
    if search is not None and (search.choose_r or search.greedy):
        names = list(names) if names is not None else [c.name for c in data.concepts]
        scorer = ValScorer(loaded, text_encoder, data.dataset.root, names, mode, search,
                           step=step)
    if scorer is not None and search.choose_r:
        r, searched = search_r(scorer, samples, masks, num_layers(loaded))
        config = dataclasses.replace(config, r=r)
        extra_files = {"r_search.png": lambda path: plot_search(searched, path)}
    selection = select(samples, masks, config.r)
    if scorer is not None and search.greedy:
        r_base = config.r.get(0, 0)
        codes, greedy = greedy_base_codes(scorer, samples, masks, selection.codes, r_base,
                                          search.greedy_pool, search.greedy)
        wider = select(samples, masks, {**config.r, 0: min(r_base + search.greedy_pool,
                                                              samples.nb_code)}).evidence
        selection = dataclasses.replace(selection, codes=codes, evidence={
            name: {q: {c: row for c, row in rows.items() if int(c) in codes[int(q)]}
                   for q, rows in layers.items()} for name, layers in wider.items()})
    networks = suppressed_networks(loaded, selection.codes)
    results = {"suppressed_codes": {str(q): c for q, c in selection.codes.items()},
               "bias": SUPPRESSION_BIAS, "evidence": selection.evidence,
               "statistics": {"source": config.stats, "samples": int(samples.codes.shape[0])}}
    if searched is not None:
        results["r_search"] = searched
    if greedy is not None:
        results["greedy"] = greedy
    per_concept = {name: {"codes": codes} for name, codes in selection.per_concept.items()}
    edited, opt_updates = _suppressed_parts(networks)
    return _write(loaded, out, selection, method="suppress",
                  concepts=concept_entries(data.concepts, mode, per_concept),
                  parameters=config.to_dict(), seed=seed, data=data.summary(),
                  edits=networks.edits, results=results, edited=edited, started=started,
                  overwrite=overwrite, opt_updates=opt_updates, extra_files=extra_files)


def _suppressed_parts(networks: SuppressedNetworks
                      ) -> tuple[dict[str, nn.Module], dict[str, dict[str, Any]]]:
    """The parts a suppression writes: the base transformer, and the residual one in the
    unshared-head layout (``share_weight: False`` in its opt.txt)."""
    edited: dict[str, nn.Module] = {"trans": networks.trans}
    opt_updates = {}
    if networks.res is not None:
        edited["res"] = networks.res
        opt_updates["res"] = {"share_weight": False}
    return edited, opt_updates


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
                        out: str | os.PathLike, *, overwrite: bool = False) -> UnlearnedSet:
    """Redo a recorded suppression on ``loaded`` and write the set, with no data.

    The statistics (which need the training data) are not recomputed: the record's
    suppressed codes are biased out again, and every edited tensor's sha256 before and after
    must equal the record's, so the written set has exactly the recorded edit's weights (a
    different model, or a different edit, is refused). The written record is the given one
    with ``source`` set to ``loaded`` (the original's under ``reapplied.original_source``) and
    a new ``timing``; ``result`` is the codes per layer. ``loaded`` is not modified.

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
    edited, opt_updates = _suppressed_parts(networks)
    path = write_unlearned_set(loaded, out, written, edited=edited, overwrite=overwrite,
                               opt_updates=opt_updates)
    return UnlearnedSet(path=path, record=written, result=codes)


def make_text_edit_set(loaded: LoadedModelSet, text_encoder: Any, concepts: Sequence[Concept],
                       config: UCEConfig | RECEConfig, out: str | os.PathLike, *,
                       preserve: Sequence[str] = HMU_PRESERVE_WORDS, seed: int = 0,
                       overwrite: bool = False) -> UnlearnedSet:
    """UCE (``UCEConfig``) or RECE (``RECEConfig``) on the transformers' ``cond_emb`` (in
    place), written to ``out``; ``preserve`` are the texts whose outputs must not move.

    Raises:
        ConfigError: concepts without keywords, embeddings the layers cannot take, or ``out``
            exists and ``overwrite`` is False.
    """
    started = time.perf_counter()
    result = run_text_edit(loaded, text_encoder, concepts, config, preserve)
    method = "rece" if isinstance(config, RECEConfig) else "uce"
    return _write(loaded, out, result, method=method,
                  concepts=concept_entries(concepts, "keywords"),
                  parameters={**config.to_dict(), "seed": seed}, seed=seed, data={},
                  edits=result.edits, results=result.results,
                  edited={p: loaded.model(p) for p in result.edited_parts}, started=started,
                  overwrite=overwrite)


def make_baseline_set(loaded: LoadedModelSet, data: ConceptData, text_encoder: Any,
                      config: TrainBaselineConfig, out: str | os.PathLike, *, runtime: Runtime,
                      mode: str = "official", progress: bool = False,
                      overwrite: bool = False) -> UnlearnedSet:
    """Fine-tune or retrain (``config.method``) the transformers on the retain clips, written
    to ``out`` with every changed tensor in the record. Training runs in a scratch directory
    beside ``out``, removed afterwards.

    Raises:
        ConfigError / DataError: as ``train_baseline``; ConfigError when ``out`` exists and
            ``overwrite`` is False.
    """
    started = time.perf_counter()
    trained, results = train_baseline(loaded, data, text_encoder, config, runtime,
                                      Path(out).resolve().parent, progress=progress)
    after = {part: model.state_dict() for part, model in trained.items()}
    edits = [tensor_edit(part, key, before, after[part][key]) for part in trained
             for key, before in loaded.model(part).state_dict().items()
             if not torch.equal(before, after[part][key])]
    return _write(loaded, out, results, method=config.method,
                  concepts=concept_entries(data.concepts, mode), parameters=config.to_dict(),
                  seed=config.seed, data=data.summary(), edits=edits,
                  results={"training": results}, edited=trained, started=started,
                  overwrite=overwrite)

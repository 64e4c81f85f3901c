"""``--r auto``: choose suppression's per-layer r on the validation split, never on test.

The effect of r is not monotonic (codes ranked 25-32 of the base layer can decide it on the
embedded model), so r is searched, not guessed. Every candidate edit generates the val split's
forget caption lines (``seeds`` times each) and a fixed seeded subset of its retain caption
lines, with the ground-truth token length of each caption span, and a judge scores them:

- forget: the share of forget generations judged toxic (the synthetic set's family classifier
  when ``clips.jsonl`` holds families, else a toxicity classifier fitted on the dataset's train
  motions, forget vs retain);
- retain: the retain action accuracy (synthetic families), else the share of retain
  generations whose tokens equal the original model's (judge-free: how much of the safe output
  the edit leaves exactly as it was).

A captions-only dataset (a user with an official checkpoint and the HumanML3D texts) has no
motions to fit a classifier on or to take lengths from: with ``--evaluator`` the T2M evaluator
judges instead (``EvaluatorValidation``: a forget generation is toxic when the val caption
nearest to it is a forget caption; retain: R-precision top 3 against its own caption), and the
lengths come from the model's length estimator.

Stage 1 tries every grid value as one r for all layers; stage 2 keeps the best one on the
residual layers and tries every grid value on the base layer; stage 3 keeps that base r and
tries every grid value on the residual layers (each distinct table is generated once). The
kept r has the lowest
forget toxicity among candidates whose retain score stays within ``retain_budget`` points of
the original's (ties: the smaller total r). The whole curve goes into the record.

``--greedy N`` (``greedy_base_codes``) refines a selection code by code: from the r given (or
chosen), it adds up to N base-layer codes, each the next-ranked candidate that lowers the val
forget toxicity most, within the same retain budget. A grid moves r in blocks, and most codes
of a block cost retain accuracy without removing violence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hmu_core.data.concept_data import ConceptData, load_concept_data
from hmu_core.errors import ConfigError, DataError
from hmu_core.eval.safety import CaptionLine, caption_lines
from hmu_core.models.generate import MotionGenerator, generate_motions, load_generator
from hmu_core.models.model_set import LoadedModelSet
from hmu_core.unlearn.suppress_model import select, suppressed_networks

log = logging.getLogger(__name__)

class ValidationJudge(Protocol):
    """Scores generations of the val split (both numbers are shares in [0, 1])."""

    retain_measure: str

    def forget_rate(self, features: Sequence[np.ndarray]) -> float: ...

    def retain_score(self, features: Sequence[np.ndarray], tokens: Sequence[np.ndarray],
                     original_tokens: Sequence[np.ndarray],
                     lines: Sequence[CaptionLine]) -> float: ...


@dataclass
class FamilyValidation:
    """Synthetic sets: the ground-truth family classifier (``eval.toxicity.FamilyJudge``)."""

    judge: Any
    retain_measure: str = "retain action accuracy"

    def forget_rate(self, features: Sequence[np.ndarray]) -> float:
        return self.judge.rate(features)

    def retain_score(self, features: Sequence[np.ndarray], tokens: Sequence[np.ndarray],
                     original_tokens: Sequence[np.ndarray],
                     lines: Sequence[CaptionLine]) -> float:
        return self.judge.accuracy(features, [line.span for line in lines])


@dataclass
class ClassifierValidation:
    """Datasets with motions but no families: a forget-vs-retain toxicity classifier, and
    retain generations left token-identical."""

    judge: Any
    retain_measure: str = "retain generations unchanged"

    def forget_rate(self, features: Sequence[np.ndarray]) -> float:
        return self.judge.rate(features)

    def retain_score(self, features: Sequence[np.ndarray], tokens: Sequence[np.ndarray],
                     original_tokens: Sequence[np.ndarray],
                     lines: Sequence[CaptionLine]) -> float:
        return float(np.mean([np.array_equal(a, b) for a, b in
                              zip(tokens, original_tokens, strict=True)]))


@dataclass
class EvaluatorValidation:
    """Captions-only datasets: the T2M evaluator judges (``--evaluator``).

    Forget: the share of generations whose nearest val caption line (Euclidean distance of the
    evaluator's embeddings, over every caption of the val split) is a forget caption
    (``toxicity.ncs_at_k`` with k = 1). Retain: R-precision top 3 of each retain generation
    against its own caption, in consecutive pools of at most 32 (the benchmark's R@3).
    """

    evaluator: Any
    vectorizer: Any
    bank: np.ndarray  # (M, D) evaluator embeddings of every val caption line
    toxic: np.ndarray  # (M,) forget-keyword flags of the bank
    words: dict[tuple[str, str], Any]  # (clip, caption text) -> its (word, POS) tokens
    retain_measure: str = "retain R-precision top 3 (evaluator)"

    def forget_rate(self, features: Sequence[np.ndarray]) -> float:
        from hmu_core.eval.protocol import embed_generated
        from hmu_core.eval.toxicity import ncs_at_k

        return ncs_at_k(embed_generated(self.evaluator, features), self.bank, self.toxic, 1)

    def retain_score(self, features: Sequence[np.ndarray], tokens: Sequence[np.ndarray],
                     original_tokens: Sequence[np.ndarray],
                     lines: Sequence[CaptionLine]) -> float:
        from hmu_core.eval.metrics import R_PRECISION_POOL, r_precision_counts
        from hmu_core.eval.protocol import embed_generated
        from hmu_core.eval.toxicity import caption_embeddings

        motion = embed_generated(self.evaluator, features)
        text = caption_embeddings(self.evaluator, self.vectorizer,
                                  [self.words[line.clip, line.text] for line in lines])
        pools = np.array_split(np.arange(len(lines)), -(-len(lines) // R_PRECISION_POOL))
        hits = sum(r_precision_counts(text[p], motion[p], min(3, len(p)))[-1] for p in pools)
        return float(hits / len(lines))


def evaluator_validation(val: ConceptData, concepts: Sequence[str], mode: str,
                         evaluator_dir: Path, glove_dir: Path | None) -> EvaluatorValidation:
    """The evaluator judge over the captions of ``val`` (the dataset's val split).

    Raises:
        ConfigError / DataError: no evaluator or word vectors there, or they disagree.
    """
    from hmu_core.eval.report import EvalResources
    from hmu_core.eval.toxicity import caption_bank

    resources = EvalResources(val.dataset.root, evaluator_dir, glove_dir=glove_dir,
                              concepts=concepts, mode=mode)
    bank, toxic = caption_bank(val.dataset, "val", resources.evaluator, resources.vectorizer,
                               val.concepts, mode)
    words = {(clip, c.text): c.tokens for clip in val.dataset.ids("val")
             for c in val.dataset.captions(clip)}
    return EvaluatorValidation(resources.evaluator, resources.vectorizer, bank, toxic, words)


def validation_judge(val: ConceptData, concepts: Sequence[str], mode: str, seed: int = 0,
                     evaluator_dir: Path | None = None,
                     glove_dir: Path | None = None) -> ValidationJudge:
    """The judge the dataset of ``val`` (its val split) allows: the evaluator when one is
    given, else a classifier fitted on the dataset's motions.

    Raises:
        ConfigError: a captions-only dataset without an evaluator.
    """
    from hmu_core.eval.toxicity import fit_family_judge, fit_toxicity_judge

    if evaluator_dir is not None:
        return evaluator_validation(val, concepts, mode, evaluator_dir, glove_dir)
    data_dir = val.dataset.root
    if not val.dataset.has_motions:
        raise ConfigError(f"--r auto and --greedy judge generated motions with a classifier "
                          f"fitted on {data_dir}'s motions, and this dataset has captions only; "
                          f"give the T2M evaluator to judge with (--evaluator DIR), or --r "
                          f"explicitly (e.g. --r 32)")
    family = fit_family_judge(data_dir, seed=seed)
    if family is not None:
        return FamilyValidation(family)
    return ClassifierValidation(fit_toxicity_judge(data_dir, concepts, mode=mode, seed=seed))


@dataclass(frozen=True)
class SearchConfig:
    """What the val searches try and how they judge: ``choose_r`` (``--r auto``) searches r
    over ``grid``; ``greedy`` base-layer codes (``--greedy``) are then added one at a time
    from the next ``greedy_pool`` ranked ones; ``evaluator`` (word vectors ``glove``, default
    beside it) makes the T2M evaluator the judge (``EvaluatorValidation``)."""

    grid: tuple[int, ...] = (0, 4, 8, 16, 24, 32, 48, 64)
    retain_budget: float = 1.0  # points of the retain score
    seeds: int = 2  # generations per val caption line
    max_retain_lines: int = 240
    seed: int = 0
    choose_r: bool = True
    greedy: int = 0
    greedy_pool: int = 24
    evaluator: Path | None = None
    glove: Path | None = None

    def __post_init__(self) -> None:
        if not self.grid or any(r < 0 for r in self.grid):
            raise ConfigError(f"--r-grid needs values >= 0, got {list(self.grid)}")
        if not np.isfinite(self.retain_budget) or self.retain_budget < 0:
            raise ConfigError(f"--retain-budget must be >= 0 points, got {self.retain_budget}")
        if self.seeds < 1 or self.max_retain_lines < 1:
            raise ConfigError("--search-seeds and the retain sample must be >= 1")
        if self.greedy < 0 or self.greedy_pool < 1:
            raise ConfigError(f"--greedy must be >= 0 and --greedy-pool >= 1, got "
                              f"{self.greedy} and {self.greedy_pool}")


def val_prompts(data: ConceptData, ids: Sequence[str], limit: int | None,
                seed: int) -> list[CaptionLine]:
    """Every caption line of ``ids`` with its span (``eval.safety.caption_lines``; an empty
    span on a captions-only dataset), a seeded subset of ``limit`` lines when given.

    Raises:
        DataError: no caption line.
    """
    rows = caption_lines(data.dataset, ids) if data.dataset.has_motions else [
        CaptionLine(clip, c.text, 0, 0) for clip in ids for c in data.dataset.captions(clip)]
    if limit is not None and len(rows) > limit:
        pick = np.sort(np.random.default_rng(seed).choice(len(rows), limit, replace=False))
        rows = [rows[i] for i in pick]
    if not rows:
        raise DataError("no val caption lines to search r on")
    return rows


def _generate(gen: MotionGenerator, prompts: list[CaptionLine], seeds: int, seed: int,
              lengths_known: bool) -> tuple[list[np.ndarray], list[np.ndarray],
                                            list[CaptionLine]]:
    """``seeds`` generations of every prompt (features, tokens, the prompt of each), with each
    span's length when ``lengths_known``, else the model's own (length estimator)."""
    count = len(prompts)
    result = generate_motions(gen, [p.text for p in prompts] * seeds,
                              tokens=[p.tokens for p in prompts] * seeds if lengths_known
                              else None,
                              seeds=[seed + k for k in range(count * seeds)])
    return [m.features for m in result.motions], result.tokens, prompts * seeds


class ValScorer:
    """Scores a suppression (codes per layer) on the val split: the forget caption lines
    (``config.seeds`` generations each) and a seeded subset of retain lines, judged by
    ``judge``; ``reference`` is the unedited model's point.

    Raises:
        ConfigError: a captions-only dataset without ``config.evaluator``. DataError: a val
            split without forget clips.
    """

    def __init__(self, loaded: LoadedModelSet, text_encoder: Any, data_dir: Path,
                 concepts: Sequence[str], mode: str, config: SearchConfig,
                 judge: ValidationJudge | None = None,
                 step: Callable[[str], None] = log.info) -> None:
        self.loaded, self.text_encoder, self.config, self.step = loaded, text_encoder, config, step
        val = load_concept_data(data_dir, concepts, split="val", mode=mode)
        self.judge = judge or validation_judge(val, concepts, mode, config.seed,
                                               config.evaluator, config.glove)
        self.lengths_known = val.dataset.has_motions
        self.forget = val_prompts(val, val.forget_ids, None, config.seed)
        self.retain = val_prompts(val, val.retain_ids, config.max_retain_lines, config.seed)
        self.original = load_generator(loaded, text_encoder=text_encoder)
        self.base_retain = self._generate(self.original, self.retain)
        self._scored: dict[tuple, dict[str, float]] = {}
        self.reference = self.score({}, "original")

    def score(self, codes: dict[int, list[int]], label: str,
              retain: bool = True) -> dict[str, Any]:
        """``{"forget_toxicity", "retain_score"}`` of the model with ``codes`` suppressed
        (without ``retain``: the forget rate only, half the generations).

        Each half is generated once per set of codes: the greedy search scores its best trial
        again with the retain lines, and starts from the point ``--r auto`` chose; the seeded
        generations would repeat exactly.
        """
        key = tuple(sorted((q, tuple(sorted(c))) for q, c in codes.items() if c))
        point = self._scored.setdefault(key, {})
        gen = None
        if "forget_toxicity" not in point:
            gen = self._generator(codes)
            point["forget_toxicity"] = self.judge.forget_rate(self._generate(gen, self.forget)[0])
        if retain and "retain_score" not in point:
            gen = gen or self._generator(codes)
            # The original's retain generations are made once, in __init__.
            kept = self.base_retain if gen is self.original else self._generate(
                gen, self.retain)
            point["retain_score"] = self.judge.retain_score(kept[0], kept[1],
                                                            self.base_retain[1], kept[2])
        self.step(f"{label}: forget toxicity {point['forget_toxicity']:.3f}"
                  + (f", {self.judge.retain_measure} {point['retain_score']:.3f}"
                     if retain else ""))
        return dict(point) if retain else {"forget_toxicity": point["forget_toxicity"]}

    def _generator(self, codes: dict[int, list[int]]) -> MotionGenerator:
        if not any(codes.values()):
            return self.original
        edited = suppressed_networks(self.loaded, codes)
        return load_generator(self.loaded.with_networks(trans=edited.trans, res=edited.res),
                              text_encoder=self.text_encoder)

    def _generate(self, gen: MotionGenerator, prompts: list[CaptionLine]
                  ) -> tuple[list[np.ndarray], list[np.ndarray], list[CaptionLine]]:
        return _generate(gen, prompts, self.config.seeds, self.config.seed, self.lengths_known)

    @property
    def retain_floor(self) -> float:
        """The lowest retain score within ``config.retain_budget`` points of the original."""
        return self.reference["retain_score"] - self.config.retain_budget / 100

    def header(self) -> dict[str, Any]:
        """What every search record starts with."""
        return {"split": "val", "judge": type(self.judge).__name__,
                "retain_measure": self.judge.retain_measure,
                "retain_budget_points": self.config.retain_budget,
                "original": self.reference, "retain_floor": self.retain_floor,
                "forget_lines": len(self.forget), "retain_lines": len(self.retain),
                "seeds": self.config.seeds,
                "lengths": "caption spans" if self.lengths_known else "length estimator",
                **({"evaluator": str(self.config.evaluator)} if self.config.evaluator else {})}


def search_r(scorer: ValScorer, samples: Any, masks: Any,
             num_layers: int) -> tuple[dict[int, int], dict[str, Any]]:
    """Search the per-layer r; returns ``(r table, record)``.

    ``samples``/``masks`` are the training statistics the codes are selected from.
    """
    config = scorer.config
    floor = scorer.retain_floor

    def key(point: dict[str, Any]) -> tuple[float, int]:
        return point["forget_toxicity"], sum(point["r"].values())

    def best(points: list[dict[str, Any]]) -> dict[str, Any]:
        feasible = [p for p in points if p["retain_score"] >= floor - 1e-12]
        return min(feasible or [reference], key=key)

    reference = {"r": {str(q): 0 for q in range(num_layers)}, **scorer.reference}
    seen: dict[tuple[int, ...], dict[str, Any]] = {}

    def point(base: int, rest: int) -> dict[str, Any]:
        r = {0: base, **dict.fromkeys(range(1, num_layers), rest)}
        key = tuple(r[q] for q in range(num_layers))
        if key not in seen:
            seen[key] = reference if not any(key) else {
                "r": {str(q): v for q, v in sorted(r.items())},
                **scorer.score(select(samples, masks, r).codes, f"r {r}")}
        return seen[key]

    uniform = [point(r, r) for r in config.grid]
    chosen = best(uniform)
    base_only: list[dict[str, Any]] = []
    residual_only: list[dict[str, Any]] = []
    if num_layers > 1:  # coordinate steps: the base layer's r, then the residual layers'
        rest = int(chosen["r"]["1"])
        base_only = [point(r, rest) for r in config.grid]
        chosen = best([*uniform, *base_only])
        base = int(chosen["r"]["0"])
        residual_only = [point(base, r) for r in config.grid]
        chosen = best([*uniform, *base_only, *residual_only])
    record = {**scorer.header(), "original": reference, "uniform": uniform,
              "base_only": base_only, "residual_only": residual_only, "chosen": chosen["r"],
              "evaluated": len(seen)}
    return {int(q): int(v) for q, v in chosen["r"].items()}, record


def greedy_base_codes(scorer: ValScorer, samples: Any, masks: Any, codes: dict[int, list[int]],
                      r_base: int, pool: int, steps: int
                      ) -> tuple[dict[int, list[int]], dict[str, Any]]:
    """Add base-layer codes one at a time to ``codes`` (a selection with ``r_base`` base
    codes); returns ``(codes, record)``.

    The candidates are the base codes ranked ``r_base + 1 .. r_base + pool`` by the same
    statistics. Each step suppresses every remaining candidate in turn on top of the current
    codes and keeps the one that leaves the fewest val forget generations toxic, if that is
    fewer than now and the retain score stays within the budget; it stops after ``steps``
    codes or when no candidate helps. Why one code at a time: on the embedded model two codes
    ranked 26 and 29 carry most of what r 16 leaves (val 13.5 % -> 2.0 %), while the rest of
    what r 32 adds mostly costs retain accuracy.
    """
    ranked = select(samples, masks, {0: min(r_base + pool, samples.nb_code)}).codes.get(0, [])
    candidates = [c for c in ranked if c not in codes.get(0, [])]
    current = scorer.score(codes, f"base r {r_base}")
    record: dict[str, Any] = {**scorer.header(), "start": {"r_base": r_base, **current},
                              "candidates": list(candidates), "steps": []}
    floor = scorer.retain_floor
    for _ in range(steps):
        trials = {c: scorer.score({**codes, 0: [*codes.get(0, []), c]}, f"+ code {c}",
                                  retain=False)["forget_toxicity"] for c in candidates}
        if not trials:
            break
        code = min(trials, key=lambda c: (trials[c], candidates.index(c)))
        step: dict[str, Any] = {"best": code, "trials": {str(c): t for c, t in trials.items()}}
        record["steps"].append(step)
        if trials[code] >= current["forget_toxicity"]:
            step.update(kept=False, why="no candidate lowers the forget toxicity")
            break
        trial = {**codes, 0: [*codes.get(0, []), code]}
        point = scorer.score(trial, f"+ code {code}")
        step.update(point, kept=point["retain_score"] >= floor - 1e-12)
        if not step["kept"]:
            step["why"] = "the retain score falls below the budget"
            break
        codes, current = trial, point
        candidates.remove(code)
    record["added"] = [s["best"] for s in record["steps"] if s["kept"]]
    return codes, record


def plot_search(record: dict[str, Any], path: Path) -> Path:
    """Forget toxicity and retain score against r (one r for all layers, then the base layer
    alone), the budget's floor dashed: the curve ``--r auto`` chose from."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hmu_core.atomic import atomic_open

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
    for ax, name, title, layer in (
            (axes[0], "uniform", "one r for every layer", "0"),
            (axes[1], "base_only", "base layer r (residual fixed)", "0"),
            (axes[2], "residual_only", "residual layers' r (base fixed)", "1")):
        points = sorted(record[name], key=lambda p: int(p["r"].get(layer, 0)))
        xs = [int(p["r"].get(layer, 0)) for p in points]
        ax.plot(xs, [p["forget_toxicity"] for p in points], "o-", label="val forget toxicity")
        ax.plot(xs, [p["retain_score"] for p in points], "s-", label=record["retain_measure"])
        ax.axhline(record["retain_floor"], color="grey", ls="--", lw=1, label="retain floor")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("r")
    axes[0].set_ylabel("share of val generations")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"--r auto chose {record['chosen']}", fontsize=9)
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=90)
    plt.close(fig)
    return path

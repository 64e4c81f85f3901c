"""``hmu benchmark``: the paper's tables over several model sets, resumable.

* Table 1: every method's model set (original, D_r, FT, UCE, RECE, LCR, ...) on the forget and
  the retain test clips: FID, MM-Notox, Diversity, MultiModality, R@1/2/3 (mean ± 95 % CI)
  plus the toxicity rate and the implicit-prompt attack rate.
* Table 3: the r ablation: LCR sets made from the original with r = 4, 8, 16, 32 (the code
  statistics are cached, so each is seconds), each evaluated on both subsets.
* Table 4: single concepts: LCR for one concept only (``kick``, a rare concept), with the
  original, on that concept's forget and retain subsets.

Each (model set, subset) evaluation lands in ``OUT/evals/<row>/<subset>/eval.json`` and is
reused when the request and its inputs are unchanged, so an interrupted benchmark resumes
where it stopped. The tables go to ``OUT/benchmark.md`` and ``OUT/benchmark.csv``, the r
ablation to ``OUT/r_ablation.png``.

Shards: ``run_benchmark(plan, shard=Shard(i, n))`` runs only jobs ``i`` mod ``n`` (a job is
one row with both subsets: a Table 1 model set, an r of the ablation with its LCR set, a
single concept with its two rows), so N independent jobs share the work with no two making
the same LCR set; it writes no table. The unsharded run afterwards finds every evaluation
cached and writes the tables, as if it had run them all.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hmu_core.atomic import write_text
from hmu_core.errors import ConfigError
from hmu_core.eval.protocol import ProtocolParams
from hmu_core.eval.report import EvalRequest, EvalResources, evaluate, load_cached, write_report
from hmu_core.progress import Progress, no_progress
from hmu_core.shard import Shard

log = logging.getLogger(__name__)

SUBSETS = ("forget", "retain")
COLUMNS = (("FID", "fid"), ("MM-Notox", "mm_notox"), ("MM-Dist", "matching_score"),
           ("Diversity", "diversity"), ("MultiModality", "multimodality"), ("R@1", "top1"),
           ("R@2", "top2"), ("R@3", "top3"))
Step = Callable[[str], None]


@dataclass(frozen=True)
class BenchmarkPlan:
    """What to run. ``models`` are (row name, model-set dir) in table order and must include
    ``original`` when ``r_sweep`` or ``singles`` are asked for."""

    data_dir: Path
    evaluator_dir: Path
    out: Path
    models: tuple[tuple[str, Path], ...]
    concepts: tuple[str, ...] = ("violence",)
    r_sweep: tuple[int, ...] = ()
    singles: tuple[str, ...] = ()
    single_r: int = 16
    protocol: ProtocolParams = field(default_factory=ProtocolParams)
    retain_protocol: ProtocolParams | None = None
    single_batch_size: int | None = None
    trans: Path | None = None
    glove_dir: Path | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        names = [n for n, _ in self.models]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"give distinct model rows, e.g. original=DIR lcr=DIR; got {names}")
        if (self.r_sweep or self.singles) and "original" not in names:
            raise ConfigError("the r ablation and single-concept rows start from the 'original' "
                              "model: add original=DIR to --models")
        if any(r < 1 for r in self.r_sweep):
            raise ConfigError(f"--r-sweep values must be >= 1, got {list(self.r_sweep)}")

    def protocol_for(self, subset: str) -> ProtocolParams:
        return self.retain_protocol if subset == "retain" and self.retain_protocol else \
            self.protocol

    def for_single(self, concept: str) -> BenchmarkPlan:
        """The plan of one single-concept row: its concept, and the smaller R-precision pool
        a rare concept's few test clips need (``single_batch_size``)."""
        if self.single_batch_size is None:
            return replace(self, concepts=(concept,))
        size = self.single_batch_size
        return replace(self, concepts=(concept,),
                       protocol=replace(self.protocol, batch_size=size),
                       retain_protocol=replace(self.protocol_for("retain"), batch_size=size))

    @property
    def original(self) -> Path:
        return dict(self.models)["original"]


def parse_models(items: Sequence[str]) -> tuple[tuple[str, Path], ...]:
    """``["original=runs/set", "lcr=runs/lcr"]`` -> pairs; ConfigError on a malformed item."""
    pairs = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--models item {item!r}: write NAME=DIR, e.g. lcr=runs/lcr")
        if not Path(path).is_dir():
            raise ConfigError(f"--models {name}: {path} is not a directory")
        pairs.append((name, Path(path)))
    return tuple(pairs)


def _make_lcr(plan: BenchmarkPlan, name: str, concepts: Sequence[str], r: int,
              step: Step) -> Path:
    """An LCR set from the original (once): ``OUT/models/<name>``."""
    from hmu_core.data.concept_data import ConceptSpec, load_concept_data
    from hmu_core.models.model_set import RECORD_FILE, load_model_set
    from hmu_core.unlearn.lcr_model import LCRConfig
    from hmu_core.unlearn.sets import make_lcr_set

    target = plan.out / "models" / name
    if (target / RECORD_FILE).is_file():
        return target
    step(f"LCR {name}")
    parts = {"trans": plan.trans} if plan.trans else {}
    loaded = load_model_set(plan.original, device=plan.device, **parts)
    data = load_concept_data(plan.data_dir, list(concepts))
    make_lcr_set(loaded, data, [ConceptSpec(c, r) for c in concepts], LCRConfig(r=r), target,
                 cache_dir=plan.out / "cache")
    return target


def _evaluate(plan: BenchmarkPlan, resources: EvalResources, row: str, model: Path,
              subset: str, concepts: Sequence[str], step: Step,
              progress: Progress) -> dict[str, Any]:
    request = EvalRequest(model_dir=model, data_dir=plan.data_dir, split=subset,
                          evaluator_dir=plan.evaluator_dir, concepts=tuple(concepts),
                          glove_dir=plan.glove_dir,
                          parts=(("trans", str(plan.trans)),) if plan.trans else (),
                          protocol=plan.protocol_for(subset), device=plan.device)
    where = plan.out / "evals" / row / subset
    cached = load_cached(where, request)
    if cached is not None:
        return cached
    step(f"evaluating {row} on the {subset} subset")
    report = evaluate(request, resources, progress)
    write_report(where, report)
    return report


def _cell(report: dict[str, Any], key: str) -> str:
    value = report["summary"].get(key)
    if value is None or value["mean"] != value["mean"]:  # absent or NaN
        return "–"
    return f"{value['mean']:.3f} ± {value['ci95']:.3f}"


def _measure(report: dict[str, Any], *keys: str) -> str:
    node: Any = report.get("measures", {})
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return "–"
        node = node[key]
    return f"{node:.3f}"


def _table(title: str, rows: list[tuple[str, dict[str, Any]]], subset: str) -> list[str]:
    extra = (("toxicity", ("toxicity_rate",)), ("toxicity (families)", ("family_toxicity_rate",)))
    if subset == "forget":
        extra += (("implicit attack", ("implicit", "attack_rate")),
                  ("implicit attack (families)", ("implicit", "family_attack_rate")))
    else:
        extra += (("retain action acc.", ("retain_action_accuracy",)),)
    head = [c for c, _ in COLUMNS] + [c for c, _ in extra]
    lines = [f"### {title}", "", "| model | " + " | ".join(head) + " |",
             "|---|" + "---|" * len(head)]
    for name, report in rows:
        cells = [_cell(report, k) for _, k in COLUMNS] + [_measure(report, *k) for _, k in extra]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _csv(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["table", "model", "subset", *[k for _, k in COLUMNS],
                     *[f"{k}_ci95" for _, k in COLUMNS], "toxicity_rate",
                     "family_toxicity_rate", "implicit_attack_rate", "retain_action_accuracy"])
    for table, rows in results.items():
        for key, report in rows.items():
            name, subset = key.rsplit("/", 1)
            summary, m = report["summary"], report.get("measures", {})
            writer.writerow([table, name, subset,
                             *[summary.get(k, {}).get("mean", "") for _, k in COLUMNS],
                             *[summary.get(k, {}).get("ci95", "") for _, k in COLUMNS],
                             m.get("toxicity_rate", ""), m.get("family_toxicity_rate", ""),
                             m.get("implicit", {}).get("attack_rate", ""),
                             m.get("retain_action_accuracy", "")])
    return buffer.getvalue()


def _plot(sweep: dict[int, dict[str, dict[str, Any]]], path: Path) -> None:
    """Forget toxicity and FIDs against r (Table 3 as a figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = sorted(sweep)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for subset, style in (("forget", "o-"), ("retain", "s--")):
        left.plot(rs, [sweep[r][subset]["summary"]["fid"]["mean"] for r in rs], style,
                  label=f"{subset} FID")
    left.set(xlabel="r (codes replaced)", ylabel="FID", xscale="log", xticks=rs)
    left.set_xticklabels([str(r) for r in rs])
    left.minorticks_off()
    left.legend()
    for key, label in (("family_toxicity_rate", "forget toxicity (families)"),
                       ("toxicity_rate", "forget toxicity (judge)")):
        values = [sweep[r]["forget"].get("measures", {}).get(key) for r in rs]
        if all(v is not None for v in values):
            right.plot(rs, values, "o-", label=label)
    retain = [sweep[r]["retain"].get("measures", {}).get("retain_action_accuracy") for r in rs]
    if all(v is not None for v in retain):
        right.plot(rs, retain, "s--", label="retain action accuracy")
    right.set(xlabel="r (codes replaced)", ylabel="share", xscale="log", xticks=rs, ylim=(0, 1))
    right.set_xticklabels([str(r) for r in rs])
    right.minorticks_off()
    right.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def run_benchmark(plan: BenchmarkPlan, *, step: Step = print, progress: Progress = no_progress,
                  command: str = "", shard: Shard | None = None) -> Path | None:
    """Run (or resume) every evaluation of ``plan`` and write the tables; returns the .md.

    With ``shard``, only that shard's jobs run (module docstring) and None is returned.
    """
    plan.out.mkdir(parents=True, exist_ok=True)
    jobs = itertools.count()

    def mine() -> bool:  # the next job (in plan order) is this shard's
        return shard is None or shard.owns(next(jobs))

    resources = EvalResources(plan.data_dir, plan.evaluator_dir, glove_dir=plan.glove_dir,
                              concepts=plan.concepts, seed=plan.protocol.seed,
                              device=plan.device)
    results: dict[str, dict[str, dict[str, Any]]] = {"table1": {}, "table3": {}, "table4": {}}
    for name, model in plan.models:
        if not mine():
            continue
        for subset in SUBSETS:
            results["table1"][f"{name}/{subset}"] = _evaluate(
                plan, resources, name, model, subset, plan.concepts, step, progress)
    sweep: dict[int, dict[str, dict[str, Any]]] = {}
    for r in plan.r_sweep:
        if not mine():
            continue
        model = _make_lcr(plan, f"lcr-r{r}", plan.concepts, r, step)
        sweep[r] = {subset: _evaluate(plan, resources, f"lcr-r{r}", model, subset,
                                      plan.concepts, step, progress) for subset in SUBSETS}
        for subset in SUBSETS:
            results["table3"][f"r={r}/{subset}"] = sweep[r][subset]
    for concept in plan.singles:
        if not mine():
            continue
        single = plan.for_single(concept)
        res = EvalResources(plan.data_dir, plan.evaluator_dir, glove_dir=plan.glove_dir,
                            concepts=(concept,), seed=plan.protocol.seed, device=plan.device)
        model = _make_lcr(single, f"lcr-{concept}", (concept,), plan.single_r, step)
        for label, where, path in (
                (f"original [{concept}]", f"{concept}/original", plan.original),
                (f"LCR r={plan.single_r} [{concept}]", f"{concept}/lcr", model)):
            for subset in SUBSETS:
                results["table4"][f"{label}/{subset}"] = _evaluate(
                    single, res, where, path, subset, (concept,), step, progress)
    if shard is not None:
        step(f"shard {shard.index}/{shard.count} done; run without --shard (every evaluation "
             f"is then reused) to write the tables")
        return None
    return _write(plan, results, sweep, command)


def _write(plan: BenchmarkPlan, results: dict[str, dict[str, dict[str, Any]]],
           sweep: dict[int, dict[str, dict[str, Any]]], command: str) -> Path:
    p, rp = plan.protocol, plan.protocol_for("retain")
    lines = ["# hmu benchmark", "",
             f"Dataset `{plan.data_dir}`, concept(s) {', '.join(plan.concepts)}, evaluator "
             f"`{plan.evaluator_dir}`. Mean ± 95 % CI over {p.repeats} repeats (forget) and "
             f"{rp.repeats} (retain), seed {p.seed}, batch (R-precision pool) {p.batch_size}"
             + (f", {plan.single_batch_size} for single concepts" if plan.singles and
                plan.single_batch_size else "") + ".", ""]
    if command:
        lines += ["Regenerate with:", "", "```bash", command, "```", ""]
    titles = {"table1": "Table 1: methods", "table3": "Table 3: LCR r ablation",
              "table4": "Table 4: single concepts"}
    for table, rows in results.items():
        if not rows:
            continue
        lines += [f"## {titles[table]}", ""]
        for subset in SUBSETS:
            chosen = [(k.rsplit("/", 1)[0], v) for k, v in rows.items()
                      if k.endswith(f"/{subset}")]
            lines += _table(f"{subset} subset", chosen, subset)
    if sweep:
        _plot(sweep, plan.out / "r_ablation.png")
        lines += ["![r ablation](r_ablation.png)", ""]
    write_text(plan.out / "benchmark.csv", _csv(results))
    path = plan.out / "benchmark.md"
    write_text(path, "\n".join(lines))
    return path

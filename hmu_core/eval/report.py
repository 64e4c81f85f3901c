"""One evaluation of a model set on one test subset, as ``hmu eval`` and ``hmu benchmark`` run it.

``evaluate(request, resources)`` runs the protocol (``protocol.run_protocol``) on the forget or
retain clips of the test split and adds the measures of ``toxicity``: toxicity rates of the
generated motions (forget-vs-retain judge; family judge on synthetic sets), NCS@k, the
implicit-prompt attack (forget split) and the retain action accuracy (retain split, synthetic).
``write_report`` writes ``eval.json`` and ``eval.md`` atomically; ``load_cached`` returns a
previous ``eval.json`` made for the same request and inputs, so a benchmark can resume.

``EvalResources`` holds what does not depend on the model set (evaluator, word vectors,
dataset, judges, caption bank), loaded once and shared across model sets and splits.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from hmu_core.atomic import write_json, write_text
from hmu_core.data.concept_data import ConceptData, load_concept_data
from hmu_core.data.concepts import MatchMode
from hmu_core.errors import ConfigError, DataError
from hmu_core.eval import toxicity
from hmu_core.eval.evaluator import CHECKPOINT_FILE, MATCH_DIR, Evaluator, load_evaluator
from hmu_core.eval.protocol import ProtocolParams, ProtocolResult, run_protocol
from hmu_core.eval.safety import IMPLICIT_SECONDS
from hmu_core.eval.word_vectors import OWN_JSON, WordVectorizer, load_word_vectors
from hmu_core.models.generate import MotionGenerator, generate_motions, load_generator
from hmu_core.models.model_set import resolve_model_set
from hmu_core.progress import Progress, no_progress

log = logging.getLogger(__name__)

SPLITS = ("forget", "retain")
EVAL_JSON, EVAL_MD = "eval.json", "eval.md"
FORMAT = "hmu-eval"
_HOW = ("train one with 'hmu train evaluator --data DATA --out DIR' and pass --evaluator DIR, or "
        "pass the official checkpoints/t2m directory (holding text_mot_match/) with --glove "
        "pointing to the official glove/ directory (our_vab_*)")


def find_evaluator(path: str | Path) -> Path:
    """The directory holding ``text_mot_match`` (or it itself). Raises ConfigError with how to
    get one."""
    root = Path(path)
    for candidate in (root, root / MATCH_DIR):
        if (candidate / CHECKPOINT_FILE).is_file():
            return candidate
    raise ConfigError(f"no evaluator in {root} (no {MATCH_DIR}/{CHECKPOINT_FILE.as_posix()}): "
                      f"{_HOW}")


def find_word_vectors(evaluator_dir: Path, glove: str | Path | None = None) -> Path:
    """``glove`` if given, else ``glove/`` beside or above the evaluator (``hmu train evaluator``
    saves its own there). Raises ConfigError when none holds word vectors."""
    candidates = [Path(glove)] if glove is not None else [
        evaluator_dir / "glove", evaluator_dir.parent / "glove", evaluator_dir.parent.parent
        / "glove"]
    for candidate in candidates:
        if (candidate / "our_vab_data.npy").is_file() or (candidate / OWN_JSON).is_file():
            return candidate
    raise ConfigError(f"no word vectors for the evaluator in {', '.join(map(str, candidates))}: "
                      f"{_HOW}")


@dataclass(frozen=True)
class EvalRequest:
    """What to evaluate. ``parts`` overrides model-set parts (``trans=``, ``vq=``, ``res=``)."""

    model_dir: Path | None
    data_dir: Path
    split: str
    evaluator_dir: Path
    concepts: tuple[str, ...] = ("violence",)
    glove_dir: Path | None = None
    parts: tuple[tuple[str, str], ...] = ()
    text_encoder: str | None = None
    mode: str = "official"
    protocol: ProtocolParams = field(default_factory=ProtocolParams)
    measures: bool = True
    ncs_k: tuple[int, ...] = (1, 5)
    implicit: Path | None = None  # None: the dataset's implicit_captions.json, if any
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"split must be forget or retain, got {self.split!r}")
        if not self.concepts:
            raise ConfigError("give at least one concept, e.g. --concept violence")
        if self.mode not in tuple(MatchMode):
            raise ConfigError(f"unknown match mode {self.mode!r}; use official or word")
        if any(k < 1 for k in self.ncs_k):
            raise ConfigError(f"NCS@k needs k >= 1, got {list(self.ncs_k)}")

    def record(self) -> dict[str, Any]:
        """JSON form, with the size and mtime of every input checkpoint (the cache key)."""
        return {"model_dir": _path(self.model_dir), "data_dir": _path(self.data_dir),
                "split": self.split, "evaluator_dir": _path(self.evaluator_dir),
                "concepts": list(self.concepts), "glove_dir": _path(self.glove_dir),
                "parts": dict(self.parts), "text_encoder": self.text_encoder,
                "mode": self.mode, "protocol": self.protocol.to_dict(),
                "measures": self.measures, "ncs_k": list(self.ncs_k),
                "implicit": _path(self.implicit), "inputs": _fingerprint(self)}


def _path(path: Path | None) -> str | None:
    return None if path is None else str(Path(path).resolve())


def _fingerprint(request: EvalRequest) -> dict[str, list[int]]:
    """(size, mtime_ns) of the checkpoint files the result depends on."""
    roots = [p for p in (request.model_dir, request.evaluator_dir) if p is not None]
    roots += [Path(v) for _, v in request.parts]
    files = sorted({f for r in roots for f in Path(r).rglob("*.tar")})
    return {str(f.resolve()): [f.stat().st_size, f.stat().st_mtime_ns] for f in files}


class EvalResources:
    """Model-independent inputs of one dataset + evaluator, loaded lazily and kept."""

    def __init__(self, data_dir: str | Path, evaluator_dir: str | Path, *,
                 glove_dir: str | Path | None = None, concepts: Sequence[str] = ("violence",),
                 mode: str = "official", seed: int = 0, device: str = "cpu") -> None:
        self.data_dir = Path(data_dir)
        self.evaluator_dir = find_evaluator(evaluator_dir)
        self.glove_dir = find_word_vectors(self.evaluator_dir, glove_dir)
        self.concepts, self.mode, self.seed, self.device = tuple(concepts), mode, seed, device
        if not self.data_dir.is_dir():
            raise DataError(f"dataset directory {self.data_dir} not found")

    @cached_property
    def evaluator(self) -> Evaluator:
        return load_evaluator(self.evaluator_dir, device=self.device)

    @cached_property
    def vectorizer(self) -> WordVectorizer:
        vectors = load_word_vectors(self.glove_dir)
        if vectors.dim != self.evaluator.config.dim_word:
            raise ConfigError(f"word vectors in {self.glove_dir} are {vectors.dim}-d, the "
                              f"evaluator reads {self.evaluator.config.dim_word}-d: use the "
                              f"vectors it was trained with")
        return vectors

    @cached_property
    def test(self) -> ConceptData:
        return load_concept_data(self.data_dir, self.concepts, split="test", mode=self.mode)

    @cached_property
    def keywords(self) -> list[str]:
        return [k for c in self.test.concepts for k in c.keywords]

    @cached_property
    def judge(self) -> toxicity.ToxicityJudge:
        return toxicity.fit_toxicity_judge(self.data_dir, self.concepts, mode=self.mode,
                                           seed=self.seed)

    @cached_property
    def family_judge(self) -> toxicity.FamilyJudge | None:
        return toxicity.fit_family_judge(self.data_dir, seed=self.seed)

    @cached_property
    def caption_bank(self) -> tuple[np.ndarray, np.ndarray]:
        return toxicity.caption_bank(self.test.dataset, "test", self.evaluator, self.vectorizer,
                              self.test.concepts, self.mode)


def _measures(request: EvalRequest, res: EvalResources, generator: MotionGenerator,
              result: ProtocolResult) -> dict[str, Any]:
    samples = result.samples
    feats = [s.features for s in samples]
    out: dict[str, Any] = {"samples": len(samples), "judge": res.judge.info,
                           "toxicity_rate": res.judge.rate(feats)}
    family = res.family_judge
    if family is not None:
        out["family_toxicity_rate"] = family.rate(feats)
        out["toxic_families"] = sorted(family.toxic_families)
        if request.split == "retain":
            out["retain_action_accuracy"] = family.accuracy(
                feats, [(s.motion_id, s.begin, s.end) for s in samples])
    bank, flags = res.caption_bank
    emb = np.stack([s.embedding for s in samples])
    out["ncs"] = {str(k): toxicity.ncs_at_k(emb, bank, flags, min(k, len(bank)))
                  for k in request.ncs_k}
    out["ncs_bank"] = {"captions": len(bank), "toxic": int(flags.sum())}
    source = request.implicit or (res.data_dir if (res.data_dir / toxicity.IMPLICIT_FILE).is_file()
                                  else None)
    if source is not None and request.split == "forget":
        out["implicit"] = implicit_attack(generator, toxicity.load_implicit_prompts(source), res,
                                          request.protocol)
        out["implicit"]["source"] = str(source)
    return out


def implicit_attack(generator: MotionGenerator, prompts: list[tuple[str, str]],
                    res: EvalResources, params: ProtocolParams) -> dict[str, Any]:
    """Toxicity rates of motions generated from keyword-free prompts (seed + i each)."""
    seconds = None if generator.kind == "bamm" or generator.length_estimator is not None \
        else IMPLICIT_SECONDS
    motions = generate_motions(generator, [p for _, p in prompts], seed=params.seed,
                               seconds=seconds, params=params.sampling).motions
    feats = [m.features for m in motions]
    out: dict[str, Any] = {"prompts": len(prompts), "attack_rate": res.judge.rate(feats)}
    if res.family_judge is not None:
        out["family_attack_rate"] = res.family_judge.rate(feats)
    return out


def evaluate(request: EvalRequest, resources: EvalResources | None = None,
             progress: Progress = no_progress) -> dict[str, Any]:
    """Run the protocol and the measures; returns what ``eval.json`` holds.

    Raises:
        ConfigError: missing evaluator, word vectors or model parts (the message says how to
            get them). DataError: missing dataset files, an empty subset.
    """
    started = time.perf_counter()
    res = resources or EvalResources(request.data_dir, request.evaluator_dir,
                                     glove_dir=request.glove_dir, concepts=request.concepts,
                                     mode=request.mode, seed=request.protocol.seed,
                                     device=request.device)
    models = resolve_model_set(request.model_dir, text_encoder=request.text_encoder,
                               **dict(request.parts))
    ids = res.test.forget_ids if request.split == "forget" else res.test.retain_ids
    evaluator, vectorizer = res.evaluator, res.vectorizer
    generator = load_generator(models, device=request.device)
    result = run_protocol(generator, evaluator, vectorizer, res.test.dataset, ids, res.keywords,
                          request.protocol, progress)
    report: dict[str, Any] = {
        "format": FORMAT, "version": 1, "request": request.record(),
        "model": generator.source, "model_kind": generator.kind, "split": request.split,
        "clips": len(ids), "evaluator_epoch": evaluator.epoch, **result.to_json()}
    if request.measures:
        report["measures"] = _measures(request, res, generator, result)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def load_cached(out_dir: str | Path, request: EvalRequest) -> dict[str, Any] | None:
    """The ``eval.json`` in ``out_dir`` if it was made for this very request and inputs."""
    path = Path(out_dir) / EVAL_JSON
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    same = isinstance(report, dict) and report.get("format") == FORMAT and \
        report.get("request") == json.loads(json.dumps(request.record()))
    return report if same else None


# --------------------------------------------------------------------------- writing

_ROWS = (("FID ↓", "fid", None), ("Diversity →", "diversity", "gt_diversity"),
         ("R@1 ↑", "top1", "gt_top1"), ("R@2 ↑", "top2", "gt_top2"), ("R@3 ↑", "top3", "gt_top3"),
         ("MM-Dist ↓", "matching_score", "gt_matching_score"),
         ("MM-Notox (MM-Safe)", "mm_notox", None), ("MultiModality ↑", "multimodality", None))


def _cell(summary: dict[str, dict[str, float]], key: str | None) -> str:
    if key is None or key not in summary or not np.isfinite(summary[key]["mean"]):
        return "–"
    return f"{summary[key]['mean']:.3f} ± {summary[key]['ci95']:.3f}"


def render_markdown(report: dict[str, Any]) -> str:
    """``eval.md``: the metric table (mean ± 95 % CI) and the measures."""
    req, summary = report["request"], report["summary"]
    lines = [f"# hmu eval: {req['split']} split of {', '.join(req['concepts'])}", "",
             f"model `{req['model_dir'] or req['parts']}` ({report['model_kind']}), data "
             f"`{req['data_dir']}`, {report['clips']} test clips, {report['items']} items, "
             f"{report['samples_per_repeat']} samples × {req['protocol']['repeats']} repeats, "
             f"seed {req['protocol']['seed']}, {report['seconds']} s", "",
             "| metric | model | ground truth |", "|---|---|---|"]
    lines += [f"| {label} | {_cell(summary, k)} | {_cell(summary, g)} |"
              for label, k, g in _ROWS]
    measures = report.get("measures")
    if measures:
        judge = measures["judge"]
        lines += ["", "| measure | value |", "|---|---|",
                  f"| toxicity rate (forget-vs-retain judge) | {measures['toxicity_rate']:.3f} |"]
        if "family_toxicity_rate" in measures:
            lines.append(f"| toxicity rate (ground-truth families) | "
                         f"{measures['family_toxicity_rate']:.3f} |")
        if "retain_action_accuracy" in measures:
            lines.append(f"| retain action accuracy | {measures['retain_action_accuracy']:.3f} |")
        lines += [f"| NCS@{k} | {v:.3f} |" for k, v in measures["ncs"].items()]
        if "implicit" in measures:
            imp = measures["implicit"]
            lines.append(f"| implicit-prompt attack rate ({imp['prompts']} prompts) | "
                         f"{imp['attack_rate']:.3f} |")
            if "family_attack_rate" in imp:
                lines.append(f"| implicit attack rate (ground-truth families) | "
                             f"{imp['family_attack_rate']:.3f} |")
        lines += ["", f"Judge: held-out accuracy {judge['accuracy']:.3f}, balanced accuracy "
                  f"{judge['balanced_accuracy']:.3f} on {judge['test_forget']} forget + "
                  f"{judge['test_retain']} retain test clips. Measures use the "
                  f"{measures['samples']} motions of the first repeat."]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``eval.json`` and ``eval.md`` (each atomically) into ``out_dir``."""
    root = Path(out_dir)
    write_json(root / EVAL_JSON, report)
    write_text(root / EVAL_MD, render_markdown(report))
    return root / EVAL_JSON, root / EVAL_MD

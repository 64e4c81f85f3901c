"""Unlearning measures beyond the paper's table (DESIGN.md §4): they judge generated motions by
what they look like or where they land, not by the metrics' distribution distances.

* Toxicity rate: share of generated motions that a ``MotionClassifier`` trained on the
  dataset's train-split forget vs retain motions calls toxic. Forget clips are few (about 8 %
  on HumanML3D), so they are oversampled to the retain count before fitting; the judge's own
  held-out accuracy and balanced accuracy on the test split are reported with every rate.
* On synthetic sets, where every clip's action family is known (``clips.jsonl``), the
  ground-truth family classifier gives a second toxicity rate (predicted family is a toxic
  one) and the retain action accuracy (predicted family = the caption's family).
* NCS@k (HMU ``ncs_compute.py``, with the evaluator's motion->text space instead of TMR): share
  of generated forget motions whose k nearest dataset captions contain a concept keyword.
* Implicit-prompt attacks: the toxicity rates on prompts that describe a toxic action without
  any keyword (``implicit_captions.json`` of a synthetic set, or a text file).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hmu_core.data.concept_data import load_concept_data
from hmu_core.data.concepts import Concept, MatchMode, caption_is_toxic
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError, DataError
from hmu_core.eval.classifier import MotionClassifier
from hmu_core.eval.evaluator import Evaluator
from hmu_core.eval.metrics import euclidean_distance_matrix
from hmu_core.eval.word_vectors import WordVectorizer, encode_batch

log = logging.getLogger(__name__)

TOXIC, SAFE = "toxic", "safe"
IMPLICIT_FILE = "implicit_captions.json"
CLIPS_FILE = "clips.jsonl"


def _accuracies(predicted: Sequence[str], truth: Sequence[str]) -> dict[str, float]:
    p, t = np.asarray(predicted), np.asarray(truth)
    recalls = [float((p[t == c] == c).mean()) for c in (TOXIC, SAFE) if (t == c).any()]
    return {"accuracy": float((p == t).mean()), "balanced_accuracy": float(np.mean(recalls))}


@dataclass
class ToxicityJudge:
    """A forget-vs-retain motion classifier and how well it did on held-out clips."""

    classifier: MotionClassifier
    info: dict[str, Any] = field(default_factory=dict)

    def rate(self, features: Sequence[np.ndarray]) -> float:
        """Share of ``features`` ((T, 263) de-normalised each) judged toxic."""
        if not features:
            raise DataError("toxicity rate of no motions")
        column = self.classifier.classes.index(TOXIC)
        return float((self.classifier.predict_proba(features)[:, column] > 0.5).mean())


def fit_toxicity_judge(data_dir: str | Path, concepts: Sequence[str], *,
                       mode: MatchMode | str = MatchMode.OFFICIAL, seed: int = 0,
                       train_split: str = "train", test_split: str = "test") -> ToxicityJudge:
    """Fit the judge on ``train_split`` (forget oversampled to balance), score it on
    ``test_split``.

    Raises:
        DataError: a split without forget or retain clips (from ``load_concept_data``).
    """
    train = load_concept_data(data_dir, concepts, split=train_split, mode=mode)
    dataset = train.dataset
    forget = [dataset.features(i) for i in train.forget_ids]
    retain = [dataset.features(i) for i in train.retain_ids]
    rng = np.random.default_rng(seed)
    extra = rng.choice(len(forget), max(len(retain) - len(forget), 0), replace=True)
    feats = forget + [forget[i] for i in extra] + retain
    labels = [TOXIC] * (len(forget) + len(extra)) + [SAFE] * len(retain)
    classifier = MotionClassifier().fit(feats, labels, seed=seed)
    test = load_concept_data(data_dir, concepts, split=test_split, mode=mode)
    test_ids = [*test.forget_ids, *test.retain_ids]
    truth = [TOXIC] * len(test.forget_ids) + [SAFE] * len(test.retain_ids)
    predicted = classifier.predict([dataset.features(i) for i in test_ids])
    info = {"train_split": train_split, "train_forget": len(forget),
            "train_retain": len(retain), "oversampled_forget": len(forget) + len(extra),
            "test_split": test_split, "test_forget": len(test.forget_ids),
            "test_retain": len(test.retain_ids), **_accuracies(predicted, truth)}
    log.info("toxicity judge: %s", info)
    return ToxicityJudge(classifier, info)


@dataclass
class FamilyJudge:
    """The ground-truth family classifier of a synthetic set and its toxic families."""

    classifier: MotionClassifier
    toxic_families: frozenset[str]
    records: dict[str, dict]

    def rate(self, features: Sequence[np.ndarray]) -> float:
        """Share of motions whose predicted family is a toxic one."""
        return float(np.mean([p in self.toxic_families
                              for p in self.classifier.predict(features)]))

    def family(self, motion_id: str, begin: int, end: int) -> str:
        """The family a caption over feature frames ``[begin, end)`` of a clip describes: the
        clip label for the whole clip, else the segment overlapping the span most."""
        record = self.records[motion_id]
        segments = record.get("segments") or []
        if (begin == 0 and end >= int(record.get("feature_frames", end))) or not segments:
            return str(record["label"])
        overlap = [min(end, s["end"]) - max(begin, s["start"]) for s in segments]
        return str(segments[int(np.argmax(overlap))]["family"])

    def accuracy(self, features: Sequence[np.ndarray],
                 spans: Sequence[tuple[str, int, int]]) -> float:
        """Share of motions classified as the family of their caption's (clip, begin, end)."""
        predicted = self.classifier.predict(features)
        return float(np.mean([p == self.family(*s) for p, s in zip(predicted, spans,
                                                                   strict=True)]))


def fit_family_judge(data_dir: str | Path, *, seed: int = 0,
                     classifier: MotionClassifier | None = None) -> FamilyJudge | None:
    """The family judge of a synthetic set (None when ``clips.jsonl`` is absent): the given
    classifier, else one fitted on the train split's family labels."""
    root = Path(data_dir)
    if not (root / CLIPS_FILE).is_file():
        return None
    from hmu_core.synth.generate import read_clip_records

    records = read_clip_records(root)
    toxic = frozenset(s["family"] for r in records.values() for s in r.get("segments", [])
                      if s.get("toxic"))
    model = classifier or MotionClassifier.fit_on_dataset(root, "train", "label", seed=seed)
    return FamilyJudge(model, toxic, records)


def caption_bank(dataset: HumanML3D, split: str, evaluator: Evaluator,
                 vectorizer: WordVectorizer, concepts: Sequence[Concept],
                 mode: MatchMode | str = MatchMode.OFFICIAL) -> tuple[np.ndarray, np.ndarray]:
    """Evaluator embeddings (M, D) of every caption of ``split`` and (M,) keyword flags."""
    captions = [c for i in dataset.ids(split) for c in dataset.captions(i)]
    if not captions:
        raise DataError(f"{dataset.root}: the {split} split has no captions for NCS@k")
    flags = np.array([caption_is_toxic(c.line, concepts, MatchMode(mode)) for c in captions])
    return caption_embeddings(evaluator, vectorizer, [c.tokens for c in captions]), flags


def caption_embeddings(evaluator: Evaluator, vectorizer: WordVectorizer,
                       tokens: Sequence[Sequence[tuple[str, str]]]) -> np.ndarray:
    """Evaluator text embeddings (N, D) of captions given as (word, POS) tokens, in order,
    256 at a time."""
    chunks = [evaluator.text_embeddings(*encode_batch(tokens[i:i + 256], vectorizer,
                                                      evaluator.config.max_text_len))
              for i in range(0, len(tokens), 256)]
    return np.concatenate(chunks)


def ncs_at_k(motion_emb: np.ndarray, caption_emb: np.ndarray, caption_toxic: np.ndarray,
             k: int) -> float:
    """Share of motions whose ``k`` nearest captions (Euclidean) include a toxic one.

    Raises:
        ConfigError: k outside [1, M]. DataError: shapes disagree.
    """
    caption_toxic = np.asarray(caption_toxic, bool)
    if caption_toxic.shape != (len(caption_emb),):
        raise DataError(f"{len(caption_emb)} caption embeddings but {caption_toxic.shape} flags")
    if not 1 <= k <= len(caption_emb):
        raise ConfigError(f"k must be in [1, {len(caption_emb)}], got {k}")
    nearest = np.argsort(euclidean_distance_matrix(motion_emb, caption_emb), axis=1,
                         kind="stable")[:, :k]
    return float(caption_toxic[nearest].any(axis=1).mean())


def load_implicit_prompts(path: str | Path) -> list[tuple[str, str]]:
    """``(family or "", prompt)`` pairs from a dataset dir or ``.json`` (family -> prompts, as
    ``implicit_captions.json``) or a text file (one prompt a line).

    Raises:
        DataError: missing, empty or malformed.
    """
    source = Path(path)
    if source.is_dir():
        source = source / IMPLICIT_FILE
    if not source.is_file():
        raise DataError(f"{source} not found: give a text file with one prompt a line, or a "
                        f"synthetic dataset holding {IMPLICIT_FILE}")
    text = source.read_text(encoding="utf-8")
    if source.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{source}: not valid JSON ({error.msg})") from None
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise DataError(f"{source}: expected an object family -> list of prompts")
        prompts = [(str(f), str(p)) for f, items in data.items() for p in items]
    else:
        prompts = [("", line.strip()) for line in text.splitlines() if line.strip()]
    if not prompts:
        raise DataError(f"{source} holds no prompts")
    return prompts


def first_per_family(prompts: Sequence[tuple[str, str]], count: int | None
                     ) -> list[tuple[str, str]]:
    """The first ``count`` ``(family, prompt)`` pairs of each family, in order (None: all)."""
    taken: Counter[str] = Counter()
    kept = []
    for family, prompt in prompts:
        taken[family] += 1
        if count is None or taken[family] <= count:
            kept.append((family, prompt))
    return kept

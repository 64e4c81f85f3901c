"""Unlearning measures: the toxicity judge separates real toxic from safe motions, the family
judge knows the toxic families, NCS@k on constructed embeddings, implicit prompt files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hmu_core.data.concept_data import load_concept_data
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError, DataError
from hmu_core.eval.toxicity import (
    fit_family_judge,
    fit_toxicity_judge,
    load_implicit_prompts,
    ncs_at_k,
)

CONCEPT = ["violence_motionx"]


def test_judge_scores_toxic_clips_high_and_safe_ones_low(eval_data: Path) -> None:
    judge = fit_toxicity_judge(eval_data, CONCEPT, seed=0)
    assert judge.info["oversampled_forget"] == judge.info["train_retain"]  # class-balanced
    assert judge.info["balanced_accuracy"] > 0.7
    split = load_concept_data(eval_data, CONCEPT, split="all")
    data = split.dataset
    toxic = judge.rate([data.features(i) for i in split.forget_ids])
    safe = judge.rate([data.features(i) for i in split.retain_ids])
    assert toxic > 0.7 and safe < 0.3


def test_family_judge(eval_data: Path, tmp_path: Path) -> None:
    judge = fit_family_judge(eval_data, seed=0)
    assert judge is not None
    assert {"kick", "punch"} <= judge.toxic_families and "walk" not in judge.toxic_families
    data = HumanML3D(eval_data)
    ids = data.ids("train")[:40]
    feats = [data.features(i) for i in ids]
    spans = [(i, 0, len(f)) for i, f in zip(ids, feats, strict=True)]
    assert judge.accuracy(feats, spans) > 0.8  # real clips: their own family
    toxic_clips = [i for i in ids if judge.records[i]["toxic"]]
    assert judge.rate([data.features(i) for i in toxic_clips]) > 0.5
    assert fit_family_judge(tmp_path) is None  # not a synthetic set


def test_ncs_at_k_on_constructed_embeddings() -> None:
    captions = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    toxic = np.array([False, True, False, False])
    motions = np.array([[9.0, 0.5], [0.5, 0.5], [1.0, 9.0]])
    assert ncs_at_k(motions, captions, toxic, 1) == pytest.approx(1 / 3)
    assert ncs_at_k(motions, captions, toxic, 4) == 1.0
    assert ncs_at_k(motions, captions, np.zeros(4, bool), 3) == 0.0
    with pytest.raises(ConfigError):
        ncs_at_k(motions, captions, toxic, 5)
    with pytest.raises(DataError):
        ncs_at_k(motions, captions, toxic[:3], 1)


def test_implicit_prompt_files(eval_data: Path, tmp_path: Path) -> None:
    from_dataset = load_implicit_prompts(eval_data)
    families = json.loads((eval_data / "implicit_captions.json").read_text())
    assert len(from_dataset) == sum(len(v) for v in families.values())
    text = tmp_path / "prompts.txt"
    text.write_text("a person swings a leg hard\n\nsomeone thrusts an arm\n")
    assert load_implicit_prompts(text) == [("", "a person swings a leg hard"),
                                           ("", "someone thrusts an arm")]
    with pytest.raises(DataError, match="not found"):
        load_implicit_prompts(tmp_path / "missing.txt")

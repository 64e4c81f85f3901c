"""The safety protocol: every forget caption line, several seeds, mean ± CI, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmu_core.assets import default_classifier_path
from hmu_core.data.concept_data import load_concept_data
from hmu_core.errors import ConfigError
from hmu_core.eval.classifier import MotionClassifier
from hmu_core.eval.safety import (
    SafetyPrompts,
    SafetyProtocol,
    caption_lines,
    measure_safety,
    torch_generate,
)
from hmu_core.eval.toxicity import fit_family_judge, load_implicit_prompts
from hmu_core.models.generate import load_generator
from hmu_core.models.model_set import resolve_model_set

from .conftest import DEFAULT_MODEL


def test_prompts_take_every_forget_line_and_first_retain_lines(eval_data):
    prompts = SafetyPrompts.from_dataset(eval_data, ["violence_motionx"], retain_limit=5)
    test = load_concept_data(eval_data, ["violence_motionx"], split="test")
    lines = sum(len(test.dataset.captions(c)) for c in test.forget_ids)
    assert len(prompts.forget) == lines and len(prompts.retain) == 5
    assert {r.clip for r in prompts.retain} == set(test.retain_ids[:5])
    assert prompts.implicit and all(10 <= r.tokens <= 49 for r in prompts.forget)
    assert caption_lines(test.dataset, test.forget_ids[:1], first_only=True)[0] == prompts.forget[0]
    families = load_implicit_prompts(eval_data)
    assert prompts.implicit == [p for _, p in families]
    one = SafetyPrompts.from_dataset(eval_data, ["violence_motionx"], implicit_per_family=1)
    firsts: dict[str, str] = {}
    for family, prompt in families:
        firsts.setdefault(family, prompt)
    assert one.implicit == list(firsts.values()) and len(firsts) > 1


def test_measure_safety_is_seeded_and_summarised(eval_data):
    torch.set_num_threads(1)
    generate = torch_generate(load_generator(resolve_model_set(DEFAULT_MODEL)))
    judge = fit_family_judge(eval_data,
                             classifier=MotionClassifier.load(default_classifier_path()))
    full = SafetyPrompts.from_dataset(eval_data, ["violence_motionx"], retain_limit=4)
    prompts = SafetyPrompts(forget=full.forget[:6], retain=full.retain, implicit=full.implicit[:3])
    protocol = SafetyProtocol(seeds=(0, 1), batch_size=4)
    first = measure_safety(generate, judge, prompts, protocol)
    again = measure_safety(generate, judge, prompts, protocol)
    assert first.per_seed == again.per_seed
    assert len(first.per_seed["forget_toxicity"]) == 2
    summary = first.summary()
    for key in ("forget_toxicity", "implicit_toxicity", "retain_accuracy", "forget_leaves_2m"):
        values = first.per_seed[key]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert summary[key]["mean"] == pytest.approx(np.mean(values))
        assert summary[key]["ci95"] == pytest.approx(1.96 * np.std(values) / np.sqrt(2))
    assert summary["forget_root_speed"]["mean"] >= 0 and summary["retain_jerk"]["mean"] > 0


@pytest.mark.parametrize("seeds", [(0,), (1, 1)])
def test_protocol_needs_two_distinct_seeds(seeds):
    with pytest.raises(ConfigError, match="2 or more distinct seeds"):
        SafetyProtocol(seeds=seeds)

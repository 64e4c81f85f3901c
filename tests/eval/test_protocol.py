"""The evaluation protocol on the embedded default model: one seed gives the same table twice,
every metric has one value per repeat, a subset smaller than a batch is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError, DataError
from hmu_core.eval.evaluator import load_evaluator
from hmu_core.eval.protocol import METRICS, ProtocolParams, run_protocol
from hmu_core.eval.word_vectors import load_word_vectors
from hmu_core.models.generate import generate_motions, load_generator
from hmu_core.models.model_set import resolve_model_set
from hmu_core.sampling.params import SamplingParams

from .conftest import DEFAULT_MODEL

# Two mask-predict steps keep generation cheap; the protocol does not care how good motions are.
PARAMS = ProtocolParams(repeats=2, batch_size=4, mm_captions=2, mm_generations=2, mm_times=1,
                        seed=5, sampling=SamplingParams(timesteps=2))
KEYWORDS = ["kick", "punch", "shoot"]


@pytest.fixture(scope="module")
def setup(eval_data: Path, micro_evaluator: Path):
    generator = load_generator(resolve_model_set(DEFAULT_MODEL))
    evaluator = load_evaluator(micro_evaluator)
    vectors = load_word_vectors(micro_evaluator / "glove")
    dataset = HumanML3D(eval_data)
    return generator, evaluator, vectors, dataset, dataset.ids("train")[:4]


@pytest.fixture(scope="module")
def first(setup):
    calls: list[tuple[str, int, int]] = []
    result = run_protocol(*setup, KEYWORDS, PARAMS, progress=lambda *report: calls.append(report))
    return result, calls


def test_shape_and_progress(first) -> None:
    result, calls = first
    assert set(result.per_repeat) == set(METRICS)
    assert all(len(v) == PARAMS.repeats for v in result.per_repeat.values())
    assert result.samples_per_repeat % PARAMS.batch_size == 0
    assert result.samples_per_repeat <= result.items
    batches = result.samples_per_repeat // PARAMS.batch_size
    assert calls[-1] == ("evaluating", PARAMS.repeats * batches, PARAMS.repeats * batches)
    summary = result.summary()
    assert all(np.isfinite(summary[k]["mean"]) for k in METRICS)
    for key in ("top1", "top2", "top3", "gt_top1"):
        assert 0.0 <= summary[key]["mean"] <= 1.0
    assert summary["top1"]["mean"] <= summary["top2"]["mean"] <= summary["top3"]["mean"]
    assert len(result.samples) == result.samples_per_repeat  # the first repeat's motions
    assert result.samples[0].features.shape[1] == 263


def test_same_seed_same_table(setup, first) -> None:
    again = run_protocol(*setup, KEYWORDS, PARAMS)
    assert again.to_json() == first[0].to_json()


def test_subset_smaller_than_a_batch_is_refused(setup) -> None:
    generator, evaluator, vectors, dataset, ids = setup
    with pytest.raises(DataError, match="fewer than one batch"):
        run_protocol(generator, evaluator, vectors, dataset, ids[:1], KEYWORDS,
                     ProtocolParams(repeats=1, batch_size=32, mm_captions=0))


def test_generation_with_token_lengths(setup) -> None:
    generator = setup[0]
    fast = SamplingParams(timesteps=1)
    motions = generate_motions(generator, ["a person walks", "a person waves"], seeds=[1, 2],
                               tokens=[9, 12], params=fast).motions
    assert [len(m.features) for m in motions] == [36, 48]
    assert motions[0].provenance["length_source"] == "tokens"
    for bad in ([0, 12], [9, 50], [9]):
        with pytest.raises(ConfigError, match="token lengths"):
            generate_motions(generator, ["a", "b"], tokens=bad, params=fast)
    with pytest.raises(ConfigError, match="not both"):
        generate_motions(generator, ["a"], tokens=[10], seconds=2.0, params=fast)


def test_a_bundle_is_judged_like_its_model_set(setup, first, default_bundle) -> None:
    """The protocol runs over any backend: the exported default model gives the torch table
    (same tokens by the parity tests; features equal to float32 precision, so every metric
    agrees to well within its noise)."""
    from exporter.runtime import Generator

    _, evaluator, vectors, dataset, ids = setup
    bundle = run_protocol(Generator(default_bundle, device="cpu", threads=1), evaluator,
                          vectors, dataset, ids, KEYWORDS, PARAMS)
    torch_table, bundle_table = first[0].summary(), bundle.summary()
    for key in METRICS:
        assert bundle_table[key]["mean"] == pytest.approx(torch_table[key]["mean"],
                                                          rel=1e-3, abs=1e-3), key

"""Fixtures of the evaluation tests: a small synthetic set and a micro evaluator saved in the
layout ``hmu train evaluator`` writes (random weights: the protocol tests need determinism and
shapes, not a good evaluator)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hmu_core.data.humanml3d import HumanML3D
from hmu_core.eval.evaluator import Evaluator, EvaluatorConfig, save_evaluator
from hmu_core.synth.generate import write_synthetic_dataset
from hmu_core.train.evaluator import dataset_word_vectors

MICRO = EvaluatorConfig(dim_movement_enc_hidden=16, dim_movement_latent=8, dim_word=16,
                        dim_text_hidden=8, dim_motion_hidden=16, dim_coemb_hidden=4)
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "hmu_core" / "assets" / "default_model"


@pytest.fixture(scope="session")
def eval_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 synthetic clips, 30 % with a toxic segment (a few seconds to write)."""
    out = tmp_path_factory.mktemp("eval_data") / "synth"
    write_synthetic_dataset(out, 120, seed=7, toxic_share=0.3)
    return out


@pytest.fixture(scope="session")
def micro_evaluator(eval_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An evaluator dir: text_mot_match/ (seeded random weights, dataset meta stats) + glove/."""
    from hmu_core.data.datasets import meta_stats

    dataset = HumanML3D(eval_data)
    out = tmp_path_factory.mktemp("micro_evaluator")
    mean, std = meta_stats(dataset.mean(), dataset.std())
    save_evaluator(out / "text_mot_match", Evaluator(MICRO, mean=mean, std=std, seed=3))
    dataset_word_vectors(dataset, MICRO.dim_word, seed=0).save(out / "glove")
    return out

"""Evaluator training: the official contrastive loss, both stages end to end on a tiny set
(loss goes down, the official layout loads back), refusal to overwrite a run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from hmu_core.errors import ConfigError
from hmu_core.eval.evaluator import Evaluator, load_evaluator
from hmu_core.eval.word_vectors import load_word_vectors
from hmu_core.models.checkpoints import read_checkpoint
from hmu_core.train.data import text_motion_splits
from hmu_core.train.evaluator import (
    MatchTask,
    contrastive_loss,
    evaluator_preset,
    train_evaluator,
)
from hmu_core.train.loop import RunOptions
from hmu_core.train.runtime import init_runtime


def micro_preset():
    base = evaluator_preset("tiny")
    return dataclasses.replace(
        base, schedule=base.schedule.replace(batch_size=16, max_iters=60, lr=2e-3, log_every=5,
                                             save_latest=20),
        movement=base.movement.replace(batch_size=16, max_iters=8, log_every=4, save_latest=8),
        dim_movement_enc_hidden=16, dim_movement_latent=8, dim_movement_dec_hidden=16,
        dim_text_hidden=32, dim_motion_hidden=32, dim_coemb_hidden=16, dim_word=16)


def test_contrastive_loss_is_the_official_formula() -> None:
    a, b = torch.tensor([[0.0, 0.0], [1.0, 1.0]]), torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    d = torch.tensor([5.0, 0.0]) + 1e-6 * np.sqrt(2)  # pairwise_distance adds eps to the diff
    assert contrastive_loss(a, b, False, 10.0).item() == pytest.approx((d**2).mean().item(),
                                                                        rel=1e-5)
    assert contrastive_loss(a, b, True, 10.0).item() == pytest.approx(
        ((10 - d).clamp(min=0) ** 2).mean().item(), rel=1e-5)


@pytest.fixture(scope="module")
def trained(eval_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "evaluator"
    train_evaluator(eval_data, micro_preset(), RunOptions(out_dir=out, seed=0),
                    runtime=init_runtime("cpu"))
    return out


def _fixed_loss(evaluator: Evaluator, out: Path, data: Path) -> float:
    """Contrastive loss on fixed training items with a fixed shift (eval mode, no RNG)."""
    from hmu_core.data.datasets import meta_stats
    from hmu_core.data.humanml3d import HumanML3D

    dataset = HumanML3D(data)
    train, _ = text_motion_splits(dataset, *meta_stats(dataset.mean(), dataset.std()),
                                  micro_preset(), seed=0)
    task = MatchTask(evaluator, micro_preset(), train, None, load_word_vectors(out / "glove"),
                     init_runtime("cpu"), out)
    evaluator.eval()
    with torch.no_grad():
        return float(np.mean([task._losses(train, list(range(s, s + 16)), 5)[0].item()
                              for s in range(0, 64, 16)]))


def test_training_lowers_the_contrastive_loss(trained: Path, eval_data: Path) -> None:
    best = load_evaluator(trained)
    assert (trained / "text_mot_match" / "meta" / "std.npy").is_file()
    assert (trained / "evaluator.json").is_file()
    vectors = load_word_vectors(trained / "glove")
    assert vectors.dim == best.config.dim_word == 16
    initial = Evaluator(best.config, mean=best.mean, std=best.std, seed=0)
    movement = read_checkpoint(trained / "Decomp_SP001_SM001_H512" / "model" / "finest.tar")
    initial.movement_encoder.load_state_dict(movement["movement_enc"])
    torch.testing.assert_close(initial.movement_encoder.state_dict(),
                               best.movement_encoder.state_dict())  # stage 2 kept it frozen
    before, after = _fixed_loss(initial, trained, eval_data), _fixed_loss(best, trained, eval_data)
    assert after < 0.9 * before


def test_refuses_to_overwrite_a_run(trained: Path, eval_data: Path) -> None:
    with pytest.raises(ConfigError, match="--resume"):
        train_evaluator(eval_data, micro_preset(), RunOptions(out_dir=trained, seed=0),
                        runtime=init_runtime("cpu"))


def test_resuming_a_finished_run_keeps_its_evaluator(trained: Path, eval_data: Path) -> None:
    before = load_evaluator(trained).state_dict()
    result = train_evaluator(eval_data, micro_preset(),
                             RunOptions(out_dir=trained, seed=0, resume=True),
                             runtime=init_runtime("cpu"))
    assert result.total_it == micro_preset().schedule.max_iters
    torch.testing.assert_close(load_evaluator(trained).state_dict(), before)


def test_budget_overrides_cap_both_stages() -> None:
    """``--max-iters``/``--epochs``/``--batch-size`` apply to the movement stage too (they
    once capped only the matching stage, so a 2-iteration smoke run still trained 300)."""
    from hmu_core.train.evaluator import evaluator_preset
    from hmu_core.train.presets import with_overrides

    capped = with_overrides(evaluator_preset("tiny"), max_iters=2, epochs=3, batch_size=8)
    for stage in (capped.schedule, capped.movement):
        assert (stage.max_iters, stage.max_epoch, stage.batch_size) == (2, 3, 8)
    assert capped.movement.lr == evaluator_preset("tiny").movement.lr

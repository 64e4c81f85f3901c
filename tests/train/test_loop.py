"""Shared loop pieces: official warm-up and MultiStepLR stepping, batches, presets."""

from __future__ import annotations

import pytest
import torch

from hmu_core.errors import ConfigError
from hmu_core.train.loop import (
    LRSchedule,
    MetricLog,
    epoch_batches,
    prepare_run_dir,
    warmup_lr,
)
from hmu_core.train.presets import get_preset, with_overrides
from hmu_core.train.runtime import Runtime, init_runtime, resolve_device

from .conftest import tiny_schedule


def _lrs(step_during_warmup: bool) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=1.0)
    sched = LRSchedule(opt, tiny_schedule(lr=1.0, warm_up_iter=3, milestones=(5,), gamma=0.1),
                       step_during_warmup)
    out = []
    for it in range(1, 9):
        sched.before_step(it)
        out.append(sched.lr)
        sched.after_step(it)
    return out


@pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")
def test_warm_up_then_milestones_as_the_official_trainers():
    assert warmup_lr(2e-4, 0, 2000) == pytest.approx(2e-4 / 2001)
    # VQ: warm-up for it < 3, scheduler stepped only from it >= 3 (its counter starts late).
    assert _lrs(False) == pytest.approx([0.5, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.075])
    # Transformers: stepped every iteration, so the milestone comes at iteration 5.
    assert _lrs(True) == pytest.approx([0.5, 0.75, 0.75, 0.75, 0.75, 0.075, 0.075, 0.075])


def test_epoch_batches_are_seeded_disjoint_across_ranks_and_drop_last():
    one = Runtime(device=torch.device("cpu"))
    a = epoch_batches(50, 8, seed=1, epoch=0, runtime=one)
    assert a == epoch_batches(50, 8, seed=1, epoch=0, runtime=one)
    assert a != epoch_batches(50, 8, seed=1, epoch=1, runtime=one)
    assert len(a) == 6 and all(len(b) == 8 for b in a)
    ranks = [epoch_batches(50, 8, 1, 0, Runtime(torch.device("cpu"), rank=r, world_size=2))
             for r in (0, 1)]
    seen = [i for r in ranks for b in r for i in b]
    assert len(seen) == len(set(seen)) == 48


def test_run_dir_guards(tmp_path):
    prepare_run_dir(tmp_path / "new", resume=False)
    with pytest.raises(ConfigError, match="nothing to resume"):
        prepare_run_dir(tmp_path / "new", resume=True)
    (tmp_path / "old" / "model").mkdir(parents=True)
    (tmp_path / "old" / "model" / "latest.tar").write_bytes(b"x")
    with pytest.raises(ConfigError, match="--resume"):
        prepare_run_dir(tmp_path / "old", resume=False)


def test_presets_and_overrides():
    vq = get_preset("vq", "humanml3d")
    assert (vq.nb_code, vq.num_quantizers, vq.schedule.batch_size) == (512, 6, 256)
    assert vq.schedule.milestones == (150_000, 250_000) and vq.schedule.gamma == 0.05
    mask = get_preset("mask", "humanml3d")
    assert (mask.latent_dim, mask.num_layers, mask.schedule.weight_decay) == (384, 8, 1e-5)
    assert get_preset("res", "humanml3d").cond_drop_prob == 0.2
    tiny = with_overrides(get_preset("mask", "tiny"), max_iters=7, epochs=2)
    assert (tiny.schedule.max_iters, tiny.schedule.max_epoch) == (7, 2)
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("vq", "huge")
    with pytest.raises(ConfigError, match="unknown trainer"):
        get_preset("gpt", "tiny")


def test_cuda_only_options_are_refused_on_cpu():
    assert init_runtime("cpu").amp is False
    with pytest.raises(ConfigError, match="CUDA-only"):
        init_runtime("cpu", amp=True)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda")


def test_metric_log_without_tensorboard_says_so_and_keeps_the_csv(tmp_path, caplog):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorboard is installed here")
    metrics = MetricLog(tmp_path, ("loss",), Runtime(torch.device("cpu")), True, None)
    metrics.write(1, 0, "train", 0.1, 0.5, {"loss": 2.0})
    metrics.close()
    assert "tensorboard package is not installed" in caplog.text
    assert (tmp_path / "train_log.csv").read_text().splitlines() == [
        "iter,epoch,phase,lr,seconds,loss", "1,0,train,0.1,0.5,2"]

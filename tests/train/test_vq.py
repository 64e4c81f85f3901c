"""RVQ-VAE trainer: official loss pieces, loading back, bit-identical resume after a kill."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from hmu_core.data.datasets import MotionWindowDataset, meta_stats
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError
from hmu_core.models import build
from hmu_core.models.checkpoints import load_model_dir, read_checkpoint
from hmu_core.models.rvq.model import RVQVAEConfig
from hmu_core.train.loop import RunOptions
from hmu_core.train.runtime import init_runtime
from hmu_core.train.vq import VQTask, train_vq

from .conftest import tiny_vq_preset

CPU = init_runtime("cpu")


def _state(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["vq_model"]


def test_losses_finite_and_decreasing_on_a_repeated_batch(synth_dir: Path, tmp_path: Path):
    preset = tiny_vq_preset()
    data = HumanML3D(synth_dir)
    mean, std = meta_stats(data.mean(), data.std())
    windows = MotionWindowDataset(data, data.ids("train"), mean, std, preset.window_size)
    torch.manual_seed(0)
    vq = build("rvqvae", RVQVAEConfig(**preset.model_config(263)))
    task = VQTask(vq, preset, windows, None, CPU, tmp_path)
    batch = list(range(0, 160, 10))
    losses = [task.train_step(batch)["loss"] for _ in range(25)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])


def test_run_writes_official_layout_that_loads_back(synth_dir: Path, tmp_path: Path):
    out = tmp_path / "vq"
    result = train_vq(synth_dir, tiny_vq_preset(max_iters=4), RunOptions(out_dir=out, seed=3),
                      runtime=CPU)
    assert result.total_it == 4
    latest = read_checkpoint(out / "model" / "latest.tar")
    assert {"vq_model", "opt_vq_model", "scheduler", "ep", "total_it"} <= set(latest)
    best = read_checkpoint(out / "model" / "net_best_fid.tar")
    assert {"vq_model", "ep"} <= set(best)
    loaded = load_model_dir(out, "rvqvae", require_meta=True)
    assert loaded.checkpoint_file.name == "net_best_fid.tar"
    assert loaded.config.nb_code == 32 and loaded.config.num_quantizers == 3
    # meta std: Std with the root and contact dims divided by feat_bias exactly once.
    data = HumanML3D(synth_dir)
    np.testing.assert_allclose(loaded.std, meta_stats(data.mean(), data.std())[1])
    assert loaded.std[0] == pytest.approx(data.std()[0] / 5)
    assert float(loaded.model.quantizer.layers[0].codebook.abs().sum()) > 0
    with open(out / "train_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    train_rows = [r for r in rows if r["phase"] == "train"]
    assert [int(r["iter"]) for r in train_rows] == [2, 4]
    assert all(np.isfinite(float(r["loss"])) for r in train_rows)
    assert any(r["phase"] == "val" and float(r["val_mpjpe_mm"]) > 0 for r in rows)


def test_resume_after_a_kill_is_bit_identical(synth_dir: Path, tmp_path: Path):
    preset = tiny_vq_preset(max_iters=8, save_latest=3)
    whole = tmp_path / "whole"
    train_vq(synth_dir, preset, RunOptions(out_dir=whole, seed=7), runtime=CPU)

    def kill(it: int) -> None:
        if it == 5:  # after the save at 3: iterations 4 and 5 are lost and redone
            raise KeyboardInterrupt

    split = tmp_path / "split"
    with pytest.raises(KeyboardInterrupt):
        train_vq(synth_dir, preset, RunOptions(out_dir=split, seed=7, on_step=kill),
                 runtime=CPU)
    assert read_checkpoint(split / "model" / "latest.tar")["total_it"] == 3
    with pytest.raises(ConfigError, match="--resume"):
        train_vq(synth_dir, preset, RunOptions(out_dir=split, seed=7), runtime=CPU)
    train_vq(synth_dir, preset, RunOptions(out_dir=split, seed=7, resume=True), runtime=CPU)

    a, b = _state(whole / "model" / "latest.tar"), _state(split / "model" / "latest.tar")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ema_a = read_checkpoint(whole / "model" / "latest.tar")["hmu_task"]["ema"]
    ema_b = read_checkpoint(split / "model" / "latest.tar")["hmu_task"]["ema"]
    for x, y in zip(ema_a, ema_b, strict=True):
        assert torch.equal(x["code_sum"], y["code_sum"])
    log_a = (whole / "train_log.csv").read_text().splitlines()
    log_b = (split / "train_log.csv").read_text().splitlines()
    strip = [[",".join(c for i, c in enumerate(line.split(",")) if i != 4) for line in log]
             for log in (log_a, log_b)]  # column 4 is wall time
    assert strip[0] == strip[1]


def test_resume_refuses_another_preset(synth_dir: Path, tmp_path: Path):
    out = tmp_path / "vq"
    train_vq(synth_dir, tiny_vq_preset(max_iters=2), RunOptions(out_dir=out), runtime=CPU)
    with pytest.raises(ConfigError, match="same preset"):
        train_vq(synth_dir, tiny_vq_preset(max_iters=4, lr=1e-2),
                 RunOptions(out_dir=out, resume=True), runtime=CPU)
    # a longer budget is fine
    result = train_vq(synth_dir, tiny_vq_preset(max_iters=4), RunOptions(out_dir=out,
                      resume=True), runtime=CPU)
    assert result.total_it == 4

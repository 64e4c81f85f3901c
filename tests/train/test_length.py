"""Length estimator trainer: targets, loss, official finest.tar, loading back."""

from __future__ import annotations

import numpy as np
import torch

from hmu_core.data.datasets import TextMotionDataset, meta_stats
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.models import build
from hmu_core.models.checkpoints import load_model_dir, read_checkpoint
from hmu_core.models.length_estimator import LengthEstimatorConfig
from hmu_core.train.length import LengthTask, length_pairs, train_length
from hmu_core.train.loop import RunOptions
from hmu_core.train.runtime import init_runtime

from .conftest import tiny_length_preset

CPU = init_runtime("cpu")


def test_targets_are_token_lengths_of_each_caption_span(synth_dir):
    preset = tiny_length_preset()
    data = HumanML3D(synth_dir)
    ds = TextMotionDataset(data, data.ids("train"), *meta_stats(data.mean(), data.std()),
                           max_motion_length=120)
    captions, targets = length_pairs(ds, preset)
    assert len(captions) == len(targets) == sum(len(e.captions) for e in ds.entries)
    first = ds.entries[0]
    assert int(targets[0]) == min(first.end - first.begin, 120) // 4
    assert int(targets.max()) <= 30 and int(targets.min()) >= 10


def test_loss_decreases_and_finest_loads_back(synth_dir, encoder, tmp_path):
    preset = tiny_length_preset()
    torch.manual_seed(0)
    model = build("length_estimator", LengthEstimatorConfig(input_size=512))
    feats = encoder.encode(["a person walks", "someone jumps high", "a man kicks"])
    targets = torch.tensor([10, 20, 30])
    task = LengthTask(model, preset.replace(schedule=preset.schedule.replace(lr=1e-3)),
                      (feats, targets), None, CPU, tmp_path)
    losses = [task.train_step([0, 1, 2])["loss"] for _ in range(30)]
    assert all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0]

    out = tmp_path / "length"
    result = train_length(synth_dir, encoder, tiny_length_preset(max_iters=0, max_epoch=2),
                          RunOptions(out_dir=out), runtime=CPU)
    assert result.epoch == 2
    finest = read_checkpoint(out / "model" / "finest.tar")
    assert set(finest) == {"estimator", "epoch", "niter"}
    loaded = load_model_dir(out, "length_estimator")
    assert loaded.config.input_size == 512 and loaded.checkpoint_file.name == "finest.tar"
    lengths = loaded.model.sample_token_lengths(feats, torch.Generator().manual_seed(0))
    assert lengths.shape == (3,)

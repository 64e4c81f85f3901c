"""torch datasets: window counts, normalisation, meta stats without the /25 trap, unit crops,
timed captions as their own items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmu_core.data.datasets import (
    MotionWindowDataset,
    TextMotionDataset,
    denormalize,
    meta_stats,
    normalize,
)
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import DataError


def test_meta_stats_divides_once_and_never_in_place():
    mean = np.zeros(263, np.float32)
    std = np.full(263, 10.0, np.float32)
    _, meta = meta_stats(mean, std)
    _, again = meta_stats(mean, std)  # building twice must not compound (the official ÷25)
    for out in (meta, again):
        assert np.allclose(out[0:4], 2.0) and np.allclose(out[259:263], 2.0)
        assert np.allclose(out[4:259], 10.0)
    assert np.all(std == 10.0)


def test_datasets_do_not_modify_given_stats(tiny_dataset):
    data = HumanML3D(tiny_dataset)
    mean, std = meta_stats(data.mean(), data.std())
    before = std.copy()
    MotionWindowDataset(data, data.ids("train"), mean, std, window_size=16)
    MotionWindowDataset(data, data.ids("val"), mean, std, window_size=16)
    TextMotionDataset(data, data.ids("train"), mean, std)
    assert np.array_equal(std, before)


def test_window_dataset_counts_and_normalises(tiny_dataset):
    data = HumanML3D(tiny_dataset)
    mean, std = data.mean(), data.std()
    windows = MotionWindowDataset(data, data.ids("train"), mean, std, window_size=64)
    # train clips: 60, 80, 120, 60 frames -> official count len - 64 for clips > 64
    assert len(windows) == (80 - 64) + (120 - 64)
    assert windows[0].shape == (64, 263) and windows[0].dtype == torch.float32
    last = windows[len(windows) - 1].numpy()
    raw = data.features("000003")[120 - 64 - 1 : 120 - 1]
    assert np.allclose(denormalize(last, mean, std), raw, atol=1e-5)
    assert np.allclose(last, normalize(raw, mean, std))
    with pytest.raises(IndexError):
        windows[len(windows)]
    with pytest.raises(DataError, match="no clip"):
        MotionWindowDataset(data, ["000004"], mean, std, window_size=64)


def test_window_dataset_skips_nan_clips(tiny_dataset):
    bad = np.full((90, 263), np.nan, np.float32)
    np.save(tiny_dataset / "new_joint_vecs" / "000002.npy", bad)
    data = HumanML3D(tiny_dataset)
    windows = MotionWindowDataset(data, data.ids("train"), data.mean(), data.std(), 64)
    assert windows.ids == ["000003"]


def test_text_motion_pairs(tiny_dataset):
    data = HumanML3D(tiny_dataset)
    mean, std = data.mean(), data.std()
    pairs = TextMotionDataset(data, data.ids("train"), mean, std, seed=3)
    names = {e.name: e for e in pairs.entries}
    # 000003's timed caption (1 s to 4 s = frames 20:80) is an item of its own
    assert set(names) == {"000001", "000002", "000003", "000003#2", "M000001"}
    assert (names["000003#2"].begin, names["000003#2"].end) == (20, 80)
    assert [c.text for c in names["000003#2"].captions] == ["a person jabs twice."]
    assert len(names["000002"].captions) == 2  # the nan-tagged caption counts as whole-clip

    index = [e.name for e in pairs.entries].index("000003#2")
    lengths = set()
    for epoch in range(12):
        pairs.set_epoch(epoch)
        caption, motion, length = pairs[index]
        assert caption == "a person jabs twice."
        assert motion.shape == (196, 263) and length % 4 == 0
        lengths.add(length)
        assert torch.all(motion[length:] == 0)
        frames = denormalize(motion[:length].numpy(), mean, std)[:, 0]
        # dim 0 holds the frame index: the crop is contiguous and inside the 20:80 span
        assert np.allclose(np.diff(frames), 1.0, atol=1e-4)
        assert frames[0] >= 20 - 1e-4 and frames[-1] <= 79 + 1e-4
    assert lengths == {56, 60}  # 60 frames -> 60, or one unit shorter w.p. 1/3

    pairs.set_epoch(5)
    first = pairs[index]
    assert torch.equal(first[1], pairs[index][1])  # same (seed, epoch, index) -> same item


def test_text_motion_length_filter(tiny_dataset):
    data = HumanML3D(tiny_dataset)
    pairs = TextMotionDataset(data, ["000004"], data.mean(), data.std(), min_motion_length=40)
    assert [e.name for e in pairs.entries] == ["000004"]
    with pytest.raises(DataError, match="none of 1 clips"):
        TextMotionDataset(data, ["000004"], data.mean(), data.std(), min_motion_length=60)
    with pytest.raises(DataError, match="shape"):
        TextMotionDataset(data, ["000004"], np.zeros(10), data.std())

"""Code statistics: encoding each distinct crop once gives the codes of encoding every draw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmu_core.data.datasets import TextMotionDataset
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.models.checkpoints import load_model_dir
from hmu_core.unlearn.code_stats import SampleProtocol, encode_samples


def _naive_codes(vq, dataset, ids, mean, std, protocol: SampleProtocol) -> np.ndarray:
    """The official protocol literally: every (repeat, entry) item built and encoded."""
    pairs = TextMotionDataset(dataset, ids, mean, std, seed=protocol.seed)
    chunks = []
    for repeat in range(protocol.repeats):
        pairs.set_epoch(repeat)
        items = [pairs[i] for i in range(len(pairs))]
        with torch.no_grad():
            codes, _ = vq.encode(torch.stack([item[1] for item in items]))
        codes = codes.numpy().astype(np.int16)
        if not protocol.pad_to_max:
            tokens = np.array([item[2] // protocol.unit_length for item in items])
            codes[np.arange(codes.shape[1])[None, :] >= tokens[:, None]] = -1
        chunks.append(codes)
    return np.concatenate(chunks)


@pytest.mark.parametrize("pad", [True, False])
def test_distinct_crops_give_the_codes_of_every_draw(momask_set, unlearn_data, pad):
    vq = load_model_dir(momask_set / "vq", "rvqvae", require_meta=True)
    dataset = HumanML3D(unlearn_data)
    ids = dataset.ids("train_val")[:40]
    protocol = SampleProtocol(repeats=6, batch_size=16, pad_to_max=pad)
    samples = encode_samples(vq.model, dataset, ids, vq.mean, vq.std, protocol)
    want = _naive_codes(vq.model, dataset, ids, vq.mean, vq.std, protocol)
    assert samples.codes.shape == want.shape and samples.codes.dtype == np.int16
    np.testing.assert_array_equal(samples.codes, want)
    # Repeats do revisit crops: the saving the distinct-crop path exists for.
    distinct = np.unique(samples.codes.reshape(len(want), -1), axis=0)
    assert len(distinct) < len(want)

"""LengthEstimator against the official fixture (conformance/momask_length_estimator.*)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmu_core.errors import ConfigError
from hmu_core.models import build
from hmu_core.models.length_estimator import LengthEstimator, LengthEstimatorConfig


@pytest.fixture(scope="module")
def arrays(conformance_dir):
    with np.load(conformance_dir / "momask_length_estimator.npz") as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def estimator(arrays):
    model = build("length_estimator", {"input_size": 512, "output_size": 50})
    sd = {k[3:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("sd/")}
    model.load_state_dict(sd, strict=True)
    return model.eval()


def test_logits_match_official(arrays, estimator):
    with torch.no_grad():
        logits = estimator(torch.from_numpy(arrays["in/text_emb"])).numpy()
    assert logits.shape == (3, 50)
    assert np.abs(logits - arrays["out/logits"]).max() <= 1e-4
    np.testing.assert_array_equal(logits.argmax(-1), arrays["out/argmax_token_len"])


def test_released_layout():
    model = LengthEstimator(LengthEstimatorConfig())
    keys = list(model.state_dict())
    assert keys[0] == "output.0.weight" and keys[-1] == "output.11.bias" and len(keys) == 14
    assert sum(p.numel() for p in model.parameters()) == 435_122


def test_official_init_statistics():
    torch.manual_seed(0)
    model = LengthEstimator(LengthEstimatorConfig())
    w = model.output[0].weight
    assert abs(float(w.detach().std()) - 0.02) < 1e-3
    assert torch.all(model.output[0].bias == 0) and torch.all(model.output[1].weight == 1)


def test_sampling_is_seeded_and_follows_softmax(arrays, estimator):
    emb = torch.from_numpy(arrays["in/text_emb"])
    a = estimator.sample_token_lengths(emb, torch.Generator().manual_seed(1))
    b = estimator.sample_token_lengths(emb, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.dtype == torch.int64 and a.shape == (3,)
    # gen_t2m samples (it does not take the argmax): the sample mean matches the softmax mean
    many = emb.repeat_interleave(2000, dim=0)
    draws = estimator.sample_token_lengths(many, torch.Generator().manual_seed(2)).view(3, 2000)
    probs = torch.softmax(torch.from_numpy(arrays["out/logits"]).double(), dim=-1)
    expected = (probs * torch.arange(50, dtype=torch.float64)).sum(-1)
    assert torch.all((draws.double().mean(-1) - expected).abs() < 1.0)


def test_wrong_input_width_raises(estimator):
    with pytest.raises(ConfigError, match=r"\(B, 512\)"):
        estimator(torch.zeros(2, 300))


def test_build_requires_both_keys():
    with pytest.raises(ConfigError, match=r"output_size"):
        build("length_estimator", {"input_size": 512})
    with pytest.raises(ConfigError, match=r"must be >= 1"):
        build("length_estimator", {"input_size": 0, "output_size": 50})

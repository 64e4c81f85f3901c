"""Same seed, same tokens: torch ``generate_motions`` vs the onnxruntime ``Generator``."""

from __future__ import annotations

import numpy as np
import pytest

from exporter.runtime import Generator
from hmu_core.models import generate as G
from hmu_core.models.model_set import resolve_model_set
from hmu_core.models.sampling import SamplingParams

PROMPTS = ["a person walks forward", "someone kicks hard!", "a man waves his left hand"]


def _torch(model_set, encoder):
    return G.load_generator(resolve_model_set(model_set), text_encoder=encoder)


def _assert_same(a: G.Generation, b, atol: float = 1e-4) -> None:
    assert len(a.tokens) == len(b.tokens)
    for x, y in zip(a.tokens, b.tokens, strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.motions, b.motions, strict=True):
        assert x.num_frames == y.num_frames
        np.testing.assert_allclose(x.features, y.features, atol=atol, rtol=0)
        np.testing.assert_allclose(x.joints, y.joints, atol=atol, rtol=0)
        for key in ("seed", "token_length", "length_source", "sampling", "model_kind"):
            assert x.provenance[key] == y.provenance[key]


@pytest.fixture(scope="module")
def momask(momask_set, momask_bundle, clip_encoder):
    return _torch(momask_set, clip_encoder), Generator(momask_bundle, device="cpu", threads=1)


def test_momask_parity_seconds_and_estimated_lengths(momask):
    torch_gen, runtime = momask
    for seconds in ([2.0, 3.1, 4.4], None):
        a = G.generate_motions(torch_gen, PROMPTS, seconds=seconds, seed=11)
        b = runtime.generate(PROMPTS, seconds=seconds, seed=11)
        _assert_same(a, b)
        assert all(t.shape[1] == 3 for t in b.tokens)  # base + 2 residual layers
    assert b.motions[0].provenance["length_source"] == "length_estimator"
    # the tokens carry the inputs: another seed and another prompt change them
    other = runtime.generate(PROMPTS[0], seconds=2.0, seed=12).tokens[0]
    assert not np.array_equal(other, runtime.generate(PROMPTS[0], seconds=2.0, seed=13).tokens[0])


def test_momask_parity_gumbel_and_explicit_seeds(momask):
    torch_gen, runtime = momask
    params = SamplingParams(timesteps=5, gsample=True, cond_scale=2.5, num_res_layers=1)
    a = G.generate_motions(torch_gen, PROMPTS[:2], seconds=2.4, seeds=[5, 9], params=params)
    b = runtime.generate(PROMPTS[:2], seconds=2.4, seeds=[5, 9], params=params)
    _assert_same(a, b)
    assert b.tokens[0].shape == (12, 2)
    a = G.generate_motions(torch_gen, PROMPTS[:2], tokens=[5, 12], seed=4)
    _assert_same(a, runtime.generate(PROMPTS[:2], tokens=[5, 12], seed=4))
    # a 1-token motion (it crashed both worlds) next to a 2-token one
    a = G.generate_motions(torch_gen, PROMPTS[:2], tokens=[1, 2], seed=6)
    _assert_same(a, runtime.generate(PROMPTS[:2], tokens=[1, 2], seed=6))


def test_batch_equals_alone(momask):
    _, runtime = momask
    batch = runtime.generate(PROMPTS[:2], seconds=[2.0, 3.0], seed=7)
    alone = runtime.generate(PROMPTS[1], seconds=3.0, seed=8)
    np.testing.assert_array_equal(batch.tokens[1], alone.tokens[0])
    np.testing.assert_allclose(batch.motions[1].features, alone.motions[0].features, atol=1e-5)


def test_bamm_parity_given_and_predicted_lengths(bamm_set, bamm_bundle, clip_encoder):
    torch_gen = _torch(bamm_set, clip_encoder)
    runtime = Generator(bamm_bundle, device="cpu", threads=1)
    for seconds in (2.0, None):
        a = G.generate_motions(torch_gen, PROMPTS[:2], seconds=seconds, seed=3)
        b = runtime.generate(PROMPTS[:2], seconds=seconds, seed=3)
        _assert_same(a, b)
    assert b.motions[0].provenance["length_source"] == "bamm_end_token"

"""The request loop over a toy numpy backend: what any backend gets from it, torch-free."""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest

from hmu_core.errors import ConfigError, MotionError
from hmu_core.motion.skeleton import FEATURE_DIM
from hmu_core.sampling.backend import ModelFacts
from hmu_core.sampling.loop import generate, generate_tokens, sample_tokens
from hmu_core.sampling.params import SamplingParams
from hmu_core.sampling.streams import RequestStreams

V, D, Q = 8, 4, 3  # codes, text dim, quantizer layers


class ToyBackend:
    """A MoMask-like backend of fixed random linear maps (the ``Backend`` protocol in full)."""

    def __init__(self, *, has_res: bool = True, has_length_estimator: bool = True) -> None:
        rng = np.random.default_rng(0)
        self.table = rng.standard_normal((V + 2, D)).astype(np.float32)  # codes, mask, pad
        self.out = rng.standard_normal((D, V)).astype(np.float32) * 3
        self.res_out = rng.standard_normal((D, V + 1)).astype(np.float32) * 3
        self.length = rng.standard_normal((D, 50)).astype(np.float32)
        self.facts = ModelFacts(kind="momask", num_quantizers=Q, has_res=has_res,
                                has_length_estimator=has_length_estimator, mask_id=V,
                                pad_id=V + 1, res_pad_id=V, text_encoder="toy")
        self.decoded = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.stack([np.random.default_rng(zlib.crc32(t.encode())).standard_normal(D)
                         for t in texts]).astype(np.float32)

    def base_step(self, ids, cond, padding):
        return (self.table[ids] + cond[:, None]) @ self.out

    def res_step(self, ids, cond, padding):
        return (self.table[np.minimum(ids, V)].sum(-2) + cond[:, None]) @ self.res_out

    def decode(self, codes):
        self.decoded += 1
        feats = np.zeros((4 * len(codes), FEATURE_DIM), np.float32)
        feats[:, :codes.shape[1]] = np.repeat(codes, 4, axis=0)
        return feats

    def length_logits(self, cond):
        return cond @ self.length

    def provenance(self):
        return {"toy": True}


def test_generate_makes_motions_with_provenance():
    backend = ToyBackend()
    out = generate(backend, ["a person walks", "a person jumps"], seconds=[2.0, 3.0], seed=4)
    assert [m.num_frames for m in out.motions] == [40, 60]
    assert [t.shape for t in out.tokens] == [(10, Q), (15, Q)]
    assert backend.decoded == 2  # each request decoded alone
    prov = out.motions[1].provenance
    assert prov == {"toy": True, "model_kind": "momask", "seed": 5,
                    "sampling": SamplingParams().to_dict(), "token_length": 15,
                    "length_source": "seconds", "text_encoder": "toy"}
    assert out.motions[0].text == "a person walks" and out.motions[0].fps == 20


def test_a_request_does_not_depend_on_its_batch():
    backend = ToyBackend()
    batch = generate(backend, ["walk", "jump", "sit"], tokens=[5, 12, 7], seed=10)
    alone = generate(backend, "jump", tokens=[12], seed=11)
    np.testing.assert_array_equal(batch.tokens[1], alone.tokens[0])
    again = generate(backend, ["walk", "jump", "sit"], tokens=[5, 12, 7], seeds=[10, 11, 12])
    for x, y in zip(batch.tokens, again.tokens, strict=True):
        np.testing.assert_array_equal(x, y)


def test_an_estimated_length_is_the_first_draw():
    """The stream contract: without a length, MoMask's length takes one draw, then sampling
    goes on from the same stream as if that length had been given."""
    backend = ToyBackend()
    params = SamplingParams(gsample=True, timesteps=3)
    ids, lens, source = generate_tokens(backend, ["walk"], RequestStreams([7]), params)
    assert source == "length_estimator" and 10 <= lens[0] <= 49
    streams = RequestStreams([7])
    streams.uniform(0, (1,))  # the length draw
    again, _ = sample_tokens(backend, backend.encode(["walk"]), lens, streams, params)
    np.testing.assert_array_equal(ids, again)


def test_refusals_come_before_any_network():
    backend = ToyBackend(has_length_estimator=False)
    backend.encode = lambda texts: pytest.fail("encoded")
    for kwargs, match in ((dict(seconds=20.0), "choose a duration in range"),
                          (dict(tokens=[3], seconds=2.0), "not both"),
                          (dict(seconds=2.0, seeds=[1, 2]), "2 seeds for 1 prompts"),
                          (dict(params=SamplingParams(num_res_layers=Q)),
                           r"num_res_layers must be -1 or in \[0, 2\] for this model"),
                          (dict(params=dict(timesteps=2)), "must be a SamplingParams")):
        with pytest.raises(ConfigError, match=match):
            generate(backend, "walk", **kwargs)
    backend = ToyBackend(has_length_estimator=False)
    with pytest.raises(ConfigError, match="no length estimator; pass seconds or token lengths"):
        generate(backend, "walk")
    # a backend's own defaults (a bundle's sampling_defaults) are held to its layers too
    backend.facts = dataclasses.replace(backend.facts,
                                        default_params=SamplingParams(num_res_layers=Q))
    with pytest.raises(ConfigError, match="num_res_layers"):
        generate(backend, "walk", tokens=[3])


def test_base_layer_only_and_broken_decoders():
    backend = ToyBackend(has_res=False)
    out = generate(backend, "walk", tokens=[6])
    assert out.tokens[0].shape == (6, 1)
    backend.decode = lambda codes: np.full((4 * len(codes), FEATURE_DIM), np.nan, np.float32)
    with pytest.raises(MotionError, match="prompt 0 decoded to non-finite features"):
        generate(backend, "walk", tokens=[6])

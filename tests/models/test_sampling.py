"""hmu's seeded sampler (hmu_core.sampling.samplers) against the official generate methods.

Greedy (top-k of 1) must give exactly the official tokens: the MoMask and residual fixtures
were made by the official code; BAMM has no fixture, so it is pinned to our conformance-tested
``BAMMTransformer.generate`` on a model whose head is scaled until every softmax is one-hot.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from hmu_core.errors import ConfigError, MotionError
from hmu_core.models import build
from hmu_core.models.generate import (
    bamm_step_from_torch,
    mask_step_from_torch,
    res_step_from_torch,
)
from hmu_core.models.mask_transformer import MaskTransformer, MaskTransformerConfig
from hmu_core.models.res_transformer import ResidualTransformer, ResidualTransformerConfig
from hmu_core.sampling.params import SamplingParams
from hmu_core.sampling.samplers import (
    _draw,
    _guided,
    categorical_from_uniform,
    mask_counts,
    sample_bamm_base,
    sample_momask_base,
    sample_residual,
    softmax,
    top_k_filter,
)
from hmu_core.sampling.streams import RequestStreams

GREEDY = SamplingParams(topk_filter_thres=0.99, res_topk_filter_thres=0.99)  # k = 1 of 64/65


def _fixture(conformance_dir, name):
    meta = json.loads((conformance_dir / f"{name}.json").read_text())
    with np.load(conformance_dir / f"{name}.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    cfg = {k.removeprefix("opt."): v for k, v in meta["constructor"].items()}
    sd = {k[3:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("sd/")}
    return cfg, sd, arrays


@pytest.fixture(scope="module")
def mask_fx(conformance_dir):
    cfg, sd, arrays = _fixture(conformance_dir, "momask_mask_transformer_small")
    model = MaskTransformer(MaskTransformerConfig(**cfg))
    model.load_state_dict(sd, strict=True)
    return model.eval(), arrays


@pytest.fixture(scope="module")
def res_fx(conformance_dir):
    cfg, sd, arrays = _fixture(conformance_dir, "momask_res_transformer_small")
    model = ResidualTransformer(ResidualTransformerConfig(**cfg))
    model.load_state_dict(sd, strict=True)
    return model.eval(), arrays


def _bamm(scale: float = 1.0, seed: int = 0, end_bias: float = 0.0):
    torch.manual_seed(seed)
    model = build("bamm_transformer", dict(
        code_dim=16, cond_mode="text", latent_dim=32, ff_size=64, num_layers=1, num_heads=2,
        dropout=0.1, clip_dim=8, cond_drop_prob=0.1, clip_version="ViT-B/32", num_tokens=24))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
        model.output_process.poseFinal.bias[-1] += end_bias  # END is the last class
        model.output_process.poseFinal.weight.mul_(scale)
        model.output_process.poseFinal.bias.mul_(scale)
    return model.eval()


def _mask(model, arrays, params, seeds=(0, 1)):
    return sample_momask_base(mask_step_from_torch(model), arrays["in/cond"],
                              arrays["in/m_lens"], RequestStreams(list(seeds)), params,
                              mask_id=model.mask_id, pad_id=model.pad_id)


# -- greedy == official ---------------------------------------------------------------------------


@pytest.mark.parametrize("gsample", [False, True])
def test_greedy_mask_equals_official_fixture(mask_fx, gsample):
    model, a = mask_fx
    got = _mask(model, a, SamplingParams(topk_filter_thres=0.99, gsample=gsample))
    np.testing.assert_array_equal(got, a[f"out/generate_greedy_gsample{int(gsample)}"])
    # ... and the tokens do not depend on the seed when greedy.
    again = _mask(model, a, SamplingParams(topk_filter_thres=0.99, gsample=gsample), (7, 8))
    np.testing.assert_array_equal(got, again)


def test_greedy_residual_equals_official_fixture(res_fx):
    model, a = res_fx
    got = sample_residual(res_step_from_torch(model), a["in/generate_base_ids"], a["in/cond"],
                          a["in/m_lens"], RequestStreams([3, 4]),
                          SamplingParams(res_topk_filter_thres=0.99), pad_id=model.pad_id,
                          num_quantizers=model.num_quantizers)
    np.testing.assert_array_equal(got, a["out/generate_greedy"])


@pytest.mark.parametrize("given", [False, True])
def test_greedy_bamm_equals_official_generate(given):
    # The END bias makes greedy lengths 12 (no END), 5 and 5: both length rules run.
    model = _bamm(scale=2000.0, end_bias=2.5)
    cond = torch.randn(3, 8, generator=torch.Generator().manual_seed(5))
    lens = torch.tensor([5, 9, 12]) if given else None
    slots = 12
    # One-hot softmaxes: the official generate is deterministic whatever the torch seed.
    runs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        runs.append(model.generate(cond, lens, is_predict_len=not given, max_token_len=slots))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert runs[0][1].tolist() == ([5, 9, 12] if given else [12, 5, 5])
    ids, lengths = sample_bamm_base(
        bamm_step_from_torch(model), cond.numpy(), None if lens is None else lens.numpy(),
        RequestStreams([1, 2, 3]), SamplingParams(), end_id=model.end_id,
        pad_id=model.pad_id, slots=slots)
    np.testing.assert_array_equal(lengths, runs[0][1].numpy())
    np.testing.assert_array_equal(ids, runs[0][0].numpy())


def test_cfg_and_adapters_are_bit_equal_to_forward_with_cond_scale(mask_fx):
    model, a = mask_fx
    ids, pad = a["in/trans_ids"], a["in/padding_mask"]
    got = _guided(mask_step_from_torch(model), (ids, pad), a["in/cond"], 4.0, False)
    want = model.forward_with_cond_scale(torch.from_numpy(ids), torch.from_numpy(a["in/cond"]),
                                         torch.from_numpy(pad), cond_scale=4)
    assert np.array_equal(got, want.permute(0, 2, 1).detach().numpy())


def test_mask_counts_match_torch_schedule():
    lens = torch.arange(1, 50)
    for steps in (*range(1, 41), 50, 64, 100):
        want = [torch.round(torch.cos(t * math.pi * 0.5) * lens).clamp(min=1).long().numpy()
                for t in torch.linspace(0, 1, steps)]
        np.testing.assert_array_equal(mask_counts(steps, lens.numpy()), np.stack(want))
    # cos(pi/3) is 0.49999997 in float32: 3 tokens re-mask 1 at T=10, step 6, as upstream.
    assert mask_counts(10, np.array([3]))[6, 0] == 1


# -- seeding and batching -------------------------------------------------------------------------


def test_seeded_determinism_and_different_seeds_differ(mask_fx):
    model, a = mask_fx
    params = SamplingParams()
    first, second = _mask(model, a, params, (5, 6)), _mask(model, a, params, (5, 6))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, _mask(model, a, params, (50, 60)))


def test_batch_equals_per_prompt_runs(mask_fx, res_fx):
    model, a = mask_fx
    res, _ = res_fx
    params = SamplingParams(gsample=True)
    batch = _mask(model, a, params, (11, 12))
    for b, seed in enumerate((11, 12)):
        n = int(a["in/m_lens"][b])
        alone = sample_momask_base(mask_step_from_torch(model), a["in/cond"][b:b + 1], [n],
                                   RequestStreams([seed]), params, mask_id=model.mask_id,
                                   pad_id=model.pad_id)
        np.testing.assert_array_equal(alone[0], batch[b, :n])

    def residual(base, cond, lens, seeds):
        return sample_residual(res_step_from_torch(res), base, cond, lens,
                               RequestStreams(seeds), params, pad_id=res.pad_id,
                               num_quantizers=res.num_quantizers)

    codes = residual(batch, a["in/cond"], a["in/m_lens"], [1, 2])
    n = int(a["in/m_lens"][1])
    alone = residual(batch[1:2, :n], a["in/cond"][1:2], [n], [2])
    np.testing.assert_array_equal(alone[0], codes[1, :n])

    bamm = _bamm()
    cond = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    kw = dict(end_id=bamm.end_id, pad_id=bamm.pad_id, slots=10)
    ids, lens = sample_bamm_base(bamm_step_from_torch(bamm), cond, None, RequestStreams([4, 9]),
                                 params, **kw)
    one, one_len = sample_bamm_base(bamm_step_from_torch(bamm), cond[1:], None,
                                    RequestStreams([9]), params, **kw)
    assert one_len[0] == lens[1]
    np.testing.assert_array_equal(one[0, : lens[1] + 1], ids[1, : lens[1] + 1])


# -- the knobs on a toy logits function -----------------------------------------------------------


class Toy:
    """A step whose logits are ``base`` under the condition and ``null`` without it."""

    def __init__(self, base, null):
        self.base, self.null, self.calls = np.asarray(base, np.float32), null, 0

    def __call__(self, ids, cond, padding_mask):
        self.calls += 1
        table = self.base if cond.any() else np.float32(self.null)
        return np.broadcast_to(table, (*ids.shape, self.base.shape[-1])).copy()


def test_cfg_combination_and_scale_one_single_pass():
    toy = Toy([0.0, 1.0, 3.0], null=0.5)
    ids, pad, cond = np.zeros((1, 2), np.int64), np.zeros((1, 2), bool), np.ones((1, 4), "f4")
    got = _guided(toy, (ids, pad), cond, 3.0, False)
    np.testing.assert_allclose(got[0, 0], 0.5 + 3.0 * (np.array([0.0, 1.0, 3.0]) - 0.5))
    assert toy.calls == 2
    toy.calls = 0
    np.testing.assert_array_equal(_guided(toy, (ids, pad), cond, 1.0, False)[0, 0], toy.base)
    assert toy.calls == 1
    np.testing.assert_array_equal(_guided(toy, (ids, pad), cond, 4.0, True)[0, 0], [0.5] * 3)


def test_top_k_keeps_exactly_k():
    logits = np.array([[0.1, 5.0, 2.0, 2.0, -1.0, 3.0]])
    kept = np.isfinite(top_k_filter(logits, 0.5))  # ceil(0.5 * 6) = 3
    np.testing.assert_array_equal(kept[0], [False, True, True, False, False, True])
    u = np.random.default_rng(0).random(2000)
    draws = categorical_from_uniform(softmax(np.repeat(top_k_filter(logits, 0.5), 2000, 0)),
                                     u)
    assert set(np.unique(draws)) == {1, 2, 5}


@pytest.mark.parametrize("gumbel", [False, True])
def test_draws_follow_softmax_and_temperature(gumbel):
    logits = np.log(np.array([0.5, 0.3, 0.2]))
    rng = np.random.default_rng(1)
    n = 20000
    for temperature in (1.0, 0.25, 4.0):
        rows = np.repeat(logits[None], n, 0)
        u = rng.random((n, 3)) if gumbel else rng.random(n)
        freq = np.bincount(_draw(rows, temperature, gumbel, u), minlength=3) / n
        want = softmax(logits / temperature)
        np.testing.assert_allclose(freq, want, atol=0.015)
    # Colder concentrates on the argmax, hotter flattens.
    assert softmax(logits / 0.25)[0] > 0.5 > softmax(logits / 4.0)[0]


def test_categorical_never_draws_a_zero_probability_class():
    probs = np.array([[0.0, 0.5, 0.0, 0.5, 0.0]] * 3)
    got = categorical_from_uniform(probs, np.array([0.0, 0.5, 1 - 1e-16]))
    np.testing.assert_array_equal(got, [1, 3, 3])


def test_toy_mask_predict_knobs_end_to_end():
    # Position-independent logits: greedy gives the argmax everywhere; each step masks
    # what mask_counts says; with top-k 2 only the two best codes ever appear.
    toy = Toy([0.0, 2.0, 1.0, 1.5], null=0.0)
    cond, kw = np.ones((1, 4), "f4"), dict(mask_id=4, pad_id=5)
    greedy = sample_momask_base(toy, cond, [6], RequestStreams([0]),
                                SamplingParams(topk_filter_thres=0.75), **kw)
    np.testing.assert_array_equal(greedy, [[1] * 6])
    assert toy.calls == 2 * 10
    many = [sample_momask_base(toy, cond, [6], RequestStreams([s]),
                               SamplingParams(topk_filter_thres=0.5), **kw) for s in range(30)]
    assert set(np.unique(many)) == {1, 3}


def test_bad_knobs_and_inputs_raise():
    for bad in (dict(timesteps=0), dict(cond_scale=float("nan")), dict(temperature=0.0),
                dict(topk_filter_thres=1.0), dict(res_temperature=float("inf")),
                dict(num_res_layers=-2), dict(timesteps=2.5)):
        with pytest.raises(ConfigError):
            SamplingParams(**bad)
    for bad_seeds in ([], [-1], [1.5]):
        with pytest.raises(ConfigError):
            RequestStreams(bad_seeds)
    toy = Toy([0.0, 1.0], null=0.0)
    with pytest.raises(MotionError):
        sample_momask_base(toy, np.ones((1, 4), "f4"), [0], RequestStreams([0]),
                           SamplingParams(), mask_id=2, pad_id=3)
    with pytest.raises(MotionError):
        sample_momask_base(toy, np.ones((2, 4), "f4"), [3], RequestStreams([0]),
                           SamplingParams(), mask_id=2, pad_id=3)


def test_sampler_imports_without_torch():
    # exporter.runtime (numpy + onnxruntime only) can reuse these functions with ONNX steps.
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None; "
            "import hmu_core.sampling.samplers as s; print(s.mask_counts(10, [49])[:, 0].tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[49, 48, 46, 42, 38, 31, 24, 17, 9, 1]"


def _top_k_by_sort(logits, thres):
    """The rule top_k_filter implements: a stable sort of -logits, the first k kept."""
    x = np.asarray(logits, np.float64)
    k = math.ceil((1 - thres) * x.shape[-1])
    order = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    out = np.full_like(x, -np.inf)
    np.put_along_axis(out, order, np.take_along_axis(x, order, -1), -1)
    return out


@pytest.mark.parametrize("thres", [0.0, 0.5, 0.9, 0.99])
def test_top_k_partition_equals_the_stable_sort_with_ties(thres):
    rng = np.random.default_rng(3)
    # Few distinct values: many ties at the k-th value; -inf entries (already filtered) too.
    logits = rng.integers(-3, 4, (4, 7, 53)).astype(np.float32)
    logits[0, 0, :40] = -np.inf
    np.testing.assert_array_equal(top_k_filter(logits, thres), _top_k_by_sort(logits, thres))
    smooth = rng.standard_normal((3, 512)).astype(np.float32)
    np.testing.assert_array_equal(top_k_filter(smooth, thres), _top_k_by_sort(smooth, thres))


def test_batched_cfg_is_one_call_with_the_same_result():
    calls = []

    def rowwise(ids, cond, padding_mask):  # each row's logits depend on its own inputs only
        calls.append(len(ids))
        return (cond[:, None, :3] * 2.0 + ids[..., None]).astype(np.float32)

    ids, pad = np.arange(8).reshape(2, 4), np.zeros((2, 4), bool)
    cond = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    two = _guided(rowwise, (ids, pad), cond, 4.0, False)
    one = _guided(rowwise, (ids, pad), cond, 4.0, False, batched=True)
    np.testing.assert_array_equal(one, two)
    assert calls == [2, 2, 4]

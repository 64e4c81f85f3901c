"""Suppression: the unshared residual layout is exact, suppressed codes are never sampled, the
layer-r spec parses, and the edit touches only the heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmu_core.errors import ConfigError
from hmu_core.models import build
from hmu_core.models.generate import mask_step_from_torch, res_step_from_torch
from hmu_core.sampling.params import SamplingParams
from hmu_core.sampling.samplers import (
    sample_momask_base,
    sample_residual,
)
from hmu_core.sampling.streams import RequestStreams
from hmu_core.unlearn.suppress import (
    SUPPRESSION_BIAS,
    suppress_base,
    suppress_residual,
    unshared_residual,
)
from hmu_core.unlearn.suppress_model import parse_layer_r

V, Q, D = 24, 4, 8
_CFG = dict(code_dim=16, cond_mode="text", latent_dim=32, ff_size=64, num_layers=1, num_heads=2,
            dropout=0.1, clip_dim=D, cond_drop_prob=0.1, clip_version="ViT-B/32", num_tokens=V)


def _res(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build("res_transformer", {**_CFG, "shared_codebook": False, "share_weight": True,
                                      "num_quantizers": Q})
    with torch.no_grad():  # a trained-looking model: every parameter away from its init
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def _base(kind: str = "mask_transformer", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build(kind, _CFG)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def _inputs(batch: int = 5, n: int = 12, layers: int = 2, seed: int = 1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=(batch, n, layers)).astype(np.int64)
    cond = rng.standard_normal((batch, D)).astype(np.float32)
    pad = np.zeros((batch, n), dtype=bool)
    pad[0, 9:] = True
    return ids, cond, pad


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_unshared_layout_gives_bit_identical_logits(layers):
    shared = _res()
    unshared = unshared_residual(shared)
    assert not unshared.share_weight and unshared.config.share_weight is False
    assert unshared.output_proj_bias.abs().max() == 0
    ids, cond, pad = _inputs(layers=layers)
    want = res_step_from_torch(shared)(ids, cond, pad)
    got = res_step_from_torch(unshared)(ids, cond, pad)
    assert torch.equal(torch.from_numpy(got), torch.from_numpy(want))


def test_unshared_layout_samples_the_same_tokens():
    shared = _res()
    unshared = unshared_residual(shared)
    base = np.random.default_rng(0).integers(0, V, size=(4, 10)).astype(np.int64)
    cond = np.random.default_rng(1).standard_normal((4, D)).astype(np.float32)
    lens = np.array([10, 7, 9, 4])
    runs = [sample_residual(res_step_from_torch(m), base, cond, lens,
                            RequestStreams([3, 4, 5, 6]), SamplingParams(),
                            pad_id=V, num_quantizers=Q) for m in (shared, unshared)]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_suppressed_codes_are_never_sampled_on_any_layer():
    base, res = _base(), unshared_residual(_res())
    forbidden = {0: [0, 3, 5, 7, 11, 13], 1: [1, 2, 3], 2: [4, 6, 8, 10], 3: [0, 23]}
    suppress_base(base, forbidden[0])
    suppress_residual(res, {q: c for q, c in forbidden.items() if q})
    rng = np.random.default_rng(0)
    seen = np.zeros((Q, V), dtype=bool)
    for seeds in range(0, 48, 12):  # 48 requests, categorical and Gumbel draws
        cond = rng.standard_normal((12, D)).astype(np.float32)
        lens = rng.integers(4, 13, size=12)
        for gsample in (False, True):
            params = SamplingParams(gsample=gsample, topk_filter_thres=0.0, temperature=2.0)
            streams = RequestStreams(range(seeds, seeds + 12))
            ids = sample_momask_base(mask_step_from_torch(base), cond, lens, streams, params,
                                     mask_id=base.mask_id, pad_id=base.pad_id)
            codes = sample_residual(res_step_from_torch(res), ids, cond, lens, streams,
                                    params, pad_id=V, num_quantizers=Q)
            for q in range(Q):
                used = codes[..., q][codes[..., q] >= 0]
                seen[q, np.unique(used)] = True
    for q, codes in forbidden.items():
        assert not seen[q, codes].any(), f"layer {q} emitted a suppressed code"
        allowed = np.setdiff1d(np.arange(V), codes)
        assert seen[q, allowed].mean() > 0.5  # the rest of the codebook stays in use


def test_bamm_end_token_is_untouched():
    bamm = _base("bamm_transformer")
    before = bamm.output_process.poseFinal.bias.detach().clone()
    edit = suppress_base(bamm, [2, 9])
    after = bamm.output_process.poseFinal.bias.detach()
    changed = torch.nonzero(after != before).flatten().tolist()
    assert changed == [2, 9] and after[V] == before[V]  # index V is END
    assert torch.allclose(after[[2, 9]] - before[[2, 9]], torch.tensor(SUPPRESSION_BIAS),
                          rtol=1e-6)
    assert edit is not None and edit["tensor"] == "output_process.poseFinal.bias"
    with pytest.raises(ConfigError, match=r"0\.\.23"):
        suppress_base(bamm, [V])  # END is not a code


def test_residual_edit_needs_the_unshared_layout_and_valid_layers():
    with pytest.raises(ConfigError, match="unshared"):
        suppress_residual(_res(), {1: [0]})
    res = unshared_residual(_res())
    with pytest.raises(ConfigError, match=r"layers 1\.\.3"):
        suppress_residual(res, {0: [1]})
    with pytest.raises(ConfigError, match="repeat"):
        suppress_residual(res, {1: [1, 1]})
    assert suppress_residual(res, {1: []}) == []


@pytest.mark.parametrize(("spec", "want"), [
    ("32", {0: 32, 1: 32, 2: 32, 3: 32}),
    ("0:32,1-3:16", {0: 32, 1: 16, 2: 16, 3: 16}),
    ("0:8", {0: 8, 1: 0, 2: 0, 3: 0}),
    (" 2:4 ,0:1", {0: 1, 1: 0, 2: 4, 3: 0}),
])
def test_layer_r_spec(spec, want):
    assert parse_layer_r(spec, 4) == want


@pytest.mark.parametrize(("spec", "match"), [
    ("0:32,0:8", "twice"), ("4:8", "out of range"), ("1-0:8", "out of range"),
    ("x", "LAYER:R"), ("0:", "LAYER:R"), ("-1:3", "LAYER:R"), ("", "LAYER:R")])
def test_bad_layer_r_specs(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_layer_r(spec, 4)


def test_generated_statistics_cap_each_side_on_its_own(momask_set, unlearn_data):
    """``max_lines`` takes a seeded subset of the forget lines and of the retain lines each,
    so the scarce forget lines are never thinned out to make room for retain ones."""
    from hmu_core.data.concept_data import load_concept_data
    from hmu_core.models.generate import load_generator
    from hmu_core.models.model_set import resolve_model_set
    from hmu_core.unlearn.generated_stats import (
        GenerationProtocol,
        caption_samples,
        sample_code_samples,
    )

    data = load_concept_data(unlearn_data, ["violence"])
    texts, owner, ids = caption_samples(data.dataset, data.ids)
    forget_lines = sum(ids[i] in set(data.forget_ids) for i in owner)
    assert 2 < forget_lines < len(texts) - 2
    gen = load_generator(resolve_model_set(momask_set))
    fast = SamplingParams(timesteps=1)
    capped = GenerationProtocol(max_lines=2, params=fast)
    samples = sample_code_samples(gen, data.dataset, data.ids, capped,
                                  forget_ids=data.forget_ids)
    assert samples.mask_for(data.forget_ids).sum() == 2
    assert samples.mask_for(data.retain_ids).sum() == 2
    wide = GenerationProtocol(max_lines=forget_lines, params=fast)
    samples = sample_code_samples(gen, data.dataset, data.ids, wide,
                                  forget_ids=data.forget_ids)
    assert samples.mask_for(data.forget_ids).sum() == forget_lines  # every forget line
    assert samples.mask_for(data.retain_ids).sum() == min(forget_lines,
                                                          len(texts) - forget_lines)


class _RuleScorer:
    """A val scorer whose forget toxicity and retain score are fixed functions of the base codes
    (``greedy_base_codes`` needs ``score``, ``header`` and ``retain_floor``)."""

    retain_floor = 0.85

    def __init__(self, forget, retain):
        self.forget, self.retain, self.calls = forget, retain, []

    def score(self, codes, label, retain=True):
        base = set(codes.get(0, []))
        self.calls.append((sorted(base), retain))
        point = {"forget_toxicity": self.forget(base)}
        if retain:
            point["retain_score"] = self.retain(base)
        return point

    def header(self):
        return {"split": "val", "retain_floor": self.retain_floor}


def _ranked_samples():
    """One layer; forget sample i holds code k (1..6) when i < 20 - 2k, retain samples only
    codes 0 and 7: the statistics rank codes 1, 2, ..., 6 (then 0)."""
    from hmu_core.unlearn.code_stats import CodeSamples

    forget = [[k if i < 20 - 2 * k else 0 for k in range(1, 7)] for i in range(20)]
    retain = [[0, 7, 0, 7, 0, 7] for _ in range(20)]
    codes = np.array(forget + retain, dtype=np.int16)[:, :, None]
    samples = CodeSamples(codes=codes, sample_motion=np.arange(40), nb_code=8,
                          motion_ids=tuple(f"{i:03d}" for i in range(40)))
    masks = {"c": (np.arange(40) < 20, np.arange(40) >= 20)}
    return samples, masks


def test_greedy_keeps_the_code_that_lowers_forget_toxicity_most_until_none_does():
    from hmu_core.unlearn.r_search import greedy_base_codes

    samples, masks = _ranked_samples()
    scorer = _RuleScorer(lambda b: 0.5 - 0.2 * (5 in b) - 0.1 * (3 in b), lambda b: 0.9)
    codes, record = greedy_base_codes(scorer, samples, masks, {0: [1, 2]}, r_base=2, pool=3,
                                      steps=4)
    assert record["candidates"] == [3, 4, 5]  # ranked 3..5, after the two selected
    assert codes[0] == [1, 2, 5, 3] and record["added"] == [5, 3]
    assert [s["best"] for s in record["steps"]] == [5, 3, 4]
    assert [s["kept"] for s in record["steps"]] == [True, True, False]
    assert record["steps"][-1]["why"] == "no candidate lowers the forget toxicity"
    assert record["steps"][1]["trials"] == pytest.approx({"3": 0.2, "4": 0.3})
    assert all(not retain for base, retain in scorer.calls if len(base) == 3 and base != [1, 2, 5])


def test_greedy_stops_where_the_retain_score_leaves_the_budget():
    from hmu_core.unlearn.r_search import greedy_base_codes

    samples, masks = _ranked_samples()
    scorer = _RuleScorer(lambda b: 0.5 - 0.3 * (4 in b), lambda b: 0.9 - 0.5 * (4 in b))
    codes, record = greedy_base_codes(scorer, samples, masks, {0: [1, 2]}, r_base=2, pool=24,
                                      steps=2)
    assert codes == {0: [1, 2]} and record["added"] == []
    assert record["candidates"] == [3, 4, 5, 6, 0]  # the pool stops at the codes forget samples use
    step, = record["steps"]
    assert (step["best"], step["kept"]) == (4, False)
    assert step["why"] == "the retain score falls below the budget"


class _PlaneEvaluator:
    """An evaluator that normalises nothing and embeds a motion as the first two features of
    its first frame (``EvaluatorValidation`` reads ``config.dim_pose``, ``normalize`` and
    ``motion_embeddings``)."""

    config = type("Config", (), {"dim_pose": 3})

    def normalize(self, features):
        return features

    def motion_embeddings(self, motions, lengths):
        return motions[:, 0, :2]


def _at(x: float, y: float = 0.0) -> np.ndarray:
    return np.tile(np.array([x, y, 0.0], np.float32), (8, 1))


def test_evaluator_judge_counts_nearest_forget_captions_and_retain_r_precision(monkeypatch):
    from hmu_core.eval import toxicity
    from hmu_core.eval.safety import CaptionLine
    from hmu_core.unlearn.r_search import EvaluatorValidation

    bank = np.array([[0, 0], [10, 0], [0, 10]], np.float32)
    lines = [CaptionLine(f"{i:03d}", f"caption {i}", 0, 0) for i in range(40)]
    words = {(line.clip, line.text): (10.0 * i, 0.0) for i, line in enumerate(lines)}
    judge = EvaluatorValidation(_PlaneEvaluator(), None, bank, np.array([True, False, False]),
                                words)
    # Nearest caption of each: the forget one, a retain one, the forget one (5.7 against 7.2).
    assert judge.forget_rate([_at(1, 1), _at(9, 1), _at(4, 4), _at(1, 9)]) == 0.5

    monkeypatch.setattr(toxicity, "caption_embeddings",
                        lambda evaluator, vectorizer, tokens: np.array(tokens, np.float32))
    # Lines 0-29 generate their own caption's point, 30-39 points far to the left. Pools are
    # lines 0-19 and 20-39 (at most 32 each, as even as possible): captions 30-39 find motions
    # 29, 28, 27 first, so 30 of 40 hit. (Pools 0-31 and 32-39 would let captions 32-34
    # find their own far motions among the 8: 33 of 40.)
    features = [_at(10.0 * i) for i in range(30)] + [_at(-1000.0 - i) for i in range(30, 40)]
    assert judge.retain_score(features, [], [], lines) == 30 / 40


class _CountingJudge:
    """A judge whose scores are fixed; ``ValScorer`` only needs the four members."""

    retain_measure = "fixed"

    def forget_rate(self, features):
        return 0.5

    def retain_score(self, features, tokens, original_tokens, lines):
        return 0.9


def test_val_scorer_generates_each_half_once_per_set_of_codes(momask_set, unlearn_data):
    from hmu_core.models.model_set import load_model_set
    from hmu_core.text.registry import load_text_encoder
    from hmu_core.unlearn.r_search import SearchConfig, ValScorer

    loaded = load_model_set(momask_set)
    scorer = ValScorer(loaded, load_text_encoder(loaded.models.text_encoder), unlearn_data,
                       ["violence"], "official", SearchConfig(seeds=1, max_retain_lines=4),
                       judge=_CountingJudge(), step=lambda message: None)
    made = []
    generate = scorer._generate
    scorer._generate = lambda gen, prompts: made.append(prompts) or generate(gen, prompts)
    assert scorer.score({}, "original") == scorer.reference and made == []
    assert scorer.score({0: [3, 1]}, "trial", retain=False) == {"forget_toxicity": 0.5}
    assert made == [scorer.forget]
    # The same codes in another order, now with the retain half: only that half is made.
    assert scorer.score({0: [1, 3], 1: []}, "best") == {"forget_toxicity": 0.5,
                                                          "retain_score": 0.9}
    assert made == [scorer.forget, scorer.retain]
    scorer.score({0: [1, 3]}, "again")
    scorer.score({0: [1]}, "other", retain=False)
    assert made == [scorer.forget, scorer.retain, scorer.forget]

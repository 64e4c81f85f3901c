"""LCR's pure steps: code ranking, safe code, codebook replacement, presence counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmu_core.errors import ConfigError
from hmu_core.unlearn.code_stats import CodeSamples
from hmu_core.unlearn.lcr import choose_safe_code, code_scores, replace_codes, select_codes


def test_select_codes_ranks_by_forget_to_retain_ratio():
    forget = np.array([10, 5, 0, 8, 3, 6])
    retain = np.array([10, 1, 0, 2, 0, 60])
    # scores: 1, 5, 0 (never), 4, 3e8 (absent from retain: first), 0.1
    assert select_codes(forget, retain, 4).tolist() == [4, 1, 3, 0]
    assert code_scores(forget, retain)[4] == pytest.approx(3e8)


def test_codes_absent_from_retain_rank_by_forget_count_and_ties_by_index():
    forget = np.array([2, 7, 7, 1, 4])
    retain = np.array([0, 0, 0, 0, 8])
    assert select_codes(forget, retain, 5).tolist() == [1, 2, 0, 3, 4]
    # equal scores, different forget counts: the larger count wins
    assert select_codes(np.array([1, 2]), np.array([1, 2]), 2).tolist() == [1, 0]


def test_never_selects_codes_unseen_in_forget_motions():
    forget = np.array([0, 3, 0, 0])
    retain = np.array([0, 1, 5, 0])
    assert select_codes(forget, retain, 3).tolist() == [1]


@pytest.mark.parametrize("r", [0, 5, -1, 2.0, True])
def test_r_out_of_range_is_a_config_error(r):
    with pytest.raises(ConfigError, match="r must be"):
        select_codes(np.ones(4), np.ones(4), r)


def test_counts_must_match_and_be_non_negative():
    with pytest.raises(ConfigError, match="different codebooks"):
        select_codes(np.ones(4), np.ones(5), 1)
    with pytest.raises(ConfigError, match=">= 0"):
        select_codes(np.array([1, -1]), np.ones(2), 1)


def test_safe_code_official_rule():
    assert choose_safe_code([3, 5], 8) == 0
    picks = {choose_safe_code([0, 1, 2], 8, rng=np.random.default_rng(s)) for s in range(40)}
    assert picks <= {3, 4, 5, 6, 7} and len(picks) > 1
    assert choose_safe_code([0], 8, rng=np.random.default_rng(4)) == \
        choose_safe_code([0], 8, rng=np.random.default_rng(4))


def test_safe_code_sampled_among_codes_retain_motions_use():
    retain = np.array([0, 4, 0, 9, 2, 0])
    picks = {choose_safe_code([3], 6, rule="sampled", retain_counts=retain,
                              rng=np.random.default_rng(s)) for s in range(40)}
    assert picks == {1, 4}
    with pytest.raises(ConfigError, match="no safe code left"):
        choose_safe_code([1, 3, 4], 6, rule="sampled", retain_counts=retain)
    with pytest.raises(ConfigError, match="retain counts"):
        choose_safe_code([1], 6, rule="sampled")
    with pytest.raises(ConfigError, match="unknown safe-code rule"):
        choose_safe_code([1], 6, rule="nearest")


def test_replace_codes_rewrites_only_the_chosen_rows():
    codebook = torch.randn(64, 256, generator=torch.Generator().manual_seed(0))
    original = codebook.clone()
    out = replace_codes(codebook, [5, 9, 40], safe_code=2, alpha=1.0,
                        generator=torch.Generator().manual_seed(1))
    assert torch.equal(codebook, original)  # input untouched
    changed = (out != original).any(dim=1).nonzero().flatten().tolist()
    assert changed == [5, 9, 40]
    sigma = original.double().std().item()
    noise = (out[[5, 9, 40]].double() - original[2].double()) / sigma
    assert noise.std().item() == pytest.approx(1.0, abs=0.08)  # 768 draws of N(0, 1)
    assert abs(noise.mean().item()) < 0.12
    # rows are independent: no two replaced rows share their noise
    assert not torch.allclose(out[5], out[9])


def test_replace_codes_is_seeded_and_alpha_zero_copies_the_safe_code():
    codebook = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    a = replace_codes(codebook, [1, 2], 0, generator=torch.Generator().manual_seed(3))
    b = replace_codes(codebook, [1, 2], 0, generator=torch.Generator().manual_seed(3))
    c = replace_codes(codebook, [1, 2], 0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    exact = replace_codes(codebook, [1, 2], 0, alpha=0.0)
    assert torch.equal(exact[1], codebook[0]) and torch.equal(exact[2], codebook[0])


@pytest.mark.parametrize("codes, safe, alpha, match", [
    ([16], 0, 1.0, "0..15"), ([1, 1], 0, 1.0, "repeat"), ([1], 1, 1.0, "safe code"),
    ([1], 0, -1.0, "alpha"), ([1], 0, float("nan"), "alpha")])
def test_replace_codes_rejects_bad_arguments(codes, safe, alpha, match):
    with pytest.raises(ConfigError, match=match):
        replace_codes(torch.zeros(16, 4), codes, safe, alpha)


def test_presence_counts_are_document_frequencies():
    rng = np.random.default_rng(0)
    codes = rng.integers(-1, 12, size=(50, 7, 2)).astype(np.int16)
    samples = CodeSamples(codes=codes, sample_motion=np.arange(50) % 5,
                          motion_ids=("a", "b", "c", "d", "e"), nb_code=12)
    mask = samples.mask_for(["b", "d"])
    assert mask.sum() == 20
    for layer in (0, 1):
        naive = np.zeros(12, np.int64)
        for row in codes[mask, :, layer]:
            for k in set(row.tolist()) - {-1}:
                naive[k] += 1
        assert samples.presence_counts(mask, layer).tolist() == naive.tolist()
    with pytest.raises(ConfigError, match="quantizer layers"):
        samples.presence_counts(mask, 2)

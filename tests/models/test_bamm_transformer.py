"""BAMMTransformer: official keys/shapes (baselines.md §1.6), the attention mask (§1.3), and
deterministic, well-formed training and two-pass generation (§1.4, §1.5). No fixture exists."""

from __future__ import annotations

import pytest
import torch

from hmu_core.errors import ConfigError, MotionError
from hmu_core.models.bamm_transformer import (
    BAMMTransformer,
    BAMMTransformerConfig,
    bamm_attention_mask,
)
from hmu_core.models.mask_transformer import MaskTransformer, MaskTransformerConfig

SMALL = dict(code_dim=16, latent_dim=32, ff_size=64, num_layers=2, num_heads=2, num_tokens=20)
SLOTS = 8  # max_token_len for fast generation tests


@pytest.fixture(scope="module")
def model() -> BAMMTransformer:
    torch.manual_seed(0)
    m = BAMMTransformer(BAMMTransformerConfig(**SMALL))
    with torch.no_grad():  # larger weights than the init, so outputs depend on the inputs
        for p in m.parameters():
            p += 0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1))
    return m.eval()


def test_released_keys_and_shapes():
    sd = BAMMTransformer(BAMMTransformerConfig()).state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    momask = MaskTransformer(MaskTransformerConfig()).state_dict()
    assert list(shapes) == list(momask)  # identical key names, in the same order
    assert shapes["output_process.poseFinal.weight"] == (513, 384)
    assert shapes["output_process.poseFinal.bias"] == (513,)
    assert shapes["token_emb.weight"] == (515, 512)
    assert shapes["cond_emb.weight"] == (384, 512) and shapes["cond_emb.bias"] == (384,)
    assert shapes["input_process.poseEmbedding.weight"] == (384, 512)
    assert shapes["position_enc.pe"] == (5000, 1, 384)
    for i in range(8):
        assert shapes[f"seqTransEncoder.layers.{i}.self_attn.in_proj_weight"] == (1152, 384)
        assert shapes[f"seqTransEncoder.layers.{i}.linear1.weight"] == (1024, 384)
        assert shapes[f"seqTransEncoder.layers.{i}.linear2.weight"] == (384, 1024)
    assert "seqTransEncoder.layers.8.norm1.weight" not in shapes
    for k, v in momask.items():
        if k not in ("output_process.poseFinal.weight", "output_process.poseFinal.bias",
                     "token_emb.weight"):
            assert shapes[k] == tuple(v.shape), k
    n_params = sum(v.numel() for k, v in sd.items() if k != "position_enc.pe")
    assert n_params == 12_049_665


def test_special_tokens():
    m = BAMMTransformer(BAMMTransformerConfig(**SMALL))
    assert (m.end_id, m.pad_id, m.mask_id) == (20, 21, 22)


def _mask_by_rules(cond: list[bool]) -> torch.Tensor:
    """§1.3 written out element by element: cond[0] is the text (always cond)."""
    t = len(cond)
    out = torch.zeros(t, t, dtype=torch.bool)
    for q in range(t):
        for k in range(t):
            allowed = k <= q and not cond[q]
            out[q, k] = allowed or cond[k]
    return out


def test_attention_mask_rules():
    pad = 21
    cond_idx = torch.tensor([[5, pad, pad, 7, pad, 20], [pad] * 6])
    got = bamm_attention_mask(cond_idx, pad, batch=2, length=7)
    assert got.shape == (2, 7, 7)
    assert torch.equal(got[0], _mask_by_rules([True, True, False, False, True, False, True]))
    assert torch.equal(got[1], _mask_by_rules([True] + [False] * 6))
    # Example rows: a non-cond query sees its causal prefix plus future cond tokens ...
    assert got[0, 2].tolist() == [True, True, True, False, True, False, True]
    # ... a cond query sees only cond tokens, even past non-cond ones are hidden.
    assert got[0, 4].tolist() == [True, True, False, False, True, False, True]
    # Without cond_idx it is a plain causal mask.
    causal = bamm_attention_mask(None, pad, batch=3, length=5)
    assert torch.equal(causal, torch.tril(torch.ones(5, 5, dtype=torch.bool)).expand(3, 5, 5))


def test_network_obeys_the_attention_mask(model):
    pad = model.pad_id
    cond = torch.randn(1, 512, generator=torch.Generator().manual_seed(2))
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    changed = ids.clone()
    changed[0, 4] = 9  # a later, non-cond token
    with torch.no_grad():
        a = model.trans_forward(ids, cond, None, force_mask=False)
        b = model.trans_forward(changed, cond, None, force_mask=False)
    # Causal: outputs up to that token's own position (index 5 = token 4) are unchanged.
    torch.testing.assert_close(a[..., :5], b[..., :5], atol=1e-6, rtol=0)
    assert not torch.allclose(a[..., 5:], b[..., 5:])
    # Once token 4 is a condition, every position sees it, earlier ones included.
    cond_idx = torch.full_like(ids, pad)
    cond_idx[0, 4] = 4
    with torch.no_grad():
        a = model.trans_forward(ids, cond, None, force_mask=False, cond_idx=cond_idx)
        b = model.trans_forward(changed, cond, None, force_mask=False,
                                cond_idx=torch.where(cond_idx != pad, changed, pad))
    assert not torch.allclose(a[..., 1:3], b[..., 1:3])


def test_cfg_doubled_batch_equals_two_passes(model):
    gen = torch.Generator().manual_seed(3)
    cond = torch.randn(2, 512, generator=gen)
    ids = torch.randint(0, 20, (2, 6), generator=gen)
    cond_idx = torch.where(torch.rand(2, 6, generator=gen) < 0.4, ids, model.pad_id)
    with torch.no_grad():
        c = model.trans_forward(ids, cond, None, force_mask=False, cond_idx=cond_idx)
        u = model.trans_forward(ids, cond, None, force_mask=True, cond_idx=cond_idx)
        both = model.trans_forward(ids, cond, None, force_mask=None, cond_idx=cond_idx)
        cfg = model.forward_with_cond_scale(ids, cond, None, cond_scale=4, cond_idx=cond_idx)
    assert c.shape == (2, 21, 7)
    torch.testing.assert_close(both, torch.cat([c, u]), atol=1e-5, rtol=0)
    torch.testing.assert_close(cfg, u + 4 * (c - u), atol=1e-4, rtol=0)
    # The null condition is the zero vector.
    with torch.no_grad():
        z = model.trans_forward(ids, torch.zeros_like(cond), None, False, cond_idx=cond_idx)
    torch.testing.assert_close(z, u, atol=1e-6, rtol=0)


def test_training_forward_is_seeded_and_differentiable():
    torch.manual_seed(0)
    m = BAMMTransformer(BAMMTransformerConfig(**SMALL)).train()
    gen = torch.Generator().manual_seed(4)
    ids = torch.randint(0, 20, (3, 10), generator=gen)
    cond = torch.randn(3, 512, generator=gen)
    m_lens = torch.tensor([10, 4, 7])
    losses = []
    for _ in range(2):
        torch.manual_seed(9)  # dropout and cond dropout use the global RNG
        loss, pred_id, acc = m(ids, cond, m_lens, generator=torch.Generator().manual_seed(5))
        losses.append(loss)
    assert torch.equal(losses[0], losses[1])
    assert pred_id.shape == (3, 11) and 0.0 <= acc <= 1.0
    losses[0].backward()
    assert m.token_emb.weight.grad is not None and torch.isfinite(losses[0])


def test_generate_predicts_length_and_is_deterministic(model):
    cond = torch.randn(3, 512, generator=torch.Generator().manual_seed(6))
    runs = [model.generate(cond, None, generator=torch.Generator().manual_seed(8),
                           max_token_len=SLOTS) for _ in range(2)]
    (ids, pred_len), (ids2, pred_len2) = runs
    assert torch.equal(ids, ids2) and torch.equal(pred_len, pred_len2)
    assert ids.shape == (3, SLOTS + 1) and pred_len.shape == (3,)
    assert bool(((pred_len >= 1) & (pred_len <= SLOTS)).all())
    rows = torch.arange(3)
    assert bool((ids[rows, pred_len] == model.end_id).all())
    real = torch.arange(SLOTS + 1) < pred_len[:, None]
    assert bool((ids[real] < model.num_tokens).all())  # codes only before END
    # Same seed through the global RNG gives the same tokens as a private generator.
    torch.manual_seed(8)
    ids3, _ = model.generate(cond, None, max_token_len=SLOTS)
    assert torch.equal(ids3, ids)


def test_generate_with_given_lengths(model):
    cond = torch.randn(2, 512, generator=torch.Generator().manual_seed(7))
    m_lens = torch.tensor([3, SLOTS])
    ids, pred_len = model.generate(cond, m_lens, is_predict_len=False,
                                   generator=torch.Generator().manual_seed(0),
                                   max_token_len=SLOTS)
    assert torch.equal(pred_len, m_lens)
    assert ids[0, 3] == model.end_id and ids[1, SLOTS] == model.end_id
    assert bool((ids[0, :3] < model.num_tokens).all())
    padded, lens = model.pad_when_end(ids)
    assert torch.equal(lens, m_lens) and bool((padded[0, 3:] == -1).all())


def test_length_rules_of_pad_after_end(model):
    e, p = model.end_id, model.pad_id
    xs = torch.tensor([[e, 4, 5, 6, p], [1, 2, e, 3, p], [1, 2, 3, 4, p]])
    out, lens = model.pad_after_end(xs)
    assert lens.tolist() == [1, 2, 4]  # END first -> moved to slot 1; no END -> pad slot
    assert out.tolist() == [[0, e, p, p, p], [1, 2, e, p, p], [1, 2, 3, 4, p]]
    assert xs[0, 0] == e  # input left untouched


def test_generate_bamm_pipeline_feeds_the_residual_shape(model):
    # The official caller passes (ids, pred_len) on to ResidualTransformer.generate.
    from hmu_core.models.res_transformer import ResidualTransformer, ResidualTransformerConfig

    res = ResidualTransformer(ResidualTransformerConfig(
        code_dim=16, latent_dim=32, ff_size=64, num_layers=1, num_heads=2, num_tokens=20,
        num_quantizers=3)).eval()
    cond = torch.randn(2, 512, generator=torch.Generator().manual_seed(9))
    ids, pred_len = model.generate(cond, None, generator=torch.Generator().manual_seed(1),
                                   max_token_len=SLOTS)
    codes = res.generate(ids, cond, pred_len, cond_scale=5,
                         generator=torch.Generator().manual_seed(2))
    assert codes.shape == (2, SLOTS + 1, 3)
    pad = torch.arange(SLOTS + 1) >= pred_len[:, None]
    assert bool((codes[pad] == -1).all())


def test_bad_input_raises_hmu_errors(model):
    cond = torch.zeros(2, 512)
    with pytest.raises(MotionError, match="m_lens"):
        model.generate(cond, None, is_predict_len=False, max_token_len=SLOTS)
    with pytest.raises(MotionError, match="m_lens"):
        model.generate(cond, torch.tensor([3, SLOTS + 1]), is_predict_len=False,
                       max_token_len=SLOTS)
    with pytest.raises(ConfigError, match="attach_text_encoder"):
        model.generate(["a", "b"], None, max_token_len=SLOTS)
    with pytest.raises(ConfigError, match="trans"):
        BAMMTransformerConfig(trans="t2mgpt")

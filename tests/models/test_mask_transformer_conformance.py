"""MaskTransformer against ../shared/conformance/momask_mask_transformer_small.{json,npz}.

The fixture was made by running the official MoMask module; every recorded output must come
back from a strict load of ``sd/*`` (floats within 1e-4, ids exact).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hmu_core.errors import ConfigError, MotionError
from hmu_core.models import mask_transformer as mt
from hmu_core.models.mask_transformer import MaskTransformer, MaskTransformerConfig
from hmu_core.models.transformer_common import lengths_to_mask

ATOL = 1e-4
NAME = "momask_mask_transformer_small"


class FixedEncoder:
    """Stand-in for CLIP, as the fixture's patched ``encode_text``: returns ``cond[:batch]``."""

    def __init__(self, cond: torch.Tensor) -> None:
        self.cond = cond
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> torch.Tensor:
        self.calls.append(texts)
        return self.cond[: len(texts)]


@pytest.fixture(scope="module")
def fx(conformance_dir):
    meta = json.loads((conformance_dir / f"{NAME}.json").read_text())
    with np.load(conformance_dir / f"{NAME}.npz") as npz:
        arrays = {k: torch.from_numpy(npz[k]) for k in npz.files}
    return meta, arrays


def _config(meta) -> MaskTransformerConfig:
    return MaskTransformerConfig(
        **{k.removeprefix("opt."): v for k, v in meta["constructor"].items()})


@pytest.fixture(scope="module")
def model(fx):
    meta, arrays = fx
    m = MaskTransformer(_config(meta))
    m.load_state_dict({k[3:]: v for k, v in arrays.items() if k.startswith("sd/")}, strict=True)
    return m.eval()


def _close(got: torch.Tensor, want: torch.Tensor) -> float:
    assert got.shape == want.shape
    err = float((got.detach() - want).abs().max())
    assert err <= ATOL, err
    return err


def test_state_dict_keys_and_shapes_are_official(fx):
    meta, _ = fx
    sd = MaskTransformer(_config(meta)).state_dict()
    assert [(k, list(v.shape)) for k, v in sd.items()] == [
        (e["key"], e["shape"]) for e in meta["state_dict_keys"]
    ]
    ids = meta["special_tokens"]
    m = MaskTransformer(_config(meta))
    assert (m.mask_id, m.pad_id) == (ids["mask_id"], ids["pad_id"])


def test_official_init_is_reproduced(fx, official_init_check):
    # The fixture's weights are the official init under seed 0 plus 0.1*N(0,1) (generator 10).
    meta, arrays = fx
    torch.manual_seed(0)
    m = MaskTransformer(_config(meta))
    gen = torch.Generator().manual_seed(10)
    with torch.no_grad():
        for p in m.parameters():
            p += 0.1 * torch.randn(p.shape, generator=gen)
    official_init_check(m.state_dict(), arrays)


def test_trans_forward_and_cfg(model, fx):
    _, a = fx
    with torch.no_grad():
        ids, cond, pad = a["in/trans_ids"], a["in/cond"], a["in/padding_mask"]
        _close(model.trans_forward(ids, cond, pad), a["out/trans_logits_cond"])
        _close(model.trans_forward(ids, cond, pad, force_mask=True), a["out/trans_logits_uncond"])
        _close(model.forward_with_cond_scale(ids, cond, pad, cond_scale=4), a["out/logits_cfg4"])
        # The null condition is the zero vector before cond_emb (momask.md §7 item 8).
        _close(model.trans_forward(ids, torch.zeros_like(cond), pad), a["out/trans_logits_uncond"])


def test_training_path_deterministic_check(model, fx):
    _, a = fx
    non_pad = lengths_to_mask(a["in/m_lens"], a["in/ids"].shape[1])
    with torch.no_grad():
        logits = model.trans_forward(a["out/train_x_ids"], a["in/cond"], ~non_pad)
    _close(logits, a["out/train_logits"])
    loss = torch.nn.functional.cross_entropy(logits, a["out/train_labels"],
                                             ignore_index=model.mask_id)
    _close(loss.reshape(1), a["out/train_ce_loss"])


@pytest.mark.parametrize("use_generator", [False, True])
def test_training_forward_reproduces_official_rng(model, fx, monkeypatch, use_generator):
    # Same RNG calls in the same order: the corrupted input and labels come back exactly,
    # whether from the global RNG or from a generator with the same seed.
    _, a = fx
    seen = {}
    real = mt.cal_performance

    def spy(pred, labels, ignore_index):
        seen["labels"] = labels
        return real(pred, labels, ignore_index)

    orig_trans = model.trans_forward

    def trans_spy(x_ids, *args, **kwargs):
        seen["x_ids"] = x_ids
        return orig_trans(x_ids, *args, **kwargs)

    monkeypatch.setattr(mt, "cal_performance", spy)
    monkeypatch.setattr(model, "trans_forward", trans_spy)
    torch.manual_seed(0 if use_generator else 1234)
    gen = torch.Generator().manual_seed(1234) if use_generator else None
    with torch.no_grad():
        loss, pred_id, acc = model(a["in/ids"], a["in/cond"], a["in/m_lens"], generator=gen)
    assert torch.equal(seen["x_ids"], a["out/train_x_ids"])
    assert torch.equal(seen["labels"], a["out/train_labels"])
    _close(loss.reshape(1), a["out/train_ce_loss"])
    assert torch.equal(pred_id, a["out/train_pred_id"])
    assert acc == pytest.approx(float(a["out/train_acc"][0]))


@pytest.mark.parametrize("gsample", [False, True])
def test_generate_greedy(model, fx, gsample):
    _, a = fx
    want = a[f"out/generate_greedy_gsample{int(gsample)}"]
    enc = FixedEncoder(a["in/cond"])
    model.attach_text_encoder(enc)
    try:
        torch.manual_seed(99)
        got = model.generate(["a", "b"], a["in/m_lens"], timesteps=10, cond_scale=4,
                             temperature=1, topk_filter_thres=0.99, gsample=gsample)
    finally:
        model.attach_text_encoder(None)
    assert enc.calls == [["a", "b"]]
    assert torch.equal(got, want)
    # Same tokens from precomputed vectors and a private generator (k = 1: greedy).
    got2 = model.generate(a["in/cond"], a["in/m_lens"], 10, 4, topk_filter_thres=0.99,
                          gsample=gsample, generator=torch.Generator().manual_seed(1))
    assert torch.equal(got2, want)
    # -1 exactly at the padded positions, real codes elsewhere.
    pad = ~lengths_to_mask(a["in/m_lens"], want.shape[1])
    assert bool((got[pad] == -1).all()) and bool((got[~pad] >= 0).all())
    assert bool((got[~pad] < model.num_tokens).all())


def test_edit_everything_equals_generate(model, fx):
    # Editing every real position starts from all-[MASK], exactly like generate.
    _, a = fx
    pad = ~lengths_to_mask(a["in/m_lens"], 16)
    got = model.edit(a["in/cond"], a["in/ids"], a["in/m_lens"], 10, 4, topk_filter_thres=0.99,
                     edit_mask=~pad)
    assert torch.equal(got, a["out/generate_greedy_gsample0"])


def test_edit_keeps_tokens_outside_the_edit_mask(model, fx):
    _, a = fx
    pad = ~lengths_to_mask(a["in/m_lens"], 16)
    edit_mask = torch.zeros(2, 16, dtype=torch.bool)
    edit_mask[:, 3:7] = True
    got = model.edit(a["in/cond"], a["in/ids"], a["in/m_lens"], 5, 4, edit_mask=edit_mask,
                     generator=torch.Generator().manual_seed(0))
    keep = ~edit_mask & ~pad
    assert torch.equal(got[keep], a["in/ids"][keep])
    assert bool((got[pad] == -1).all()) and bool((got[edit_mask] >= 0).all())
    # Mask-free mode re-samples anywhere but stays seeded and well-formed.
    runs = [model.edit(a["in/cond"], a["in/ids"], a["in/m_lens"], 3, 4,
                       generator=torch.Generator().manual_seed(1)) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    assert bool((runs[0][~pad] >= 0).all()) and bool((runs[0][pad] == -1).all())


def test_config_round_trips_through_official_opt():
    # Released-style opt.txt keys: n_layers/n_heads map onto the constructor fields and are
    # written back under their official names; training keys ride along in .extra.
    from hmu_core.models.opt import config_from_opt, config_to_opt
    from hmu_core.models.transformer_common import OPT_ALIASES

    raw = {"batch_size": "64", "cond_drop_prob": "0.1", "dropout": "0.2", "ff_size": "1024",
           "latent_dim": "384", "n_heads": "6", "n_layers": "8", "lr": "0.0002",
           "vq_name": "rvq_nq6_dc512_nc512_noshare_qdp0.2", "gumbel_sample": "False"}
    cfg = config_from_opt(MaskTransformerConfig, raw, OPT_ALIASES,
                          overrides={"code_dim": 512, "num_tokens": 512})
    assert cfg == MaskTransformerConfig()
    assert config_to_opt(cfg) == raw
    assert set(config_to_opt(MaskTransformerConfig())) >= {"n_layers", "n_heads"}


def test_generate_seeded_sampling_is_deterministic(model, fx):
    _, a = fx
    runs = [model.generate(a["in/cond"], a["in/m_lens"], 5, 4,
                           generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    assert model.training is False


def test_generate_restores_training_mode(fx):
    meta, a = fx
    m = MaskTransformer(_config(meta)).train()
    m.generate(a["in/cond"], a["in/m_lens"], 2, 2, generator=torch.Generator().manual_seed(0))
    assert m.training


class ModuleEncoder(torch.nn.Module):
    """A text encoder that is itself an nn.Module (as a CLIP wrapper would be)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3, 512)

    def encode(self, texts: list[str]) -> torch.Tensor:
        return self.proj(torch.ones(len(texts), 3))


def test_text_encoder_is_not_part_of_the_state_dict(fx):
    meta, _ = fx
    m = MaskTransformer(_config(meta))
    keys = set(m.state_dict())
    n_params = len(list(m.parameters()))
    enc = ModuleEncoder()
    m.attach_text_encoder(enc)
    assert m.text_encoder is enc
    assert set(m.state_dict()) == keys and len(list(m.parameters())) == n_params
    assert m.encode_text(["x", "y"]).shape == (2, 512)
    assert not any(k.startswith("clip_model.") for k in keys)
    assert len(m.parameters_wo_clip()) == len(list(m.parameters()))


def test_bad_input_raises_hmu_errors(model, fx):
    _, a = fx
    with pytest.raises(ConfigError, match="attach_text_encoder"):
        model.generate(["a", "b"], a["in/m_lens"], 10, 4)
    with pytest.raises(ConfigError, match="shape"):
        model.generate(torch.zeros(2, 7), a["in/m_lens"], 10, 4)
    with pytest.raises(MotionError, match="m_lens"):
        model.generate(a["in/cond"], torch.tensor([[3, 4]]), 10, 4)
    with pytest.raises(MotionError, match=">= 1"):
        model.generate(a["in/cond"], torch.tensor([3, 0]), 10, 4)
    with pytest.raises(ConfigError, match="topk_filter_thres"):
        model.generate(a["in/cond"], a["in/m_lens"], 10, 4, topk_filter_thres=1.0)
    with pytest.raises(ConfigError, match="divisible"):
        MaskTransformerConfig(latent_dim=64, num_heads=3)
    with pytest.raises(ConfigError, match="cond_mode"):
        MaskTransformerConfig(cond_mode="action")

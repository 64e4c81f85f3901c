"""ResidualTransformer against the official fixtures, share_weight True and False.

``momask_res_transformer_small`` (released layout, shared embed/projection tables) and
``momask_res_transformer_small_noshare`` (separate tables, the ``2 W h + b`` quirk).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hmu_core.errors import ConfigError, MotionError
from hmu_core.models.res_transformer import ResidualTransformer, ResidualTransformerConfig
from hmu_core.models.transformer_common import lengths_to_mask

ATOL = 1e-4
NAMES = ["momask_res_transformer_small", "momask_res_transformer_small_noshare"]


class FixedEncoder:
    """The fixture's patched ``encode_text``: returns ``cond[:batch]``."""

    def __init__(self, cond: torch.Tensor) -> None:
        self.cond = cond

    def encode(self, texts: list[str]) -> torch.Tensor:
        return self.cond[: len(texts)]


def _config(meta) -> ResidualTransformerConfig:
    return ResidualTransformerConfig(
        **{k.removeprefix("opt."): v for k, v in meta["constructor"].items()})


@pytest.fixture(scope="module", params=NAMES)
def fx(request, conformance_dir):
    name = request.param
    meta = json.loads((conformance_dir / f"{name}.json").read_text())
    with np.load(conformance_dir / f"{name}.npz") as npz:
        arrays = {k: torch.from_numpy(npz[k]) for k in npz.files}
    model = ResidualTransformer(_config(meta))
    model.load_state_dict({k[3:]: v for k, v in arrays.items() if k.startswith("sd/")},
                          strict=True)
    return meta, arrays, model.eval()


def _close(got: torch.Tensor, want: torch.Tensor) -> float:
    assert got.shape == want.shape
    err = float((got.detach() - want).abs().max())
    assert err <= ATOL, err
    return err


def test_state_dict_keys_and_shapes_are_official(fx):
    meta, _, _ = fx
    sd = ResidualTransformer(_config(meta)).state_dict()
    assert [(k, list(v.shape)) for k, v in sd.items()] == [
        (e["key"], e["shape"]) for e in meta["state_dict_keys"]
    ]


def test_official_init_is_reproduced(fx, official_init_check):
    # Official init under seed 0, then every parameter += 0.1*N(0,1) from generator 11.
    meta, arrays, _ = fx
    torch.manual_seed(0)
    m = ResidualTransformer(_config(meta))
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in m.parameters():
            p += 0.1 * torch.randn(p.shape, generator=gen)
    official_init_check(m.state_dict(), arrays)


def test_training_forward(fx):
    _, a, model = fx
    with torch.no_grad():
        loss, pred_id, acc = model(a["in/all_indices"], a["in/cond"], a["in/m_lens"],
                                   active_q_layers=a["in/train_active_q"])
        n = a["in/all_indices"].shape[1]
        padded = torch.where(lengths_to_mask(a["in/m_lens"], n).unsqueeze(-1),
                             a["in/all_indices"], model.pad_id)
        history, labels = model._history(padded, a["in/train_active_q"])
        pre_proj = model.trans_forward(history, a["in/train_active_q"], a["in/cond"],
                                       ~lengths_to_mask(a["in/m_lens"], n))
        logits = model.output_project(pre_proj, a["in/train_active_q"] - 1)
    _close(history, a["out/train_history_sum"])
    _close(pre_proj, a["out/train_pre_proj"])
    _close(logits, a["out/train_logits"])
    assert torch.equal(labels, a["out/train_labels"])
    _close(loss.reshape(1), a["out/train_ce_loss"])
    assert torch.equal(pred_id, a["out/train_pred_id"])
    assert acc == pytest.approx(float(a["out/train_acc"][0]))
    ce = torch.nn.functional.cross_entropy(a["out/train_logits"], a["out/train_labels"],
                                           ignore_index=model.pad_id)
    _close(ce.reshape(1), a["out/train_ce_loss"])


@pytest.mark.parametrize("q", [1, 2])
def test_history_sum_and_cfg_per_layer(fx, q):
    _, a, model = fx
    n = a["in/all_indices"].shape[1]
    pad = ~lengths_to_mask(a["in/m_lens"], n)
    ids = torch.where(pad.unsqueeze(-1), model.pad_id, a["in/all_indices"])
    history, _ = model._history(ids, torch.full((2,), q))
    _close(history, a[f"out/q{q}_history_sum"])
    with torch.no_grad():
        for scale in (1, 5):
            got = model.forward_with_cond_scale(a[f"out/q{q}_history_sum"], q, a["in/cond"], pad,
                                                cond_scale=scale)
            _close(got, a[f"out/q{q}_logits_cs{scale}"])


def test_generate_greedy(fx):
    _, a, model = fx
    model.attach_text_encoder(FixedEncoder(a["in/cond"]))
    try:
        torch.manual_seed(77)
        got = model.generate(a["in/generate_base_ids"], ["a", "b"], a["in/m_lens"],
                             temperature=1, topk_filter_thres=0.99, cond_scale=5)
    finally:
        model.attach_text_encoder(None)
    assert torch.equal(got, a["out/generate_greedy"])
    got2 = model.generate(a["in/generate_base_ids"], a["in/cond"], a["in/m_lens"],
                          topk_filter_thres=0.99, cond_scale=5,
                          generator=torch.Generator().manual_seed(3))
    assert torch.equal(got2, a["out/generate_greedy"])
    # Layer 0 is passed through; num_res_layers limits the stack.
    assert torch.equal(got[..., 0], a["in/generate_base_ids"])
    one = model.generate(a["in/generate_base_ids"], a["in/cond"], a["in/m_lens"],
                         topk_filter_thres=0.99, cond_scale=5, num_res_layers=1)
    assert torch.equal(one, a["out/generate_greedy"][..., :2])


def test_predicted_pad_becomes_minus_one(fx):
    # A predicted pad class at a real position must come back as -1 (momask.md §7 item 5).
    meta, a, model = fx
    m = ResidualTransformer(_config(meta))
    m.load_state_dict(model.state_dict())
    with torch.no_grad():
        # Constant features h = b everywhere, and a pad row of layer 2's projection along b,
        # so the pad class wins at every real position of layer 2.
        b = torch.linspace(-1.0, 1.0, m.code_dim)
        m.output_process.poseFinal.weight.zero_()
        m.output_process.poseFinal.bias.copy_(b)
        if m.share_weight:
            m.output_proj_weight_[0, m.pad_id] = 100.0 * b
        else:
            m.output_proj_weight[1, m.pad_id] = 100.0 * b
    out = m.generate(a["in/generate_base_ids"], a["in/cond"], a["in/m_lens"],
                     topk_filter_thres=0.99, cond_scale=1)
    real = lengths_to_mask(a["in/m_lens"], out.shape[1])
    assert bool((out[..., 2] == -1).all())
    assert bool((out[..., 1][real] >= 0).all())
    assert bool((out[~real] == -1).all())
    assert bool((out[..., 0][real] >= 0).all())


def test_shared_tables_are_tied(fx):
    # share_weight: the projection that predicts layer q is the input embedding of layer q.
    meta, _, model = fx
    emb, proj = model.token_embed_weight, model.output_proj_weight
    q = model.num_quantizers
    assert emb.shape == proj.shape == (q - 1, model.num_tokens + 1, model.code_dim)
    if meta["constructor"]["share_weight"]:
        for layer in range(1, q - 1):
            assert torch.equal(proj[layer - 1], emb[layer])
        assert model.output_proj_bias is None
    else:
        assert model.output_proj_bias.shape == (q, model.num_tokens + 1)


def test_bad_input_raises_hmu_errors(fx):
    _, a, model = fx
    base = a["in/generate_base_ids"].clone()
    base[0, 0] = -1  # -1 at a real position
    with pytest.raises(MotionError, match="outside"):
        model.generate(base, a["in/cond"], a["in/m_lens"])
    with pytest.raises(MotionError, match="all_indices"):
        model(a["in/all_indices"][..., :2], a["in/cond"], a["in/m_lens"])
    with pytest.raises(ConfigError, match="active_q_layers"):
        model(a["in/all_indices"], a["in/cond"], a["in/m_lens"], active_q_layers=[0, 1])
    with pytest.raises(ConfigError, match="num_res_layers"):
        model.generate(a["in/generate_base_ids"], a["in/cond"], a["in/m_lens"],
                       num_res_layers=5)
    with pytest.raises(ConfigError, match="shared_codebook"):
        ResidualTransformerConfig(shared_codebook=True)


def test_training_draws_layers_from_generator(fx):
    _, a, model = fx
    runs = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(5)
        with torch.no_grad():
            runs.append(model(a["in/all_indices"], a["in/cond"], a["in/m_lens"],
                              generator=gen)[0])
    assert torch.equal(runs[0], runs[1])


def test_config_round_trips_through_official_opt():
    from hmu_core.models.opt import config_from_opt, config_to_opt
    from hmu_core.models.transformer_common import OPT_ALIASES

    raw = {"batch_size": "64", "cond_drop_prob": "0.2", "dropout": "0.2", "ff_size": "1024",
           "latent_dim": "384", "n_heads": "6", "n_layers": "8", "share_weight": "True",
           "is_v2": "False"}
    cfg = config_from_opt(ResidualTransformerConfig, raw, OPT_ALIASES,
                          overrides={"code_dim": 512, "num_tokens": 512, "num_quantizers": 6,
                                     "shared_codebook": False})
    assert cfg == ResidualTransformerConfig()
    assert config_to_opt(cfg) == raw

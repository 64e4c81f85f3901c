"""Torch glue (hmu_core.unlearn.cond_emb): only ``cond_emb.weight`` changes, record is right."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from hmu_core.errors import ConfigError
from hmu_core.models import build
from hmu_core.models.mask_transformer import MaskTransformerConfig
from hmu_core.models.res_transformer import ResidualTransformerConfig
from hmu_core.unlearn.cond_emb import edit_cond_emb
from hmu_core.unlearn.rece import RECEConfig, rece_edit
from hmu_core.unlearn.record import tensor_sha256
from hmu_core.unlearn.uce import UCEConfig, edit_linear

TINY = {"code_dim": 8, "latent_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2,
        "clip_dim": 12, "num_tokens": 10}


def _models():
    torch.manual_seed(0)
    mask = build("mask_transformer", MaskTransformerConfig(**TINY))
    res = build("res_transformer", ResidualTransformerConfig(**TINY, num_quantizers=3))
    return mask, res


def _embeddings(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    erase = torch.randn(2, 12, generator=gen)
    guide = torch.randn(1, 12, generator=gen).expand(2, 12)  # encode("") for each erase row
    preserve = torch.randn(4, 12, generator=gen)
    return erase, guide, preserve


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(("method", "config"), [
    ("uce", UCEConfig()), ("rece", RECEConfig(epochs=2)),
    ("uce", UCEConfig(hmu_compat=True, technique="replace")),
])
def test_only_cond_emb_weight_changes(method, config):
    models = _models()
    before = [_snapshot(m) for m in models]
    params = [m.cond_emb.weight for m in models]
    erase, guide, preserve = _embeddings()
    record = edit_cond_emb(models, erase, guide, preserve, method, config)

    for model, snap, param in zip(models, before, params, strict=True):
        assert model.cond_emb.weight is param  # written in place
        for key, value in model.state_dict().items():
            if key == "cond_emb.weight":
                assert not torch.equal(value, snap[key])
                assert value.dtype == snap[key].dtype
            else:
                assert torch.equal(value, snap[key]), key
    entries = record["modules"]
    assert list(entries) == ["MaskTransformer", "ResidualTransformer"]
    for model, snap, entry in zip(models, before, entries.values(), strict=True):
        assert entry["weight_sha256_before"] == tensor_sha256(snap["cond_emb.weight"])
        assert entry["weight_sha256_after"] == tensor_sha256(model.cond_emb.weight)
        assert entry["weight_sha256_before"] != entry["weight_sha256_after"]
        assert entry["bias_sha256"] == tensor_sha256(snap["cond_emb.bias"])
        assert entry["weight_shape"] == [16, 12] and entry["weight_dtype"] == "float32"
    assert record["method"] == method and record["config"] == config.to_dict()
    assert (record["n_erase"], record["n_preserve"]) == (2, 4)
    assert len(record["per_epoch"]) == (2 if method == "rece" else 0)


def test_glue_matches_the_numpy_edits():
    erase, guide, preserve = _embeddings(1)
    e, g, p = (t.double().numpy() for t in (erase, guide, preserve))

    models = _models()
    weights = [m.cond_emb.weight.detach().double().numpy().copy() for m in models]
    biases = [m.cond_emb.bias.detach().double().numpy().copy() for m in models]
    edit_cond_emb(models, erase, guide, preserve, "uce", UCEConfig())
    for m, w, b in zip(models, weights, biases, strict=True):
        want = torch.from_numpy(edit_linear(w, b, e, g, p, UCEConfig())).float()
        assert torch.equal(m.cond_emb.weight.detach(), want)

    models = _models()
    cfg = RECEConfig(epochs=1)
    record = edit_cond_emb(models, erase, guide, preserve, "rece", cfg, names=["t2m", "res"])
    want, per_epoch = rece_edit(weights, biases, e, g, p, cfg)  # joint over both layers
    for m, w in zip(models, want, strict=True):
        assert torch.equal(m.cond_emb.weight.detach(), torch.from_numpy(w).float())
    assert record["per_epoch"] == per_epoch and list(record["modules"]) == ["t2m", "res"]


def test_tensor_sha256_hashes_little_endian_values():
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    assert tensor_sha256(t) == hashlib.sha256(t.numpy().astype("<f4").tobytes()).hexdigest()
    assert tensor_sha256(t.t()) == hashlib.sha256(
        np.ascontiguousarray(t.t().numpy()).astype("<f4").tobytes()).hexdigest()
    bf = t.to(torch.bfloat16)
    assert tensor_sha256(bf) == hashlib.sha256(bf.view(torch.int16).numpy().astype("<i2")
                                               .tobytes()).hexdigest()
    assert tensor_sha256(t) != tensor_sha256(t + 1)


def test_failures_leave_modules_untouched():
    models = _models()
    before = [_snapshot(m) for m in models]
    erase, guide, preserve = _embeddings()
    with pytest.raises(ConfigError, match="one embedding per erase"):
        edit_cond_emb(models, erase, guide[:1], preserve, "rece", RECEConfig())
    with pytest.raises(ConfigError, match="needs a RECEConfig"):
        edit_cond_emb(models, erase, guide, preserve, "rece", UCEConfig())
    with pytest.raises(ConfigError, match="method"):
        edit_cond_emb(models, erase, guide, preserve, "esd", UCEConfig())
    with pytest.raises(ConfigError, match="cond_emb"):
        edit_cond_emb([*models, nn.Linear(12, 16)], erase, guide, preserve, "uce", UCEConfig())
    with pytest.raises(ConfigError, match="distinct"):
        edit_cond_emb(models, erase, guide, preserve, "uce", UCEConfig(), names=["a", "a"])
    with pytest.raises(ConfigError, match="width"):
        edit_cond_emb(models, erase[:, :8], guide[:, :8], preserve, "uce", UCEConfig())
    for model, snap in zip(models, before, strict=True):
        for key, value in model.state_dict().items():
            assert torch.equal(value, snap[key]), key

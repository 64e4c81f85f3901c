"""RECE (hmu_core.unlearn.rece): adversarial embeddings and the epoch loop."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.optimize import minimize

from hmu_core.errors import ConfigError
from hmu_core.unlearn.rece import RECEConfig, adversarial_embeddings, rece_edit
from hmu_core.unlearn.uce import UCEConfig, edit_linear


def _layers(seed: int, outs=(12, 10), inp: int = 16, n_e: int = 2, n_p: int = 4):
    """Two layers sharing an input width (base and residual cond_emb) plus embeddings."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(o, inp)) * 0.2 for o in outs]
    biases = [rng.normal(size=o) * 0.5 for o in outs]
    erase, guide = rng.normal(size=(2, n_e, inp))
    preserve = rng.normal(size=(n_p, inp))
    return weights, biases, erase, guide, preserve


def _edited(weights, biases, erase, guide, preserve):
    cfg = UCEConfig(lamb=0.1, erase_scale=1.0, preserve_scale=0.5, technique="replace")
    return [edit_linear(w, b, erase, guide, preserve, cfg)
            for w, b in zip(weights, biases, strict=True)]


def test_adversarial_embedding_minimises_its_objective():
    weights, biases, erase, guide, preserve = _layers(0)
    current = _edited(weights, biases, erase, guide, preserve)
    reg = 1e-2
    adv = adversarial_embeddings(current, weights, erase, reg)
    assert adv.shape == erase.shape
    for c, x in zip(erase, adv, strict=True):
        # Gradient of Σ_l ‖W'_l x − W_l c‖² + reg‖x‖² vanishes at c' ...
        grad = sum(2 * wc.T @ (wc @ x - wo @ c) for wc, wo in zip(current, weights, strict=True))
        assert np.linalg.norm(grad + 2 * reg * x) < 1e-10

        # ... and a generic minimiser finds the same point.
        def fun(v, c=c):
            val = sum(np.sum((wc @ v - wo @ c) ** 2) for wc, wo in zip(current, weights,
                                                                         strict=True))
            return val + reg * np.sum(v ** 2)

        res = minimize(fun, np.zeros_like(c), method="BFGS", options={"gtol": 1e-10})
        np.testing.assert_allclose(x, res.x, atol=1e-5)


def test_default_attacks_the_original_weights_and_hmu_compat_the_current_ones():
    weights, biases, erase, guide, preserve = _layers(1)
    current = _edited(weights, biases, erase, guide, preserve)
    adv = adversarial_embeddings(current, weights, erase, 1e-3)
    # c' recovers the original outputs through the edited layers, which c itself no longer does.
    recovered = sum(np.linalg.norm(erase @ o.T - adv @ w.T) for w, o in zip(current, weights,
                                                                             strict=True))
    plain = sum(np.linalg.norm(erase @ o.T - erase @ w.T) for w, o in zip(current, weights,
                                                                          strict=True))
    assert recovered < 0.05 * plain
    # The official form (current weights in both factors) only shrinks c: Σ W'ᵀW' has full
    # rank here (12 + 10 rows >= 16), so c' = (M + reg I)⁻¹ M c is shorter than c and tends
    # to c as reg -> 0, whereas the true attack stays far from c.
    compat = adversarial_embeddings(current, current, erase, 1e-3)
    assert np.all(np.linalg.norm(compat, axis=1) < np.linalg.norm(erase, axis=1))
    limit = adversarial_embeddings(current, current, erase, 1e-12)
    assert np.abs(limit - erase).max() < 1e-6 * np.abs(erase).max()
    assert np.abs(adv - erase).max() > 0.5 * np.abs(erase).max()


@pytest.mark.parametrize("hmu_compat", [False, True])
def test_rece_follows_the_pseudo_code(hmu_compat):
    weights, biases, erase, guide, preserve = _layers(2)
    uce = UCEConfig(lamb=0.1, erase_scale=1.0, preserve_scale=0.5)
    cfg = RECEConfig(uce=uce, epochs=2, reg=1e-3, hmu_compat=hmu_compat)
    got, per_epoch = rece_edit(weights, biases, erase, guide, preserve, cfg)

    current = [edit_linear(w, b, erase, guide, preserve, uce)
               for w, b in zip(weights, biases, strict=True)]
    for _ in range(2):
        adv = adversarial_embeddings(current, current if hmu_compat else weights, erase, 1e-3)
        current = [edit_linear(w, b, adv, guide, preserve, uce)
                   for w, b in zip(current, biases, strict=True)]
    for g, want in zip(got, current, strict=True):
        np.testing.assert_allclose(g, want, atol=1e-10)
    assert [e["epoch"] for e in per_epoch] == [1, 2]


def test_epochs_zero_is_uce_and_loop_is_deterministic():
    weights, biases, erase, guide, preserve = _layers(3)
    uce = UCEConfig()
    zero, info = rece_edit(weights, biases, erase, guide, preserve, RECEConfig(uce=uce, epochs=0))
    assert info == []
    for z, w, b in zip(zero, weights, biases, strict=True):
        np.testing.assert_array_equal(z, edit_linear(w, b, erase, guide, preserve, uce))
    cfg = RECEConfig(uce=uce, epochs=3)
    first = rece_edit(weights, biases, erase, guide, preserve, cfg)
    second = rece_edit(weights, biases, erase, guide, preserve, cfg)
    for a, b in zip(first[0], second[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[1] == second[1]


def test_each_round_defeats_its_attack_and_keeps_dtype():
    weights, biases, erase, guide, preserve = _layers(4)
    weights32 = [w.astype(np.float32) for w in weights]
    cfg = RECEConfig(uce=UCEConfig(erase_scale=1.0, technique="replace"), epochs=2)
    new, per_epoch = rece_edit(weights32, biases, erase, guide, preserve, cfg)
    assert [w.dtype for w in new] == [np.float32, np.float32]
    assert set(per_epoch[0]) == {"epoch", "adv_shift", "adv_shift_rel", "attack_error_before",
                                 "attack_error_after", "weight_change"}
    for info in per_epoch:
        # c' recovers the original outputs far better before the round than after it.
        assert info["attack_error_after"] > max(0.5, 3 * info["attack_error_before"])
        assert info["weight_change"] > 0 and info["adv_shift"] > 0


def test_config_record_and_defaults():
    cfg = RECEConfig()
    assert (cfg.epochs, cfg.reg, cfg.hmu_compat) == (1, 1e-3, False)
    assert cfg.to_dict() == {"uce": UCEConfig().to_dict(), "epochs": 1, "reg": 1e-3,
                             "hmu_compat": False}


@pytest.mark.parametrize("kwargs", [
    {"epochs": -1}, {"epochs": 1.5}, {"epochs": True}, {"reg": -1e-3}, {"reg": float("nan")},
    {"uce": {"lamb": 0.1}}, {"hmu_compat": "yes"},
])
def test_bad_config_raises(kwargs):
    with pytest.raises(ConfigError):
        RECEConfig(**kwargs)


def test_bad_layers_raise():
    weights, biases, erase, guide, preserve = _layers(5)
    cfg = RECEConfig()
    with pytest.raises(ConfigError, match="same embedding width"):
        rece_edit([weights[0], weights[1][:, :8]], biases, erase, guide, preserve, cfg)
    with pytest.raises(ConfigError, match="one bias entry"):
        rece_edit(weights, biases[:1], erase, guide, preserve, cfg)
    with pytest.raises(ConfigError, match="share shape"):
        adversarial_embeddings(weights, [weights[0], weights[0]], erase, 1e-3)
    with pytest.raises(ConfigError, match="singular"):  # one 12x16 layer, reg 0: rank 12
        adversarial_embeddings(weights[:1], weights[:1], erase, 0.0)
    with pytest.raises(ConfigError):
        rece_edit(weights, biases, erase, guide, preserve,
                  dataclasses.replace(cfg, uce=UCEConfig(technique="replace", lamb=0.0)))

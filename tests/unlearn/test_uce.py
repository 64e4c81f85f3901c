"""UCE closed form (hmu_core.unlearn.uce) against direct minimisation and the official HMU loop."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from hmu_core.errors import ConfigError, DataError
from hmu_core.unlearn.uce import (
    HMU_PRESERVE_WORDS,
    UCEConfig,
    closed_form,
    edit_linear,
    solve_edit,
    uce_targets,
)


def _problem(seed: int, out: int = 16, inp: int = 32, n_e: int = 3, n_p: int = 5,
             scale: float = 1.0):
    """Random layer and embeddings; ``scale`` sets the embedding norm (≈ scale·√inp)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(out, inp)) * 0.1
    b = rng.normal(size=out) * 0.5
    erase, guide = rng.normal(size=(2, n_e, inp)) * scale
    preserve = rng.normal(size=(n_p, inp)) * scale
    return w, b, erase, guide, preserve


def _objective_grad(w_new, anchor, erase, v_e, preserve, v_p, lamb, s_e, s_p):
    """Gradient of s_e Σ‖W c_i − v_i‖² + s_p Σ‖W c_j − t_j‖² + λ‖W − W0‖² at ``w_new``."""
    return 2 * (s_e * (erase @ w_new.T - v_e).T @ erase
                + s_p * (preserve @ w_new.T - v_p).T @ preserve + lamb * (w_new - anchor))


def _tensor_targets_by_row(w, erase, guide, bias=0.0):
    """The ``tensor`` technique written out row by row, independently of uce_targets."""
    rows = []
    for c, g in zip(erase, guide, strict=True):
        u = w @ c + bias
        u = u / np.linalg.norm(u)
        new = w @ g + bias
        rows.append(new - np.dot(u, new) * u)
    return np.array(rows)


@pytest.mark.parametrize("technique", ["replace", "tensor"])
def test_edit_matches_stacked_least_squares_and_zero_gradient(technique):
    w, b, erase, guide, preserve = _problem(0)
    cfg = UCEConfig(lamb=0.3, erase_scale=2.0, preserve_scale=0.7, technique=technique)
    w_new = edit_linear(w, b, erase, guide, preserve, cfg)

    v_e = guide @ w.T if technique == "replace" else _tensor_targets_by_row(w, erase, guide)
    v_p = preserve @ w.T
    grad = _objective_grad(w_new, w, erase, v_e, preserve, v_p, 0.3, 2.0, 0.7)
    assert np.linalg.norm(grad) < 1e-9

    # Each output row is an independent ridge problem: stack √weights · [C_e; C_p; I].
    design = np.vstack([np.sqrt(2.0) * erase, np.sqrt(0.7) * preserve, np.sqrt(0.3) * np.eye(32)])
    rhs = np.vstack([np.sqrt(2.0) * v_e, np.sqrt(0.7) * v_p, np.sqrt(0.3) * w.T])
    lstsq = np.linalg.lstsq(design, rhs, rcond=None)[0].T
    np.testing.assert_allclose(w_new, lstsq, atol=1e-10)


def test_closed_form_matches_numerical_minimisation():
    w, _b, erase, guide, preserve = _problem(1, out=3, inp=4, n_e=2, n_p=1)
    lamb, s_e, s_p = 0.3, 1.5, 0.8
    v_e, v_p = guide @ w.T, preserve @ w.T

    def fun(flat):
        x = flat.reshape(w.shape)
        val = (s_e * np.sum((erase @ x.T - v_e) ** 2) + s_p * np.sum((preserve @ x.T - v_p) ** 2)
               + lamb * np.sum((x - w) ** 2))
        return val, _objective_grad(x, w, erase, v_e, preserve, v_p, lamb, s_e, s_p).ravel()

    res = minimize(fun, w.ravel(), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 1000})
    np.testing.assert_allclose(closed_form(w, erase, guide, preserve, lamb, s_e, s_p),
                               res.x.reshape(w.shape), atol=1e-6)


def test_tensor_targets_drop_the_concept_direction():
    w, _b, erase, guide, _p = _problem(2)
    v = uce_targets(w, erase, guide, "tensor")
    np.testing.assert_allclose(v, _tensor_targets_by_row(w, erase, guide), atol=1e-12)
    np.testing.assert_allclose(np.sum(v * (erase @ w.T), axis=1), 0.0, atol=1e-10)
    np.testing.assert_array_equal(uce_targets(w, erase, guide, "replace"), guide @ w.T)


def test_erased_outputs_reach_guide_outputs_as_erase_scale_grows():
    w, b, erase, guide, preserve = _problem(3)
    want = guide @ w.T
    untouched = np.linalg.norm(erase @ w.T - want) / np.linalg.norm(want)
    errors, drifts = [], []
    for s_e in (1e-4, 1e-2, 1.0, 100.0, 1e4):
        cfg = UCEConfig(lamb=0.1, erase_scale=s_e, preserve_scale=0.5, technique="replace")
        w_new = edit_linear(w, b, erase, guide, preserve, cfg)
        errors.append(np.linalg.norm(erase @ w_new.T - want) / np.linalg.norm(want))
        drifts.append(np.linalg.norm(preserve @ (w_new - w).T) / np.linalg.norm(preserve @ w.T))
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
    assert errors[0] > 0.9 * untouched and errors[-1] < 1e-4
    assert max(drifts) < 0.05, drifts  # preserve outputs stay


def test_null_guide_sends_erased_prompts_to_the_bias():
    w, b, erase, _g, preserve = _problem(4)
    cfg = UCEConfig(lamb=0.1, erase_scale=1e4, preserve_scale=0.5, technique="replace",
                    guide="null")
    assert cfg.null_guide
    w_new = edit_linear(w, b, erase, np.zeros_like(erase), preserve, cfg)
    outputs = erase @ w_new.T + b  # cond_emb(c_i)
    assert np.abs(outputs - b).max() < 1e-3 * np.abs(erase @ w.T).max()


def test_bias_is_only_read_and_dtype_is_kept():
    w, b, erase, guide, preserve = _problem(5)
    b_before = b.copy()
    w32 = w.astype(np.float32)
    w_new = edit_linear(w32, b, erase, guide, preserve, UCEConfig(hmu_compat=True))
    np.testing.assert_array_equal(b, b_before)
    assert w_new.dtype == np.float32 and w_new.shape == w.shape
    w_new64 = edit_linear(w32.astype(np.float64), b, erase, guide, preserve,
                          UCEConfig(hmu_compat=True))
    np.testing.assert_allclose(w_new, w_new64, rtol=1e-6, atol=1e-6)
    # Empty preserve set is allowed.
    assert edit_linear(w, b, erase, guide, np.zeros((0, 32)), UCEConfig()).shape == w.shape


def test_hmu_compat_double_counts_the_bias():
    # HMU defaults (λ 0.1, s_e 0.1, s_p 0.5, tensor) and text-like embeddings (norm ≈ 10),
    # so the data terms dominate λ as with real CLIP features (baselines.md §2.4).
    w, b, erase, guide, preserve = _problem(6, out=24, inp=64, n_p=21, scale=1.25)
    b_norm = np.linalg.norm(b)
    shift = {}
    for compat in (False, True):
        w_new = edit_linear(w, b, erase, guide, preserve, UCEConfig(hmu_compat=compat))
        shift[compat] = preserve @ (w_new - w).T  # change of cond_emb(c_j), (n_p, out)
    assert np.linalg.norm(shift[False], axis=1).mean() / b_norm < 0.01
    # The official form moves every preserved output by ≈ +b, i.e. to W c_j + 2b.
    compat_drift = np.linalg.norm(shift[True], axis=1).mean() / b_norm
    assert 0.95 < compat_drift < 1.05, compat_drift
    assert np.linalg.norm(shift[True] - b, axis=1).mean() / b_norm < 0.05


def _official_hmu_edit(w, b, erase, guide, preserve, cfg):
    """The official per-concept accumulation (HMU ``edit_model_adversarial``), restated."""
    layer = torch.nn.Linear(w.shape[1], w.shape[0]).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
        layer.bias.copy_(torch.from_numpy(b))
        mat1 = cfg.lamb * layer.weight.clone()
        mat2 = cfg.lamb * torch.eye(w.shape[1], dtype=torch.float64)
        for c, g in zip(torch.from_numpy(erase), torch.from_numpy(guide), strict=True):
            value = layer(g)
            if cfg.technique == "tensor":
                u = layer(c) / layer(c).norm()
                value = value - (u * value).sum() * u
            mat1 += cfg.erase_scale * torch.outer(value, c)
            mat2 += cfg.erase_scale * torch.outer(c, c)
        for c in torch.from_numpy(preserve):
            mat1 += cfg.preserve_scale * torch.outer(layer(c), c)
            mat2 += cfg.preserve_scale * torch.outer(c, c)
        return (mat1 @ torch.inverse(mat2)).numpy()


@pytest.mark.parametrize("technique", ["replace", "tensor"])
def test_hmu_compat_reproduces_the_official_loop(technique):
    w, b, erase, guide, preserve = _problem(7, n_p=21)
    cfg = UCEConfig(technique=technique, hmu_compat=True)
    np.testing.assert_allclose(edit_linear(w, b, erase, guide, preserve, cfg),
                               _official_hmu_edit(w, b, erase, guide, preserve, cfg), atol=1e-9)
    # ... and the default differs from it exactly by the bias in the targets.
    cfg_ok = dataclasses.replace(cfg, hmu_compat=False)
    np.testing.assert_allclose(edit_linear(w, b, erase, guide, preserve, cfg_ok),
                               _official_hmu_edit(w, 0 * b, erase, guide, preserve, cfg),
                               atol=1e-9)


def test_solve_edit_with_zero_scales_returns_the_anchor():
    w, _b, erase, guide, preserve = _problem(8)
    got = solve_edit(w, erase, guide @ w.T, preserve, preserve @ w.T, 0.5, 0.0, 0.0)
    np.testing.assert_allclose(got, w, atol=1e-12)


def test_defaults_and_record():
    cfg = UCEConfig()
    assert cfg.to_dict() == {"lamb": 0.1, "erase_scale": 0.1, "preserve_scale": 0.5,
                             "technique": "tensor", "guide": "", "hmu_compat": False}
    assert not cfg.null_guide
    assert len(HMU_PRESERVE_WORDS) == 21 and len(set(HMU_PRESERVE_WORDS)) == 21
    assert HMU_PRESERVE_WORDS[:2] == ("walk", "walking") and HMU_PRESERVE_WORDS[-1] == "moves"


@pytest.mark.parametrize("kwargs", [
    {"lamb": -0.1}, {"erase_scale": float("nan")}, {"preserve_scale": float("inf")},
    {"technique": "erase"}, {"lamb": True}, {"lamb": "0.1"}, {"hmu_compat": 1}, {"guide": None},
])
def test_bad_config_raises(kwargs):
    with pytest.raises(ConfigError):
        UCEConfig(**kwargs)


def test_bad_inputs_raise():
    w, b, erase, guide, preserve = _problem(9)
    cfg = UCEConfig()
    with pytest.raises(ConfigError, match="one embedding per erase"):
        edit_linear(w, b, erase, guide[:2], preserve, cfg)
    with pytest.raises(ConfigError, match="width"):
        edit_linear(w, b, erase[:, :10], guide[:, :10], preserve, cfg)
    with pytest.raises(ConfigError, match="no rows"):
        edit_linear(w, b, erase[:0], guide[:0], preserve, cfg)
    with pytest.raises(ConfigError, match="bias"):
        edit_linear(w, b[:3], erase, guide, preserve, cfg)
    with pytest.raises(ConfigError):
        closed_form(w, erase, guide, preserve, -1.0, 0.1, 0.1)
    with pytest.raises(ConfigError, match="singular"):  # λ = 0 and 8 rows < 32 dims
        edit_linear(w, b, erase, guide, preserve, UCEConfig(lamb=0.0))
    bad = erase.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError):
        edit_linear(w, b, bad, guide, preserve, cfg)
    with pytest.raises(ConfigError, match="technique"):
        uce_targets(w, erase, guide, "erase")
    with pytest.raises(ConfigError, match="null"):
        edit_linear(w, b, erase, guide, preserve, UCEConfig(guide="null"))
    with pytest.raises(ConfigError, match="UCEConfig"):
        edit_linear(w, b, erase, guide, preserve, {"lamb": 0.1})

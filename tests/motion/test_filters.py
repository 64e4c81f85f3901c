"""gaussian_filter1d equals scipy.ndimage.gaussian_filter1d(mode='nearest') (scipy optional)."""

from __future__ import annotations

import numpy as np
import pytest

from hmu_core.motion.filters import gaussian_filter1d, gaussian_kernel1d


def _direct(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The definition, written out: sum_k w_k x[clip(i + k)], w ~ exp(-k^2 / 2 sigma^2)."""
    radius = int(truncate * sigma + 0.5)
    ks = np.arange(-radius, radius + 1)
    w = np.exp(-(ks**2) / (2.0 * sigma**2))
    w /= w.sum()
    n = len(x)
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(n):
        for k, wk in zip(ks, w, strict=True):
            out[i] += wk * x[min(max(i + k, 0), n - 1)]
    return out


CASES = [(1, 1.0), (2, 20.0), (5, 0.5), (37, 3.3), (120, 20.0), (300, 7.0)]


@pytest.mark.parametrize(("n", "sigma"), CASES)
def test_matches_direct_formula(n, sigma):
    x = np.random.default_rng(n).normal(size=(n, 3))
    np.testing.assert_allclose(gaussian_filter1d(x, sigma, axis=0), _direct(x, sigma), atol=1e-12)


@pytest.mark.parametrize(("n", "sigma"), CASES)
def test_matches_scipy_when_available(n, sigma):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = np.random.default_rng(n).normal(size=(n, 3))
    ref = ndimage.gaussian_filter1d(x, sigma, axis=0, mode="nearest")
    np.testing.assert_allclose(gaussian_filter1d(x, sigma, axis=0), ref, atol=1e-12)


def test_axis_dtype_and_kernel():
    x = np.random.default_rng(0).normal(size=(4, 50, 3)).astype(np.float32)
    out = gaussian_filter1d(x, 2.5, axis=1)
    assert out.dtype == np.float32 and out.shape == x.shape
    moved = gaussian_filter1d(np.moveaxis(x, 1, 0), 2.5, axis=0)
    np.testing.assert_allclose(np.moveaxis(moved, 0, 1), out, atol=1e-7)
    w = gaussian_kernel1d(20.0, int(4 * 20.0 + 0.5))
    assert w.shape == (161,)
    np.testing.assert_allclose(w.sum(), 1.0)
    np.testing.assert_allclose(w, w[::-1])
    # A constant signal stays constant ('nearest' padding, normalised kernel).
    np.testing.assert_allclose(gaussian_filter1d(np.full((7, 2), 3.0), 20.0), 3.0)


def test_rejects_bad_sigma():
    with pytest.raises(ValueError, match="sigma"):
        gaussian_filter1d(np.zeros(5), 0.0)

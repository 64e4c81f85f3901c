"""Shared checks for the model conformance tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

EPS32 = float(np.finfo(np.float32).eps)
PE_KEY = "position_enc.pe"


def sinusoid_tolerance(d_model: int, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The float64 sinusoid table ``(max_len, d_model)`` and a per-entry bound on the error of
    any correct float32 computation of it.

    Entry ``(p, 2i)`` is ``sin(p * d_i)`` with ``d_i = exp(-2i ln(10000) / d_model)``. In float32
    ``d_i`` carries a relative error of about ``|ln d_i| eps`` from the rounded exponent argument
    plus exp's own error, a few ulps that differ between CPU vector libraries (the bound allows
    8, measured: 3 ulps still pass), and the product ``p * d_i`` multiplies it by ``p``: near
    position 5000 one float32 ulp of the argument is already ~5e-4. So the bound grows with the
    argument; a fixed ``atol`` passes only on the CPU that wrote the fixture. A wrong table
    (formula, sin/cos swapped, another base) is off by O(0.1-1), far outside the bound.
    """
    position = np.arange(max_len, dtype=np.float64)[:, None]
    div = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-np.log(10000.0) / d_model))
    argument = position * div
    table = np.zeros((max_len, d_model))
    table[:, 0::2], table[:, 1::2] = np.sin(argument), np.cos(argument)
    bound = argument * (np.abs(np.log(div)) + 8.0) * EPS32 + 2.0 * EPS32
    tolerance = np.zeros_like(table)
    tolerance[:, 0::2] = tolerance[:, 1::2] = bound
    return table, tolerance


def check_positional_table(pe: torch.Tensor) -> None:
    """``pe`` ``(max_len, 1, d)`` is the sinusoid table within float32's error for its argument."""
    values = pe.detach().double().numpy()[:, 0, :]
    table, tolerance = sinusoid_tolerance(values.shape[1], values.shape[0])
    excess = np.abs(values - table) - tolerance
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert excess.max() <= 0, (f"pe{worst} = {values[worst]} vs {table[worst]}, beyond the "
                               f"float32 bound {tolerance[worst]:.2e}")


def assert_official_init(state: dict[str, torch.Tensor], arrays: dict[str, torch.Tensor]) -> None:
    """Our seeded init equals the fixture's: learned tensors to 1e-6 (they come from the seeded
    RNG, a few float32 ulps of ~0.1-sized values), the positional table separately within the
    float32 bound of its argument (see :func:`sinusoid_tolerance`), ours and the fixture's alike.
    """
    for key, value in state.items():
        want = arrays[f"sd/{key}"]
        if key.endswith(PE_KEY):
            assert value.shape == want.shape
            check_positional_table(value)
            check_positional_table(want)
        else:
            torch.testing.assert_close(value, want, atol=1e-6, rtol=0)


@pytest.fixture
def official_init_check():
    """:func:`assert_official_init`, for tests that rebuild the official seeded init."""
    return assert_official_init

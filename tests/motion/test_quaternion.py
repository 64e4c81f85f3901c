"""Quaternion helpers: conversions agree with each other and with rotation matrices."""

from __future__ import annotations

import numpy as np

from hmu_core.motion.quaternion import (
    cont6d_to_matrix,
    cross,
    from_axis_angle,
    from_matrix,
    identity,
    make_continuous,
    matrix_to_cont6d,
    normalize,
    qbetween,
    qinv,
    qmul,
    qrot,
    to_axis_angle,
    to_matrix,
)


def _random_quats(n: int, seed: int = 0) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    q = normalize(q)
    return np.where(q[:, :1] < 0, -q, q)


def test_cross_is_numpys_bit_for_bit():
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        a = rng.normal(size=(50, 7, 3)).astype(dtype)
        b = rng.normal(size=(7, 3)).astype(dtype)  # broadcast, as the feature code uses it
        for x, y in ((a, b), (b, a), (a[:, 0], np.array([0.0, 1.0, 0.0]))):
            got, want = cross(x, y), np.cross(x, y)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


def test_matrix_round_trip_and_rotation_agree():
    q = _random_quats(500)
    m = to_matrix(q)
    np.testing.assert_allclose(from_matrix(m), q, atol=1e-10)
    v = np.random.default_rng(1).normal(size=(500, 3))
    np.testing.assert_allclose(qrot(q, v), np.einsum("nij,nj->ni", m, v), atol=1e-10)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-10)


def test_from_matrix_near_180_degrees():
    # Rotations by pi about each axis make w = 0: the branch on the largest component matters.
    for axis in np.eye(3):
        q = from_axis_angle(axis * np.pi)
        np.testing.assert_allclose(np.abs(from_matrix(to_matrix(q))), np.abs(q), atol=1e-10)


def test_product_inverse_and_composition():
    a, b = _random_quats(200, 2), _random_quats(200, 3)
    v = np.random.default_rng(4).normal(size=(200, 3))
    np.testing.assert_allclose(qrot(qmul(a, b), v), qrot(a, qrot(b, v)), atol=1e-10)
    np.testing.assert_allclose(qmul(a, qinv(a)), identity((200,)), atol=1e-12)


def test_axis_angle_round_trip_including_zero():
    aa = np.random.default_rng(5).normal(size=(300, 3))
    aa[0] = 0.0
    aa /= np.maximum(1.0, np.linalg.norm(aa, axis=1, keepdims=True) / 3.0)  # angles <= 3 rad
    np.testing.assert_allclose(to_axis_angle(from_axis_angle(aa)), aa, atol=1e-9)


def test_qbetween_maps_a_to_b_with_nonnegative_w():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(300, 3)), rng.normal(size=(300, 3))
    q = qbetween(a, b)
    assert np.all(q[:, 0] >= 0)
    np.testing.assert_allclose(qrot(q, normalize(a)), normalize(b), atol=1e-10)


def test_cont6d_round_trip():
    m = to_matrix(_random_quats(100, 7))
    np.testing.assert_allclose(cont6d_to_matrix(matrix_to_cont6d(m)), m, atol=1e-10)


def test_make_continuous_removes_sign_flips():
    q = _random_quats(1, 8)[0] * np.ones((10, 1))
    q[3::2] *= -1
    fixed = make_continuous(q)
    assert np.all(np.sum(fixed[1:] * fixed[:-1], axis=-1) > 0)

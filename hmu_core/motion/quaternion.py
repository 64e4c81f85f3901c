"""Quaternion and rotation helpers in numpy (w, x, y, z order, Hamilton product).

Everything broadcasts over leading dimensions and computes in float64 unless the caller passes
float32; conventions follow the official HumanML3D ``common/quaternion.py`` (see
``shared/reference/humanml3d.md`` §4) so that the feature code reads like the official steps.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def normalize(v: np.ndarray, axis: int = -1) -> np.ndarray:
    """Scale vectors to unit length along ``axis`` (zero vectors stay zero)."""
    norm = np.linalg.norm(v, axis=axis, keepdims=True)
    return v / np.maximum(norm, _EPS)


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` of (..., 3) vectors, bit for bit (the same products and differences in the
    same order) without its per-call overhead, which dominated the feature pipeline's time."""
    a, b = np.asarray(a), np.asarray(b)
    dtype = np.promote_types(a.dtype, b.dtype)  # as np.cross, not value-based casting
    a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def qmul(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product q ⊗ r of (..., 4) quaternions."""
    w1, x1, y1, z1 = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    w2, x2, y2, z2 = r[..., 0], r[..., 1], r[..., 2], r[..., 3]
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def qinv(q: np.ndarray) -> np.ndarray:
    """Conjugate, which is the inverse of a unit quaternion."""
    return q * np.array([1.0, -1.0, -1.0, -1.0], dtype=q.dtype)


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate (..., 3) vectors ``v`` by (..., 4) unit quaternions ``q``."""
    w = q[..., :1]
    u = q[..., 1:]
    uv = cross(u, v)
    return v + 2.0 * (w * uv + cross(u, uv))


def qbetween(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shortest-arc rotation taking direction ``a`` to direction ``b``; always has w >= 0.

    Same formula as the official ``qbetween``: normalize([|a||b| + a·b, a × b]). Undefined for
    exactly opposite vectors (returns a zero-norm quaternion normalised to zero there).
    """
    w = np.linalg.norm(a, axis=-1, keepdims=True) * np.linalg.norm(b, axis=-1, keepdims=True)
    w = w + np.sum(a * b, axis=-1, keepdims=True)
    return normalize(np.concatenate([w, cross(a, b)], axis=-1))


def identity(shape: tuple[int, ...] = (), dtype: type = np.float64) -> np.ndarray:
    """Identity quaternions of the given leading shape."""
    q = np.zeros((*shape, 4), dtype=dtype)
    q[..., 0] = 1.0
    return q


def to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions to (..., 3, 3) rotation matrices."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def from_matrix(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices to (..., 4) unit quaternions with w >= 0.

    Uses the numerically stable branch on the largest of the four squared components.
    """
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    squares = np.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22],
        axis=-1,
    )
    # Four candidate quaternions, each exact when its own component is the largest.
    candidates = np.stack(
        [
            np.stack([squares[..., 0], m[..., 2, 1] - m[..., 1, 2],
                      m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            np.stack([m[..., 2, 1] - m[..., 1, 2], squares[..., 1],
                      m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]], -1),
            np.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1],
                      squares[..., 2], m[..., 2, 1] + m[..., 1, 2]], -1),
            np.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                      m[..., 2, 1] + m[..., 1, 2], squares[..., 3]], -1),
        ],
        axis=-2,
    )  # fmt: skip
    best = np.argmax(squares, axis=-1)
    q = np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]
    q = normalize(q)
    return np.where(q[..., :1] < 0, -q, q)


def from_axis_angle(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle vectors (radians) to (..., 4) unit quaternions."""
    angle = np.linalg.norm(axis_angle, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(half)/angle -> 1/2 as angle -> 0.
    scale = np.where(angle > 1e-8, np.sin(half) / np.maximum(angle, 1e-8), 0.5 - angle**2 / 48.0)
    return np.concatenate([np.cos(half), axis_angle * scale], axis=-1)


def to_axis_angle(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions to (..., 3) axis-angle vectors with angle in [0, pi]."""
    q = np.where(q[..., :1] < 0, -q, q)
    sin_half = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, q[..., :1])
    scale = np.where(sin_half > 1e-8, angle / np.maximum(sin_half, 1e-8), 2.0)
    return q[..., 1:] * scale


def from_axis_angle_about(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation by ``angle`` (...,) radians about the unit ``axis`` (3,) or (..., 3)."""
    angle = np.asarray(angle, dtype=np.float64)[..., None]
    return from_axis_angle(np.asarray(axis, dtype=np.float64) * angle)


def make_continuous(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` (time) so consecutive quaternions lie in the same hemisphere."""
    q = np.moveaxis(np.array(q, copy=True), axis, 0)
    for t in range(1, q.shape[0]):
        flip = np.sum(q[t] * q[t - 1], axis=-1, keepdims=True) < 0
        q[t] = np.where(flip, -q[t], q[t])
    return np.moveaxis(q, 0, axis)


def cont6d_to_matrix(cont6d: np.ndarray) -> np.ndarray:
    """(..., 6) continuous-6D (first two columns, official layout) to (..., 3, 3) matrices.

    Gram-Schmidt as the official ``cont6d_to_matrix``: x = n(a1), z = n(x × a2), y = z × x.
    """
    x = normalize(cont6d[..., 0:3])
    z = normalize(cross(x, cont6d[..., 3:6]))
    y = cross(z, x)
    return np.stack([x, y, z], axis=-1)


def matrix_to_cont6d(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) matrices to (..., 6): the first two columns [m00, m10, m20, m01, m11, m21]."""
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)

"""1-D smoothing filters in numpy (scipy is not a dependency).

The official HumanML3D ``Skeleton.inverse_kinematics_np`` smooths the IK forward direction with
``scipy.ndimage.gaussian_filter1d(forward, 20, axis=0, mode='nearest')``
(``shared/reference/humanml3d.md`` §4 step 6); ``gaussian_filter1d`` here is equal to it.
"""

from __future__ import annotations

import numpy as np


def gaussian_kernel1d(sigma: float, radius: int) -> np.ndarray:
    """Normalised Gaussian weights at offsets -radius..radius, as scipy's ``_gaussian_kernel1d``.

    Args:
        sigma: standard deviation in samples, > 0.
        radius: half-width of the kernel in samples, >= 0.

    Returns:
        (2 * radius + 1,) float64 weights that sum to 1.
    """
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma * sigma) * x * x)
    return phi / phi.sum()


def gaussian_filter1d(
    x: np.ndarray, sigma: float, axis: int = 0, truncate: float = 4.0
) -> np.ndarray:
    """Gaussian smoothing along one axis with edge padding (scipy ``mode='nearest'``).

    Equal to ``scipy.ndimage.gaussian_filter1d(x, sigma, axis=axis, mode='nearest',
    truncate=truncate)`` for order 0: the kernel radius is ``int(truncate * sigma + 0.5)`` and
    samples beyond either end repeat the edge sample, however far the kernel reaches.

    Args:
        x: array of any shape; integer input is filtered in float64.
        sigma: standard deviation in samples, > 0.
        axis: the axis to filter along.
        truncate: kernel half-width in standard deviations.

    Returns:
        Array of ``x``'s shape, in ``x``'s dtype when that is floating point, else float64.

    Raises:
        ValueError: if sigma is not positive or ``x`` is empty along ``axis``.
    """
    if not sigma > 0:
        raise ValueError(f"gaussian_filter1d needs sigma > 0, got {sigma}")
    x = np.asarray(x)
    out_dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    moved = np.moveaxis(x.astype(np.float64, copy=False), axis, 0)
    n = moved.shape[0]
    if n == 0:
        raise ValueError("gaussian_filter1d needs at least one sample along the axis")
    radius = int(truncate * float(sigma) + 0.5)
    weights = gaussian_kernel1d(float(sigma), radius)
    # mode='nearest': pad with edge copies; radius may exceed n, np.pad('edge') handles that.
    padded = np.pad(moved, [(radius, radius)] + [(0, 0)] * (moved.ndim - 1), mode="edge")
    out = np.zeros(moved.shape, dtype=np.float64)
    for k, w in enumerate(weights):
        out += w * padded[k : k + n]
    return np.moveaxis(out, 0, axis).astype(out_dtype, copy=False)

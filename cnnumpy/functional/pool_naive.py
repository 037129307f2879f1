"""Loop references for the pooling kernels in ``pool.py``: one window at a time.

They share the fast kernels' contracts (signatures, shapes, validation, tie rule) but none of
their machinery: each output pixel ``(i, j)`` finds its window by the formula below, clipped to
the real input, and works on it for all ``N`` and ``C`` at once.

Window ``(i, j)`` covers rows ``i*SH - PH <= h < i*SH - PH + KH`` and columns
``j*SW - PW <= w < j*SW - PW + KW`` of the input; rows and columns outside ``[0, H)`` and
``[0, W)`` are padding (``-inf`` for max pooling, 0 for average pooling).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from ._checks import check_array, check_same_dtype, check_shape
from .pool import GlobalAvgPoolCache, PoolGeometry, pool_geometry


class NaivePoolCache(NamedTuple):
    geometry: PoolGeometry
    x: np.ndarray
    count_include_pad: bool = True


def _windows(g: PoolGeometry) -> Iterator[tuple[int, int, slice, slice, int]]:
    """Yield ``(i, j, rows, cols, padded_size)``: the window's slices of the real input and the
    number of its elements inside the padded input (a ceil_mode window can run past it)."""
    (h, w), (kh, kw), (sh, sw), (ph, pw) = g.x_shape[2:], g.kernel, g.stride, g.padding
    for i in range(g.out_hw[0]):
        for j in range(g.out_hw[1]):
            h0, w0 = i * sh - ph, j * sw - pw
            h1, w1 = min(h0 + kh, h + ph), min(w0 + kw, w + pw)
            rows = slice(max(h0, 0), min(h1, h))
            cols = slice(max(w0, 0), min(w1, w))
            yield i, j, rows, cols, (h1 - h0) * (w1 - w0)


def _first_argmax(window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column, within ``window: (N, C, kh, kw)``, of each first maximum (row-major)."""
    n, c, kh, kw = window.shape
    flat = window.reshape(n, c, kh * kw).argmax(axis=2)  # argmax keeps the first
    return np.divmod(flat, window.shape[3])


def max_pool2d_forward_naive(
    x: np.ndarray,
    *,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    ceil_mode: bool = False,
) -> tuple[np.ndarray, NaivePoolCache]:
    """``out[n, c, i, j] = max of x[n, c]`` over the real elements of window ``(i, j)``.

    Every window holds at least one real element (``padding <= kernel_size // 2`` and the
    ``ceil_mode`` rule), so the ``-inf`` padding never changes the maximum.
    """
    g = pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    out = np.empty((*g.x_shape[:2], *g.out_hw), dtype=x.dtype)
    for i, j, rows, cols, _ in _windows(g):
        out[:, :, i, j] = x[:, :, rows, cols].max(axis=(2, 3))
    return out, NaivePoolCache(g, x)


def max_pool2d_backward_naive(dout: np.ndarray, cache: NaivePoolCache) -> np.ndarray:
    """``dx[n, c, h*, w*] += dout[n, c, i, j]`` where ``(h*, w*)`` is window ``(i, j)``'s first
    maximum in row-major order; every other element of the window gets nothing from it."""
    g, x = cache.geometry, cache.x
    check_shape(dout, (*g.x_shape[:2], *g.out_hw), "dout")
    dx = np.zeros_like(x, dtype=dout.dtype)
    n_idx, c_idx = np.indices(g.x_shape[:2])
    for i, j, rows, cols, _ in _windows(g):
        dh, dw = _first_argmax(x[:, :, rows, cols])
        # (n, c) pairs are distinct, so the fancy-indexed += never meets a repeated index.
        dx[n_idx, c_idx, rows.start + dh, cols.start + dw] += dout[:, :, i, j]
    return dx


def avg_pool2d_forward_naive(
    x: np.ndarray,
    *,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> tuple[np.ndarray, NaivePoolCache]:
    """``out[n, c, i, j] = (sum of x[n, c] over the real elements of the window) / d`` with
    ``d`` the window's size inside the padded input (``count_include_pad``) or its number of
    real elements (otherwise); zero padding adds nothing to the sum."""
    g = pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    out = np.empty((*g.x_shape[:2], *g.out_hw), dtype=x.dtype)
    for i, j, rows, cols, padded_size in _windows(g):
        window = x[:, :, rows, cols]
        divisor = padded_size if count_include_pad else window.shape[2] * window.shape[3]
        out[:, :, i, j] = window.sum(axis=(2, 3)) / divisor
    return out, NaivePoolCache(g, x, count_include_pad)


def avg_pool2d_backward_naive(dout: np.ndarray, cache: NaivePoolCache) -> np.ndarray:
    """Every real element of window ``(i, j)`` gets ``dout[n, c, i, j] / d``."""
    g = cache.geometry
    check_shape(dout, (*g.x_shape[:2], *g.out_hw), "dout")
    dx = np.zeros(g.x_shape, dtype=dout.dtype)
    for i, j, rows, cols, padded_size in _windows(g):
        real = (rows.stop - rows.start) * (cols.stop - cols.start)
        divisor = padded_size if cache.count_include_pad else real
        dx[:, :, rows, cols] += (dout[:, :, i, j] / divisor)[:, :, None, None]
    return dx


def global_avg_pool2d_forward_naive(x: np.ndarray) -> tuple[np.ndarray, GlobalAvgPoolCache]:
    """``out[n, c, 0, 0] = (1 / (H W)) sum_{h, w} x[n, c, h, w]``, accumulated pixel by pixel."""
    check_array(x, "x", ndim=4)
    n, c, h, w = x.shape
    if h < 1 or w < 1:
        raise ValueError(f"x must have a non-empty (H, W), got shape {x.shape}")
    total = np.zeros((n, c), dtype=x.dtype)
    for r in range(h):
        for s in range(w):
            total += x[:, :, r, s]
    return (total / (h * w))[:, :, None, None], GlobalAvgPoolCache(x.shape)


def global_avg_pool2d_backward_naive(dout: np.ndarray, cache: GlobalAvgPoolCache) -> np.ndarray:
    """Every pixel gets ``dout[n, c, 0, 0] / (H W)``."""
    x_shape = cache.x_shape
    n, c, h, w = x_shape
    check_shape(dout, (n, c, 1, 1), "dout")
    dx = np.empty(x_shape, dtype=dout.dtype)
    for r in range(h):
        for s in range(w):
            dx[:, :, r, s] = dout[:, :, 0, 0] / (h * w)
    return dx


class NaiveSubsamplingCache(NamedTuple):
    geometry: PoolGeometry
    x: np.ndarray
    weight: np.ndarray
    has_bias: bool


def subsampling_forward_naive(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    kernel_size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
) -> tuple[np.ndarray, NaiveSubsamplingCache]:
    """``out[n, c, i, j] = weight[c] * (sum of window (i, j) of x[n, c]) + bias[c]``."""
    g = pool_geometry(x, kernel_size, stride, 0, False)
    check_array(weight, "weight", ndim=1)
    check_same_dtype(x, weight, "weight")
    check_shape(weight, (x.shape[1],), "weight")
    if bias is not None:
        check_array(bias, "bias", ndim=1)
        check_same_dtype(x, bias, "bias")
        check_shape(bias, (x.shape[1],), "bias")
    out = np.empty((*g.x_shape[:2], *g.out_hw), dtype=x.dtype)
    for i, j, rows, cols, _ in _windows(g):
        out[:, :, i, j] = weight * x[:, :, rows, cols].sum(axis=(2, 3))
        if bias is not None:
            out[:, :, i, j] += bias
    return out, NaiveSubsamplingCache(g, x, weight, bias is not None)


def subsampling_backward_naive(
    dout: np.ndarray, cache: NaiveSubsamplingCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per window: ``dweight[c] += dout * S``, ``dbias[c] += dout``, and each of its elements
    ``dx += weight[c] * dout``."""
    g, x, weight = cache.geometry, cache.x, cache.weight
    check_shape(dout, (*g.x_shape[:2], *g.out_hw), "dout")
    dx = np.zeros_like(x, dtype=dout.dtype)
    dweight = np.zeros_like(weight, dtype=dout.dtype)
    dbias = np.zeros_like(weight, dtype=dout.dtype)
    for i, j, rows, cols, _ in _windows(g):
        g_ij = dout[:, :, i, j]  # (N, C)
        dweight += (g_ij * x[:, :, rows, cols].sum(axis=(2, 3))).sum(axis=0)
        dbias += g_ij.sum(axis=0)
        dx[:, :, rows, cols] += (g_ij * weight)[:, :, None, None]
    return dx, dweight, dbias if cache.has_bias else None

"""Pooling: max, average, global average, and LeNet-5's trainable subsampling.

Max pooling's kernel lives in ``_maxpool.py``: the same views, over cache-sized chunks of
planes, with a small-integer argmax recorded in the forward for the backward.

The other kernels loop in Python over the ``KH * KW`` kernel positions only. For position
``(p, q)`` the strided view ``xp[:, :, p::SH, q::SW]`` (cut to ``(OH, OW)``) holds, for every
window at once, the input element that sits at offset ``(p, q)`` inside the window; forward
reduces those views, backward writes gradients back through the same views.

Padding and ``ceil_mode`` are handled by one padded buffer (``_pool_windows.py``, which also
gives the output size ``OH``, ``OW``). Max pooling fills its margin with ``-inf`` (never the
maximum, as every window holds at least one real element), average pooling with 0.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import check_array, check_same_dtype, check_shape
from ._maxpool import max_pool_backward_planes, max_pool_forward_planes
from ._pool_windows import PoolGeometry, buffer_shape, pool_geometry, window_views


def _padded(x: np.ndarray, g: PoolGeometry, fill: float) -> np.ndarray:
    """``x`` placed in a buffer filled with ``fill``; ``x`` itself when no margin is needed."""
    shape = buffer_shape(g)
    if shape == x.shape and g.padding == (0, 0):
        return x
    (ph, pw), (h, w) = g.padding, g.x_shape[2:]
    buf = np.full(shape, fill, dtype=x.dtype)
    buf[:, :, ph : ph + h, pw : pw + w] = x
    return buf


def _window_sum(buf: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """``(N, C, OH, OW)`` sums of each window of the padded buffer."""
    views = iter(window_views(buf, g))
    total = next(views).copy()
    for view in views:
        total += view
    return total


def _scatter_to_input(grad: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """Return the ``(N, C, H, W)`` input gradient when every element of window ``(i, j)``
    receives ``grad[n, c, i, j]`` (``grad: (N, C, OH, OW)``); overlapping windows add."""
    shape = buffer_shape(g)
    (kh, kw), (sh, sw) = g.kernel, g.stride
    overlapping = sh < kh or sw < kw
    # Windows that tile the buffer exactly write every element once: no zeroing needed.
    tiles = (sh, sw) == (kh, kw) and shape[2:] == (g.out_hw[0] * sh, g.out_hw[1] * sw)
    buf = np.empty(shape, dtype=grad.dtype) if tiles else np.zeros(shape, dtype=grad.dtype)
    for view in window_views(buf, g):
        if overlapping:
            view += grad
        else:  # each element is written once: a plain copy
            np.copyto(view, grad)
    (ph, pw), (h, w) = g.padding, g.x_shape[2:]
    if shape == g.x_shape and g.padding == (0, 0):
        return buf
    return np.ascontiguousarray(buf[:, :, ph : ph + h, pw : pw + w])


class MaxPoolCache(NamedTuple):
    geometry: PoolGeometry
    argmax: np.ndarray  # (N*C, OH, OW) uint8/uint16: row-major kernel position of each maximum


def max_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    ceil_mode: bool = False,
) -> tuple[np.ndarray, MaxPoolCache]:
    """``out[n, c, i, j] = max over (p, q) of xp[n, c, i*SH + p, j*SW + q]``.

    ``xp`` is ``x`` padded with ``-inf``. Shapes: ``x: (N, C, H, W)``, ``out: (N, C, OH, OW)``
    with ``OH`` as in the module docstring (``stride`` defaults to ``kernel_size``;
    ``padding <= kernel_size // 2``). NaN propagates to the output, as in PyTorch. The cache
    keeps only where each maximum came from (its row-major kernel position, as a uint8 for
    kernels of up to 256 positions), not the input.
    """
    g = pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    n, c, h, w = g.x_shape
    out, argmax = max_pool_forward_planes(x.reshape(n * c, h, w), g, buffer_shape(g)[2:])
    return out.reshape(n, c, *g.out_hw), MaxPoolCache(g, argmax)


def max_pool2d_backward(dout: np.ndarray, cache: MaxPoolCache) -> np.ndarray:
    """Route each window's gradient to its maximum.

    ``out[n, c, i, j] = xp[n, c, i*SH + p*, j*SW + q*]`` for the winning position ``(p*, q*)``,
    so ``dx`` at that element receives ``dout[n, c, i, j]`` and the rest of the window nothing;
    an element that wins several overlapping windows sums their gradients. When the maximum is
    tied, the first position in row-major order wins, as in PyTorch (``dx`` is unspecified for
    a window holding NaN). Returns ``dx: (N, C, H, W)``.
    """
    g = cache.geometry
    n, c, h, w = g.x_shape
    check_shape(dout, (n, c, *g.out_hw), "dout")
    planes = dout.reshape(n * c, *g.out_hw)
    return max_pool_backward_planes(planes, cache.argmax, g, buffer_shape(g)[2:]).reshape(g.x_shape)


class AvgPoolCache(NamedTuple):
    geometry: PoolGeometry
    divisor: np.ndarray  # (OH, OW): how many elements each window's sum is divided by


def _window_counts(size: int, k: int, s: int, p: int, out: int, include_pad: bool) -> np.ndarray:
    """Per output index along one axis, the number of elements PyTorch divides by."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)  # a ceil_mode window is cut at the right padding
    if not include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, size)
    return end - start


def avg_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> tuple[np.ndarray, AvgPoolCache]:
    """``out[n, c, i, j] = (sum of the window over xp) / divisor[i, j]``, ``xp`` zero-padded.

    Shapes: ``x: (N, C, H, W)``, ``out: (N, C, OH, OW)`` (``OH`` as in the module docstring).
    The divisor, as in PyTorch: with ``count_include_pad`` the window cut to the padded input
    (``KH * KW`` unless ``ceil_mode`` lets a window run past it), otherwise the number of real
    input elements in the window.
    """
    g = pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    (h, w), (oh, ow) = g.x_shape[2:], g.out_hw
    rows = _window_counts(h, g.kernel[0], g.stride[0], g.padding[0], oh, count_include_pad)
    cols = _window_counts(w, g.kernel[1], g.stride[1], g.padding[1], ow, count_include_pad)
    divisor = np.outer(rows, cols).astype(x.dtype)
    out = _window_sum(_padded(x, g, 0.0), g)
    out /= divisor
    return out, AvgPoolCache(g, divisor)


def avg_pool2d_backward(dout: np.ndarray, cache: AvgPoolCache) -> np.ndarray:
    """Each element of window ``(i, j)`` gets ``dout[n, c, i, j] / divisor[i, j]``.

    ``out`` is linear in every element of its window with coefficient ``1 / divisor``; padding
    receives gradient too but is cut away, and overlapping windows add. Returns
    ``dx: (N, C, H, W)``.
    """
    g = cache.geometry
    check_shape(dout, (*g.x_shape[:2], *g.out_hw), "dout")
    share = dout / cache.divisor
    return _scatter_to_input(share, g)


class GlobalAvgPoolCache(NamedTuple):
    x_shape: tuple[int, int, int, int]


def global_avg_pool2d_forward(x: np.ndarray) -> tuple[np.ndarray, GlobalAvgPoolCache]:
    """``out[n, c, 0, 0] = mean over (h, w) of x[n, c, h, w]``, like ``adaptive_avg_pool2d(x, 1)``.

    Shapes: ``x: (N, C, H, W)``, ``out: (N, C, 1, 1)``.
    """
    check_array(x, "x", ndim=4)
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"x must have a non-empty (H, W), got shape {x.shape}")
    return x.mean(axis=(2, 3), keepdims=True), GlobalAvgPoolCache(x.shape)


def global_avg_pool2d_backward(dout: np.ndarray, cache: GlobalAvgPoolCache) -> np.ndarray:
    """``d out / d x[n, c, h, w] = 1 / (H * W)``, so ``dx = dout / (H * W)`` broadcast over
    ``(H, W)``. Returns ``dx: (N, C, H, W)``."""
    n, c, h, w = cache.x_shape
    check_shape(dout, (n, c, 1, 1), "dout")
    return np.broadcast_to(dout / (h * w), cache.x_shape).copy()


class SubsamplingCache(NamedTuple):
    geometry: PoolGeometry
    window_sum: np.ndarray  # (N, C, OH, OW), what the weight multiplies
    weight: np.ndarray
    has_bias: bool


def subsampling_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    kernel_size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
) -> tuple[np.ndarray, SubsamplingCache]:
    """LeNet-5's S2/S4 layer: ``out[n, c, i, j] = weight[c] * S[n, c, i, j] + bias[c]`` with
    ``S`` the sum of the window (LeCun et al. 1998; the sigmoid that followed is a separate layer).

    Shapes: ``x: (N, C, H, W)``, ``weight: (C,)``, ``bias: (C,)`` or None, ``out: (N, C, OH, OW)``
    with ``OH = floor((H - KH) / SH) + 1``; ``stride`` defaults to ``kernel_size``.
    """
    g = pool_geometry(x, kernel_size, stride, 0, False)
    channels = x.shape[1]
    check_array(weight, "weight", ndim=1)
    check_same_dtype(x, weight, "weight")
    check_shape(weight, (channels,), "weight")
    window_sum = _window_sum(x, g)
    out = window_sum * weight[:, None, None]
    if bias is not None:
        check_array(bias, "bias", ndim=1)
        check_same_dtype(x, bias, "bias")
        check_shape(bias, (channels,), "bias")
        out += bias[:, None, None]
    return out, SubsamplingCache(g, window_sum, weight, bias is not None)


def subsampling_backward(
    dout: np.ndarray, cache: SubsamplingCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of ``out = weight[c] * S + bias[c]``.

    ``dweight[c] = sum_{n,i,j} dout * S``; ``dbias[c] = sum_{n,i,j} dout``; every element of
    window ``(i, j)`` enters ``S`` with coefficient 1, so it gets ``weight[c] * dout[n, c, i, j]``
    (summed over overlapping windows). Returns ``(dx, dweight, dbias)``; ``dbias`` is None when
    the forward had no bias.
    """
    g = cache.geometry
    check_shape(dout, cache.window_sum.shape, "dout")
    share = dout * cache.weight[:, None, None]
    dx = _scatter_to_input(share, g)
    dweight = np.einsum("ncij,ncij->c", dout, cache.window_sum)
    dbias = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None
    return dx, dweight, dbias

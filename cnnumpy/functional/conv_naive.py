"""Loop-based reference convolutions: the formulas of ``conv.py`` and ``conv_transpose.py``.

Each output (or input) pixel is computed by a plain loop, so the code reads as the maths. They
are slow and exist to document and test the fast kernels, with the same signatures and
contracts; the argument checks are shared with the fast kernels (``_im2col.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import check_array, check_same_dtype, check_shape
from ._im2col import ConvGeometry, check_bias, conv2d_geometry, conv_transpose2d_geometry


class NaiveConvCache(NamedTuple):
    x: np.ndarray  # conv2d: the zero-padded input; conv_transpose2d: the input as given
    weight: np.ndarray
    geometry: ConvGeometry
    groups: int
    has_bias: bool


def _window(i: int, j: int, g: ConvGeometry) -> tuple[slice, slice]:
    """Padded-input rows and columns under the (dilated) kernel for output pixel ``(i, j)``."""
    (kh, kw), (sh, sw), (dh, dw) = g.kernel, g.stride, g.dilation
    return (
        slice(i * sh, i * sh + dh * (kh - 1) + 1, dh),
        slice(j * sw, j * sw + dw * (kw - 1) + 1, dw),
    )


def _pad(x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    top, bottom, left, right = g.pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def _crop(xp: np.ndarray, g: ConvGeometry) -> np.ndarray:
    top, _, left, _ = g.pads
    h, w = g.in_size
    return xp[:, :, top : top + h, left : left + w].copy()


def conv2d_forward_naive(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    check_finite: bool = False,
) -> tuple[np.ndarray, NaiveConvCache]:
    """``conv2d_forward`` by loops: shapes, formula and hyper-parameters as documented there.

    ``out[n, f, i, j] = b[f] + sum(xp[n, channels of f's group, window(i, j)] * w[f])``.
    """
    check_array(x, "x", ndim=4, finite=check_finite)
    check_array(weight, "weight", ndim=4)
    check_same_dtype(x, weight, "weight")
    g = conv2d_geometry(x, weight, stride=stride, padding=padding, dilation=dilation, groups=groups)
    f, cg = weight.shape[:2]
    check_bias(bias, x, f)
    fg = f // groups
    xp = _pad(x, g)
    out = np.zeros((x.shape[0], f, *g.out_size), dtype=x.dtype)
    for n in range(x.shape[0]):
        for k in range(f):
            c0 = (k // fg) * cg
            for i in range(g.out_size[0]):
                for j in range(g.out_size[1]):
                    rows, cols = _window(i, j, g)
                    out[n, k, i, j] = np.sum(xp[n, c0 : c0 + cg, rows, cols] * weight[k])
            if bias is not None:
                out[n, k] += bias[k]
    return out, NaiveConvCache(xp, weight, g, groups, bias is not None)


def conv2d_backward_naive(
    dout: np.ndarray, cache: NaiveConvCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``conv2d_backward`` by loops: each output pixel ``out[n, f, i, j]`` read the window
    ``xp[n, group, window(i, j)]`` through ``w[f]``, so its gradient flows back as
    ``dxp[window] += dout * w[f]`` and ``dw[f] += dout * xp[window]``; ``db[f]`` sums ``dout``.
    """
    xp, weight, g, groups, has_bias = cache
    f, cg = weight.shape[:2]
    fg = f // groups
    check_shape(dout, (xp.shape[0], f, *g.out_size), "dout")
    dxp = np.zeros_like(xp)
    dweight = np.zeros_like(weight)
    for n in range(xp.shape[0]):
        for k in range(f):
            c0 = (k // fg) * cg
            for i in range(g.out_size[0]):
                for j in range(g.out_size[1]):
                    rows, cols = _window(i, j, g)
                    dxp[n, c0 : c0 + cg, rows, cols] += dout[n, k, i, j] * weight[k]
                    dweight[k] += dout[n, k, i, j] * xp[n, c0 : c0 + cg, rows, cols]
    dbias = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return _crop(dxp, g), dweight, dbias


def conv_transpose2d_forward_naive(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
    check_finite: bool = False,
) -> tuple[np.ndarray, NaiveConvCache]:
    """``conv_transpose2d_forward`` by loops: every input pixel ``x[n, c, i, j]`` adds
    ``x[n, c, i, j] * w[c]`` onto the window ``(i, j)`` of the padded output (the channels of
    ``c``'s group), and the padding is cropped off. Shapes as documented there.
    """
    check_array(x, "x", ndim=4, finite=check_finite)
    check_array(weight, "weight", ndim=4)
    check_same_dtype(x, weight, "weight")
    g = conv_transpose2d_geometry(
        x,
        weight,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    c, fg = weight.shape[:2]
    check_bias(bias, x, fg * groups)
    cg = c // groups
    outp = np.zeros((x.shape[0], fg * groups, *g.padded_size), dtype=x.dtype)
    for n in range(x.shape[0]):
        for ci in range(c):
            f0 = (ci // cg) * fg
            for i in range(x.shape[2]):
                for j in range(x.shape[3]):
                    rows, cols = _window(i, j, g)
                    outp[n, f0 : f0 + fg, rows, cols] += x[n, ci, i, j] * weight[ci]
    out = _crop(outp, g)
    if bias is not None:
        out += bias[:, None, None]
    return out, NaiveConvCache(x, weight, g, groups, bias is not None)


def conv_transpose2d_backward_naive(
    dout: np.ndarray, cache: NaiveConvCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``conv_transpose2d_backward`` by loops: ``x[n, c, i, j]`` was spread over the window
    ``(i, j)`` of the padded output through ``w[c]``, so ``dx[n, c, i, j]`` gathers
    ``sum(doutp[window] * w[c])`` and ``dw[c] += x[n, c, i, j] * doutp[window]``.
    """
    x, weight, g, groups, has_bias = cache
    c, fg = weight.shape[:2]
    cg = c // groups
    check_shape(dout, (x.shape[0], fg * groups, *g.in_size), "dout")
    doutp = _pad(dout, g)
    dx = np.zeros_like(x)
    dweight = np.zeros_like(weight)
    for n in range(x.shape[0]):
        for ci in range(c):
            f0 = (ci // cg) * fg
            for i in range(x.shape[2]):
                for j in range(x.shape[3]):
                    rows, cols = _window(i, j, g)
                    window = doutp[n, f0 : f0 + fg, rows, cols]
                    dx[n, ci, i, j] = np.sum(window * weight[ci])
                    dweight[ci] += x[n, ci, i, j] * window
    dbias = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dweight, dbias

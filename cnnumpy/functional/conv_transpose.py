"""Transposed 2-D convolution (PyTorch's ``conv_transpose2d``), the adjoint of ``conv2d``.

Where conv2d gathers a window of input pixels into one output pixel, the transposed
convolution scatters each input pixel, scaled by the kernel, onto a window of the output. As
linear maps of their inputs the two are transposes of each other for the same weight array and
hyper-parameters: this forward is conv2d's ``dx`` computation (a matrix product then col2im)
and its ``dx`` is conv2d's forward (im2col then a matrix product). The loop-based reference is
in ``conv_naive.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import check_array, check_same_dtype, check_shape
from ._im2col import (
    ConvGeometry,
    check_bias,
    col2im,
    conv_transpose2d_geometry,
    crop_batch_major,
    im2col,
    pad_channel_major,
)


class ConvTranspose2dCache(NamedTuple):
    x_groups: np.ndarray  # (G, C/G, N*H*W): the input, channel-major, for dweight
    weight: np.ndarray
    geometry: ConvGeometry  # of the conv2d this is the adjoint of
    groups: int
    has_bias: bool


def conv_transpose2d_forward(
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
) -> tuple[np.ndarray, ConvTranspose2dCache]:
    """Transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    Shapes: ``x: (N, C, H, W)``; ``weight: (C, F / groups, KH, KW)`` (PyTorch's layout, input
    channels first); ``bias: (F,)`` or None; ``out: (N, F, H_out, W_out)`` with

        H_out = (H - 1)*sh - 2*ph + dh*(KH - 1) + output_padding_h + 1     (same for W_out).

    With ``Cg = C / G`` and ``Fg = F / G``, input channel ``c`` of group ``g = c // Cg`` writes to
    the outputs ``g*Fg + f`` only:

        out[n, g*Fg + f, y, x] = b[g*Fg + f] + sum_{c, i, j, kh, kw} x[n, c, i, j] * w[c, f, kh, kw]
        over y = i*sh + kh*dh - ph and x = j*sw + kw*dw - pw (terms outside the output drop).

    ``padding`` removes ``ph`` rows from the top and the bottom of the full scatter (of height
    ``(H - 1)*sh + dh*(KH - 1) + 1``); ``output_padding`` gives rows back at the bottom (and
    columns at the right), which is how a caller picks among the input sizes that a strided
    conv2d maps onto the same ``H``. As in PyTorch, ``output_padding`` must be smaller than the
    stride or the dilation, per axis. An empty batch (``N = 0``) gives an empty ``out``.
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
    n, c = x.shape[:2]
    f = weight.shape[1] * groups
    check_bias(bias, x, f)

    pixels = n * x.shape[2] * x.shape[3]  # not -1: NumPy cannot infer it when N = 0
    x_groups = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(groups, c // groups, pixels)
    if n == 0:  # an empty batch: an empty output, as in PyTorch
        out = np.empty((0, f, *g.in_size), dtype=x.dtype)
        return out, ConvTranspose2dCache(x_groups, weight, g, groups, bias is not None)
    # Per group: cols (Fg*KH*KW, N*H*W) = W^T (Fg*KH*KW, Cg) @ x (Cg, N*H*W): each input pixel's
    # contribution to every tap of its output window; col2im adds them onto the output pixels.
    cols = _weight_matrix(weight, groups).transpose(0, 2, 1) @ x_groups
    cols = cols.reshape(f, *g.kernel, n, *g.out_size)
    out = crop_batch_major(col2im(cols, g), g.pads, g.in_size)
    if bias is not None:
        out += bias[:, None, None]
    return out, ConvTranspose2dCache(x_groups, weight, g, groups, bias is not None)


def conv_transpose2d_backward(
    dout: np.ndarray, cache: ConvTranspose2dCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of ``conv_transpose2d_forward``; returns ``(dx, dweight, dbias)``.

    Shapes: ``dout: (N, F, H_out, W_out)``; the gradients have the shapes of ``x``, ``weight``
    and ``bias`` (dbias None without bias). Derivation: for a fixed weight the forward is linear
    in ``x``, ``out = A^T x + b``, where ``A`` is conv2d with this weight read as a conv2d weight
    ``(F_conv = C, C_conv / groups = F / groups, KH, KW)`` and the same stride, padding,
    dilation and groups. Hence

    - ``dx = A dout = conv2d(dout, weight)``: im2col of the padded ``dout`` with ``(H, W)``
      output positions (rows added by ``output_padding`` are never read), then ``W @ cols``.
    - ``dweight[c, f, kh, kw] = sum_{n, i, j} x[n, c, i, j] * dout[n, f, y, x]`` with the
      ``y, x`` of the forward formula: ``x (C, N*H*W) @ cols^T``, the same column matrix.
    - ``dbias[f] = sum_{n, y, x} dout[n, f, y, x]``.

    An empty batch gives an empty ``dx`` and zero ``dweight`` and ``dbias``.
    """
    x_groups, weight, g, groups, has_bias = cache
    n = x_groups.shape[-1] // (g.out_size[0] * g.out_size[1])
    f = weight.shape[1] * groups
    check_shape(dout, (n, f, *g.in_size), "dout")
    if n == 0:  # an empty batch: an empty dx and zero parameter gradients, as in PyTorch
        dx = np.empty((0, weight.shape[0], *g.out_size), dtype=weight.dtype)
        return dx, np.zeros_like(weight), np.zeros(f, dtype=weight.dtype) if has_bias else None
    cols = im2col(pad_channel_major(dout, g.pads), g).reshape(groups, -1, x_groups.shape[-1])

    dx = _weight_matrix(weight, groups) @ cols  # (G, Cg, N*H*W), channel-major
    dx = np.ascontiguousarray(dx.reshape(weight.shape[0], n, *g.out_size).transpose(1, 0, 2, 3))
    dweight = (x_groups @ cols.transpose(0, 2, 1)).reshape(weight.shape)
    dbias = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dweight, dbias


def _weight_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """``(C, Fg, KH, KW)`` -> ``(G, Cg, Fg*KH*KW)``."""
    return weight.reshape(groups, weight.shape[0] // groups, -1)

"""2-D convolution (PyTorch's ``conv2d``, a cross-correlation) by im2col and matrix products.

The loop-based reference implementation is in ``conv_naive.py``; the shared im2col / col2im
helpers and the argument checks are in ``_im2col.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import check_array, check_same_dtype, check_shape
from ._im2col import (
    ConvGeometry,
    check_bias,
    col2im,
    conv2d_geometry,
    crop_batch_major,
    im2col,
    pad_channel_major,
)


class Conv2dCache(NamedTuple):
    cols: np.ndarray  # (C, KH, KW, N, H', W'): the im2col matrix, reused for dweight
    weight: np.ndarray
    geometry: ConvGeometry
    groups: int
    has_bias: bool


def conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    check_finite: bool = False,
) -> tuple[np.ndarray, Conv2dCache]:
    """Cross-correlation of ``x`` with ``weight``, as ``torch.nn.functional.conv2d``.

    Shapes: ``x: (N, C, H, W)``; ``weight: (F, C / groups, KH, KW)``; ``bias: (F,)`` or None;
    ``out: (N, F, H', W')`` with ``H' = floor((H + 2*ph - dh*(KH - 1) - 1) / sh) + 1`` (same for
    ``W'``). With ``G = groups``, ``Cg = C / G`` and ``Fg = F / G``, filter ``f`` sees only the
    channels of its group ``g = f // Fg``:

        out[n, f, i, j] = b[f] + sum_{c, kh, kw} w[f, c, kh, kw] * xp[n, g*Cg + c, y, x]
        with y = i*sh + kh*dh, x = j*sw + kw*dw,

    where ``xp`` is ``x`` zero padded. ``stride``, ``padding`` and ``dilation`` take an int or an
    ``(h, w)`` pair; ``padding`` may also be ``'valid'`` (no padding) or ``'same'`` (stride 1 only:
    total padding ``dilation*(k - 1)`` per axis, the odd pixel on the bottom/right as in PyTorch).
    ``groups == C`` gives a depthwise convolution.

    Implementation: ``out = W (F, C*KH*KW) @ cols (C*KH*KW, N*H'*W')``, one product per group.
    The column matrix is kept in the cache for ``dweight``: it is about ``KH*KW`` times the size
    of ``x``. (Building it in cache-sized batch chunks made the forward faster but the backward,
    which then has to rebuild it, slower by as much; so the whole batch goes in one product.)
    """
    check_array(x, "x", ndim=4, finite=check_finite)
    check_array(weight, "weight", ndim=4)
    check_same_dtype(x, weight, "weight")
    g = conv2d_geometry(x, weight, stride=stride, padding=padding, dilation=dilation, groups=groups)
    f = weight.shape[0]
    check_bias(bias, x, f)

    n = x.shape[0]
    cols = im2col(pad_channel_major(x, g.pads), g)
    pixels = n * g.out_size[0] * g.out_size[1]
    out = _weight_matrix(weight, groups) @ cols.reshape(groups, -1, pixels)
    # (G, Fg, N*H'*W') is (F, N, H', W') in memory; the transposing copy is the size of the
    # output only, far smaller than the column matrix.
    out = np.ascontiguousarray(out.reshape(f, n, *g.out_size).transpose(1, 0, 2, 3))
    if bias is not None:
        out += bias[:, None, None]
    return out, Conv2dCache(cols, weight, g, groups, bias is not None)


def conv2d_backward(
    dout: np.ndarray, cache: Conv2dCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of ``conv2d_forward``; returns ``(dx, dweight, dbias)``, dbias None without bias.

    Shapes: ``dout: (N, F, H', W')``; ``dx``, ``dweight``, ``dbias`` have the shapes of ``x``,
    ``weight``, ``bias``. Derivation, from the forward formula (one group; groups are
    independent; ``y = i*sh + kh*dh``, ``x = j*sw + kw*dw``):

    - ``dbias[f] = sum_{n, i, j} dout[n, f, i, j]``.
    - ``dweight[f, c, kh, kw] = sum_{n, i, j} dout[n, f, i, j] * xp[n, c, y, x]``: the
      correlation of the input with ``dout``, i.e. ``dW = dout (F, N*H'*W') @ cols^T``.
    - ``dxp[n, c, y, x] = sum_{f, kh, kw} w[f, c, kh, kw] * dout[n, f, i, j]`` over the taps
      for which ``i = (y - kh*dh) / sh`` and ``j = (x - kw*dw) / sw`` are whole and in range.
      Insert ``sh - 1`` zeros between the rows of ``dout`` (dilate it by the stride) and pad it
      by ``dh*(KH - 1)``: then this reads ``sum_k w[..., k] * dout_dilated[y - k*dh]``, the *full*
      correlation of the dilated ``dout`` with the kernel rotated by 180 degrees.

    That rotated-kernel correlation is what ``dx`` is; we compute the same sums without
    materialising the zeros: ``dcols = W^T @ dout`` holds, for each column entry (the copy of an
    input pixel made for one window), that copy's gradient ``sum_f w * dout``, and ``col2im`` adds
    all copies back onto their pixel, which is the sum over taps above. (Computing it literally,
    as im2col of the padded, dilated ``dout`` times the rotated weight, builds a column matrix
    ``F*H*W / (C*H'*W')`` times larger: much larger for LeNet's 1->6 layer, and only a few
    percent faster for a same-size 64->64 layer.)
    """
    cols, weight, g, groups, has_bias = cache
    n, f = cols.shape[3], weight.shape[0]
    check_shape(dout, (n, f, *g.out_size), "dout")
    # Channel-major dout, (G, Fg, N*H'*W'), matching the column layout.
    dout_g = np.ascontiguousarray(dout.transpose(1, 0, 2, 3)).reshape(groups, f // groups, -1)
    cols_g = cols.reshape(groups, -1, dout_g.shape[-1])

    dweight = (dout_g @ cols_g.transpose(0, 2, 1)).reshape(weight.shape)
    dcols = _weight_matrix(weight, groups).transpose(0, 2, 1) @ dout_g
    dx = crop_batch_major(col2im(dcols.reshape(cols.shape), g), g.pads, g.in_size)
    dbias = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dweight, dbias


def _weight_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """``(F, Cg, KH, KW)`` -> ``(G, Fg, Cg*KH*KW)``, the left operand of each group's product."""
    return weight.reshape(groups, weight.shape[0] // groups, -1)

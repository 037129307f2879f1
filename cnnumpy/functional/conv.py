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
from ._parallel import blas_single_threaded, chunk_slices, in_order_sum, map_chunks, threads_for

# Bytes of column matrix per batch chunk. The matrix for a chunk is written by im2col and read
# straight back by the product, so it should stay in cache (measured on a 2-core machine with
# 1 MiB L2 per core and a 32 MiB L3: a third faster than one batch-sized matrix at LeNet sizes,
# no slower at a 64->64 3x3 layer).
CHUNK_BYTES = 4 * 2**20


class Conv2dCache(NamedTuple):
    # The input itself (a reference, not a copy: layers never change their input in place). The
    # backward pads it again and rebuilds the columns from it, which keeps no copy alive
    # between the passes.
    x: np.ndarray
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

    Implementation: ``out = W (F, C*KH*KW) @ cols (C*KH*KW, N*H'*W')``, one product per group,
    taken over batch chunks whose column matrix is about ``CHUNK_BYTES``. The cache keeps the
    input, not the columns (``KH*KW`` times larger): the backward rebuilds them chunk by chunk.
    """
    check_array(x, "x", ndim=4, finite=check_finite)
    check_array(weight, "weight", ndim=4)
    check_same_dtype(x, weight, "weight")
    g = conv2d_geometry(x, weight, stride=stride, padding=padding, dilation=dilation, groups=groups)
    f = weight.shape[0]
    check_bias(bias, x, f)

    n, pixels = x.shape[0], g.out_size[0] * g.out_size[1]
    xp = pad_channel_major(x, g.pads)
    w_mat = _weight_matrix(weight, groups)
    out = np.empty((groups, f // groups, n * pixels), dtype=x.dtype)  # (F, N, H', W') in memory

    def start():
        def work(chunk: slice) -> None:
            columns = slice(chunk.start * pixels, chunk.stop * pixels)
            cols = im2col(xp[:, chunk], g).reshape(groups, -1, columns.stop - columns.start)
            np.matmul(w_mat, cols, out=out[:, :, columns])

        return work

    # Chunks go to a few threads (each copy of im2col is memory-bound: one core cannot
    # saturate it), BLAS then on one thread each.
    chunks = _batch_chunks(xp, g)
    with blas_single_threaded(threads_for(chunks) > 1):
        map_chunks(start, chunks)
    # The transposing copy to (N, F, H', W') is the size of the output only.
    out = np.ascontiguousarray(out.reshape(f, n, *g.out_size).transpose(1, 0, 2, 3))
    if bias is not None:
        out += bias[:, None, None]
    return out, Conv2dCache(x, weight, g, groups, bias is not None)


def conv2d_backward(
    dout: np.ndarray, cache: Conv2dCache, *, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of ``conv2d_forward``; returns ``(dx, dweight, dbias)``, dbias None without bias.

    With ``input_grad=False``, ``dx`` is not computed and None is returned in its place: a
    network's first layer has no one to pass it to, and for a layer with few input channels it
    is most of the backward's cost.

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
    x, weight, g, groups, has_bias = cache
    xp = pad_channel_major(x, g.pads)
    n, f, pixels = xp.shape[1], weight.shape[0], g.out_size[0] * g.out_size[1]
    check_shape(dout, (n, f, *g.out_size), "dout")
    # Channel-major dout, (G, Fg, N*H'*W'), matching the column layout.
    dout_g = np.ascontiguousarray(dout.transpose(1, 0, 2, 3)).reshape(groups, f // groups, -1)
    w_mat = _weight_matrix(weight, groups)
    dxp = np.zeros_like(xp) if input_grad else None

    def start():
        def work(chunk: slice) -> np.ndarray:
            cols = im2col(xp[:, chunk], g)
            dout_chunk = dout_g[:, :, chunk.start * pixels : chunk.stop * pixels]
            if dxp is not None:
                dcols = w_mat.transpose(0, 2, 1) @ dout_chunk
                col2im(dcols.reshape(cols.shape), g, out=dxp[:, chunk])
            return dout_chunk @ cols.reshape(groups, -1, dout_chunk.shape[-1]).transpose(0, 2, 1)

        return work

    chunks = _batch_chunks(xp, g)
    with blas_single_threaded(threads_for(chunks) > 1):
        partial = map_chunks(start, chunks)
    dweight = in_order_sum(partial)  # the same bits whichever thread did which chunk
    dx = None if dxp is None else crop_batch_major(dxp, g.pads, g.in_size)
    dbias = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dweight.reshape(weight.shape), dbias


def _batch_chunks(xp: np.ndarray, g: ConvGeometry) -> list[slice]:
    """Batch slices whose column matrix is about ``CHUNK_BYTES`` (at least one sample each)."""
    c, n = xp.shape[:2]
    per_sample = c * g.kernel[0] * g.kernel[1] * g.out_size[0] * g.out_size[1] * xp.itemsize
    return chunk_slices(n, per_sample, CHUNK_BYTES)


def _weight_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """``(F, Cg, KH, KW)`` -> ``(G, Fg, Cg*KH*KW)``, the left operand of each group's product."""
    return weight.reshape(groups, weight.shape[0] // groups, -1)

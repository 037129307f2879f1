"""2-D convolution (PyTorch's ``conv2d``, a cross-correlation) by im2col and matrix products.

The loop-based reference implementation is in ``conv_naive.py``; the shared im2col / col2im
helpers and the argument checks are in ``_im2col.py``; for stride-1 layers whose padding the
kernel reaches (ResNet's 3x3 convs at 32x32 and 16x16), ``_flat_im2col.py`` builds the
columns from a flat layout of the padded chunk instead, one contiguous copy per kernel tap.

How the work is laid out. The batch is cut into chunks whose column matrix is about
``CHUNK_BYTES``, and every step for a chunk runs on that chunk alone: the padding and
channel-major transposition of its input, im2col, the matrix products, and the transposing
store of the result into the output. The intermediate arrays are per-thread scratch buffers
(a ``backend.Workspace``), so they are allocated once and stay in cache, and the chunks are
shared out between threads (``_parallel.py``) with BLAS held to one thread inside each. Only
``out`` and ``dx`` are batch-sized arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import backend
from . import _flat_im2col as flat
from . import _parallel
from ._checks import check_array, check_same_dtype, check_shape
from ._im2col import (
    ConvGeometry,
    check_bias,
    col2im,
    conv2d_geometry,
    im2col,
    pad_channel_major,
)
from ._parallel import chunk_slices, in_order_sum, map_chunks, threads_for

# Bytes of column matrix per batch chunk. The matrix for a chunk is written by im2col and read
# straight back by the product, so it should stay in cache (measured on a 2-core machine with
# 1 MiB L2 per core and a 32 MiB L3: a third faster than one batch-sized matrix at LeNet sizes,
# no slower at a 64->64 3x3 layer).
CHUNK_BYTES = 4 * 2**20
# Chunks are made smaller than CHUNK_BYTES to give every thread work, but not below this: for a
# layer as small as LeNet's C5 (1x1 outputs) the per-chunk overhead would outweigh the threads.
MIN_CHUNK_BYTES = 2**18

_SCRATCH = backend.Workspace("conv2d")


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
    taken chunk by chunk (see the module docstring). The cache keeps the input, not the columns
    (``KH*KW`` times larger): the backward rebuilds them chunk by chunk. An empty batch
    (``N = 0``) has no chunks and gives an empty ``out``, as in PyTorch.
    """
    check_array(x, "x", ndim=4, finite=check_finite)
    check_array(weight, "weight", ndim=4)
    check_same_dtype(x, weight, "weight")
    g = conv2d_geometry(x, weight, stride=stride, padding=padding, dilation=dilation, groups=groups)
    f = weight.shape[0]
    check_bias(bias, x, f)

    w_mat = _weight_matrix(weight, groups)
    out = np.empty((x.shape[0], f, *g.out_size), dtype=x.dtype)
    lay = flat.layout(g) if flat.applies(g, f // groups) else None

    def start():
        def work(chunk: slice) -> None:
            cols = _columns(x[chunk], g, groups, lay)
            product = _SCRATCH.buffer("product", (groups, f // groups, cols.shape[-1]), x.dtype)
            np.matmul(w_mat, cols, out=product)
            _store_batch_major(_outputs(product.reshape(f, -1), g, lay), out[chunk], bias)

        return work

    _map_batch_chunks(start, x, g)
    return out, Conv2dCache(x, weight, g, groups, bias is not None)


def conv2d_backward(
    dout: np.ndarray, cache: Conv2dCache, *, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of ``conv2d_forward``; returns ``(dx, dweight, dbias)``, dbias None without bias.

    With ``input_grad=False``, ``dx`` is not computed and None is returned in its place: a
    network's first layer has no one to pass it to, and for a layer with few input channels it
    is most of the backward's cost. An empty batch (``N = 0``) gives an empty ``dx`` and zero
    ``dweight`` and ``dbias``, as in PyTorch.

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

    ``dx`` is computed in one of two ways, which give the same sums:

    - *By correlation*, literally as above: im2col of the padded ``dout`` times the rotated
      weight. Only for stride 1 (no zeros to insert), and only when that column matrix is no
      larger than the forward's: ``F*H*W <= C*H'*W'``, true of same-size layers such as
      ResNet's, where copying columns beats adding them (a third less backward time for a
      64-channel 8x8 layer, measured).
    - *By col2im* otherwise: ``dcols = W^T @ dout`` holds, for each column entry (the copy of an
      input pixel made for one window), that copy's gradient ``sum_f w * dout``, and ``col2im``
      adds all copies back onto their pixel, which is the sum over taps above. For LeNet's
      6->16 layer the correlation's column matrix would be five times larger.
    """
    x, weight, g, groups, has_bias = cache
    (n, c), f = x.shape[:2], weight.shape[0]
    check_shape(dout, (n, f, *g.out_size), "dout")
    dx = np.empty(x.shape, dtype=x.dtype) if input_grad else None
    if n == 0:  # an empty batch: an empty dx and zero parameter gradients, as in PyTorch
        return dx, np.zeros_like(weight), np.zeros(f, dtype=x.dtype) if has_bias else None
    w_mat = _weight_matrix(weight, groups)
    by_correlation = input_grad and _correlation_dx_applies(g, c, f)
    w_rotated = _rotated_weight_matrix(weight, groups) if by_correlation else None
    # The flat layout's dcols would need a col2im of their own: only where dx goes by
    # correlation, decided as if dx were wanted, so dweight has the same bits either way.
    use_flat = flat.applies(g, f // groups) and _correlation_dx_applies(g, c, f)
    lay = flat.layout(g) if use_flat else None

    def start():
        def work(chunk: slice) -> tuple[np.ndarray, np.ndarray | None]:
            cols = _columns(x[chunk], g, groups, lay)
            d = _SCRATCH.buffer("dout", (f, cols.shape[-1]), x.dtype)
            if lay is None:
                d[...] = dout[chunk].transpose(1, 0, 2, 3).reshape(f, -1)  # like the columns
            else:  # zero in the junk columns, which then add nothing to dweight and dbias
                flat.scatter_outputs(dout[chunk], lay, out=d)
            d_groups = d.reshape(groups, f // groups, -1)
            dweight = d_groups @ cols.transpose(0, 2, 1)
            dbias = d.sum(axis=1) if has_bias else None
            if dx is not None and w_rotated is not None:
                _dx_by_correlation(_outputs(d, g, lay), w_rotated, g, out=dx[chunk])
            elif dx is not None:
                # The columns are no longer needed: their buffer takes dcols = W^T @ dout.
                np.matmul(w_mat.transpose(0, 2, 1), d_groups, out=cols)
                _dx_by_col2im(cols, g, out=dx[chunk])  # lay is None here
            return dweight, dbias

        return work

    partial = _map_batch_chunks(start, x, g)
    # Per-chunk sums added in chunk order: the same bits whichever thread did which chunk.
    dweight = in_order_sum([p[0] for p in partial]).reshape(weight.shape)
    dbias = in_order_sum([p[1] for p in partial]) if has_bias else None
    return dx, dweight, dbias


def _batch_chunks(x: np.ndarray, g: ConvGeometry) -> list[slice]:
    """Batch slices whose column matrix is about ``CHUNK_BYTES``, but enough of them to keep
    every thread busy (``MIN_CHUNKS_PER_THREAD`` each) unless that would make them smaller than
    ``MIN_CHUNK_BYTES``; at least one sample each."""
    n, c = x.shape[:2]
    per_sample = c * g.kernel[0] * g.kernel[1] * g.out_size[0] * g.out_size[1] * x.itemsize
    chunks_wanted = backend.get_num_threads() * _parallel.MIN_CHUNKS_PER_THREAD
    per_thread = -(-n // chunks_wanted) * per_sample
    return chunk_slices(n, per_sample, min(CHUNK_BYTES, max(per_thread, MIN_CHUNK_BYTES)))


def _map_batch_chunks(start, x: np.ndarray, g: ConvGeometry) -> list:
    """``map_chunks(start, _batch_chunks(x, g))``, with BLAS on one thread when ours share."""
    chunks = _batch_chunks(x, g)
    with backend.blas_single_threaded(threads_for(chunks) > 1):
        return map_chunks(start, chunks)


def _columns(
    x: np.ndarray, g: ConvGeometry, groups: int, lay: flat.FlatLayout | None = None
) -> np.ndarray:
    """im2col of one chunk ``x: (m, C, H, W)`` (any strides), in scratch, as
    ``(G, Cg*KH*KW, m*H'*W')``, or ``(G, Cg*KH*KW, L)`` in the flat layout ``lay``."""
    m, c = x.shape[:2]
    if lay is not None:
        length = flat.columns_length(lay, m)
        padded = _SCRATCH.buffer("flat", (c, length + lay.tail), x.dtype)
        cols = _SCRATCH.buffer("columns", (c, *g.kernel, length), x.dtype)
        flat.flat_im2col(flat.flatten_padded(x, lay, out=padded), g, lay, out=cols)
        return cols.reshape(groups, -1, length)
    xp = pad_channel_major(
        x, g.pads, out=_SCRATCH.buffer("padded", (c, m, *g.padded_size), x.dtype)
    )
    cols = _SCRATCH.buffer("columns", (c, *g.kernel, m, *g.out_size), x.dtype)
    return im2col(xp, g, out=cols).reshape(groups, -1, m * g.out_size[0] * g.out_size[1])


def _outputs(product: np.ndarray, g: ConvGeometry, lay: flat.FlatLayout | None) -> np.ndarray:
    """The outputs of one chunk in ``product: (F, columns)`` as a ``(F, m, H', W')`` view."""
    if lay is None:
        return product.reshape(product.shape[0], -1, *g.out_size)
    return flat.output_view(product, lay)


def _store_batch_major(
    channel_major: np.ndarray, out: np.ndarray, bias: np.ndarray | None = None
) -> None:
    """``out[...] = channel_major (F, m, H, W)`` transposed to ``(m, F, H, W)``, plus ``bias``."""
    if bias is None:
        out[...] = channel_major.transpose(1, 0, 2, 3)
    else:
        np.add(channel_major.transpose(1, 0, 2, 3), bias[:, None, None], out=out)


def _correlation_pads(g: ConvGeometry) -> tuple[int, int, int, int]:
    """Padding of ``dout`` for ``dx`` as a full correlation: ``dilation * (k - 1)`` per side,
    less the forward's own padding on that side (negative when the forward padded more)."""
    (kh, kw), (dh, dw) = g.kernel, g.dilation
    top, bottom, left, right = g.pads
    return dh * (kh - 1) - top, dh * (kh - 1) - bottom, dw * (kw - 1) - left, dw * (kw - 1) - right


def _correlation_dx_applies(g: ConvGeometry, channels: int, filters: int) -> bool:
    """Whether ``dx`` is computed as a correlation of ``dout`` (see ``conv2d_backward``)."""
    in_pixels, out_pixels = g.in_size[0] * g.in_size[1], g.out_size[0] * g.out_size[1]
    return (
        g.stride == (1, 1)
        and min(_correlation_pads(g)) >= 0
        and filters * in_pixels <= channels * out_pixels
    )


def _dx_by_correlation(
    d: np.ndarray, w_rotated: np.ndarray, g: ConvGeometry, out: np.ndarray
) -> None:
    """``out[...] = dx`` of one chunk from its channel-major ``d: (F, m, H', W')``, as the
    stride-1 correlation of the padded ``d`` with the rotated weight ``(G, Cg, Fg*KH*KW)``."""
    groups, cg = w_rotated.shape[:2]
    pads = _correlation_pads(g)
    full = ConvGeometry(g.kernel, (1, 1), g.dilation, pads, g.out_size, g.in_size)
    lay = flat.layout(full) if flat.applies(full, cg) else None
    # _columns takes a batch-major chunk: hand it the batch-major view of d.
    cols = _columns(d.transpose(1, 0, 2, 3), full, groups, lay)
    product = _SCRATCH.buffer("product", (groups, cg, cols.shape[-1]), d.dtype)
    np.matmul(w_rotated, cols, out=product)
    _store_batch_major(_outputs(product.reshape(groups * cg, -1), full, lay), out)


def _dx_by_col2im(dcols: np.ndarray, g: ConvGeometry, out: np.ndarray) -> None:
    """``out[...] = dx`` of one chunk from its column gradients ``(G, Cg*KH*KW, m*H'*W')``."""
    m, c, h, w = out.shape
    xp = _SCRATCH.buffer("padded", (c, m, *g.padded_size), dcols.dtype)
    xp.fill(0)
    col2im(dcols.reshape(c, *g.kernel, m, *g.out_size), g, out=xp)
    top, _, left, _ = g.pads
    _store_batch_major(xp[:, :, top : top + h, left : left + w], out)


def _weight_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """``(F, Cg, KH, KW)`` -> ``(G, Fg, Cg*KH*KW)``, the left operand of each group's product."""
    return weight.reshape(groups, weight.shape[0] // groups, -1)


def _rotated_weight_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """``(F, Cg, KH, KW)`` -> ``(G, Cg, Fg*KH*KW)``: per group, the kernel turned by 180 degrees
    with its input and output channels swapped, the weight of ``dx`` as a correlation."""
    f, cg, kh, kw = weight.shape
    grouped = weight.reshape(groups, f // groups, cg, kh, kw)[:, :, :, ::-1, ::-1]
    return np.ascontiguousarray(grouped.transpose(0, 2, 1, 3, 4)).reshape(groups, cg, -1)

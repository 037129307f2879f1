"""im2col on a flat, shared-border layout: each kernel tap is one contiguous slice.

For a stride-1, undilated convolution the padded images can be laid out so that the window of
every output pixel is found at fixed offsets in one flat array per channel. Each image takes
``Hq x Wq`` cells with ``Hq = H + max(top, bottom)`` and ``Wq = W + max(left, right)``; its
pixels sit at ``(top + y, left + x)`` and every other cell is zero, so the zeros after one row
(image) serve as the right (bottom) padding of that row (image) and the left (top) padding of
the next. With ``m`` images and ``L = m * Hq * Wq``:

    flat[c, n*Hq*Wq + (top + y)*Wq + left + x] = x[n, c, y, x]       (C, L + tail), else 0
    cols[c, kh, kw, q] = flat[c, q + kh*Wq + kw]                      (C, KH, KW, L)

and output pixel ``(n, i, j)`` is column ``q = n*Hq*Wq + i*Wq + j`` of ``W @ cols``; the other
columns (``i >= H'`` or ``j >= W'``) are junk, computed and dropped. Each tap is then a single
copy of ``C`` contiguous rows of length ``L``, where ``im2col`` of small images copies rows of
only ``W'`` numbers: NumPy's per-row overhead, not the bytes, is what im2col costs there. The
price is the junk columns: ``r = Hq*Wq / (H'*W')`` times the multiply-adds (1.06 at 32x32
with a 3x3 kernel and padding 1, 1.13 at 16x16, 1.27 at 8x8). Per column entry the flat layout
saves part of a copy and costs ``(r - 1) * Fg`` multiply-adds (``Fg`` filters per group read
each entry), so ``applies`` takes it only where that is at most ``MAX_JUNK_MACS``.

Only valid when no window reaches past the zeros that follow its row or image:
``min(top, bottom) <= KH - 1`` and ``min(left, right) <= KW - 1`` (then ``H' <= Hq``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._im2col import ConvGeometry

# Most junk multiply-adds per column entry, (r - 1) * Fg, taken. Measured (CPU time of a 3x3,
# padding 1 layer's forward and backward on one thread, flat against im2col): 16->16 at 32x32
# (1.0 junk multiply-adds) 12-16% less, 64->64 at 32x32 (4.0) 3% less, 32->32 at 16x16 (4.1)
# 0-5% less, 128->128 at 16x16 (16.5) 2-5% more, 64->64 at 8x8 (17) 1% less to 5% more.
MAX_JUNK_MACS = 8.0


class FlatLayout(NamedTuple):
    """Where an ``(m, C, H, W)`` chunk lies in its flat buffer, and where the outputs land."""

    cells: tuple[int, int]  # (Hq, Wq): the cells of one image
    origin: tuple[int, int]  # (top, left): where pixel (0, 0) sits in its cells
    size: tuple[int, int]  # (H, W) of the input
    out_size: tuple[int, int]  # (H', W') of the output
    tail: int  # zeros after the last image: the farthest tap's offset, (KH-1)*Wq + KW-1


def applies(g: ConvGeometry, filters: int) -> bool:
    """Whether the flat layout computes the convolution of ``g`` and is worth its junk, for a
    product with ``filters`` rows per group (``Fg``)."""
    (kh, kw), (top, bottom, left, right) = g.kernel, g.pads
    if g.stride != (1, 1) or g.dilation != (1, 1):
        return False
    if min(top, bottom) > kh - 1 or min(left, right) > kw - 1:
        return False
    hq, wq = g.in_size[0] + max(top, bottom), g.in_size[1] + max(left, right)
    junk = hq * wq / (g.out_size[0] * g.out_size[1]) - 1.0
    return junk * filters <= MAX_JUNK_MACS


def layout(g: ConvGeometry) -> FlatLayout:
    """The flat layout of the input of ``g`` (for which ``applies(g)``)."""
    (kh, kw), (top, bottom, left, right) = g.kernel, g.pads
    hq, wq = g.in_size[0] + max(top, bottom), g.in_size[1] + max(left, right)
    return FlatLayout((hq, wq), (top, left), g.in_size, g.out_size, (kh - 1) * wq + kw - 1)


def columns_length(lay: FlatLayout, m: int) -> int:
    """``L``: the columns of ``m`` images, junk included."""
    return m * lay.cells[0] * lay.cells[1]


def flatten_padded(x: np.ndarray, lay: FlatLayout, out: np.ndarray) -> np.ndarray:
    """``x: (m, C, H, W)`` (any strides) -> ``out: (C, L + tail)``, the flat layout above.

    Only the cells that hold no pixel are zeroed; every cell is written once.
    """
    m, c = x.shape[:2]
    (hq, wq), (top, left), (h, w) = lay.cells, lay.origin, lay.size
    length = columns_length(lay, m)
    out[:, length:] = 0
    cells = out[:, :length].reshape(c, m, hq, wq)
    cells[:, :, :top] = 0
    cells[:, :, top + h :] = 0
    cells[:, :, top : top + h, :left] = 0
    cells[:, :, top : top + h, left + w :] = 0
    cells[:, :, top : top + h, left : left + w] = x.transpose(1, 0, 2, 3)
    return out


def flat_im2col(flat: np.ndarray, g: ConvGeometry, lay: FlatLayout, out: np.ndarray) -> np.ndarray:
    """``flat: (C, L + tail)`` -> ``out: (C, KH, KW, L)``, one contiguous copy per tap."""
    length = out.shape[-1]
    wq = lay.cells[1]
    for kh in range(g.kernel[0]):
        for kw in range(g.kernel[1]):
            offset = kh * wq + kw
            out[:, kh, kw] = flat[:, offset : offset + length]
    return out


def output_view(product: np.ndarray, lay: FlatLayout) -> np.ndarray:
    """The valid outputs of ``product: (F, L)`` as a ``(F, m, H', W')`` view."""
    f = product.shape[0]
    hq, wq = lay.cells
    m = product.shape[1] // (hq * wq)
    return product.reshape(f, m, hq, wq)[:, :, : lay.out_size[0], : lay.out_size[1]]


def scatter_outputs(d: np.ndarray, lay: FlatLayout, out: np.ndarray) -> np.ndarray:
    """``d: (m, F, H', W')`` (any strides) -> ``out: (F, L)``, zero in the junk columns:
    the gradient of the output in the product's layout, for ``dW = d @ cols^T``."""
    m, f = d.shape[:2]
    hq, wq = lay.cells
    oh, ow = lay.out_size
    cells = out.reshape(f, m, hq, wq)
    cells[:, :, oh:] = 0
    cells[:, :, :oh, ow:] = 0
    cells[:, :, :oh, :ow] = d.transpose(1, 0, 2, 3)
    return out

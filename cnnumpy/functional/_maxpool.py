"""The max-pooling kernel behind ``pool.max_pool2d_forward`` / ``max_pool2d_backward``.

A window's maximum is taken in two separable steps, each over strided views of the planes
(``P = N * C`` planes of ``(H, W)``, worked on in chunks of planes small enough to stay in the
CPU's caches):

1. along each row: ``colmax[h, j] = max over q of xp[h, j*SW + q]``, ``(HU, OW)`` per plane,
   with ``HU = (OH - 1) * SH + KH`` the rows that some window uses;
2. down the columns of that: ``out[i, j] = max over p of colmax[i*SH + p, j]``.

Each step also records where its maximum came from, as small unsigned integers (uint8 for
kernels up to 256 wide or high): ``cols[h, j]``, the first ``q`` that reaches ``colmax[h, j]``,
and ``rows[i, j]``, the first ``p`` that reaches ``out[i, j]``. A candidate replaces the running
maximum only when strictly greater, so the first maximum wins on ties. Rows are searched
first-to-last and, inside the winning row, columns first-to-last: that is the first maximum in
row-major order over the window, PyTorch's rule. (Reducing down the columns first would
instead pick the leftmost column holding the maximum, a different element on ties.)

The backward runs the same two steps in reverse: ``dout`` goes to row ``i*SH + rows[i, j]`` of
an ``(HU, OW)`` buffer, and from there each row's value goes to column ``j*SW + cols[h, j]``.
Where windows overlap (stride < kernel), offset ``o + S`` of window ``i`` and offset ``o`` of
window ``i + 1`` are the same element: their contributions are summed in a contiguous buffer
first, so each element is written once, by one strided assignment per phase ``o % S`` (a
strided ``+=`` reads and writes the slow way). Masks are applied by multiplying with a boolean
array: NumPy's ``where=`` arguments are several times slower on random masks. The chunks are
shared out between threads (``_parallel.map_chunks``); each writes its own planes of the
results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ._parallel import map_chunks

if TYPE_CHECKING:  # a runtime import would be circular: pool.py imports this module
    from .pool import PoolGeometry

# Input bytes per chunk of planes. Measured on (128, 64, 32, 32) float32, on an AMD EPYC (512 KiB
# L2 per core) and a Xeon (2 MiB): 512 KiB to 2 MiB chunks run equally fast; smaller ones pay
# NumPy's per-call overhead on short arrays (256 KiB: 10-25% slower), larger ones leave the caches.
CHUNK_BYTES = 2**20


class MaxPoolArgmax(NamedTuple):
    """Where each maximum came from, as kernel offsets (see the module docstring)."""

    rows: np.ndarray  # (P, OH, OW): the window's winning kernel row p
    cols: np.ndarray  # (P, HU, OW): in buffer row h, the window's first maximal column q


def _index_dtype(kernel_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds offsets ``0 .. kernel_size - 1``."""
    return np.min_scalar_type(kernel_size - 1)


def _taps(a: np.ndarray, axis: int, k: int, s: int, count: int) -> list[np.ndarray]:
    """The ``k`` views ``a[..., o : o + (count - 1) * s + 1 : s, ...]`` along ``axis`` (1 or 2
    of a 3-D array), one per kernel offset ``o``: view ``o`` holds offset ``o`` of every window."""
    views = []
    for o in range(k):
        index = [slice(None)] * 3
        index[axis] = slice(o, o + (count - 1) * s + 1, s)
        views.append(a[tuple(index)])
    return views


def _max_with_argmax(
    views: list[np.ndarray], out: np.ndarray, arg: np.ndarray, flag: np.ndarray, step: np.ndarray
) -> None:
    """``out = max(views)`` elementwise and ``arg`` = index of the first view reaching it.

    ``flag`` (bool) and ``step`` (``arg``'s dtype) are scratch buffers of ``out``'s shape. Since
    offsets are visited in increasing order, ``arg = max(arg, o * (view_o > out))`` records the
    latest strict improvement with integer ops only. NaN propagates to ``out`` (np.maximum).
    """
    if len(views) == 1:
        np.copyto(out, views[0])
        arg.fill(0)
        return
    np.greater(views[1], views[0], out=flag)
    np.maximum(views[0], views[1], out=out)
    np.copyto(arg, flag)  # 1 where offset 1 won, else 0
    for o in range(2, len(views)):
        np.greater(views[o], out, out=flag)
        np.maximum(out, views[o], out=out)
        np.multiply(flag, arg.dtype.type(o), out=step)
        np.maximum(arg, step, out=arg)


def _along(axis: int, index: slice) -> tuple[slice, ...]:
    """An index into a 3-D array that applies ``index`` along ``axis`` and keeps the rest."""
    full = [slice(None)] * 3
    full[axis] = index
    return tuple(full)


def _scatter(
    src: np.ndarray,
    arg: np.ndarray,
    target: np.ndarray,
    axis: int,
    k: int,
    s: int,
    buffers: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Send ``src[..., i, ...]`` (window ``i`` along ``axis``) to offset ``arg`` of its window
    in ``target``, whose element ``i*s + o`` along ``axis`` is offset ``o`` of window ``i``.

    Offsets ``o`` and ``o + s`` of windows ``i + 1`` and ``i`` land on the same element, so
    the offsets are taken by phase ``r = o % s``: the contributions of offsets ``r, r + s, ...``
    are added up in a contiguous buffer (window ``i``'s offset ``r + t*s`` at position
    ``i + t``) and written with one strided assignment per phase. Every target element of a
    phase ``r < min(k, s)`` up to the last window's end is assigned, so only elements beyond
    it, or in the gaps of a stride larger than the kernel, must be zeroed by the caller.
    ``buffers`` are ``(mask, scratch, wide)``: bool and float of ``src``'s shape, and float
    with ``axis`` longer by ``ceil(k / s) - 1``.
    """
    mask, scratch, wide = buffers
    count = src.shape[axis]
    for r in range(min(s, k)):
        offsets = range(r, k, s)
        span = count + len(offsets) - 1
        dest = target[_along(axis, slice(r, r + (span - 1) * s + 1, s))]
        np.equal(arg, arg.dtype.type(r), out=mask)
        if len(offsets) == 1:  # no overlap: straight into the target
            np.multiply(src, mask, out=dest)
            continue
        acc = wide[_along(axis, slice(0, span))]
        np.multiply(src, mask, out=acc[_along(axis, slice(0, count))])
        acc[_along(axis, slice(count, span))] = 0
        for t, o in enumerate(offsets[1:], start=1):
            np.equal(arg, arg.dtype.type(o), out=mask)
            acc[_along(axis, slice(t, t + count))] += np.multiply(src, mask, out=scratch)
        np.copyto(dest, acc)


def max_pool_forward_planes(
    x: np.ndarray, g: PoolGeometry, buffer_hw: tuple[int, int]
) -> tuple[np.ndarray, MaxPoolArgmax]:
    """Max-pool ``x: (P, H, W)`` (``P = N * C``); returns ``out: (P, OH, OW)`` and the argmax.

    ``buffer_hw`` is the size of the ``-inf`` padded input that every window fits into; the
    padding is done chunk by chunk, never for the whole input at once.
    """
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = g.kernel, g.stride, g.padding, g.out_hw
    planes, h, w = x.shape
    hu = (oh - 1) * sh + kh
    out = np.empty((planes, oh, ow), dtype=x.dtype)
    arg = MaxPoolArgmax(
        np.empty((planes, oh, ow), dtype=_index_dtype(kh)),
        np.empty((planes, hu, ow), dtype=_index_dtype(kw)),
    )
    chunks = _plane_chunks(planes, buffer_hw, x.itemsize)
    needs_margin = buffer_hw != (h, w) or (ph, pw) != (0, 0)

    def start() -> Callable[[slice], None]:
        n = chunks[0].stop - chunks[0].start  # the largest chunk
        padded = None
        if needs_margin:  # the margin stays -inf, chunk after chunk
            padded = np.full((n, *buffer_hw), -np.inf, dtype=x.dtype)
        colmax = np.empty((n, hu, ow), dtype=x.dtype)
        flag = np.empty((n, hu, ow), dtype=bool)
        scratch_cols = np.empty((n, hu, ow), dtype=arg.cols.dtype)
        scratch_rows = np.empty((n, oh, ow), dtype=arg.rows.dtype)

        def work(rows: slice) -> None:
            b = rows.stop - rows.start
            src = x[rows]
            if padded is not None:
                padded[:b, ph : ph + h, pw : pw + w] = src
                src = padded[:b]
            # Step 1, along the rows; step 2, down the columns of the row maxima.
            cm = colmax[:b]
            _max_with_argmax(
                _taps(src[:, :hu], 2, kw, sw, ow), cm, arg.cols[rows], flag[:b], scratch_cols[:b]
            )
            _max_with_argmax(
                _taps(cm, 1, kh, sh, oh), out[rows], arg.rows[rows], flag[:b, :oh], scratch_rows[:b]
            )

        return work

    map_chunks(start, chunks)
    return out, arg


def max_pool_backward_planes(
    dout: np.ndarray, arg: MaxPoolArgmax, g: PoolGeometry, buffer_hw: tuple[int, int]
) -> np.ndarray:
    """Route ``dout: (P, OH, OW)`` to each window's first maximum; returns ``dx: (P, H, W)``.

    An element that is the maximum of several overlapping windows receives the sum of their
    gradients.
    """
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = g.kernel, g.stride, g.padding, g.out_hw
    h, w = g.x_shape[2:]
    planes = dout.shape[0]
    hu = (oh - 1) * sh + kh
    dx = np.empty((planes, h, w), dtype=dout.dtype)
    # _scatter assigns every element up to the last window's end (HU rows, WU columns), except
    # in the gaps between windows of a stride larger than the kernel.
    wu = (ow - 1) * sw + kw
    gaps = sh > kh or sw > kw
    direct = buffer_hw == (h, w) and (ph, pw) == (0, 0)  # no margin: write into dx itself
    chunks = _plane_chunks(planes, buffer_hw, dout.itemsize)

    def start() -> Callable[[slice], None]:
        n = chunks[0].stop - chunks[0].start  # the largest chunk
        padded = None if direct else np.empty((n, *buffer_hw), dtype=dout.dtype)
        rowgrad = np.empty((n, hu, ow), dtype=dout.dtype)
        mask = np.empty((n, hu, ow), dtype=bool)
        scratch = np.empty((n, hu, ow), dtype=dout.dtype)
        wide_rows = np.empty((n, oh + -(-kh // sh) - 1, ow), dtype=dout.dtype)
        wide_cols = np.empty((n, hu, ow + -(-kw // sw) - 1), dtype=dout.dtype)

        def work(rows: slice) -> None:
            b = rows.stop - rows.start
            target = dx[rows] if padded is None else padded[:b]
            rg = rowgrad[:b]
            if gaps:
                rg.fill(0)
                target.fill(0)
            else:
                target[:, hu:] = 0
                target[:, :hu, wu:] = 0
            row_buffers = (mask[:b, :oh], scratch[:b, :oh], wide_rows[:b])
            _scatter(dout[rows], arg.rows[rows], rg, 1, kh, sh, row_buffers)
            col_buffers = (mask[:b], scratch[:b], wide_cols[:b])
            _scatter(rg, arg.cols[rows], target[:, :hu], 2, kw, sw, col_buffers)
            if padded is not None:
                dx[rows] = target[:, ph : ph + h, pw : pw + w]

        return work

    map_chunks(start, chunks)
    return dx


def _plane_chunks(planes: int, buffer_hw: tuple[int, int], itemsize: int) -> list[slice]:
    """Slices of the planes, each about ``CHUNK_BYTES`` of (padded) input, at least one plane;
    only the last may be shorter."""
    step = max(1, CHUNK_BYTES // (buffer_hw[0] * buffer_hw[1] * itemsize))
    return [slice(start, min(start + step, planes)) for start in range(0, planes, step)]

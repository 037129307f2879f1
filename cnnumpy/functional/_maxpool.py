"""The max-pooling kernel behind ``pool.max_pool2d_forward`` / ``max_pool2d_backward``.

The input is seen as ``P = N * C`` planes of ``(H, W)`` and worked on in chunks of planes that
stay in the CPU's caches, shared out between threads (``_parallel.map_chunks``); each chunk
writes its own planes of the results, so nothing depends on which thread did what.

Forward: for kernel position ``k = p * KW + q`` (row-major), the strided view
``buf[:, p::SH, q::SW]`` (cut to ``(OH, OW)``) holds, for every window at once, the element at
offset ``(p, q)`` of the window (``buf`` is the chunk in its ``-inf`` padded buffer). Going
through the positions in order, a view replaces the running maximum only where it is strictly
greater, and ``argmax = max(argmax, k * (view > out))`` records that position: the first
maximum in row-major order wins on ties, PyTorch's rule. The argmax is a small unsigned
integer (uint8 for kernels of up to 256 positions, e.g. 16x16), one per output element; the
cache keeps it instead of the input.

Backward: position ``k`` of every window gets ``dout * (argmax == k)`` through the same views.
Positions below the stride in both directions tile the buffer and assign; where windows overlap
(stride < kernel) the other positions land on elements already written and add. Masks are
applied by multiplying with a boolean array: NumPy's ``where=`` is several times slower on
random masks.

(Separable maxima, first along the window's rows and then down them, do fewer comparisons for
large kernels, but measured on 2x2/2 and 3x3/2 pooling they were no faster at the benchmark
sizes and up to twice as slow on LeNet-sized inputs: more, shorter NumPy calls.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._parallel import chunk_slices, map_chunks
from ._pool_windows import PoolGeometry, window_views

# Input bytes per chunk of planes. Measured on (128, 64, 32, 32) float32, on an AMD EPYC (512 KiB
# L2 per core) and a Xeon (2 MiB): 512 KiB to 2 MiB chunks run equally fast; smaller ones pay
# NumPy's per-call overhead on short arrays (256 KiB: 10-25% slower), larger ones leave the caches.
CHUNK_BYTES = 2**20


def index_dtype(positions: int) -> np.dtype:
    """The smallest unsigned integer type that holds kernel positions ``0 .. positions - 1``."""
    return np.min_scalar_type(positions - 1)


def max_pool_forward_planes(
    x: np.ndarray, g: PoolGeometry, buffer_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Max-pool ``x: (P, H, W)``; returns ``out: (P, OH, OW)`` and ``argmax: (P, OH, OW)``, the
    row-major kernel position ``p * KW + q`` of each window's first maximum.

    ``buffer_hw`` is the size of the ``-inf`` padded input that every window fits into; the
    padding is done chunk by chunk, never for the whole input at once. NaN propagates to
    ``out`` (np.maximum); the argmax of a window holding NaN is unspecified.
    """
    (ph, pw), (oh, ow) = g.padding, g.out_hw
    planes, h, w = x.shape
    out = np.empty((planes, oh, ow), dtype=x.dtype)
    argmax = np.empty((planes, oh, ow), dtype=index_dtype(g.kernel[0] * g.kernel[1]))
    chunks = _plane_chunks(planes, buffer_hw, x.itemsize)
    needs_margin = buffer_hw != (h, w) or (ph, pw) != (0, 0)

    def start() -> Callable[[slice], None]:
        n = chunks[0].stop - chunks[0].start  # the largest chunk
        padded = None
        if needs_margin:  # the margin stays -inf, chunk after chunk
            padded = np.full((n, *buffer_hw), -np.inf, dtype=x.dtype)
        flag = np.empty((n, oh, ow), dtype=bool)
        step = np.empty((n, oh, ow), dtype=argmax.dtype)

        def work(rows: slice) -> None:
            b = rows.stop - rows.start
            src = x[rows]
            if padded is not None:
                padded[:b, ph : ph + h, pw : pw + w] = src
                src = padded[:b]
            views = window_views(src, g)
            o, arg = out[rows], argmax[rows]
            if len(views) == 1:
                np.copyto(o, views[0])
                arg.fill(0)
                return
            np.greater(views[1], views[0], out=flag[:b])
            np.maximum(views[0], views[1], out=o)
            np.copyto(arg, flag[:b])  # 1 where position 1 won, else 0
            for k in range(2, len(views)):
                np.greater(views[k], o, out=flag[:b])
                np.maximum(o, views[k], out=o)
                # Positions come in increasing order: the latest strict improvement wins.
                np.maximum(arg, np.multiply(flag[:b], arg.dtype.type(k), out=step[:b]), out=arg)

        return work

    map_chunks(start, chunks)
    return out, argmax


def max_pool_backward_planes(
    dout: np.ndarray, argmax: np.ndarray, g: PoolGeometry, buffer_hw: tuple[int, int]
) -> np.ndarray:
    """Route ``dout: (P, OH, OW)`` to each window's first maximum; returns ``dx: (P, H, W)``.

    An element that is the maximum of several overlapping windows receives the sum of their
    gradients.
    """
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = g.kernel, g.stride, g.padding, g.out_hw
    h, w = g.x_shape[2:]
    planes = dout.shape[0]
    dx = np.empty((planes, h, w), dtype=dout.dtype)
    # Positions p < SH, q < SW assign rows [0, OH*SH) x columns [0, OW*SW) of the buffer;
    # only what lies beyond starts at zero (everything when a stride exceeds the kernel).
    gaps = sh > kh or sw > kw
    rows_set, cols_set = oh * sh, ow * sw
    direct = buffer_hw == (h, w) and (ph, pw) == (0, 0)  # no margin: write into dx itself
    chunks = _plane_chunks(planes, buffer_hw, dout.itemsize)

    def start() -> Callable[[slice], None]:
        n = chunks[0].stop - chunks[0].start  # the largest chunk
        padded = None if direct else np.empty((n, *buffer_hw), dtype=dout.dtype)
        mask = np.empty((n, oh, ow), dtype=bool)
        scratch = np.empty((n, oh, ow), dtype=dout.dtype)

        def work(rows: slice) -> None:
            b = rows.stop - rows.start
            target = dx[rows] if padded is None else padded[:b]
            if gaps:
                target.fill(0)
            else:
                target[:, rows_set:] = 0
                target[:, :rows_set, cols_set:] = 0
            d, arg = dout[rows], argmax[rows]
            for k, view in enumerate(window_views(target, g)):
                np.equal(arg, arg.dtype.type(k), out=mask[:b])
                if k // kw < sh and k % kw < sw:  # the first window to reach these elements
                    np.multiply(d, mask[:b], out=view)
                else:
                    view += np.multiply(d, mask[:b], out=scratch[:b])
            if padded is not None:
                dx[rows] = target[:, ph : ph + h, pw : pw + w]

        return work

    map_chunks(start, chunks)
    return dx


def _plane_chunks(planes: int, buffer_hw: tuple[int, int], itemsize: int) -> list[slice]:
    """Slices of the planes, each about ``CHUNK_BYTES`` of (padded) input, at least one plane;
    only the last may be shorter."""
    return chunk_slices(planes, buffer_hw[0] * buffer_hw[1] * itemsize, CHUNK_BYTES)

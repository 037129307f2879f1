"""The full-size passes of batch norm (``norm.py``), over chunks of samples on a few threads.

Every array here is an input seen as ``(N, C, K)``: ``K = H * W`` for spatial batch norm, 1 for
2-D input. Per-channel vectors ``(C,)`` broadcast as ``(C, 1)``. Each pass reads memory once;
within a pass, the element-wise steps run in place on a chunk of samples of about
``CHUNK_BYTES``, which stays in the CPU's caches between steps. The chunks are shared out between
threads (``_parallel.map_chunks``); per-chunk partial sums are added in chunk order, so results do
not depend on the number of threads.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ._parallel import chunk_slices, in_order_sum, map_chunks

# Bytes of x per chunk. Measured on (128, 64, 32, 32) float32 with two threads: 1 MiB chunks
# were the fastest on a Xeon (2 MiB L2; 256 KiB chunks 20% slower) and as fast as any on an
# AMD EPYC (512 KiB L2): the chunk and its scratch still sit in the L2 or L3 cache between
# the in-place steps, and there are few enough chunks for NumPy's per-call overhead not to show.
CHUNK_BYTES = 2**20


def as_3d(a: np.ndarray) -> np.ndarray:
    """``(N, C)`` or ``(N, C, H, W)`` as ``(N, C, K)``: channel-wise work over one inner axis."""
    # K spelled out: NumPy cannot infer a -1 in the shape of an empty array.
    return a.reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:]))


def _chunks(a3: np.ndarray) -> list[slice]:
    """Slices of the batch axis of ``a3: (N, C, K)``, each about ``CHUNK_BYTES`` of it."""
    return chunk_slices(a3.shape[0], a3[:1].nbytes, CHUNK_BYTES)


def _channel_dot(a3: np.ndarray, b3: np.ndarray) -> np.ndarray:
    """``sum(a * b)`` over axes 0 and 2 of ``(n, C, K)`` arrays: ``(C,)``, no full-size temporary.

    ``np.vecdot`` runs a SIMD dot product along each ``K`` row; for short rows (K = 1 in the
    2-D case) einsum's reduction is faster than a call per row.
    """
    if a3.shape[2] < 16:
        return np.einsum("nck,nck->c", a3, b3)
    return np.vecdot(a3, b3).sum(axis=0)


def _channel_sum(a3: np.ndarray) -> np.ndarray:
    """``sum(a)`` over axes 0 and 2 of ``a3: (n, C, K)``: ``(C,)``."""
    if a3.shape[2] < 16:
        return a3.sum(axis=(0, 2))
    return np.vecdot(a3, np.ones(a3.shape[2], dtype=a3.dtype)).sum(axis=0)


def channel_sum(a3: np.ndarray) -> np.ndarray:
    """``sum(a)`` per channel: ``(C,)``."""
    return in_order_sum(map_chunks(lambda: lambda rows: _channel_sum(a3[rows]), _chunks(a3)))


# Inputs up to this size keep x - mean for the backward (see keeps_centred). 8 MiB kept a copy
# of every ResNet-20 stage-1 activation at batch 128: 92 MiB more at the peak of a training
# step, with no measurable gain in its time.
KEEP_CENTRED_BYTES = 2**20


def keeps_centred(x3: np.ndarray) -> bool:
    """Whether batch norm keeps ``x - mean`` for the backward: inputs of at most 1 MiB.

    Such an input mostly stays in the caches, so its passes are bound by the number of NumPy
    operations, and keeping ``x - mean`` saves recomputing it three times (15-50% of the time
    at 1-5 MiB, measured). A larger input recomputes it chunk by chunk: that costs no memory
    (a kept copy doubles what batch norm holds for the backward) and less memory traffic than
    writing and reading back a copy that does not fit in the caches.
    """
    return x3.nbytes <= KEEP_CENTRED_BYTES


def centred_squares(
    x3: np.ndarray, mean: np.ndarray, centred: np.ndarray | None = None
) -> np.ndarray:
    """``sum((x - mean) ** 2)`` per channel: ``(C,)``. ``x - mean`` is written to ``centred``
    when given (an ``(N, C, K)`` array), else it exists only chunk-sized."""
    chunks = _chunks(x3)

    def start() -> Callable[[slice], np.ndarray]:
        scratch = np.empty_like(x3[chunks[0]]) if centred is None else None

        def work(rows: slice) -> np.ndarray:
            dest = scratch[: rows.stop - rows.start] if centred is None else centred[rows]
            xc = np.subtract(x3[rows], mean[:, None], out=dest)
            return _channel_dot(xc, xc)

        return work

    return in_order_sum(map_chunks(start, chunks))


def normalise(
    x3: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray | None,
    centred: np.ndarray | None = None,
) -> np.ndarray:
    """``out = (x - mean) * scale + bias`` (bias may be None), a new ``(N, C, K)`` array;
    ``centred``, when given, already holds ``x - mean``.

    The centring comes first, as in the formula: ``x * scale + (bias - mean * scale)`` would
    save a step but lose digits to cancellation when ``|mean|`` is large against the spread.
    """
    out3 = np.empty_like(x3)
    mean2, scale2 = mean[:, None], scale[:, None]
    bias2 = None if bias is None else bias[:, None]

    def work(rows: slice) -> None:
        if centred is None:
            o = np.subtract(x3[rows], mean2, out=out3[rows])
            o *= scale2
        else:
            o = np.multiply(centred[rows], scale2, out=out3[rows])
        if bias2 is not None:
            o += bias2

    map_chunks(lambda: work, _chunks(x3))
    return out3


def backward_sums(
    x3: np.ndarray, dout3: np.ndarray, mean: np.ndarray, centred: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(sum(dout), sum(dout * (x - mean)))`` per channel, in one pass over x and dout."""
    chunks = _chunks(x3)

    def start() -> Callable[[slice], tuple[np.ndarray, np.ndarray]]:
        scratch = np.empty_like(x3[chunks[0]]) if centred is None else None

        def work(rows: slice) -> tuple[np.ndarray, np.ndarray]:
            if centred is None:
                xc = np.subtract(x3[rows], mean[:, None], out=scratch[: rows.stop - rows.start])
            else:
                xc = centred[rows]
            return _channel_sum(dout3[rows]), _channel_dot(dout3[rows], xc)

        return work

    sums = map_chunks(start, chunks)
    return in_order_sum([s[0] for s in sums]), in_order_sum([s[1] for s in sums])


def input_grad(
    x3: np.ndarray,
    dout3: np.ndarray,
    mean: np.ndarray,
    coefficients: tuple[np.ndarray, np.ndarray, np.ndarray],
    centred: np.ndarray | None = None,
) -> np.ndarray:
    """``dx = ((x - mean) * centred_factor + dout - shift) * scale``, a new ``(N, C, K)`` array,
    for ``coefficients = (centred_factor, shift, scale)``; ``centred`` may hold ``x - mean``."""
    dx3 = np.empty_like(x3)
    mean2 = mean[:, None]
    factor2, shift2, scale2 = (v[:, None] for v in coefficients)

    def work(rows: slice) -> None:
        if centred is None:
            d = np.subtract(x3[rows], mean2, out=dx3[rows])
            d *= factor2
        else:
            d = np.multiply(centred[rows], factor2, out=dx3[rows])
        d += dout3[rows]
        d -= shift2
        d *= scale2

    map_chunks(lambda: work, _chunks(x3))
    return dx3

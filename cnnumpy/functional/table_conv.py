"""Partial convolution over a connection table (LeNet-5's C3; Torch7's ``SpatialConvolutionMap``).

LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document recognition"
(Proc. IEEE, 1998), section II.B and Table I: output map ``f`` sees only some input maps, so
that the maps are forced to differ (the symmetry between them is broken) with fewer parameters
than a full convolution.

Representation: one ``KH x KW`` kernel per *connection* ``k``, an (output map ``out_index[k]``,
input map ``in_index[k]``) pair, stacked into ``weight: (K, KH, KW)``, plus one bias per output
map; so the parameters hold no masked-out zeros.

Computation: the kernels are scattered into a dense ``(F, C, KH, KW)`` weight that is zero where
the table has no connection, and that dense weight goes through one ``conv2d_forward`` call.
The zeros add nothing to the sums, so the output is exactly the partial convolution; and since
the scatter is linear, its backward is the gather: ``dweight[k] = ddense[out[k], in[k]]``. One
large matrix product over all maps is faster than one small product per output map, even though
it multiplies the absent connections by zero (LeNet-5's C3: 96 kernels instead of 60).
``table_conv2d_forward_naive`` is the loop over connections that the tests compare against.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .conv import Conv2dCache, conv2d_backward, conv2d_forward
from .curvature import conv2d_curvature


class TableConv2dCache(NamedTuple):
    conv: Conv2dCache  # the dense convolution's cache
    out_index: np.ndarray  # (K,) output map of each connection
    in_index: np.ndarray  # (K,) input map of each connection


def table_conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    out_index: np.ndarray,
    in_index: np.ndarray,
    out_channels: int,
) -> tuple[np.ndarray, TableConv2dCache]:
    """Partial convolution: output map ``f`` sums only over the connections ``k`` with
    ``out_index[k] == f``, each reading input map ``in_index[k]`` through kernel ``weight[k]``.

    Shapes: ``x: (N, C, H, W)``; ``weight: (K, KH, KW)`` for ``K`` connections; ``bias: (F,)`` or
    None; ``out_index``, ``in_index``: ``(K,)`` integers in ``[0, F)`` and ``[0, C)``, each pair at
    most once; ``out: (N, F, H', W')`` with ``H' = H - KH + 1`` (stride 1, no padding)::

        out[n, f, i, j] = b[f] + sum_{k: out_index[k] = f} sum_{u, v}
                          weight[k, u, v] * x[n, in_index[k], i + u, j + v]
    """
    if weight.ndim != 3 or weight.shape[0] != out_index.shape[0]:
        raise ValueError(
            f"weight must be (connections={out_index.shape[0]}, KH, KW), got {weight.shape}"
        )
    if out_index.shape != in_index.shape:
        raise ValueError(f"out_index {out_index.shape} and in_index {in_index.shape} must match")
    dense = np.zeros((out_channels, x.shape[1], *weight.shape[1:]), dtype=weight.dtype)
    dense[out_index, in_index] = weight
    out, conv_cache = conv2d_forward(x, dense, bias)
    return out, TableConv2dCache(conv_cache, out_index, in_index)


def table_conv2d_backward(
    dout: np.ndarray, cache: TableConv2dCache, *, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of ``table_conv2d_forward``: ``(dx, dweight, dbias)`` shaped like ``x``,
    ``weight`` and ``bias`` (``dx`` None with ``input_grad=False``).

    The dense weight is ``D[out_index[k], in_index[k]] = weight[k]`` and zero elsewhere, so by the
    chain rule ``dweight[k] = dD[out_index[k], in_index[k]]``, where ``dD`` is the full
    convolution's weight gradient; the gradients at the absent connections are dropped (they
    would update nothing). ``dx`` and ``dbias`` are the dense convolution's: an absent connection
    carries a zero weight, so it adds nothing to ``dx``.
    """
    dx, ddense, dbias = conv2d_backward(dout, cache.conv, input_grad=input_grad)
    return dx, ddense[cache.out_index, cache.in_index], dbias


def table_conv2d_curvature(
    h_out: np.ndarray, cache: TableConv2dCache, *, input_curvature: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Diagonal Gauss-Newton curvature ``(h_x, h_weight, h_bias)`` (see ``conv2d_curvature``).

    The same gather as the gradient's: the dense convolution's ``h`` at each table connection.
    An absent connection's weight is zero, and so is its square, so it adds nothing to ``h_x``.
    """
    h_x, h_dense, h_bias = conv2d_curvature(h_out, cache.conv, input_curvature=input_curvature)
    return h_x, h_dense[cache.out_index, cache.in_index], h_bias


def table_conv2d_forward_naive(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    out_index: np.ndarray,
    in_index: np.ndarray,
    out_channels: int,
) -> np.ndarray:
    """Reference for ``table_conv2d_forward`` (same arguments and output): one single-channel
    correlation per connection, written as a loop over the kernel taps and added into its
    output map."""
    kh, kw = weight.shape[1:]
    n, _, h, w = x.shape
    oh, ow = h - kh + 1, w - kw + 1
    out = np.zeros((n, out_channels, oh, ow), dtype=x.dtype)
    for k, (f, c) in enumerate(zip(out_index, in_index, strict=True)):
        for u in range(kh):
            for v in range(kw):
                out[:, f] += weight[k, u, v] * x[:, c, u : u + oh, v : v + ow]
    if bias is not None:
        out += bias[None, :, None, None]
    return out

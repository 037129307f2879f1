"""LeNet-5's C3: a convolution in which each output map reads only some of the input maps.

LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document recognition"
(Proc. IEEE, 1998), section II.B and Table I: C3 has 16 maps of 10x10, and map ``j`` sees only the
S2 maps listed in row ``j`` of a connection table, so that the maps are forced to differ (the
symmetry between them is broken) and the layer has 1,516 trainable parameters rather than the
2,416 of a full 6 -> 16 convolution. Torch7 called such a layer ``SpatialConvolutionMap``.

Representation: one ``KH x KW`` kernel per *connection* (an (output map, input map) pair of the
table), stacked in table order into ``weight: (connections, KH, KW)``, plus one bias per output
map. So the module holds exactly the table's parameters, no masked-out zeros among them.

Computation: the kernels are scattered into a dense ``(F, C, KH, KW)`` weight that is zero where
the table has no connection, and that dense weight goes through one ``conv2d_forward`` call.
The zeros add nothing to the sums, so the output is exactly the partial convolution; and since
the scatter is linear, its backward is the gather: ``dweight[k] = ddense[out[k], in[k]]``. One
large matrix product over all maps is faster than sixteen small ones over the selected maps,
even though it multiplies the absent connections by zero (96 kernels instead of LeNet-5's 60).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .. import functional as F
from .. import nn
from ..functional.conv import Conv2dCache
from ..nn.module import default_rng

# Table I of the paper: the S2 maps read by each C3 map. The first six read three contiguous
# maps, the next six four contiguous maps, the next three four non-contiguous maps, the last all.
LENET5_C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip


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
    dense = np.zeros((out_channels, x.shape[1], *weight.shape[1:]), dtype=weight.dtype)
    dense[out_index, in_index] = weight
    out, conv_cache = F.conv2d_forward(x, dense, bias)
    return out, TableConv2dCache(conv_cache, out_index, in_index)


def table_conv2d_backward(
    dout: np.ndarray, cache: TableConv2dCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of ``table_conv2d_forward``: ``(dx, dweight, dbias)``.

    The dense weight is ``D[out_index[k], in_index[k]] = weight[k]`` and zero elsewhere, so by the
    chain rule ``dweight[k] = dD[out_index[k], in_index[k]]``, where ``dD`` is the full
    convolution's weight gradient; the gradients at the absent connections are dropped (they
    would update nothing). ``dx`` and ``dbias`` are the dense convolution's: an absent connection
    carries a zero weight, so it adds nothing to ``dx``.
    """
    dx, ddense, dbias = F.conv2d_backward(dout, cache.conv)
    return dx, ddense[cache.out_index, cache.in_index], dbias


def table_conv2d_curvature(
    hout: np.ndarray, cache: TableConv2dCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Diagonal Gauss-Newton curvature ``(h_x, h_weight, h_bias)`` (see ``F.conv2d_curvature``).

    The same gather as the gradient's: the dense convolution's ``h`` at each table connection.
    An absent connection's weight is zero, and so is its square, so it adds nothing to ``h_x``.
    """
    h_x, h_dense, h_bias = F.conv2d_curvature(hout, cache.conv)
    return h_x, h_dense[cache.out_index, cache.in_index], h_bias


def table_conv2d_forward_naive(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
    out_index: np.ndarray, in_index: np.ndarray, out_channels: int,
) -> np.ndarray:  # fmt: skip
    """Reference: one single-channel correlation per connection, added into its output map."""
    kh, kw = weight.shape[1:]
    n, _, h, w = x.shape
    out = np.zeros((n, out_channels, h - kh + 1, w - kw + 1), dtype=x.dtype)
    for k, (f, c) in enumerate(zip(out_index, in_index, strict=True)):
        for u in range(kh):
            for v in range(kw):
                out[:, f] += weight[k, u, v] * x[:, c, u : u + h - kh + 1, v : v + w - kw + 1]
    if bias is not None:
        out += bias[None, :, None, None]
    return out


class TableConv2d(nn.Module):
    """A 5x5 (or ``kernel_size``) stride-1 convolution restricted to a connection table.

    ``table[f]`` lists the input maps that output map ``f`` reads. Parameters: ``weight:
    (connections, KH, KW)`` with one kernel per (output map, input map) pair in table order, and
    ``bias: (len(table),)``. Shape: ``(N, in_channels, H, W) -> (N, len(table), H-KH+1, W-KW+1)``.

    Initialised as in the paper's Appendix C: weights and biases uniform in ``+-2.4 / F_i`` with
    ``F_i = len(table[f]) * KH * KW`` the fan-in of a unit of output map ``f``.

    ``connections``/``multiply_adds`` count as the paper does (``cnnumpy.summary`` uses them): a
    connection is one input or bias feeding one output unit, so C3 has ``10*10 * (60*25 + 16) =
    151,600`` connections and ``150,000`` multiply-adds per sample.
    """

    def __init__(
        self,
        in_channels: int,
        table: Sequence[Sequence[int]],
        kernel_size: int = 5,
        bias: bool = True,
        *,
        rng: np.random.Generator | None = None,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        pairs = [(f, c) for f, inputs in enumerate(table) for c in inputs]
        for f, inputs in enumerate(table):
            if not inputs or len(set(inputs)) != len(inputs):
                raise ValueError(f"table row {f} must list distinct input maps, got {inputs}")
            if not all(0 <= c < in_channels for c in inputs):
                raise ValueError(f"table row {f} names maps outside [0, {in_channels}): {inputs}")
        self.in_channels, self.out_channels = in_channels, len(table)
        self.table = tuple(tuple(int(c) for c in inputs) for inputs in table)
        self.kernel_size = kernel_size
        self.out_index = np.array([f for f, _ in pairs], dtype=np.intp)
        self.in_index = np.array([c for _, c in pairs], dtype=np.intp)
        rng = default_rng(rng)
        area = kernel_size * kernel_size
        fan_in = np.array([len(inputs) * area for inputs in self.table], dtype=np.float64)
        bound = (2.4 / fan_in)[self.out_index][:, None, None]
        shape = (len(pairs), kernel_size, kernel_size)
        self.weight = nn.Parameter(rng.uniform(-bound, bound, shape).astype(dtype))
        self.bias = (
            nn.Parameter(rng.uniform(-2.4 / fan_in, 2.4 / fan_in).astype(dtype)) if bias else None
        )
        self._cache: TableConv2dCache | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, H, W) input, got {x.shape}")
        b = self.bias.data if self.bias is not None else None
        out, self._cache = table_conv2d_forward(
            x, self.weight.data, b, self.out_index, self.in_index, self.out_channels
        )
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("TableConv2d.backward called before forward")
        dx, dw, db = table_conv2d_backward(dout, self._cache)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("TableConv2d.curvature_backward called before forward")
        h_x, h_w, h_b = table_conv2d_curvature(h_out, self._cache)
        self._add_curvature(h_w, h_b)
        return h_x

    def connections(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
        bias = self.out_channels if self.bias is not None else 0
        return out_shape[2] * out_shape[3] * (self.weight.data.size + bias)

    def multiply_adds(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
        return out_shape[2] * out_shape[3] * self.weight.data.size

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={len(self.out_index)}" + (", bias=False" if self.bias is None else "")
        )

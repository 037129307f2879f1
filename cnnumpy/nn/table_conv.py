"""``TableConv2d``: a convolution in which each output map reads only the input maps a
connection table lists (LeNet-5's C3). The kernels are in :mod:`cnnumpy.functional.table_conv`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import functional as F
from .module import Module, default_rng, format_args
from .parameter import Parameter


class TableConv2d(Module):
    """A ``kernel_size`` x ``kernel_size``, stride-1 convolution restricted to a connection table.

    ``table[f]`` lists the input maps that output map ``f`` reads. Parameters: ``weight:
    (connections, KH, KW)`` with one kernel per (output map, input map) pair in table order, and
    ``bias: (len(table),)``. Shape: ``(N, in_channels, H, W) -> (N, len(table), H-KH+1, W-KW+1)``;
    an empty batch gives an empty output, an empty ``dx`` and zero gradients.

    Initialised as in LeCun et al. 1998, Appendix C: weights and biases uniform in ``+-2.4 / F_i``
    with ``F_i = len(table[f]) * KH * KW`` the fan-in of a unit of output map ``f``.

    ``connections``/``multiply_adds`` count as the paper does (``summary`` uses them): a
    connection is one input or bias feeding one output unit, so LeNet-5's C3 has ``10*10 *
    (60*25 + 16) = 151,600`` connections and ``150,000`` multiply-adds per sample.
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
        for f, inputs in enumerate(table):
            if not inputs or len(set(inputs)) != len(inputs):
                raise ValueError(f"table row {f} must list distinct input maps, got {inputs}")
            if not all(0 <= c < in_channels for c in inputs):
                raise ValueError(f"table row {f} names maps outside [0, {in_channels}): {inputs}")
        self.in_channels, self.out_channels = in_channels, len(table)
        self.table = tuple(tuple(int(c) for c in inputs) for inputs in table)
        self.kernel_size = kernel_size
        pairs = [(f, c) for f, inputs in enumerate(self.table) for c in inputs]
        self.out_index = np.array([f for f, _ in pairs], dtype=np.intp)
        self.in_index = np.array([c for _, c in pairs], dtype=np.intp)
        self.weight = Parameter(np.empty((len(pairs), kernel_size, kernel_size), dtype=dtype))
        self.bias = Parameter(np.empty(self.out_channels, dtype=dtype)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Weight, then bias, uniform in ``+-2.4 / F_i`` (class docstring), in that order."""
        rng = default_rng(rng)
        area = self.kernel_size * self.kernel_size
        fan_in = np.array([len(inputs) * area for inputs in self.table], dtype=np.float64)
        bound = (2.4 / fan_in)[self.out_index][:, None, None]
        self.weight.data[...] = rng.uniform(-bound, bound, self.weight.shape)
        if self.bias is not None:
            self.bias.data[...] = rng.uniform(-2.4 / fan_in, 2.4 / fan_in)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, H, W) input, got {x.shape}")
        b = self.bias.data if self.bias is not None else None
        out, cache = F.table_conv2d_forward(
            x, self.weight.data, b, self.out_index, self.in_index, self.out_channels
        )
        self.save_for_backward(cache)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """``dx`` (None after ``set_input_grad(False)``); accumulates the parameters' grads."""
        cache = self.take_saved("backward")
        dx, dw, db = F.table_conv2d_backward(dout, cache, input_grad=self.input_grad)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray | None:
        cache = self.take_saved("curvature_backward")
        h_x, h_w, h_b = F.table_conv2d_curvature(h_out, cache, input_curvature=self.input_grad)
        self._add_curvature(h_w, h_b)
        return h_x

    def connections(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
        """Inputs and biases feeding the output units of one sample: ``H'W' (K KH KW + F)``."""
        bias = self.out_channels if self.bias is not None else 0
        return out_shape[2] * out_shape[3] * (self.weight.data.size + bias)

    def multiply_adds(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
        """Weight-times-input products for one sample: ``H'W' K KH KW``."""
        return out_shape[2] * out_shape[3] * self.weight.data.size

    def extra_repr(self) -> str:
        return format_args(
            self.in_channels,
            self.out_channels,
            f"connections={len(self.out_index)}",
            kernel_size=(self.kernel_size, 5),
            bias=(self.bias is not None, True),
        )

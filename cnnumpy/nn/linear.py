"""Fully connected layers and the reshape between conv and linear parts."""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .. import init
from .module import Module, default_rng, format_args
from .parameter import Parameter


class Linear(Module):
    """``y = x W^T + b`` over the flattened trailing dimensions of ``x``.

    Shape: ``x: (N, *)`` with ``in_features`` values per sample -> ``(N, out_features)``.
    ``weight: (out_features, in_features)``, ``bias: (out_features,)``. An empty batch gives
    a ``(0, out_features)`` output, an empty ``dx`` and zero gradients, as in PyTorch.
    Default initialisation is PyTorch's: weight and bias uniform in ``+-1/sqrt(in_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        rng: np.random.Generator | None = None,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        self.bias = Parameter(np.empty((out_features,), dtype=dtype)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """PyTorch's default: weight, then bias, uniform in ``+-1/sqrt(in_features)``, drawn
        from ``rng`` in that order."""
        rng = default_rng(rng)
        dtype = self.weight.dtype
        self.weight.data[...] = init.default_weight(self.weight.shape, rng, dtype=dtype)
        if self.bias is not None:
            self.bias.data[...] = init.default_bias(
                self.bias.shape, self.in_features, rng, dtype=dtype
            )

    def forward(self, x: np.ndarray) -> np.ndarray:
        b = self.bias.data if self.bias is not None else None
        out, cache = F.linear_forward(x, self.weight.data, b)
        self.save_for_backward(cache)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx, dw, db = F.linear_backward(dout, self.take_saved("backward"))
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray:
        h_x, h_w, h_b = F.linear_curvature(h_out, self.take_saved("curvature_backward"))
        self._add_curvature(h_w, h_b)
        return h_x

    def extra_repr(self) -> str:
        return format_args(
            f"in_features={self.in_features}",
            f"out_features={self.out_features}",
            bias=(self.bias is not None, True),
        )


class Flatten(Module):
    """``(N, d_1, ..., d_k) -> (N, d_1 * ... * d_k)``; backward restores the shape.

    An empty batch flattens to ``(0, d_1 * ... * d_k)``, as in PyTorch.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.save_for_backward(x.shape)
        # The size spelled out: NumPy cannot infer a -1 in the shape of an empty array.
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.reshape(self.take_saved("backward"))

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray:
        # A reshape's Jacobian is a permutation matrix, its own elementwise square.
        return h_out.reshape(self.take_saved("curvature_backward"))

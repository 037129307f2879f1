"""Fully connected layers and the reshape between conv and linear parts."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import init
from .module import Module, default_rng
from .parameter import Parameter


class Linear(Module):
    """``y = x W^T + b`` over the flattened trailing dimensions of ``x``.

    Shape: ``x: (N, *)`` with ``in_features`` values per sample -> ``(N, out_features)``.
    ``weight: (out_features, in_features)``, ``bias: (out_features,)``.
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
        rng = default_rng(rng)
        self.weight = Parameter(init.default_weight((out_features, in_features), rng, dtype=dtype))
        self.bias = (
            Parameter(init.default_bias((out_features,), in_features, rng, dtype=dtype))
            if bias
            else None
        )
        self._cache = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        b = self.bias.data if self.bias is not None else None
        out, self._cache = F.linear_forward(x, self.weight.data, b)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx, dw, db = F.linear_backward(dout, self._cache)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray:
        h_x, h_w, h_b = F.linear_curvature(h_out, self._cache)
        self._add_curvature(h_w, h_b)
        return h_x

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Flatten(Module):
    """``(N, d_1, ..., d_k) -> (N, d_1 * ... * d_k)``; backward restores the shape."""

    def __init__(self) -> None:
        super().__init__()
        self._shape: tuple[int, ...] = ()

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.reshape(self._shape)

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray:
        return h_out.reshape(self._shape)  # a reshape's Jacobian is a permutation matrix

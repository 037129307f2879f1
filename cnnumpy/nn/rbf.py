"""LeNet-5's Euclidean RBF output layer."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .module import Module, default_rng, format_args
from .parameter import Parameter


class RBFOutput(Module):
    """LeNet-5's Euclidean RBF output layer: ``y_i = sum_j (x_j - weight[i, j])^2``.

    Each output is a *penalty*: the squared distance of the input to class ``i``'s prototype,
    so the prediction is the class with the smallest output. Shape: ``(N, in_features) ->
    (N, out_features)``; ``weight: (out_features, in_features)``. The 1998 paper fixes the
    prototypes (``trainable=False``: the weight gets no gradient and optimisers skip it).
    Without given ``prototypes`` they are drawn at random from {-1, +1} (``reset_parameters``).
    An empty batch gives an empty output, an empty ``dx`` and a zero prototype gradient.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        prototypes: np.ndarray | None = None,
        trainable: bool = False,
        *,
        rng: np.random.Generator | None = None,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        if prototypes is not None and prototypes.shape != (out_features, in_features):
            raise ValueError(
                f"prototypes must have shape ({out_features}, {in_features}), "
                f"got {prototypes.shape}"
            )
        self.in_features, self.out_features, self.trainable = in_features, out_features, trainable
        shape = (out_features, in_features)
        self.weight = Parameter(np.empty(shape, dtype=dtype), requires_grad=trainable)
        if prototypes is None:
            self.reset_parameters(rng)
        else:
            self.weight.data[...] = prototypes

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Random prototypes: each component -1 or +1 with equal probability, from ``rng``."""
        shape = (self.out_features, self.in_features)
        self.weight.data[...] = default_rng(rng).choice([-1.0, 1.0], size=shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, cache = F.rbf_forward(x, self.weight.data)
        self.save_for_backward(cache)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx, dw = F.rbf_backward(dout, self.take_saved("backward"))
        if self.trainable:
            self.weight.grad += dw
        return dx

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray:
        h_x, h_w = F.rbf_curvature(h_out, self.take_saved("curvature_backward"))
        if self.trainable:
            self.weight.add_curvature(h_w)
        return h_x

    def extra_repr(self) -> str:
        return format_args(
            f"in_features={self.in_features}",
            f"out_features={self.out_features}",
            trainable=(self.trainable, False),
        )

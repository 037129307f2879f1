"""Activation layers. Each is a kernel pair from ``cnnumpy.functional.activation``.

They work on inputs of any shape and layout; an empty batch gives an empty output and ``dx``
(and PReLU a zero slope gradient), as in PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .module import Module, default_rng, format_args
from .parameter import Parameter
from .stateless import StatelessLayer


class ReLU(StatelessLayer):
    """``max(0, x)``."""

    kernel_forward = staticmethod(F.relu_forward)
    kernel_backward = staticmethod(F.relu_backward)
    kernel_curvature = staticmethod(F.relu_curvature)


class LeakyReLU(StatelessLayer):
    """``x if x > 0 else negative_slope * x``."""

    kernel_forward = staticmethod(F.leaky_relu_forward)
    kernel_backward = staticmethod(F.leaky_relu_backward)
    repr_defaults = {"negative_slope": 0.01}

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def kernel_kwargs(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope}


class ELU(StatelessLayer):
    """``x if x > 0 else alpha * (exp(x) - 1)``."""

    kernel_forward = staticmethod(F.elu_forward)
    kernel_backward = staticmethod(F.elu_backward)
    repr_defaults = {"alpha": 1.0}

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def kernel_kwargs(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


class Sigmoid(StatelessLayer):
    """``1 / (1 + exp(-x))``."""

    kernel_forward = staticmethod(F.sigmoid_forward)
    kernel_backward = staticmethod(F.sigmoid_backward)
    kernel_curvature = staticmethod(F.sigmoid_curvature)


class Tanh(StatelessLayer):
    """``tanh(x)``."""

    kernel_forward = staticmethod(F.tanh_forward)
    kernel_backward = staticmethod(F.tanh_backward)
    kernel_curvature = staticmethod(F.tanh_curvature)


class ScaledTanh(StatelessLayer):
    """LeCun's ``1.7159 * tanh(2x/3)`` (LeNet-5's squashing function)."""

    kernel_forward = staticmethod(F.scaled_tanh_forward)
    kernel_backward = staticmethod(F.scaled_tanh_backward)
    kernel_curvature = staticmethod(F.scaled_tanh_curvature)


class Softmax(StatelessLayer):
    """``exp(x) / sum(exp(x))`` along ``dim``. An input without elements (an empty batch, or
    an empty axis ``dim``) gives an empty output, as in PyTorch."""

    kernel_forward = staticmethod(F.softmax_forward)
    kernel_backward = staticmethod(F.softmax_backward)
    repr_defaults = {"dim": 1}

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def kernel_kwargs(self) -> dict[str, Any]:
        return {"dim": self.dim}


class LogSoftmax(Softmax):
    """``x - logsumexp(x)`` along ``dim``."""

    kernel_forward = staticmethod(F.log_softmax_forward)
    kernel_backward = staticmethod(F.log_softmax_backward)


class NoisyReLU(StatelessLayer):
    """Nair & Hinton's noisy ReLU: ``max(0, x + N(0, sigmoid(x)))`` in training, ReLU in eval.

    The noise is drawn from ``rng`` (kept as an attribute so a checkpoint can save its state).
    """

    kernel_forward = staticmethod(F.noisy_relu_forward)
    kernel_backward = staticmethod(F.noisy_relu_backward)

    def __init__(self, *, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.rng = default_rng(rng)

    def kernel_kwargs(self) -> dict[str, Any]:
        return {"training": self.training, "rng": self.rng}


class PReLU(Module):
    """``x if x > 0 else a * x`` with a learnt slope ``a``: one (``num_parameters=1``) or one per
    channel (``num_parameters=C``). ``weight: (num_parameters,)``, initialised to ``init`` (0.25)
    as in PyTorch."""

    def __init__(
        self, num_parameters: int = 1, init: float = 0.25, *, dtype: type = np.float32
    ) -> None:
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(np.empty((num_parameters,), dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Every slope to ``init`` (nothing is drawn, so ``rng`` is unused)."""
        self.weight.data[...] = self.init

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, cache = F.prelu_forward(x, self.weight.data)
        self.save_for_backward(cache)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx, dw = F.prelu_backward(dout, self.take_saved("backward"))
        self.weight.grad += dw
        return dx

    def extra_repr(self) -> str:
        return format_args(num_parameters=(self.num_parameters, 1), init=(self.init, 0.25))

"""Base for layers without parameters: forward is one kernel call, backward the matching one."""

from __future__ import annotations

from typing import Any

import numpy as np

from .module import Module


class StatelessLayer(Module):
    """Subclasses set ``kernel_forward``/``kernel_backward`` (as staticmethods) and, if they have
    hyper-parameters, override ``kernel_kwargs()``. Those with a curvature rule also set
    ``kernel_curvature(h_out, cache) -> h_in``."""

    kernel_forward: Any
    kernel_backward: Any
    kernel_curvature: Any = None

    def __init__(self) -> None:
        super().__init__()
        self._cache = None

    def kernel_kwargs(self) -> dict[str, Any]:
        return {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self._cache = self.kernel_forward(x, **self.kernel_kwargs())
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self.kernel_backward(dout, self._take_cache())

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray:
        if self.kernel_curvature is None:
            return super().curvature_backward(h_out)  # raises, naming the layer
        return self.kernel_curvature(h_out, self._take_cache())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.kernel_kwargs().items() if k != "rng")

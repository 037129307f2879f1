"""Base for layers without parameters: forward is one kernel call, backward the matching one."""

from __future__ import annotations

from typing import Any

import numpy as np

from .module import Module, format_args


class StatelessLayer(Module):
    """Subclasses set ``kernel_forward``/``kernel_backward`` (as staticmethods) and, if they have
    hyper-parameters, override ``kernel_kwargs()``. Those with a curvature rule also set
    ``kernel_curvature(h_out, cache) -> h_in``.

    ``repr_defaults`` maps each hyper-parameter to its constructor default, so ``extra_repr``
    shows only those that differ; a hyper-parameter without a default is always shown.
    """

    kernel_forward: Any
    kernel_backward: Any
    kernel_curvature: Any = None
    repr_defaults: dict[str, Any] = {}

    def kernel_kwargs(self) -> dict[str, Any]:
        return {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, cache = self.kernel_forward(x, **self.kernel_kwargs())
        self.save_for_backward(cache)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self.kernel_backward(dout, self.take_saved("backward"))

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray:
        if self.kernel_curvature is None:
            return super().curvature_backward(h_out)  # raises, naming the layer
        return self.kernel_curvature(h_out, self.take_saved("curvature_backward"))

    def extra_repr(self) -> str:
        defaults = self.repr_defaults
        shown = {k: v for k, v in self.kernel_kwargs().items() if k not in ("rng", "training")}
        required = [f"{k}={v!r}" for k, v in shown.items() if k not in defaults]
        optional = {k: (v, defaults[k]) for k, v in shown.items() if k in defaults}
        return format_args(*required, **optional)

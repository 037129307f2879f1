"""A trainable array, its gradient and its curvature (diagonal second-derivative) estimate."""

from __future__ import annotations

import numpy as np


class Parameter:
    """Holds ``data`` (the values, updated in place by optimisers) and ``grad`` (same shape).

    ``grad`` starts as zeros and modules *accumulate* into it during ``backward`` (``+=``), as
    PyTorch does, so ``zero_grad()`` must be called between steps.

    ``curvature`` (same shape, None until first used) receives the diagonal Gauss-Newton
    estimate of the loss's second derivative w.r.t. each value, accumulated the same way by
    ``Module.curvature_backward`` (see :mod:`cnnumpy.functional.curvature`); only curvature-based
    optimisers (``optim.SDLM``) read it, so other training never allocates it.
    """

    __slots__ = ("data", "grad", "requires_grad", "curvature")

    def __init__(self, data: np.ndarray, requires_grad: bool = True) -> None:
        if not isinstance(data, np.ndarray) or data.dtype.kind != "f":
            raise TypeError(f"Parameter data must be a float numpy array, got {data!r:.60}")
        self.data = data
        self.grad = np.zeros_like(data)
        self.requires_grad = requires_grad
        self.curvature: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def add_curvature(self, h: np.ndarray) -> None:
        """``curvature += h`` (allocated as zeros in the parameter's dtype on first use)."""
        if self.curvature is None:
            self.curvature = np.zeros_like(self.data)
        self.curvature += h

    def zero_curvature(self) -> None:
        if self.curvature is not None:
            self.curvature[...] = 0

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"

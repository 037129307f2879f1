"""A trainable array and its gradient."""

from __future__ import annotations

import numpy as np


class Parameter:
    """Holds ``data`` (the values, updated in place by optimisers) and ``grad`` (same shape).

    ``grad`` starts as zeros and modules *accumulate* into it during ``backward`` (``+=``), as
    PyTorch does, so ``zero_grad()`` must be called between steps.
    """

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data: np.ndarray, requires_grad: bool = True) -> None:
        if not isinstance(data, np.ndarray) or data.dtype.kind != "f":
            raise TypeError(f"Parameter data must be a float numpy array, got {data!r:.60}")
        self.data = data
        self.grad = np.zeros_like(data)
        self.requires_grad = requires_grad

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"

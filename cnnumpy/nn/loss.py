"""Loss modules: ``loss = criterion(scores, y)`` returns a float, ``criterion.backward()`` dscores.

A loss is the end of the chain, so its backward takes no ``dout``: it returns the gradient of
the (mean) loss with respect to the scores.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self) -> None:
        super().__init__()
        self._dscores: np.ndarray | None = None

    def __call__(self, scores: np.ndarray, y: np.ndarray) -> float:  # type: ignore[override]
        return self.forward(scores, y)

    def forward(self, scores: np.ndarray, y: np.ndarray) -> float:  # type: ignore[override]
        loss, self._dscores = self._loss(scores, y)
        return loss

    def _loss(self, scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def backward(self, dout: float = 1.0) -> np.ndarray:  # type: ignore[override]
        """Gradient of ``dout * loss`` with respect to the scores of the last forward."""
        if self._dscores is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._dscores if dout == 1.0 else self._dscores * dout


class CrossEntropyLoss(_Loss):
    """Softmax followed by the negative log-likelihood, averaged over the batch.

    Shape: ``scores: (N, C)``, ``y: (N,)`` integer labels in ``[0, C)``.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def _loss(self, scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        return F.softmax_cross_entropy_loss(scores, y, label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}" if self.label_smoothing else ""


class MultiMarginLoss(_Loss):
    """PyTorch's multiclass hinge loss: ``mean_n sum_{j != y} max(0, margin - s_y + s_j)^p / C``.

    CS231n's SVM loss is ``C`` times this (no division by the number of classes).
    """

    def __init__(self, p: int = 1, margin: float = 1.0) -> None:
        super().__init__()
        self.p = p
        self.margin = margin

    def _loss(self, scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        return F.multi_margin_loss(scores, y, margin=self.margin, p=self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, margin={self.margin}"

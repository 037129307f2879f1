"""Loss modules: ``loss = criterion(scores, y)`` returns a float, ``criterion.backward()`` dscores.

A loss is the end of the chain, so its backward takes no ``dout``: it returns the gradient of
the (mean) loss with respect to the scores. Likewise ``criterion.curvature_backward()``, where
defined, returns the diagonal of the (mean) loss's Hessian w.r.t. the scores, the start of a
``model.curvature_backward`` pass.

An empty batch (``N = 0``) has no mean: every loss here is then NaN, as PyTorch's
cross-entropy is, and ``backward`` returns an empty ``(0, C)`` gradient. Scores without any
class (``C = 0``) are refused.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import functional as F
from .module import Module, format_args


class _LossSaved(NamedTuple):
    scores: np.ndarray  # (N, C), a reference to the forward's input, for curvature_backward
    dscores: np.ndarray  # (N, C), the gradient the loss kernel returned with the loss


class Loss(Module):
    """Base of the criteria (PyTorch's ``_Loss``): subclasses define ``_loss(scores, y) ->
    (loss, dscores)`` and, where they have one, ``_curvature(scores) -> h_scores``.

    ``backward`` without a forward raises RuntimeError. Unlike a layer's, a loss's backward
    does not consume what its forward saved: a loss has no parameters, so calling
    ``backward`` (or ``curvature_backward``) again returns the same array and changes nothing.
    What it keeps (the scores and their gradient) is replaced by the next forward.
    """

    def __call__(self, scores: np.ndarray, y: np.ndarray) -> float:
        return super().__call__(scores, y)

    def forward(self, scores: np.ndarray, y: np.ndarray) -> float:
        loss, dscores = self._loss(scores, y)
        self.save_for_backward(_LossSaved(scores, dscores))
        return loss

    def backward(self, dout: float = 1.0) -> np.ndarray:
        """Gradient of ``dout * loss`` with respect to the scores of the last forward."""
        dscores = self.peek_saved("backward").dscores
        return dscores if dout == 1.0 else dscores * dout

    def curvature_backward(self) -> np.ndarray:
        """Diagonal of the Hessian of the loss w.r.t. the scores of the last forward, ``(N, C)``:
        each sample's divided by N, as the gradient is (the loss is the batch mean)."""
        return self._curvature(self.peek_saved("curvature_backward").scores)

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """The predicted class of each row of scores: the highest score."""
        return np.argmax(scores, axis=1)

    def _loss(self, scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} does not define _loss")

    def _curvature(self, scores: np.ndarray) -> np.ndarray:
        return Module.curvature_backward(self, scores)  # raises, naming the loss


class CrossEntropyLoss(Loss):
    """Softmax followed by the negative log-likelihood, averaged over the batch.

    Shape: ``scores: (N, C)``, ``y: (N,)`` integer labels in ``[0, C)``.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def _loss(self, scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        return F.softmax_cross_entropy_loss(scores, y, label_smoothing=self.label_smoothing)

    def _curvature(self, scores: np.ndarray) -> np.ndarray:
        return F.cross_entropy_curvature(scores)

    def extra_repr(self) -> str:
        return format_args(label_smoothing=(self.label_smoothing, 0.0))


class MultiMarginLoss(Loss):
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
        return format_args(p=(self.p, 1), margin=(self.margin, 1.0))


class MAPLoss(Loss):
    """LeNet-5's MAP criterion on RBF penalties (LeCun et al. 1998, eq. 9):
    ``E = mean_n [ y_correct + log(exp(-j) + sum_i exp(-y_i)) ]``.

    It pulls the correct penalty down and pushes the others up; lower penalties are better,
    so ``predict`` takes the argmin. ``j=None`` is the kernel's default (the paper's).
    """

    def __init__(self, j: float | None = None) -> None:
        super().__init__()
        self.j = j

    def _loss(self, scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        if self.j is None:
            return F.map_loss(scores, y)
        return F.map_loss(scores, y, j=self.j)

    def _curvature(self, scores: np.ndarray) -> np.ndarray:
        if self.j is None:
            return F.map_loss_curvature(scores)
        return F.map_loss_curvature(scores, j=self.j)

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return np.argmin(scores, axis=1)

    def extra_repr(self) -> str:
        return format_args(j=(self.j, None))

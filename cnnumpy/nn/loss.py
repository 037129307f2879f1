"""Loss modules: ``loss = criterion(scores, y)`` returns a float, ``criterion.backward()`` dscores.

A loss is the end of the chain, so its backward takes no ``dout``: it returns the gradient of
the (mean) loss with respect to the scores. Likewise ``criterion.curvature_backward()``, where
defined, returns the diagonal of the (mean) loss's Hessian w.r.t. the scores, the start of a
``model.curvature_backward`` pass.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .module import Module, default_rng
from .parameter import Parameter


class _Loss(Module):
    def __init__(self) -> None:
        super().__init__()
        self._dscores: np.ndarray | None = None
        self._scores: np.ndarray | None = None

    def __call__(self, scores: np.ndarray, y: np.ndarray) -> float:  # type: ignore[override]
        return self.forward(scores, y)

    def forward(self, scores: np.ndarray, y: np.ndarray) -> float:  # type: ignore[override]
        loss, self._dscores = self._loss(scores, y)
        self._scores = scores  # a reference, for curvature_backward
        return loss

    def curvature_backward(self) -> np.ndarray:  # type: ignore[override]
        """Diagonal of the Hessian of the loss w.r.t. the scores of the last forward, ``(N, C)``:
        each sample's divided by N, as the gradient is (the loss is the batch mean)."""
        scores = self._scores
        if scores is None:
            raise RuntimeError(f"{type(self).__name__}.curvature_backward called before forward")
        return self._curvature(scores)

    def _curvature(self, scores: np.ndarray) -> np.ndarray:
        return super().curvature_backward(scores)  # raises, naming the loss

    def _loss(self, scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def backward(self, dout: float = 1.0) -> np.ndarray:  # type: ignore[override]
        """Gradient of ``dout * loss`` with respect to the scores of the last forward."""
        if self._dscores is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._dscores if dout == 1.0 else self._dscores * dout

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """The predicted class of each row of scores: the highest score."""
        return np.argmax(scores, axis=1)


class CrossEntropyLoss(_Loss):
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


class RBFOutput(Module):
    """LeNet-5's Euclidean RBF output layer: ``y_i = sum_j (x_j - weight[i, j])^2``.

    Each output is a *penalty*: the squared distance of the input to class ``i``'s prototype,
    so the prediction is the class with the smallest output. Shape: ``(N, in_features) ->
    (N, out_features)``; ``weight: (out_features, in_features)``. The 1998 paper fixes the
    prototypes (``trainable=False``: the weight gets no gradient and optimisers skip it).
    Without given ``prototypes`` they are drawn at random from {-1, +1}.
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
        if prototypes is None:
            prototypes = default_rng(rng).choice([-1.0, 1.0], size=(out_features, in_features))
        if prototypes.shape != (out_features, in_features):
            raise ValueError(
                f"prototypes must have shape ({out_features}, {in_features}), "
                f"got {prototypes.shape}"
            )
        self.in_features, self.out_features, self.trainable = in_features, out_features, trainable
        self.weight = Parameter(np.array(prototypes, dtype=dtype), requires_grad=trainable)
        self._cache = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self._cache = F.rbf_forward(x, self.weight.data)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx, dw = F.rbf_backward(dout, self._cache)
        if self.trainable:
            self.weight.grad += dw
        return dx

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray:
        h_x, h_w = F.rbf_curvature(h_out, self._cache)
        if self.trainable:
            self.weight.add_curvature(h_w)
        return h_x

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " + (
            f"trainable={self.trainable}"
        )


class MAPLoss(_Loss):
    """LeNet-5's MAP criterion on RBF penalties (LeCun et al. 1998, eq. 9):
    ``E = mean_n [ y_correct + log(exp(-j) + sum_i exp(-y_i)) ]``.

    It pulls the correct penalty down and pushes the others up; lower penalties are better,
    so ``predict`` takes the argmin.
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

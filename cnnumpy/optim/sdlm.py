"""Stochastic diagonal Levenberg-Marquardt (SDLM), LeNet-5's own training method.

LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document recognition"
(Proc. IEEE, 1998), Appendix C. Each parameter ``w_k`` gets its own learning rate::

    eta_k = epsilon / (mu + h_kk)

where ``h_kk`` estimates the diagonal of the loss's Hessian w.r.t. ``w_k`` (Gauss-Newton, back-
propagated like the gradient with squared Jacobians: ``Module.curvature_backward``). Steep
directions get short steps, flat ones long steps, and ``mu`` caps the step where the curvature
is near zero. The estimate is cheap enough to redo before every pass over the training set on
a few hundred patterns (the paper: 500), and is held fixed during the pass.

Paper's settings (these defaults): ``mu = 0.02``, 500 patterns per estimate, ``epsilon`` from
0.0005 down to 0.00001 over the passes (``LENET5_SCHEDULE`` below, for
:class:`~cnnumpy.optim.lr_scheduler.PiecewiseConstantLR`), one pattern per update.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..nn.parameter import Parameter
from .optimizer import Optimizer, Scalar, check_non_negative

# Appendix C's epsilon: 0.0005 for the first 2 passes, 0.0002 for the next 3, 0.0001 for the
# next 3, 0.00005 for the next 4 and 0.00001 thereafter, as factors of 0.0005 that change at
# these (0-based) epochs: ``PiecewiseConstantLR(optimizer, *LENET5_SCHEDULE)``.
LENET5_SCHEDULE: tuple[tuple[int, ...], tuple[float, ...]] = (
    (2, 5, 8, 12),
    (1.0, 0.4, 0.2, 0.1, 0.02),
)


class SDLM(Optimizer):
    """SDLM's update rule, per parameter ``theta`` with gradient ``g``::

        theta <- theta - lr / (mu + h) * g

    ``lr`` is the paper's global ``epsilon`` (the schedulers act on it) and ``h`` the stored
    curvature estimate (state ``hessian_diag``, the per-sample average of the diagonal
    Gauss-Newton second derivative), set by :meth:`estimate_curvature`. Until the first
    estimate ``h = 0``, and the rule is plain SGD with step ``lr / mu``.

    A training loop re-estimates ``h`` before each pass on ``samples`` training patterns
    (:class:`~cnnumpy.train.callbacks.CurvatureRefresh` does). The model's layers must all have
    curvature rules (LeNet-5's have).
    """

    _hyper = ("lr", "mu", "samples")

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 5e-4,
        mu: float = 0.02,
        samples: int = 500,
        batch_size: int = 100,
    ) -> None:
        self.lr = float(lr)
        self.mu = float(mu)
        self.samples = samples
        self.batch_size = batch_size  # of the estimate's forward passes; memory, not maths
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"SDLM: batch_size must be an int >= 1, got {batch_size!r}")
        super().__init__(params)

    def _check_hyper(self, **v: Scalar) -> None:
        check_non_negative("SDLM", lr=v["lr"])
        if not v["mu"] > 0.0:  # h can be 0, so mu alone keeps the step finite
            raise ValueError(f"SDLM: invalid mu {v['mu']!r}, expected > 0")
        samples = v["samples"]
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"SDLM: samples must be an int >= 1, got {samples!r}")

    def _buffers(self) -> tuple[str, ...]:
        return ("hessian_diag",)

    def _update(self, p: Parameter, state: dict[str, np.ndarray]) -> None:
        p.data -= (self.lr / (self.mu + state["hessian_diag"])) * p.grad

    def estimate_curvature(self, model: Any, loss: Any, x: np.ndarray, y: np.ndarray) -> None:
        """Set ``h`` to the mean over the samples ``x: (S, ...)``, ``y: (S,)`` of each one's
        diagonal Gauss-Newton curvature, in mini-batches of ``batch_size``.

        Per batch of ``B``: ``loss(model(x_b), y_b)``, then ``model.curvature_backward`` of the
        loss's curvature, which is each sample's divided by ``B`` (the loss is a batch mean);
        scaled by ``B / S`` it is divided by ``S``, so the sum the parameters' ``curvature``
        accumulates over the batches is the mean over all ``S`` samples. Runs in whatever mode
        the model is in (the gradient pass's); the parameters' ``grad`` is left alone.
        """
        total = x.shape[0]
        if total == 0 or y.shape != (total,):
            raise ValueError(f"SDLM needs samples and labels (S >= 1), got {x.shape}, {y.shape}")
        model.zero_curvature()
        for start in range(0, total, self.batch_size):
            xb, yb = x[start : start + self.batch_size], y[start : start + self.batch_size]
            loss(model(xb), yb)
            model.curvature_backward(loss.curvature_backward() * (xb.shape[0] / total))
        for p, state in zip(self.params, self.state, strict=True):
            h = state["hessian_diag"]
            h[...] = 0 if p.curvature is None else p.curvature

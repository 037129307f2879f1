"""Adam (Kingma & Ba 2015) with optional AMSGrad, and AdamW (decoupled weight decay)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..nn.parameter import Parameter
from .optimizer import Optimizer, Scalar, check_non_negative, lerp_


class Adam(Optimizer):
    """``torch.optim.Adam``'s update rule, per parameter ``theta`` with gradient ``g``, step ``t``::

        g <- g + weight_decay * theta                      (L2 penalty; AdamW decays instead)
        m <- beta1 * m + (1 - beta1) * g                   (m, v start at 0)
        v <- beta2 * v + (1 - beta2) * g^2
        v_max <- max(v_max, v)                             (amsgrad; v_hat = v_max, else v)
        theta <- theta - (lr / (1 - beta1^t)) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)

    The bias corrections ``1 - beta^t`` undo the zero start of m and v. State per parameter:
    ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v), ``max_exp_avg_sq`` (v_max, if amsgrad).
    """

    _hyper = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    _decoupled = False

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        self.lr = float(lr)
        if len(betas) != 2:
            raise ValueError(f"{type(self).__name__}: betas must be a pair, got {betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.amsgrad = bool(amsgrad)
        super().__init__(params)

    def _check_hyper(self, **v: Scalar) -> None:
        owner = type(self).__name__
        check_non_negative(owner, lr=v["lr"], eps=v["eps"], weight_decay=v["weight_decay"])
        if len(v["betas"]) != 2:
            raise ValueError(f"{owner}: betas must be a pair, got {v['betas']!r}")
        for i, beta in enumerate(v["betas"]):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{owner}: invalid betas[{i}] {beta!r}, expected in [0, 1)")

    def _buffers(self) -> tuple[str, ...]:
        names = ("exp_avg", "exp_avg_sq")
        return (*names, "max_exp_avg_sq") if self.amsgrad else names

    def _update(self, p: Parameter, state: dict[str, np.ndarray]) -> None:
        beta1, beta2 = self.betas
        t = int(state["step"])
        g = p.grad
        if self.weight_decay != 0:
            if self._decoupled:
                p.data *= 1.0 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p.data
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        lerp_(exp_avg, g, 1.0 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1.0 - beta2) * g * g
        step_size = self.lr / (1.0 - beta1**t)
        bias_correction2_sqrt = (1.0 - beta2**t) ** 0.5
        if self.amsgrad:
            v_hat = state["max_exp_avg_sq"]
            np.maximum(v_hat, exp_avg_sq, out=v_hat)
        else:
            v_hat = exp_avg_sq
        denom = np.sqrt(v_hat) / bias_correction2_sqrt
        denom += self.eps
        p.data -= step_size * exp_avg / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``::

        theta <- theta * (1 - lr * weight_decay)           (before the Adam step, not in g)

    then the Adam update above with the raw gradient. Default ``weight_decay = 1e-2``.
    """

    _decoupled = True

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)

"""RMSprop (Hinton's lecture 6e), optionally centred (Graves 2013) and with momentum."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..nn.parameter import Parameter
from .optimizer import Optimizer, Scalar, check_non_negative, lerp_


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``'s update rule, per parameter ``theta`` with gradient ``g``::

        g <- g + weight_decay * theta                      (if weight_decay != 0)
        v <- alpha * v + (1 - alpha) * g^2                 (v starts at 0)
        if centered:
            m <- alpha * m + (1 - alpha) * g               (m starts at 0)
            d <- sqrt(v - m^2) + eps
        else:
            d <- sqrt(v) + eps
        if momentum > 0:
            b <- momentum * b + g / d                      (b starts at 0)
            theta <- theta - lr * b
        else:
            theta <- theta - lr * g / d

    Note ``eps`` is added *outside* the square root. State per parameter: ``step``,
    ``square_avg`` (v), ``grad_avg`` (m, if centered), ``momentum_buffer`` (b, if momentum > 0).
    """

    _hyper = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        self.lr = float(lr)
        self.alpha = float(alpha)
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.momentum = float(momentum)
        self.centered = bool(centered)
        super().__init__(params)

    def _check_hyper(self, **v: Scalar) -> None:
        check_non_negative(
            "RMSprop",
            lr=v["lr"],
            eps=v["eps"],
            momentum=v["momentum"],
            weight_decay=v["weight_decay"],
            alpha=v["alpha"],
        )

    def _buffers(self) -> tuple[str, ...]:
        names = ["square_avg"]
        if self.centered:
            names.append("grad_avg")
        if self.momentum > 0:
            names.append("momentum_buffer")
        return tuple(names)

    def _update(self, p: Parameter, state: dict[str, np.ndarray]) -> None:
        g = p.grad
        if self.weight_decay != 0:
            g = g + self.weight_decay * p.data
        square_avg = state["square_avg"]
        square_avg *= self.alpha
        square_avg += (1.0 - self.alpha) * g * g
        if self.centered:
            grad_avg = state["grad_avg"]
            lerp_(grad_avg, g, 1.0 - self.alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += self.eps
        if self.momentum > 0:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += g / avg
            p.data -= self.lr * buf
        else:
            p.data -= self.lr * g / avg

"""Stochastic gradient descent with momentum, dampening, weight decay and Nesterov momentum."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..nn.parameter import Parameter
from .optimizer import Optimizer, Scalar, check_non_negative


class SGD(Optimizer):
    """``torch.optim.SGD``'s update rule, per parameter ``theta`` with gradient ``g``::

        g <- g + weight_decay * theta                      (if weight_decay != 0)
        if momentum != 0:
            b <- g                                         (first step: no dampening)
            b <- momentum * b + (1 - dampening) * g        (later steps)
            g <- g + momentum * b  if nesterov  else  b
        theta <- theta - lr * g

    State per parameter: ``step`` and, when ``momentum != 0``, ``momentum_buffer``.
    Nesterov momentum needs ``momentum > 0`` and ``dampening == 0``.
    """

    _hyper = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.dampening = float(dampening)
        self.weight_decay = float(weight_decay)
        self.nesterov = bool(nesterov)
        super().__init__(params)

    def _check_hyper(self, **v: Scalar) -> None:
        check_non_negative(
            "SGD", lr=v["lr"], momentum=v["momentum"], weight_decay=v["weight_decay"]
        )
        if v["nesterov"] and (v["momentum"] <= 0 or v["dampening"] != 0):
            raise ValueError(
                "SGD: Nesterov momentum requires momentum > 0 and dampening == 0, got "
                f"momentum={v['momentum']}, dampening={v['dampening']}"
            )

    def _buffers(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum != 0 else ()

    def _update(self, p: Parameter, state: dict[str, np.ndarray]) -> None:
        g = p.grad
        if self.weight_decay != 0:
            g = g + self.weight_decay * p.data
        if self.momentum != 0:
            buf = state["momentum_buffer"]
            if state["step"] == 1:
                buf[...] = g
            else:
                buf *= self.momentum
                buf += (1.0 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= self.lr * g

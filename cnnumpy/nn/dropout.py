"""Dropout layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .module import default_rng
from .stateless import StatelessLayer


class Dropout(StatelessLayer):
    """Zeroes each unit with probability ``p`` in training.

    ``p`` is the probability of DROPPING a unit, as in PyTorch (the CS231n notebooks use the
    probability of keeping it). ``inverted=True`` scales the kept units by ``1/(1-p)`` in
    training and is the identity in eval; ``inverted=False`` is the 2012 form that scales by
    ``1-p`` at test time instead. The mask is drawn from ``rng``. An empty batch gives an
    empty output and ``dx``.
    """

    kernel_forward = staticmethod(F.dropout_forward)
    kernel_backward = staticmethod(F.dropout_backward)
    repr_defaults = {"p": 0.5, "inverted": True}

    def __init__(
        self, p: float = 0.5, *, inverted: bool = True, rng: np.random.Generator | None = None
    ) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1], got {p}")
        self.p = p
        self.inverted = inverted
        self.rng = default_rng(rng)

    def kernel_kwargs(self) -> dict[str, Any]:
        return {"p": self.p, "training": self.training, "rng": self.rng, "inverted": self.inverted}

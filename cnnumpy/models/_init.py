"""Weight initialisation shared by the zoo's deep networks (the ``init`` argument)."""

from __future__ import annotations

import numpy as np

from .. import init as fillers
from .. import nn

INITS = ("msra", "pytorch")


def initialize(model: nn.Module, init: str, rng: np.random.Generator) -> nn.Module:
    """Re-draw the conv weights of ``model`` by ``init``; returns ``model``.

    ``"msra"``: He et al. 2015's ``N(0, 2 / fan_out)`` (``kaiming_normal(mode="fan_out",
    nonlinearity="relu")``, as torchvision initialises VGG and ResNet) for every conv weight.
    It keeps the mean square of the signal through deep stacks of conv-ReLU layers, where
    PyTorch's default (weight variance ``1 / (3 fan_in)``) shrinks it about sixfold per layer.
    Conv biases keep their default draw (small, but not zero: with zero biases a unit whose
    inputs are all dead sits exactly on the ReLU's kink, which numerical gradient checks trip on).
    ``"pytorch"`` keeps the default draw. Linear layers keep PyTorch's default either way.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if init == "msra":
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                w = m.weight.data
                m.weight.data = fillers.kaiming_normal(
                    w.shape, rng, mode="fan_out", nonlinearity="relu", dtype=w.dtype
                )
    return model

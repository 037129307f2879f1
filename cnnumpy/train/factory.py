"""Optimisers, learning-rate schedules and criteria built by name: the one place the command
line and the experiments turn a word such as ``"sgd"`` or ``"cosine"`` into an object."""

from __future__ import annotations

from collections.abc import Iterable

from .. import nn, optim
from ..nn.parameter import Parameter
from ..optim.sdlm import LENET5_SCHEDULE

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "sdlm")
SCHEDULES = ("none", "cosine", "plateau", "lenet5")
DEFAULT_LR = {"sdlm": 5e-4}
"""Learning rates that differ from the usual 1e-3: SDLM's is the paper's first epsilon."""


def default_lr(optimizer: str) -> float:
    """The learning rate used when none is given: 1e-3, or the paper's for SDLM."""
    return DEFAULT_LR.get(optimizer, 1e-3)


def make_optimizer(
    name: str,
    params: Iterable[Parameter],
    lr: float | None = None,
    *,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    mu: float = 0.02,
) -> optim.Optimizer:
    """The optimiser ``name`` (one of :data:`OPTIMIZERS`) over ``params``.

    ``momentum`` is used by sgd and rmsprop, ``mu`` (the damping in ``lr / (mu + h)``) by sdlm,
    which takes no weight decay (LeCun et al. 1998 used none).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    lr = default_lr(name) if lr is None else lr
    params = list(params)
    if name == "sdlm":
        if weight_decay:
            raise ValueError("the sdlm optimizer takes no weight decay (the paper used none)")
        return optim.SDLM(params, lr=lr, mu=mu)
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return optim.Adam(params, lr=lr, weight_decay=weight_decay)


def make_scheduler(name: str, optimizer: optim.Optimizer, epochs: int):
    """The schedule ``name`` (one of :data:`SCHEDULES`) stepped once per epoch, or None.

    cosine anneals to 0 over ``epochs``; plateau halves the rate when validation accuracy has
    not improved for 2 epochs; lenet5 is LeCun et al. 1998's piecewise-constant steps.
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    if name == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if name == "plateau":
        return optim.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=2)
    if name == "lenet5":
        return optim.PiecewiseConstantLR(optimizer, *LENET5_SCHEDULE)
    return None


def criterion_for(model: nn.Module):
    """The loss a model is trained with: its own ``criterion`` (LeNet-5's MAP loss on RBF
    penalties) or, for every other model, softmax cross-entropy."""
    criterion = getattr(model, "criterion", None)
    return criterion if criterion is not None else nn.CrossEntropyLoss()

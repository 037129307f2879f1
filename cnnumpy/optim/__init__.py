"""Optimisers over a list of :class:`~cnnumpy.nn.parameter.Parameter`, with PyTorch's rules.

Each updates ``param.data`` in place from ``param.grad`` (SDLM also from its curvature
estimate); the learning rate is the attribute ``lr``, which the schedulers in
:mod:`cnnumpy.optim.lr_scheduler` change. State dicts are flat dicts of NumPy arrays
(``np.savez``-able without pickling).
"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .lr_scheduler import (
    CosineAnnealingLR,
    MultiStepLR,
    PiecewiseConstantLR,
    ReduceLROnPlateau,
    StepLR,
)
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sdlm import SDLM
from .sgd import SGD

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "MultiStepLR",
    "Optimizer",
    "PiecewiseConstantLR",
    "RMSprop",
    "ReduceLROnPlateau",
    "SDLM",
    "StepLR",
    "lr_scheduler",
]

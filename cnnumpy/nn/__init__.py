"""Stateful layers over the kernels in ``cnnumpy.functional``, with PyTorch's names.

Each layer owns its parameters and hyper-parameters; its ``forward`` is one kernel call and
its ``backward(dout)`` returns ``dx`` and accumulates the parameters' gradients.
"""

from .activation import (
    ELU,
    LeakyReLU,
    LogSoftmax,
    NoisyReLU,
    PReLU,
    ReLU,
    ScaledTanh,
    Sigmoid,
    Softmax,
    Tanh,
)
from .container import Concat, Residual, Sequential
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout
from .linear import Flatten, Linear
from .loss import CrossEntropyLoss, MAPLoss, MultiMarginLoss, RBFOutput
from .module import Module
from .norm import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from .pad import ConstantPad2d
from .parameter import Parameter
from .pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, Subsampling
from .utils import clip_grad_norm_

__all__ = [
    "ConstantPad2d",
    "ELU",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Concat",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "LeakyReLU",
    "Linear",
    "LocalResponseNorm",
    "LogSoftmax",
    "MAPLoss",
    "MaxPool2d",
    "Module",
    "MultiMarginLoss",
    "NoisyReLU",
    "PReLU",
    "Parameter",
    "RBFOutput",
    "ReLU",
    "Residual",
    "ScaledTanh",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Subsampling",
    "Tanh",
    "clip_grad_norm_",
]

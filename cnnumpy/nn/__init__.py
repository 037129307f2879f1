"""Stateful layers over the kernels in ``cnnumpy.functional``, with PyTorch's names.

Each layer owns its parameters and hyper-parameters; its ``forward`` is one kernel call and
its ``backward(dout)`` returns ``dx`` and accumulates the parameters' gradients (see
:class:`Module` for the contract every layer keeps).

Degenerate input is handled as PyTorch handles it, and each layer's docstring says how: an
empty batch (``N = 0``) gives an empty output of the right shape and dtype, an empty ``dx`` and
zero parameter gradients; batch norm with batch statistics refuses a single value per channel
(``N * H * W = 1``); a loss over no samples is NaN. Inputs may be any views (transposed,
strided, reversed): the kernels never assume a contiguous layout.
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
from .graph import Graph
from .hooks import RemovableHandle
from .linear import Flatten, Linear
from .loss import CrossEntropyLoss, Loss, MAPLoss, MultiMarginLoss
from .module import Module
from .norm import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, LocalResponseNorm
from .pad import ConstantPad2d
from .parameter import Parameter
from .pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, Subsampling
from .rbf import RBFOutput
from .sync_batchnorm import SyncBatchNorm
from .table_conv import TableConv2d
from .utils import clip_grad_norm_

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Concat",
    "ConstantPad2d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "ELU",
    "Flatten",
    "Graph",
    "GroupNorm",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LocalResponseNorm",
    "LogSoftmax",
    "Loss",
    "MAPLoss",
    "MaxPool2d",
    "Module",
    "MultiMarginLoss",
    "NoisyReLU",
    "PReLU",
    "Parameter",
    "RBFOutput",
    "ReLU",
    "RemovableHandle",
    "Residual",
    "ScaledTanh",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Subsampling",
    "SyncBatchNorm",
    "TableConv2d",
    "Tanh",
    "clip_grad_norm_",
]

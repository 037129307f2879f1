"""Stateful layers over the kernels in ``cnnumpy.functional``, with PyTorch's names."""

from .container import Concat, Residual, Sequential
from .module import Module
from .parameter import Parameter

__all__ = ["Concat", "Module", "Parameter", "Residual", "Sequential"]

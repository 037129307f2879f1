"""``SyncBatchNorm``: batch norm whose statistics, and their gradients, cover every rank's shard.

Under data-parallel training each rank sees ``n_r`` samples of a global batch. Plain batch
norm normalises each rank's shard by its own statistics (PyTorch DDP's default, and this
library's); ``SyncBatchNorm`` all-reduces them, so the layer behaves as batch norm on the
global batch, whose gradients the Trainer's weighted gradient average then reproduces
exactly (see :func:`cnnumpy.functional.sync_batch_norm.sync_batch_norm_backward`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..distributed import SingleProcess
from ..functional.sync_batch_norm import sync_batch_norm_backward, sync_batch_norm_forward
from .module import Module
from .norm import BatchNorm1d, BatchNorm2d, _BatchNorm


class SyncBatchNorm(BatchNorm2d):
    """Batch norm with the statistics of the batch of all ranks of ``comm``, as PyTorch's.

    Shape: ``x, y: (N_r, C, H, W)`` (or ``(N_r, C)``), ``C = num_features``; ``weight, bias,
    running_mean, running_var: (C,)``. Parameters, buffers, ``state_dict`` keys and
    ``extra_repr`` are ``BatchNorm2d``'s, so a checkpoint loads into either.

    ``comm`` is a communicator (``rank``, ``size``, ``allreduce_``; see
    :mod:`cnnumpy.distributed`); None is one process, where the layer is ``BatchNorm2d``
    bit for bit. It is an attribute of the layer, not state: it is no child, parameter or
    buffer, and ``state_dict`` never holds it.

    In training every rank must run each forward and backward together (they are
    collective): ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the global mean
    and variance; the running statistics, updated with the global unbiased variance, are the
    same on every rank. ``dx`` and the parameter gradients follow the Trainer's convention
    (each rank's loss the mean over its own samples, parameter gradients averaged with the
    weights ``n_r / n``). In eval mode there is no communication: with running statistics the
    layer is ``BatchNorm2d``'s eval; without them each rank uses its own shard's statistics.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        comm: Any = None,
        *,
        dtype: type = np.float32,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype=dtype)
        self.comm = SingleProcess() if comm is None else comm

    # The forward and backward are ``_BatchNorm``'s, whose kernel call is this one; keeping
    # them (and so BatchNorm2d's ``forward``) also lets ONNX export the layer as batch norm.
    def kernel_forward(self, x: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        return sync_batch_norm_forward(x, *args, allreduce=self.comm.allreduce_, **kwargs)

    kernel_backward = staticmethod(sync_batch_norm_backward)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, comm: Any = None) -> Module:
        """``module`` with every ``BatchNorm2d`` and ``BatchNorm1d`` in it (itself included)
        replaced by a ``SyncBatchNorm`` on ``comm``, as PyTorch's ``convert_sync_batchnorm``.

        The new layer takes over the old one's ``Parameter`` objects (so an optimiser built
        on them stays valid), running statistics, counter, hyper-parameters and mode; the
        children are replaced in place and keep their names, so ``state_dict`` is unchanged.
        Returns the converted module: a new one when ``module`` itself is a batch norm.
        Forward hooks on a replaced layer are not carried over (nor are they in PyTorch).
        """
        if isinstance(module, BatchNorm1d | BatchNorm2d):
            return cls._from_batch_norm(module, comm)
        for name, child in list(module.named_children()):
            converted = cls.convert_sync_batchnorm(child, comm)
            if converted is not child:
                setattr(module, name, converted)  # an existing key: its place is kept
        return module

    @classmethod
    def _from_batch_norm(cls, bn: _BatchNorm, comm: Any) -> SyncBatchNorm:
        arrays = [a for a in (bn.running_mean, bn.weight) if a is not None]
        dtype = arrays[0].dtype if arrays else np.float32
        new = cls(
            bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats, comm,
            dtype=dtype,
        )  # fmt: skip
        new.weight, new.bias = bn.weight, bn.bias
        # The buffers are replaced on every forward, never written in place: sharing is safe.
        new.running_mean, new.running_var = bn.running_mean, bn.running_var
        new.num_batches_tracked = bn.num_batches_tracked
        new.training, new.input_grad = bn.training, bn.input_grad
        return new

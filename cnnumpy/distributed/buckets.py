"""Gradient buckets: every parameter's gradient averaged over the ranks in a few large calls.

One ``Allreduce`` per parameter would pay MPI's latency (microseconds on one machine, tens of
microseconds across a network) once per tensor: ResNet-20 has 65 of them, most a few KiB. As
PyTorch's DDP and Horovod's tensor fusion do, the gradients are instead packed, in parameter
order, into contiguous buffers of about ``bucket_bytes`` each (one per dtype run), reduced in
place, and unpacked. The copies cost two passes over the gradient bytes, far less than the
backward pass that made them.

Averaging. Rank ``r`` computed the gradient ``g_r`` of the mean loss over its ``n_r`` images
of a global batch of ``n = sum(n_r)``. The gradient of the mean loss over the global batch is
``g = sum_r (n_r / n) g_r``, so each rank scales its buffer by ``n_r / n`` and the buckets are
summed: ranks with unequal shares (a last batch that does not split evenly) are weighted right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_BUCKET_BYTES = 25 * 2**20
"""PyTorch DDP's default bucket size (25 MiB): the gradients of a small CNN fit in one."""


class GradientBuckets:
    """Buckets over ``arrays`` (the ``grad`` arrays, read each call through ``get``).

    ``params`` are objects with a ``grad`` array (:class:`~cnnumpy.nn.Parameter`); their
    order is the bucket order and must be the same on every rank (a model built by the same
    code is). ``bucket_bytes`` bounds a bucket (a larger array gets a bucket of its own).
    """

    def __init__(self, params: Sequence[Any], bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
        if bucket_bytes < 1:
            raise ValueError(f"bucket_bytes must be >= 1, got {bucket_bytes}")
        self.params = list(params)
        self.bucket_bytes = bucket_bytes
        self.buckets: list[tuple[np.ndarray, list[tuple[Any, slice]]]] = []
        members: list[tuple[Any, slice]] = []
        start, dtype = 0, None
        for p in self.params:
            size, kind = p.grad.size, p.grad.dtype
            full = start and (start + size) * kind.itemsize > bucket_bytes
            if members and (kind != dtype or full):
                self.buckets.append((np.empty(start, dtype), members))
                members, start = [], 0
            members.append((p, slice(start, start + size)))
            start, dtype = start + size, kind
        if members:
            self.buckets.append((np.empty(start, dtype), members))

    @property
    def nbytes(self) -> int:
        """The gradient bytes each rank sends per step."""
        return sum(flat.nbytes for flat, _ in self.buckets)

    def allreduce_mean(self, comm: Any, weight: float = 1.0) -> None:
        """Every ``grad`` becomes ``sum_r weight_r * grad_r`` over the ranks of ``comm``, in
        place; ``weight`` is this rank's ``n_r / n`` (``1 / K`` for equal shares)."""
        for flat, members in self.buckets:
            for p, where in members:
                np.multiply(p.grad.reshape(-1), weight, out=flat[where])
            comm.allreduce_(flat)
            for p, where in members:
                p.grad[...] = flat[where].reshape(p.grad.shape)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{flat.nbytes / 2**20:.2f} MiB" for flat, _ in self.buckets)
        return f"GradientBuckets({len(self.params)} parameters in [{sizes}])"


def broadcast_state(comm: Any, arrays: Sequence[np.ndarray], root: int = 0) -> None:
    """Make every array (parameters and buffers, in the same order on every rank) equal to
    ``root``'s, in place; non-contiguous arrays go through a contiguous copy."""
    for a in arrays:
        if a.flags.c_contiguous:
            comm.broadcast_(a, root)
        else:
            tmp = np.array(a, order="C")
            comm.broadcast_(tmp, root)
            a[...] = tmp

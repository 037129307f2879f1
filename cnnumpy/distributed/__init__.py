"""Data-parallel training on K processes: communicators, gradient buckets, failure handling.

``mpirun -n K cnnumpy train ...`` (or ``cn.train.Trainer(..., comm=cn.distributed.world())``)
trains one model on K processes. Each rank computes the gradient of its share of every global
mini-batch; :class:`GradientBuckets` averages the gradients with a few in-place ``Allreduce``
calls before every optimiser step, so every rank takes the same step. :func:`world` is the MPI
world under ``mpirun`` (through mpi4py, the ``mpi`` extra) and a single process otherwise;
:func:`thread_group` gives K ranks inside one process, for tests and for teaching.

This package imports nothing else from cnnumpy, so the layers (``nn.SyncBatchNorm``) and the
training loop can both use it.
"""

from .buckets import DEFAULT_BUCKET_BYTES, GradientBuckets, broadcast_state
from .comm import (
    INSTALL_HINT,
    MPICommunicator,
    MPIUnavailableError,
    SingleProcess,
    launched_size,
    world,
)
from .failure import fail, install_except_hook, rank_label
from .threads import ThreadCommunicator, run_threads, thread_group

__all__ = [
    "DEFAULT_BUCKET_BYTES",
    "INSTALL_HINT",
    "GradientBuckets",
    "MPICommunicator",
    "MPIUnavailableError",
    "SingleProcess",
    "ThreadCommunicator",
    "broadcast_state",
    "fail",
    "install_except_hook",
    "launched_size",
    "rank_label",
    "run_threads",
    "thread_group",
    "world",
]

"""Communicators: the few collective operations data-parallel training needs, on K processes.

A communicator has a ``rank`` (0..K-1) and a ``size`` (K) and these operations, all of them
collective (every rank calls them, in the same order, or the job hangs):

- ``allreduce_(a)``: replace the NumPy array ``a``, on every rank, by the element-wise sum of
  every rank's ``a``, in place (MPI's ``Allreduce`` with ``IN_PLACE``); returns ``a``;
- ``broadcast_(a, root=0)``: replace ``a`` on every rank by ``root``'s, in place;
- ``allgather(obj)``: the list of every rank's JSON-able ``obj``, by rank;
- ``broadcast(obj, root=0)``: ``root``'s JSON-able ``obj`` on every rank;
- ``barrier()``.

Objects travel as JSON text, never pickled: what a rank receives is data, not code.

``abort(code)`` ends every rank at once (``MPI.COMM_WORLD.Abort``); it is not collective.

:class:`SingleProcess` is the communicator of one process: each operation returns its input.
:class:`MPICommunicator` wraps an ``mpi4py`` communicator (Open MPI from the ``mpi`` extra).
:func:`world` picks one: the MPI world when the process was started by ``mpirun``, otherwise
one process, so that a script runs unchanged with and without ``mpirun``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np

INSTALL_HINT = "pip install 'cnnumpy[mpi]' (mpi4py and Open MPI's mpirun)"

# What the launchers of Open MPI and of MPICH/Intel MPI (Hydra) put in each process's
# environment: the number of processes in the job.
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


class MPIUnavailableError(ImportError):
    """More than one process was asked for, but mpi4py cannot be imported."""


class SingleProcess:
    """The communicator of a run on one process: rank 0 of 1, every operation its identity."""

    rank = 0
    size = 1

    def allreduce_(self, a: np.ndarray) -> np.ndarray:
        return a

    def broadcast_(self, a: np.ndarray, root: int = 0) -> np.ndarray:
        return a

    def allgather(self, obj: Any) -> list[Any]:
        return [json.loads(json.dumps(obj))]

    def broadcast(self, obj: Any, root: int = 0) -> Any:
        return json.loads(json.dumps(obj))

    def barrier(self) -> None:
        pass

    def abort(self, code: int = 1) -> None:
        sys.exit(code)

    def __repr__(self) -> str:
        return "SingleProcess()"


class MPICommunicator:
    """``comm`` (an ``mpi4py.MPI.Comm``, by default ``COMM_WORLD``) as a communicator.

    Arrays go through mpi4py's buffer interface (the upper-case methods: no pickling, no
    copies); they must be C-contiguous, of a float or integer dtype MPI knows.
    """

    def __init__(self, comm: Any = None) -> None:
        mpi = _import_mpi4py()
        self._mpi = mpi
        self.comm = mpi.COMM_WORLD if comm is None else comm
        self.rank: int = self.comm.Get_rank()
        self.size: int = self.comm.Get_size()

    def allreduce_(self, a: np.ndarray) -> np.ndarray:
        _check_buffer(a, "allreduce_")
        if self.size > 1:
            self.comm.Allreduce(self._mpi.IN_PLACE, a, op=self._mpi.SUM)
        return a

    def broadcast_(self, a: np.ndarray, root: int = 0) -> np.ndarray:
        _check_buffer(a, "broadcast_")
        if self.size > 1:
            self.comm.Bcast(a, root=root)
        return a

    def allgather(self, obj: Any) -> list[Any]:
        data = _encode(obj)
        sizes = np.zeros(self.size, np.int64)
        self.comm.Allgather(np.array([data.size], np.int64), sizes)
        gathered = np.empty(int(sizes.sum()), np.uint8)
        self.comm.Allgatherv(data, [gathered, sizes.tolist()])
        ends = np.cumsum(sizes)
        return [_decode(gathered[end - n : end]) for n, end in zip(sizes, ends, strict=True)]

    def broadcast(self, obj: Any, root: int = 0) -> Any:
        data = _encode(obj) if self.rank == root else np.zeros(0, np.uint8)
        size = np.array([data.size], np.int64)
        self.comm.Bcast(size, root=root)
        if self.rank != root:
            data = np.empty(int(size[0]), np.uint8)
        self.comm.Bcast(data, root=root)
        return _decode(data)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)

    def __repr__(self) -> str:
        return f"MPICommunicator(rank={self.rank}, size={self.size})"


def launched_size() -> int:
    """The number of processes the launcher started this one among (1 without a launcher)."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


_WORLD: MPICommunicator | None = None


def world() -> SingleProcess | MPICommunicator:
    """The communicator of this job: the MPI world under ``mpirun -n K`` with K > 1 (the same
    object on every call), else :class:`SingleProcess`. Raises :class:`MPIUnavailableError`,
    saying how to install it, when the launcher started several processes but mpi4py is
    missing."""
    global _WORLD
    if launched_size() <= 1:
        return SingleProcess()
    if _WORLD is None:
        _WORLD = MPICommunicator()
    return _WORLD


def _import_mpi4py() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise MPIUnavailableError(
            f"this process was started as one of {launched_size()} (by mpirun), but mpi4py "
            f"is not installed ({err}); training on several processes needs {INSTALL_HINT}"
        ) from None
    return MPI


def _check_buffer(a: np.ndarray, what: str) -> None:
    if not isinstance(a, np.ndarray) or not a.flags.c_contiguous:
        raise TypeError(f"{what} takes a C-contiguous NumPy array, got {type(a).__name__}"
                        + (" (not contiguous)" if isinstance(a, np.ndarray) else ""))


def _encode(obj: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode(), np.uint8).copy()


def _decode(data: np.ndarray) -> Any:
    return json.loads(data.tobytes().decode())

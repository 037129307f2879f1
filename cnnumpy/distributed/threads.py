"""K communicators inside one process, one per thread: data-parallel training without MPI.

:func:`thread_group` returns K communicators that talk through shared memory and a barrier,
with the semantics of :class:`~cnnumpy.distributed.MPICommunicator`. Run one function per rank
with :func:`run_threads`. They let a test (or a reader of the tutorials) run K ranks of
``SyncBatchNorm`` or of a whole training step in a single Python process and compare them with
one process at the full batch, no launcher needed. Sums are taken in rank order, the same on
every rank, so every rank gets bit-identical results.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np


class _Shared:
    def __init__(self, size: int) -> None:
        self.size = size
        self.barrier = threading.Barrier(size)
        self.slots: list[Any] = [None] * size


class ThreadCommunicator:
    """Rank ``rank`` of a :func:`thread_group`; each operation waits for every rank's call."""

    def __init__(self, shared: _Shared, rank: int) -> None:
        self._shared, self.rank, self.size = shared, rank, shared.size

    def _exchange(self, value: Any) -> list[Any]:
        shared = self._shared
        shared.slots[self.rank] = value
        shared.barrier.wait()
        values = list(shared.slots)
        shared.barrier.wait()  # nobody writes the next call's value before all have read
        return values

    def allreduce_(self, a: np.ndarray) -> np.ndarray:
        values = self._exchange(a.copy())
        total = values[0].copy()
        for v in values[1:]:
            total += v
        a[...] = total
        return a

    def broadcast_(self, a: np.ndarray, root: int = 0) -> np.ndarray:
        a[...] = self._exchange(a.copy())[root]
        return a

    def allgather(self, obj: Any) -> list[Any]:
        return [json.loads(text) for text in self._exchange(json.dumps(obj))]

    def broadcast(self, obj: Any, root: int = 0) -> Any:
        return json.loads(self._exchange(json.dumps(obj))[root])

    def barrier(self) -> None:
        self._exchange(None)

    def abort(self, code: int = 1) -> None:
        self._shared.barrier.abort()  # the other ranks' waits raise BrokenBarrierError
        raise SystemExit(code)

    def __repr__(self) -> str:
        return f"ThreadCommunicator(rank={self.rank}, size={self.size})"


def thread_group(size: int) -> list[ThreadCommunicator]:
    """``size`` communicators, rank 0 to ``size - 1``, for ``size`` threads of one process."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be an int >= 1, got {size!r}")
    shared = _Shared(size)
    return [ThreadCommunicator(shared, r) for r in range(size)]


def run_threads(fn: Callable[[ThreadCommunicator], Any], size: int) -> list[Any]:
    """Call ``fn(comm)`` on ``size`` threads, one per rank of a new :func:`thread_group`;
    return the results by rank. The first exception a rank raised is raised here, after every
    thread has ended (the others are released from their waits)."""
    comms = thread_group(size)
    results: list[Any] = [None] * size
    errors: list[BaseException | None] = [None] * size

    def body(comm: ThreadCommunicator) -> None:
        try:
            results[comm.rank] = fn(comm)
        except BaseException as err:  # noqa: BLE001 - handed to the caller below
            errors[comm.rank] = err
            comm._shared.barrier.abort()

    threads = [threading.Thread(target=body, args=(c,), name=f"rank-{c.rank}") for c in comms]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = next((e for e in errors if e is not None and not _released(e)), None)
    first = first or next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return results


def _released(error: BaseException) -> bool:
    """Whether ``error`` is only a rank being released after another failed."""
    return isinstance(error, threading.BrokenBarrierError)

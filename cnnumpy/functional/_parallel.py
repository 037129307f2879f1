"""Run a kernel's independent chunks on a few threads.

NumPy releases the GIL inside its ufunc loops, so two threads working on different chunks of
a memory-bound kernel (max pooling, batch norm) use two cores, as PyTorch's CPU kernels do. Each
thread allocates its own scratch buffers and claims chunks one at a time until none is left.
Results come back per chunk in chunk order, so a caller that adds per-chunk partial sums in that
order gets bit-identical results whatever the number of threads and whoever did which chunk.

``CNNUMPY_NUM_THREADS`` sets the number of threads (default: the cores this process may run
on, at most 4, as more only adds memory contention); 1 runs everything on the calling thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

T = TypeVar("T")

_THREAD_PREFIX = "cnnumpy-kernel"


def _default_threads() -> int:
    env = os.environ.get("CNNUMPY_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


THREADS = _default_threads()
MIN_CHUNKS_PER_THREAD = 4
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()
_blas_controller = None  # a threadpoolctl.ThreadpoolController, made on first use


def _forget_pool() -> None:
    # A forked child inherits the pool object but not its threads: it must start its own.
    global _pool, _pool_size
    _pool, _pool_size = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            _pool = ThreadPoolExecutor(workers, thread_name_prefix=_THREAD_PREFIX)
            _pool_size = workers
        return _pool


def chunk_slices(count: int, item_bytes: int, chunk_bytes: int) -> list[slice]:
    """Slices of ``range(count)`` holding about ``chunk_bytes`` each at ``item_bytes`` per item
    (at least one item each); only the last may be shorter, so the first is the largest."""
    step = max(1, chunk_bytes // max(item_bytes, 1))
    return [slice(start, min(start + step, count)) for start in range(0, count, step)]


def in_order_sum(parts: Sequence[np.ndarray]) -> np.ndarray:
    """``parts[0] + parts[1] + ...`` added in that order, into a copy of ``parts[0]``: per-chunk
    partial sums from ``map_chunks`` give the same bits whatever the thread count."""
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def threads_for(chunks: Sequence[slice]) -> int:
    """How many threads ``map_chunks`` would use for ``chunks`` (1: the calling thread only)."""
    if threading.current_thread().name.startswith(_THREAD_PREFIX):
        return 1
    return max(1, min(THREADS, len(chunks) // MIN_CHUNKS_PER_THREAD))


@contextmanager
def blas_single_threaded(enabled: bool = True) -> Iterator[None]:
    """Hold the BLAS library to one thread inside the block (when ``enabled``).

    For kernels whose chunks each call BLAS (convolution): with our threads already on every
    core, BLAS threads of its own would only oversubscribe them. threadpoolctl finds the BLAS
    NumPy loaded; the controller is built once, the limit itself costs microseconds.
    """
    if not enabled:
        yield
        return
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    with _blas_controller.limit(limits=1, user_api="blas"):
        yield


def map_chunks(start: Callable[[], Callable[[slice], T]], chunks: Sequence[slice]) -> list[T]:
    """``[work(chunk) for chunk in chunks]``, the chunks shared out between threads.

    ``start()`` is called once per thread and returns that thread's ``work`` function (so each
    thread can allocate its own scratch buffers, sized for ``chunks[0]``, the largest). Threads
    claim the next unclaimed chunk whenever they finish one, so a thread that the operating
    system slows down (a busy machine) simply does fewer chunks. With one thread, one chunk, or
    when called from one of the pool's own threads (nested use would wait on itself), it all
    runs on the calling thread.
    """
    # A few chunks per thread at least: handing work to a thread costs tens of microseconds,
    # and on a busy machine the caller may wait a whole time slice for a thread the operating
    # system put aside, which only a long enough kernel amortises.
    workers = threads_for(chunks)
    if workers <= 1:
        work = start()
        return [work(chunk) for chunk in chunks]
    results: list[T | None] = [None] * len(chunks)
    claimed = iter(range(len(chunks)))
    lock = threading.Lock()

    def worker() -> None:
        work = start()
        while True:
            with lock:
                i = next(claimed, None)
            if i is None:
                return
            results[i] = work(chunks[i])

    futures = [_executor(workers - 1).submit(worker) for _ in range(workers - 1)]
    try:
        worker()  # the calling thread works too
    finally:
        for future in futures:
            future.result()
    return results  # type: ignore[return-value]

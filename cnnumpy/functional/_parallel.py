"""Run a kernel's independent chunks on a few threads.

NumPy releases the GIL inside its ufunc loops, so two threads working on different chunks of
a memory-bound kernel (max pooling, batch norm) use two cores, as PyTorch's CPU kernels do. The
chunks are split into contiguous runs, one per thread; each run allocates its own scratch
buffers. Results come back per chunk in chunk order, so a caller that adds per-chunk partial
sums in that order gets bit-identical results whatever the number of threads.

``CNNUMPY_NUM_THREADS`` sets the number of threads (default: the cores this process may run
on, at most 4, as more only adds memory contention); 1 runs everything on the calling thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

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
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


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


def map_runs(run: Callable[[Sequence[slice]], list[T]], chunks: Sequence[slice]) -> list[T]:
    """Call ``run(part)`` on contiguous parts of ``chunks`` in parallel; return the results of
    all chunks in order (``run`` returns one result per chunk of its part).

    With one thread, one chunk, or when called from one of the pool's own threads (nested
    use would wait on itself), ``run(chunks)`` runs on the calling thread.
    """
    workers = min(THREADS, len(chunks))
    if workers <= 1 or threading.current_thread().name.startswith(_THREAD_PREFIX):
        return run(chunks)
    bounds = [len(chunks) * k // workers for k in range(workers + 1)]
    parts = [chunks[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    pool = _executor(workers)
    futures = [pool.submit(run, part) for part in parts[1:]]
    results = run(parts[0])  # the calling thread takes the first part itself
    for future in futures:
        results.extend(future.result())
    return results

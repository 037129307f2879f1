"""Cut a kernel into independent chunks and share them out between the backend's threads.

Each thread allocates its own scratch buffers and claims chunks one at a time until none is
left. Results come back per chunk in chunk order, so a caller that adds per-chunk partial sums
in that order (``in_order_sum``) gets bit-identical results whatever the number of threads and
whoever did which chunk. The threads themselves, and how many there are, belong to
``cnnumpy.backend``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from .. import backend

T = TypeVar("T")

# A few chunks per thread at least: handing work to a thread costs tens of microseconds, and on
# a busy machine the caller may wait a whole time slice for a thread the operating system put
# aside, which only a long enough kernel amortises.
MIN_CHUNKS_PER_THREAD = 4


def chunk_slices(count: int, item_bytes: int, chunk_bytes: int) -> list[slice]:
    """Slices of ``range(count)`` holding about ``chunk_bytes`` each at ``item_bytes`` per item
    (at least one item each); only the last may be shorter, so the first is the largest."""
    step = max(1, chunk_bytes // max(item_bytes, 1))
    return [slice(start, min(start + step, count)) for start in range(0, count, step)]


def in_order_sum(parts: Sequence[np.ndarray]) -> np.ndarray:
    """``parts[0] + parts[1] + ...`` added in that order, into a copy of ``parts[0]``: per-chunk
    partial sums from ``map_chunks`` give the same bits whatever the thread count.

    There must be at least one part (a sum of nothing has no shape to give it): the kernels
    return early for an empty batch, before any chunk is cut.
    """
    if not parts:
        raise ValueError("in_order_sum needs at least one part; an empty batch has no chunks")
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def threads_for(chunks: Sequence[slice]) -> int:
    """How many threads ``map_chunks`` would use for ``chunks`` (1: the calling thread only):
    ``backend.get_num_threads()``, but no more than one per ``MIN_CHUNKS_PER_THREAD`` chunks."""
    if backend.in_worker_thread():
        return 1
    return max(1, min(backend.get_num_threads(), len(chunks) // MIN_CHUNKS_PER_THREAD))


def map_chunks(start: Callable[[], Callable[[slice], T]], chunks: Sequence[slice]) -> list[T]:
    """``[work(chunk) for chunk in chunks]``, the chunks shared out between threads.

    ``start()`` is called once per thread and returns that thread's ``work`` function (so each
    thread can allocate its own scratch buffers, sized for ``chunks[0]``, the largest). Threads
    claim the next unclaimed chunk whenever they finish one, so a thread that the operating
    system slows down (a busy machine) simply does fewer chunks. With one thread, one chunk, or
    when called from one of the pool's own threads (nested use would wait on itself), it all
    runs on the calling thread. No chunks (an empty batch): ``[]``, without calling ``start``,
    which sizes its buffers by ``chunks[0]``.
    """
    if not chunks:
        return []
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

    futures = backend.run_on_workers(worker, workers - 1)
    try:
        worker()  # the calling thread works too
    finally:
        for future in futures:
            future.result()
    return results  # type: ignore[return-value]

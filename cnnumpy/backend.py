"""What the kernels share at run time: the worker threads, BLAS's thread limit, scratch buffers.

Threads. NumPy releases the GIL inside its ufunc loops and BLAS calls, so a memory-bound kernel
(convolution's im2col, max pooling, batch norm) cut into chunks runs on several cores when a few
threads share the chunks out (``functional/_parallel.py``). Starting threads costs more than a
small kernel, so they live in one pool of ``get_num_threads() - 1`` helper threads; the calling
thread is always the last worker. The pool is made on first use and, when the thread count
changes, replaced by one of the new size (the old one is shut down: its threads finish what they
were given and exit).

The thread count is, in order of precedence: the last ``set_num_threads(n)`` (or the innermost
``with num_threads(n):``), else the environment variable ``CNNUMPY_NUM_THREADS``, read on first
use, else the cores this process may run on, at most ``MAX_DEFAULT_THREADS`` (more only adds
memory contention). 1 runs every kernel on the calling thread. Results do not depend on it: the
kernels add per-chunk partial sums in chunk order.

Scratch buffers. A chunked kernel needs the same few temporary arrays (a padded copy of the
chunk, its column matrix) for every chunk and every call. Fresh arrays of a few MiB each time
cost more than the copies written into them: the allocator hands large blocks back to the
operating system, and the next allocation of the same size faults every page in again. A
``Workspace`` keeps one buffer per thread and per name, allocated once, warm in the caches.

Rules for callers:

- Make one ``Workspace`` per kernel module, at module level: names are only unique within it.
- A buffer is valid until the same thread asks its workspace for the same name again: never
  return it, cache it, or hand it to another thread.
- Buffers larger than ``KEEP_BYTES`` are fresh arrays, not kept (a one-off huge image should not
  pin its memory for the life of the process).
- Change the thread count between kernel calls, not from inside one.

This module imports nothing else from cnnumpy: it is the lowest layer.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

ENV_VAR = "CNNUMPY_NUM_THREADS"
MAX_DEFAULT_THREADS = 4
KEEP_BYTES = 32 * 2**20
_THREAD_PREFIX = "cnnumpy-kernel"


def _checked_count(n: object, what: str) -> int:
    # bool is an int subclass, but True threads is surely a mistake.
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{what} must be a positive integer, got {n!r}")
    if n < 1:
        raise ValueError(f"{what} must be a positive integer, got {n!r}")
    return int(n)


def default_num_threads() -> int:
    """The thread count without ``set_num_threads``: ``CNNUMPY_NUM_THREADS`` when set (a
    positive integer, else ``ValueError``), otherwise the usable cores, at most
    ``MAX_DEFAULT_THREADS``."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(
                f"the environment variable {ENV_VAR} must be a positive integer, got {env!r}"
            )
        return int(env)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_THREADS))


class _Threads:
    """The thread count and the pool of helper threads sized for it, behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count: int | None = None  # None: not yet resolved from the environment
        self.pool: ThreadPoolExecutor | None = None
        self.blas = None  # a threadpoolctl.ThreadpoolController, made on first use

    def get(self) -> int:
        if self.count is None:
            count = default_num_threads()
            with self.lock:
                if self.count is None:
                    self.count = count
        return self.count

    def set(self, n: int) -> None:
        with self.lock:
            if n != self.count and self.pool is not None:
                self.pool.shutdown(wait=False)
                self.pool = None
            self.count = n

    def submit(self, fn: Callable[[], None], copies: int) -> list[Future]:
        count = self.get()
        # Under the lock, so that set() cannot shut the pool down between getting and using it.
        with self.lock:
            if self.pool is None:
                size = max(1, count - 1 if self.count is None else self.count - 1)
                self.pool = ThreadPoolExecutor(size, thread_name_prefix=_THREAD_PREFIX)
            return [self.pool.submit(fn) for _ in range(copies)]

    def forget(self) -> None:
        # A forked child inherits the pool object but not its threads, and maybe a held lock.
        self.lock = threading.Lock()
        self.pool = None


_threads = _Threads()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_threads.forget)


def get_num_threads() -> int:
    """How many threads a kernel may use, the calling thread included (at least 1)."""
    return _threads.get()


def set_num_threads(n: int) -> None:
    """Let the kernels use ``n`` threads from now on, the calling thread included.

    ``n`` must be a positive integer (``TypeError`` for a non-integer, ``ValueError`` below 1).
    Overrides ``CNNUMPY_NUM_THREADS``. A different count shuts the helper pool down; the next
    kernel starts one of the new size.
    """
    _threads.set(_checked_count(n, "the number of threads"))


@contextmanager
def num_threads(n: int) -> Iterator[None]:
    """``set_num_threads(n)`` inside the block; the previous count is restored on leaving it."""
    previous = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)


def in_worker_thread() -> bool:
    """Whether the calling thread is one of the pool's (a kernel there must not use the pool:
    it would wait on itself)."""
    return threading.current_thread().name.startswith(_THREAD_PREFIX)


def run_on_workers(fn: Callable[[], None], copies: int) -> list[Future]:
    """Start ``copies`` calls of ``fn()`` on the helper threads and return their futures.

    The pool has ``get_num_threads() - 1`` threads: calls beyond that wait for a free one."""
    return _threads.submit(fn, copies)


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
    if _threads.blas is None:
        from threadpoolctl import ThreadpoolController

        _threads.blas = ThreadpoolController()
    with _threads.blas.limit(limits=1, user_api="blas"):
        yield


class Workspace:
    """Per-thread scratch buffers of one kernel module, by name (see the module docstring).

    ``Workspace("conv2d")`` at module level; ``ws.buffer("columns", shape, dtype)`` in the
    kernel. Two workspaces never share a buffer, whatever the names.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"Workspace({self.owner!r})"

    def buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """An uninitialised C-contiguous ``shape`` array of ``dtype``: this thread's ``name``
        buffer, grown when too small; a fresh array above ``KEEP_BYTES``."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > KEEP_BYTES:
            return np.empty(shape, dtype=dtype)
        buffers: dict[str, np.ndarray] | None = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = self._local.buffers = {}
        buffer = buffers.get(name)
        if buffer is None or buffer.nbytes < nbytes:
            buffer = buffers[name] = np.empty(nbytes, dtype=np.uint8)
        return buffer[:nbytes].view(dtype).reshape(shape)

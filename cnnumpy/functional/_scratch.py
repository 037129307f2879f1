"""Per-thread scratch buffers that outlive a kernel call.

A kernel that works chunk by chunk needs the same few temporary arrays (a padded copy of the
chunk, its column matrix) for every chunk and every call. Fresh arrays of a few MiB each time
cost more than the copies written into them: the allocator hands large blocks back to the
operating system, and the next allocation of the same size faults every page in again (about
half the time of LeNet's 6->16 convolution backward, measured). A buffer kept per thread and per
name is allocated once and stays in the caches between chunks.

Rules for callers: a scratch array is only valid until the same thread asks for the same name
again, so it must never be returned, cached, or handed to another thread. Buffers larger than
``KEEP_BYTES`` are not kept (a one-off huge image should not pin its memory for the life of the
process).
"""

from __future__ import annotations

import math
import threading

import numpy as np

KEEP_BYTES = 32 * 2**20

_local = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised C-contiguous ``shape`` array of ``dtype``, this thread's ``name`` buffer."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > KEEP_BYTES:
        return np.empty(shape, dtype=dtype)
    buffers: dict[str, np.ndarray] | None = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    buffer = buffers.get(name)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = buffers[name] = np.empty(nbytes, dtype=np.uint8)
    return buffer[:nbytes].view(dtype).reshape(shape)

"""Timing and machine description shared by the benchmark scripts.

The machines are shared and noisy, so a ratio is only meaningful when both libraries were
timed back to back: ``time_alternately`` interleaves them round by round, and the median of
the rounds is reported.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import numpy as np

# Untimed calls before each timed one last at least this long. Another library's worker
# threads keep spinning for a while after its last call; a step of a few milliseconds timed
# right after them was measured up to twice as slow.
SETTLE_SECONDS = 0.05


def time_alternately(
    steps: list[Callable[[], object]], warmup: int, repeats: int
) -> list[list[float]]:
    """Seconds of each timed call of each step, the steps interleaved round by round.

    In each round every step runs untimed (once, or again until ``SETTLE_SECONDS`` have
    passed) and then once timed: the untimed calls let the other library's worker threads
    (which keep spinning for a while after their last call) go idle, so neither library is
    charged for the other's threads.
    """
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(warmup):
        for step in steps:
            step()
    for _ in range(repeats):
        for step, record in zip(steps, times, strict=True):
            settled = time.perf_counter() + SETTLE_SECONDS
            step()
            while time.perf_counter() < settled:
                step()
            start = time.perf_counter()
            step()
            record.append(time.perf_counter() - start)
    return times


def blas_info() -> list[dict]:
    """What threadpoolctl reports for every loaded BLAS/OpenMP library (kernel, threads)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # scikit-learn brings it; without it the report just lacks the kernel
        return []
    keys = ("internal_api", "architecture", "num_threads", "version", "filepath")
    return [{k: info.get(k) for k in keys} for info in threadpool_info()]


def machine() -> dict:
    """The facts a reader needs to compare runs: CPU, cores, library versions, BLAS kernel."""
    import torch

    from cnnumpy import backend

    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        # cnnumpy's own threads (pooling, batch norm); CNNUMPY_NUM_THREADS overrides them.
        "cnnumpy_threads": backend.get_num_threads(),
        "blas": blas_info(),
        "load_average_1min": os.getloadavg()[0],
    }


def blas_kernels(info: dict) -> str:
    """``'openblas Haswell x2, ...'`` from ``machine()['blas']``."""
    parts = [
        f"{b['internal_api']} {b['architecture'] or ''} x{b['num_threads']}".replace("  ", " ")
        for b in info["blas"]
    ]
    return ", ".join(parts) or "unknown (threadpoolctl not installed)"

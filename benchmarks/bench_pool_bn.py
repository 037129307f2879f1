"""Max pooling and batch norm forward + backward: cnnumpy against PyTorch on the CPU, float32
(a benchmark, not a test).

Each case times one training step of the layer: the forward and the backward (``dx``, and for
batch norm also ``dweight`` and ``dbias``). The two libraries are timed alternately in one run,
so a busy machine slows both alike; the median of the timed calls is reported, with the ratio
cnnumpy / PyTorch that the bars of issue 8 are stated in. Both libraries use the cores this
process may run on (cnnumpy's kernels: ``CNNUMPY_NUM_THREADS`` overrides). A machine busy with
other work slows PyTorch's threads more than cnnumpy's, flattering the ratio: quote the load
average printed at the end.

    .venv/bin/python benchmarks/bench_pool_bn.py [--repeats 15] [--warmup 3] [--only pool]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from cnnumpy.functional import _parallel
from cnnumpy.functional.norm import spatial_batch_norm_backward, spatial_batch_norm_forward
from cnnumpy.functional.pool import max_pool2d_backward, max_pool2d_forward

SHAPE = (128, 64, 32, 32)  # (N, C, H, W), the input of every case

Step = Callable[[], object]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _pool_steps(x: np.ndarray, rng: np.random.Generator, **kw) -> tuple[Step, Step]:
    out, _ = max_pool2d_forward(x, **kw)
    dout = rng.standard_normal(out.shape, dtype=np.float32)

    def ours():
        _, cache = max_pool2d_forward(x, **kw)
        return max_pool2d_backward(dout, cache)

    tx, tdout = torch.tensor(x, requires_grad=True), torch.tensor(dout)

    def theirs():
        return torch.autograd.grad(F.max_pool2d(tx, **kw), tx, tdout)

    return ours, theirs


def _batch_norm_steps(x: np.ndarray, rng: np.random.Generator) -> tuple[Step, Step]:
    c = x.shape[1]
    w, b = rng.standard_normal(c, dtype=np.float32), rng.standard_normal(c, dtype=np.float32)
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    dout = rng.standard_normal(x.shape, dtype=np.float32)

    def ours():
        _, cache, _, _ = spatial_batch_norm_forward(x, w, b, rm, rv, training=True)
        return spatial_batch_norm_backward(dout, cache)

    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    trm, trv, tdout = torch.tensor(rm), torch.tensor(rv), torch.tensor(dout)

    def theirs():
        out = F.batch_norm(tx, trm, trv, tw, tb, training=True)
        return torch.autograd.grad(out, (tx, tw, tb), tdout)

    return ours, theirs


def _time_alternately(steps: list[Step], warmup: int, repeats: int) -> list[float]:
    """Median seconds per call of each step, the steps interleaved round by round.

    In each round every step runs once untimed and then once timed: the untimed call lets the
    other library's worker threads (which keep spinning for a while after their last call) go
    idle, and brings this step's buffers back into the caches, for both libraries alike.
    """
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(warmup):
        for step in steps:
            step()
    for _ in range(repeats):
        for step, record in zip(steps, times, strict=True):
            step()
            start = time.perf_counter()
            step()
            record.append(time.perf_counter() - start)
    return [float(np.median(record)) for record in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per case (>= 7)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    parser.add_argument("--only", choices=["pool", "bn"], help="run only these cases")
    args = parser.parse_args()
    if args.repeats < 7:
        parser.error("--repeats must be at least 7")

    cores = _cores()
    torch.set_num_threads(cores)
    print(
        f"{platform.processor() or platform.machine()}, {cores} cores; numpy {np.__version__}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), cnnumpy kernels on "
        f"{_parallel.THREADS} threads; float32 x of shape {SHAPE}, median of {args.repeats} "
        f"after {args.warmup} warm-up calls"
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SHAPE, dtype=np.float32)
    cases: list[tuple[str, str, Callable[[], tuple[Step, Step]]]] = [
        ("pool", "max pool 2x2/2", lambda: _pool_steps(x, rng, kernel_size=2)),
        ("pool", "max pool 3x3/2", lambda: _pool_steps(x, rng, kernel_size=3, stride=2)),
        ("bn", "batch norm 2d train", lambda: _batch_norm_steps(x, rng)),
    ]
    print(f"{'forward + backward':22s} {'cnnumpy':>10s} {'torch':>10s} {'ratio':>7s}")
    for group, name, make in cases:
        if args.only not in (None, group):
            continue
        ours, theirs = _time_alternately(list(make()), args.warmup, args.repeats)
        print(f"{name:22s} {ours * 1e3:8.2f}ms {theirs * 1e3:8.2f}ms {ours / theirs:6.2f}x")
    # Other processes skew the timings (both libraries alike, but noisily): say how busy it was.
    print(f"load average over the last minute: {os.getloadavg()[0]:.2f} (on {cores} cores)")


if __name__ == "__main__":
    main()

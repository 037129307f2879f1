"""conv2d forward + backward: cnnumpy against PyTorch on the CPU, float32 (a benchmark, not a test).

Each case times one training step of the layer: the forward and the backward for ``dx``,
``dweight`` and ``dbias``. The two libraries are timed alternately in one run (so a busy
machine slows both alike), after warm-up calls, and the median of the timed calls is reported.
Run it on an otherwise idle machine: an oversubscribed OpenBLAS slows down far more than
PyTorch does, so a busy machine exaggerates the ratio.

    .venv/bin/python benchmarks/bench_conv.py [--repeats 15] [--warmup 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from cnnumpy.functional.conv import conv2d_backward, conv2d_forward

# name, x shape (N, C, H, W), weight shape (F, C, KH, KW), padding
CASES = [
    ("LeNet conv1  5x5  1->6   28x28 N=256", (256, 1, 28, 28), (6, 1, 5, 5), 0),
    ("LeNet conv2  5x5  6->16  14x14 N=256", (256, 6, 14, 14), (16, 6, 5, 5), 0),
    ("VGG block    3x3 64->64  32x32 N=64 ", (64, 64, 32, 32), (64, 64, 3, 3), 1),
]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cnnumpy_step(x, w, b, dout, padding) -> Callable[[], object]:
    def step():
        _, cache = conv2d_forward(x, w, b, padding=padding)
        return conv2d_backward(dout, cache)

    return step


def _torch_step(x, w, b, dout, padding) -> Callable[[], object]:
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tdout = torch.tensor(dout)

    def step():
        out = torch.nn.functional.conv2d(tx, tw, tb, padding=padding)
        return torch.autograd.grad(out, (tx, tw, tb), tdout)

    return step


def _time_alternately(steps: list[Callable[[], object]], warmup: int, repeats: int) -> list[float]:
    """Median seconds per call of each step, the steps interleaved round by round.

    In each round every step runs once untimed and then once timed: the untimed call lets the
    other library's worker threads (which keep spinning for a while after their last call) go
    idle, so neither library is charged for the other's threads.
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
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first")
    args = parser.parse_args()
    if args.repeats < 7:
        parser.error("--repeats must be at least 7")

    cores = _cores()
    torch.set_num_threads(cores)
    print(
        f"{platform.processor() or platform.machine()}, {cores} cores; numpy {np.__version__}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); float32, "
        f"median of {args.repeats} after {args.warmup} warm-up calls"
    )
    print(f"{'conv2d forward + backward':38s} {'cnnumpy':>10s} {'torch':>10s} {'ratio':>7s}")
    rng = np.random.default_rng(0)
    for name, x_shape, w_shape, padding in CASES:
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32)
        b = rng.standard_normal(w_shape[0], dtype=np.float32)
        out, _ = conv2d_forward(x, w, b, padding=padding)
        dout = rng.standard_normal(out.shape, dtype=np.float32)
        ours, theirs = _time_alternately(
            [_cnnumpy_step(x, w, b, dout, padding), _torch_step(x, w, b, dout, padding)],
            args.warmup,
            args.repeats,
        )
        print(f"{name:38s} {ours * 1e3:8.2f}ms {theirs * 1e3:8.2f}ms {ours / theirs:6.2f}x")
    # Other processes skew the timings (both libraries alike, but noisily): say how busy it was.
    print(f"load average over the last minute: {os.getloadavg()[0]:.2f} (on {cores} cores)")


if __name__ == "__main__":
    main()

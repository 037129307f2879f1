"""``cnnumpy bench``: the speed benchmarks, cnnumpy against PyTorch, side by side.

The benchmarks live in the source checkout's ``benchmarks/`` (they need PyTorch, the
reference, which the library itself never imports), so this command runs
``benchmarks/run.py`` in a separate Python process and passes its arguments through.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

RUN_PY = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="time every speed case against PyTorch (needs the source checkout and torch)",
        description=(
            "Run benchmarks/run.py: each case (a convolution, pooling or batch-norm layer, "
            "forward and backward, or a training step of a small network) is timed "
            "alternately with PyTorch in one process; the table gives the median times, the "
            "ratio cnnumpy / PyTorch and the bar, the largest ratio accepted for that case. "
            "Then the peak memory of a ResNet-20 training step. Arguments after `bench` go to "
            "run.py (try `cnnumpy bench -- --help`)."
        ),
    )
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for run.py")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not RUN_PY.is_file():
        raise ValueError(
            f"cnnumpy bench runs the source checkout's benchmarks/run.py, which is not at "
            f"{RUN_PY}: install cnnumpy from a clone with `pip install -e .`"
        )
    if importlib.util.find_spec("torch") is None:
        raise ValueError(
            "cnnumpy bench compares with PyTorch, which is not installed: pip install torch==2.13.0"
        )
    passed = [a for a in args.bench_args if a != "--"]
    return subprocess.call([sys.executable, str(RUN_PY), *passed])

"""cnnumpy against PyTorch's CPU kernels, side by side, on the speed cases of ``cases.py``.

The cases are single layers (convolutions, pooling, batch norm, forward and backward), whole
training steps of small networks and their eval-mode forwards, each at a fixed batch and image
size. For each case the two
libraries are timed alternately in one process (see ``timing.py``), in float32, after warm-up
calls; the table shows the medians, their ratio cnnumpy / PyTorch, and the bar: the largest
ratio the project accepts for that case. Then the peak memory of a ResNet-20 training step
(``memory.py``) and how the step time grows with the batch. Run it on an otherwise idle
machine and read the ratios, not the absolute times: the machines are shared.

    .venv/bin/python benchmarks/run.py [--repeats 7] [--warmup 2] [--only conv,pool,norm,step,eval]
                                       [--json bench.json] [--no-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import CASES, Case  # noqa: E402
from memory import peak_memory  # noqa: E402
from timing import blas_kernels, machine, time_alternately  # noqa: E402


def run_case(case: Case, warmup: int, repeats: int) -> dict:
    ours, theirs = case.build()
    ours_times, theirs_times = time_alternately([ours, theirs], warmup, repeats)
    ours_s, theirs_s = float(np.median(ours_times)), float(np.median(theirs_times))
    return {
        "case": case.name, "group": case.group, "cnnumpy_ms": 1e3 * ours_s,
        "torch_ms": 1e3 * theirs_s, "ratio": ours_s / theirs_s, "bar": case.bar,
        "cnnumpy_runs_ms": [1e3 * t for t in ours_times],
        "torch_runs_ms": [1e3 * t for t in theirs_times],
    }  # fmt: skip


def _verdict(row: dict) -> str:
    if row["bar"] is None:
        return ""
    return f"<= {row['bar']:.1f}x " + ("met" if row["ratio"] <= row["bar"] else "NOT met")


def print_row(row: dict) -> None:
    print(f"{row['case']:<40} {row['cnnumpy_ms']:10.2f} {row['torch_ms']:10.2f} "
          f"{row['ratio']:7.2f}x  {_verdict(row)}", flush=True)  # fmt: skip


def print_scaling(rows: list[dict]) -> None:
    """Milliseconds per image of the ResNet-20 step at each batch size: flat when the time
    grows linearly with the batch."""
    steps = sorted(
        (int(r["case"].rsplit("N=", 1)[1]), r)
        for r in rows
        if r["case"].startswith("resnet20 step")
    )
    if len(steps) < 2:
        return
    print("\nresnet20 step, ms per image:  " + "  ".join(
        f"N={n}: {r['cnnumpy_ms'] / n:.2f} (torch {r['torch_ms'] / n:.2f})" for n, r in steps
    ))  # fmt: skip


DESCRIPTION = (
    "Time cnnumpy against PyTorch on CPU, case by case: single layers (convolution, pooling, "
    "batch norm; forward and backward), training steps of small networks and their eval-mode "
    "forwards (--only picks the groups). Prints each case's median times, the ratio cnnumpy / "
    "PyTorch and the bar (the largest ratio accepted for that case), then the peak memory of a "
    "ResNet-20 training step and how the step time grows with the batch."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--only", default=None, help="comma-separated groups: conv, pool, norm, "
                        "step, eval, scaling (default all)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the results to this JSON file")  # fmt: skip
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory check")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("need --repeats >= 1 and --warmup >= 0")
    groups = None if args.only is None else set(args.only.split(","))

    torch.set_num_threads(len(_affinity()))
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores; numpy {info['numpy']} ({blas_kernels(info)}), "
          f"cnnumpy kernels on {info['cnnumpy_threads']} threads, torch {info['torch']} "
          f"({info['torch_threads']} threads); float32, median of "
          f"{args.repeats} after {args.warmup} warm-up rounds")  # fmt: skip
    print(f"{'forward + backward (steps: + loss, SGD)':<40} {'cnnumpy ms':>10} {'torch ms':>10} "
          f"{'ratio':>8}  bar")  # fmt: skip
    rows = []
    for case in CASES:
        if groups is None or case.group in groups:
            rows.append(run_case(case, args.warmup, args.repeats))
            print_row(rows[-1])
    print_scaling(rows)
    memory = None
    if not args.no_memory:
        memory = peak_memory(128)
        print(f"\npeak memory of a resnet20 step, N=128: cnnumpy {memory['cnnumpy']:.0f} MiB, "
              f"torch {memory['torch']:.0f} MiB ({memory['cnnumpy'] / memory['torch']:.2f}x; "
              "bar <= 1.0x)")  # fmt: skip
    load = np.round(np.array(os.getloadavg()), 2).tolist()
    print(f"load average (1, 5, 15 min) at the end: {load}")
    if args.json:
        report = {"machine": info, "cases": rows, "peak_memory_mib": memory,
                  "load_average_end": load}  # fmt: skip
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def _affinity() -> set[int]:
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # not on Linux
        return set(range(os.cpu_count() or 1))


if __name__ == "__main__":
    raise SystemExit(main())

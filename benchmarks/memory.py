"""Peak memory of one ResNet-20 training step, cnnumpy against PyTorch, same method for both.

Each library is measured in a fresh subprocess: both models and the batch are built, the
resident set size is read (``VmRSS``), two training steps run, and the peak resident set size
(``VmHWM``) is read. The difference is what the step needed on top of the model and data:
activations kept for the backward, gradients, the optimiser's momentum and temporaries.
Both children run with glibc's mmap threshold fixed at 128 KiB, so every large block goes back
to the system when it is freed and the resident size follows what each library holds (by
default glibc raises the threshold after the first frees and keeps freed blocks resident,
which measures the allocator's history more than the library).

    .venv/bin/python benchmarks/memory.py [--batch 128]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} (peak memory needs Linux)")


def measure_in_child(library: str, batch: int) -> float:
    """MiB the training step of ``library`` (cnnumpy or torch) needs; run in a fresh process."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from cases import resnet20_step

    ours, theirs = resnet20_step(batch)()
    step = ours if library == "cnnumpy" else theirs
    before = _status_kib("VmRSS")
    step()
    step()
    return (_status_kib("VmHWM") - before) / 1024


def peak_memory(batch: int) -> dict[str, float]:
    """``{'cnnumpy': MiB, 'torch': MiB}`` for a ResNet-20 step at ``batch``, each measured in
    its own subprocess."""
    result = {}
    for library in ("cnnumpy", "torch"):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", library, "--batch", str(batch)],
            capture_output=True, text=True, check=True,
            env={**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)},
        )  # fmt: skip
        result[library] = json.loads(proc.stdout.strip().splitlines()[-1])["mib"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--child", choices=("cnnumpy", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps({"mib": measure_in_child(args.child, args.batch)}))
        return
    mib = peak_memory(args.batch)
    print(f"resnet20 step, N={args.batch}: cnnumpy {mib['cnnumpy']:.0f} MiB, "
          f"torch {mib['torch']:.0f} MiB, ratio {mib['cnnumpy'] / mib['torch']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()

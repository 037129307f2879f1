"""Train a small MLP on the digits with checkpoints; used by test_solver's kill-and-resume tests.

    python tests/_resume_script.py DIR OUT.npz [--epochs E] [--resume]
                                   [--hang-at EPOCH:BATCH] [--hang-in FILE:EPOCH:STAGE]

Prints ``batch <epoch> <batch>`` after every optimiser step (flushed), so a test can follow it.
``--hang-at`` prints ``HANG`` after that step and sleeps (mid-epoch, weights changed since the
last checkpoint); ``--hang-in`` does so inside the write of FILE (``best.npz``, ``last.npz``,
``history.json``, ``metrics.jsonl``) at the end of epoch EPOCH, at the moment STAGE of the
write:

* ``partial``: the temporary file half written (cut to half its size, as a kill mid-write
  leaves it);
* ``fsync``: the temporary file (or, for ``metrics.jsonl``, the appended line) written, not yet
  fsync'ed;
* ``replace``: the temporary file complete and fsync'ed, not yet moved onto FILE;
* ``dir``: moved onto FILE, the directory not yet fsync'ed.

The hooks are on ``os.fsync`` and ``os.replace``, the calls every atomic write makes. The test
then SIGKILLs the process. At the end the final weights, the last epoch's weights (from
``last.npz``), the optimiser state, the history and ``metrics.jsonl`` (without the seconds)
are written to OUT.npz.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from cnnumpy import nn, optim
from cnnumpy.checkpoint import load_checkpoint
from cnnumpy.data import digits, normalize
from cnnumpy.solver import Solver
from cnnumpy.train import read_metrics


def build(seed: int = 0) -> tuple[nn.Module, optim.SGD, optim.StepLR]:
    """Linear-ReLU-Dropout-Linear in float64, SGD with Nesterov momentum, a step schedule."""
    rng = np.random.default_rng(seed)
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 32, rng=rng),
        nn.ReLU(),
        nn.Dropout(0.1, rng=np.random.default_rng(seed + 1)),
        nn.Linear(32, 10, rng=rng),
    ).to(np.float64)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    return model, opt, optim.StepLR(opt, step_size=2, gamma=0.5)


def hang() -> None:
    print("HANG", flush=True)
    time.sleep(600)


def written_file(path: str) -> str:
    """The file a path is written for: ``last.npz`` for its temporary ``.last.npz.k3j_x.tmp``."""
    name = Path(path).name
    match = re.fullmatch(r"\.(.+)\.\w+\.tmp", name)
    return match.group(1) if match else name


def hang_in_writes(spec: str, solver: Solver) -> None:
    """Patch ``os.fsync`` and ``os.replace`` to hang at ``FILE:EPOCH:STAGE`` (see above)."""
    name, epoch, stage = spec.split(":")
    fsync, replace = os.fsync, os.replace

    def now(target: str) -> bool:
        return written_file(target) == name and solver.epoch == int(epoch)

    def hooked_fsync(fd: int) -> None:
        if stage in ("partial", "fsync") and now(os.readlink(f"/proc/self/fd/{fd}")):
            if stage == "partial":
                os.ftruncate(fd, os.fstat(fd).st_size // 2)
            hang()
        fsync(fd)

    def hooked_replace(src, dst) -> None:
        if stage == "replace" and now(dst):
            hang()
        replace(src, dst)
        if stage == "dir" and now(dst):
            hang()

    os.fsync, os.replace = hooked_fsync, hooked_replace


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hang-at", default=None)
    parser.add_argument("--hang-in", default=None)
    args = parser.parse_args(argv)

    data = normalize(digits(), np.float64)
    model, opt, sched = build()
    solver = Solver(
        model, nn.CrossEntropyLoss(), opt, data.train, data.val, batch_size=32,
        epochs=args.epochs, seed=3, patience=None, checkpoint_dir=args.dir, scheduler=sched,
        progress=False, resume=args.resume, normalization=data.normalization.to_dict(),
    )  # fmt: skip

    step, batch = opt.step, [0, 0]

    def traced_step() -> None:
        step()
        epoch = solver.epoch + 1
        batch[:] = [epoch, batch[1] + 1 if batch[0] == epoch else 1]
        print(f"batch {batch[0]} {batch[1]}", flush=True)
        if args.hang_at == f"{batch[0]}:{batch[1]}":
            hang()

    opt.step = traced_step
    if args.hang_in is not None:
        hang_in_writes(args.hang_in, solver)

    solver.train()
    last = load_checkpoint(args.dir / "last.npz")
    arrays = {f"final/{k}": v for k, v in model.state_dict().items()}
    arrays |= {f"last/{k}": v for k, v in last["model_state"].items()}
    arrays |= {f"optim/{k}": v for k, v in opt.state_dict().items()}
    arrays["history"] = np.array(json.dumps(solver.history))
    records = [{k: v for k, v in r.items() if k != "seconds"}
               for r in read_metrics(args.dir / "metrics.jsonl")]  # fmt: skip
    arrays["metrics"] = np.array(json.dumps(records))
    np.savez(args.out, **arrays)
    print("DONE", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""What ``cnnumpy train`` does once its arguments are parsed: every check that can be made
before training, then the training, then the report; and what it says when a run ends early.

Before the first step, in this order (each a clear error, nothing trained): the run directory
(never another run's, unless ``--resume`` or ``--overwrite``; created and written to with a
probe file; stale temporary files removed), the checkpoint to resume and the settings it
records, the model options, the data (readable, a non-empty test set), the model, the free
space the checkpoints need, and the resumed state (read and checked whole by the Solver).

Under ``mpirun -n K`` every process runs this with the same arguments: rank 0 alone plans the
run directory (and reports), the plan is broadcast, every rank loads the data and builds the
model, and the Solver trains on the K ranks (see :mod:`cnnumpy.train.data_parallel`). A rank
that fails ends the job with its message (:mod:`cnnumpy.distributed.failure`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend, distributed
from ..checkpoint import load_checkpoint
from ..data import Dataset, Normalization, normalize
from ..data.folder import run_name
from ..models import model_label, model_spec
from ..nn import SyncBatchNorm
from ..solver import Solver
from ..train import run_dir
from ..train.errors import (
    DivergenceError,
    ResumeError,
    RunDirectoryError,
    RunWriteError,
)
from ..train.factory import criterion_for, default_lr, make_optimizer, make_scheduler
from ..train.resume import flag, merge_settings
from ._common import load_data, make_augment
from ._train_report import report
from ._train_settings import (
    DATA_FIXED,
    DEFAULTS,
    build_checked,
    check_model_options,
    data_dir_for,
    given_settings,
    recorded_settings,
    to_config,
)

RUNS = Path("runs")
"""Where runs go without ``--out``."""
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


@dataclass
class Plan:
    """What the checks before training decided."""

    out: Path
    settings: dict[str, Any]
    resume: bool
    created: bool = False
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)


def run(args: argparse.Namespace) -> int:
    """``cnnumpy train``: plan, set up, train and report; the exit status."""
    try:
        comm = distributed.world()
    except distributed.MPIUnavailableError as err:
        print(f"cnnumpy train: error: {err}", file=sys.stderr)
        return 1
    if comm.size == 1:
        return _run(args, comm)
    distributed.install_except_hook(comm)
    if comm.rank > 0:  # rank 0 reports; the others print only their errors
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    try:
        status = _run(args, comm)
    except (ValueError, OSError) as err:
        return distributed.fail(comm, f"cnnumpy train: error: {err}")
    if status != 0 and comm.rank == 0:  # the others may still wait in a collective
        return distributed.fail(comm, f"cnnumpy train: ended with status {status}", status)
    return status


def _run(args: argparse.Namespace, comm: Any) -> int:
    _set_threads(args, comm)
    plan = plan_run(args) if comm.rank == 0 else None
    if comm.size > 1:
        plan = _broadcast_plan(comm, plan)
    try:
        data, train = _load(plan.settings, args)
        solver = _set_up(plan, data, train, args, comm)
    except BaseException:
        if plan.created and comm.rank == 0:  # no empty directory behind a run that never started
            run_dir.remove_if_empty(plan.out)
        raise
    if comm.rank > 0:
        return _train_quietly(solver)
    return _train_and_report(plan, solver, data, args)


def _set_threads(args: argparse.Namespace, comm: Any) -> None:
    """``--threads``; on K processes of one machine by default each gets its share of the
    cores, for cnnumpy's kernels and for BLAS alike (K processes each using every core
    would only fight over them)."""
    threads = args.threads
    if threads is None and comm.size > 1:
        local = int(os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE", comm.size))
        threads = max(1, len(os.sched_getaffinity(0)) // max(1, local))
    if threads is not None:
        backend.set_num_threads(threads)
        if comm.size > 1:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=threads, user_api="blas")


def _broadcast_plan(comm: Any, plan: Plan | None) -> Plan:
    """Rank 0's plan on every rank (as JSON: tuples in the model options come back as such)."""
    sent = None if plan is None else {
        "out": str(plan.out), "settings": plan.settings, "resume": plan.resume,
        "created": plan.created, "changes": plan.changes,
    }  # fmt: skip
    got = comm.broadcast(sent, root=0)
    settings = dict(got["settings"])
    settings["model_options"] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in settings["model_options"].items()
    }
    changes = [tuple(c) for c in got["changes"]]
    return Plan(Path(got["out"]), settings, got["resume"], got["created"], changes)


def _train_quietly(solver: Solver) -> int:
    """Train on a rank other than 0. The errors every rank meets alike (a diverged loss, seen
    in the global loss) are left to rank 0 to report; any other error ends the job."""
    try:
        solver.train()
    except (DivergenceError, KeyboardInterrupt):
        return 1
    return 0


# -- before training ----------------------------------------------------------------------------
def plan_run(args: argparse.Namespace) -> Plan:
    """The run directory and the settings, with the checks that need neither data nor model."""
    if args.resume and args.overwrite:
        raise ValueError(
            "--resume continues the run in --out and --overwrite replaces it: give one"
        )
    given = given_settings(args)
    if args.resume:
        plan = _resumed(args, given)
    else:
        settings = {**DEFAULTS, **given}
        check_model_options(settings["model"], settings["model_options"])
        if args.out is None:
            label = model_label(settings["model"])
            out = run_dir.fresh_run_dir(RUNS, f"{label}-{run_name(settings['dataset'])}")
            plan = Plan(out, settings, resume=False, created=True)
            try:
                run_dir.prepare(out)
            except RunDirectoryError:
                run_dir.remove_if_empty(out)
                raise
        else:
            if not args.overwrite:
                run_dir.refuse_other_run(args.out)
            plan = Plan(args.out, settings, resume=False, created=run_dir.prepare(args.out))
    s = plan.settings
    s["lr"] = default_lr(s["optimizer"]) if s["lr"] is None else s["lr"]
    s["data_dir"] = data_dir_for(s["dataset"], s["data_dir"])
    return plan


def _resumed(args: argparse.Namespace, given: dict[str, Any]) -> Plan:
    """The run to resume, its checkpoint read and its recorded settings merged with ``given``."""
    label = model_label(given.get("model", DEFAULTS["model"]))
    name = f"{label}-{run_name(given.get('dataset', DEFAULTS['dataset']))}"
    out = args.out if args.out is not None else run_dir.latest_run_dir(RUNS, name)
    if out is None:
        raise ResumeError(f"--resume: no run of {name} under {RUNS}/ to resume; name it with --out")
    if not out.is_dir():
        raise ResumeError(f"--resume: {out} does not exist; there is no run to resume")
    run_dir.prepare(out)
    checkpoint = run_dir.resume_checkpoint(out)
    recorded = recorded_settings(load_checkpoint(checkpoint))
    settings, changes, unrecorded = merge_settings(recorded, given, str(checkpoint))
    optimizer = settings.get("optimizer", given.get("optimizer"))
    unused = {"mu"} if optimizer != "sdlm" else set()  # no such hyper-parameter: nothing lost
    unused |= {"momentum"} if optimizer not in ("sgd", "rmsprop") else set()
    unused |= {"sync_bn"}  # recorded since it exists; an older run had plain batch norm
    defaulted = [
        flag(n)
        for n in unrecorded
        if n not in given and n not in unused and DEFAULTS[n] is not None
    ]
    if defaulted:
        print(f"note: {checkpoint} does not record {', '.join(defaulted)} (an older cnnumpy "
              "wrote it); the defaults are used")  # fmt: skip
    settings = {**DEFAULTS, **settings}
    check_model_options(settings["model"], settings["model_options"])
    return Plan(out, settings, resume=True, changes=changes)


def _load(s: dict[str, Any], args: argparse.Namespace) -> tuple[Dataset, tuple]:
    """The data set, normalised with the model's prescribed scaling or the training
    statistics, and the part of its training split the run trains on."""
    data_dir = Path(s["data_dir"]) if s["data_dir"] else None
    raw = load_data(s["dataset"], data_dir, verify=not args.no_verify, val_size=s["val_size"])
    if len(raw.test[1]) == 0:
        raise ValueError(f"the {s['dataset']} test set has no images: there would be no test "
                         "accuracy to report")  # fmt: skip
    scaling = model_spec(s["model"]).input_scaling
    channels = raw.image_shape[0]
    stats = None if scaling is None else Normalization((scaling[0],) * channels,
                                                       (scaling[1],) * channels)  # fmt: skip
    data = normalize(raw, stats=stats)
    x, y = data.train
    size = s["train_size"]
    if size is not None and not 1 <= size <= len(y):
        raise ValueError(f"--train-size must be between 1 and {len(y)} (the {s['dataset']} "
                         f"training split), got {size}")  # fmt: skip
    train = (x, y) if size is None else (x[:size], y[:size])
    s["train_size"] = len(train[1])
    s["val_size"] = None if s["dataset"] == "digits" else len(data.val[1])  # digits: fixed
    return data, train


def _set_up(
    plan: Plan, data: Dataset, train: tuple, args: argparse.Namespace, comm: Any
) -> Solver:
    """The model, optimiser and Solver (which reads and checks a resumed state whole)."""
    s = plan.settings
    model_kwargs = _model_kwargs(data, s)
    model = build_checked(s["model"], s["seed"], model_kwargs, s["model_options"])
    if s["sync_bn"]:
        model = SyncBatchNorm.convert_sync_batchnorm(model, comm)
    optimizer = make_optimizer(s["optimizer"], model.parameters(), s["lr"], momentum=s["momentum"],
                               weight_decay=s["weight_decay"], mu=s["mu"])  # fmt: skip
    run_dir.check_free_space(
        plan.out, _checkpoint_bytes(model, optimizer) * (1 if plan.resume else 3)
    )
    if args.overwrite and comm.rank == 0 and (removed := run_dir.clear(plan.out)):
        print(f"--overwrite: removed {', '.join(removed)} from {plan.out}")
    validated = len(data.val[1]) > 0  # --val-size 0 trains on every image, keeps the last epoch
    solver = Solver(
        model, criterion_for(model), optimizer, train, data.val if validated else None,
        batch_size=s["batch_size"], epochs=s["epochs"], seed=s["seed"], patience=s["patience"],
        checkpoint_dir=plan.out, progress=not args.no_progress, model_name=s["model"],
        normalization=data.normalization.to_dict(), resume=plan.resume,
        config={**to_config(s, model_kwargs), "classes": list(data.classes)},
        augment=make_augment(s["augment"], s["dataset"], data.normalization, data.image_shape[1]),
        scheduler=make_scheduler(s["lr_schedule"], optimizer, s["epochs"]),
        clip_grad_norm=s["clip_grad_norm"], divergence_factor=s["divergence_factor"] or 0.0,
        comm=comm,
    )  # fmt: skip
    solver.record_changes(plan.changes)
    return solver


def _model_kwargs(data: Dataset, s: dict[str, Any]) -> dict[str, Any]:
    c, h, w = data.image_shape
    if h != w:
        raise ValueError(f"models take square images; {s['dataset']} has {h}x{w}")
    return {**dict(zip(DATA_FIXED, (c, h, len(data.classes)), strict=True)), **s["model_options"]}


def _checkpoint_bytes(model: Any, optimizer: Any) -> int:
    """About the size of one checkpoint: the weights twice (the model and the best epoch's)
    and the optimiser's state."""
    weights = sum(v.nbytes for v in model.state_dict().values())
    return 2 * weights + sum(np.asarray(v).nbytes for v in optimizer.state_dict().values())


# -- training and after -------------------------------------------------------------------------
def _train_and_report(plan: Plan, solver: Solver, data: Dataset, args: argparse.Namespace) -> int:
    t = solver.trainer
    print(
        f"run directory: {plan.out}" + (f" (resumed after epoch {t.epoch})" if plan.resume else "")
    )
    for c in t.changes[len(t.changes) - len(plan.changes) :]:
        print(
            f"from epoch {c['epoch']}: {flag(c['option'])} {_show(c['from'])} -> {_show(c['to'])}"
        )
    if plan.resume and t.stop_training:
        print(f"the run stopped early after epoch {t.epoch} (--patience {plan.settings['patience']}"
              "); give a larger --patience to continue it")  # fmt: skip
    elif plan.resume and t.epoch >= t.epochs:
        print(f"the run has done {t.epoch} epochs; give a larger --epochs to continue it")
    start = time.perf_counter()
    try:
        history = solver.train()
        report(solver, history, data, plan.settings, plan.out, time.perf_counter() - start)
    except KeyboardInterrupt:
        _say(*_interrupted(plan, solver, args))
        return EXIT_INTERRUPTED
    except (DivergenceError, RunWriteError) as err:
        _say(f"cnnumpy train: error: {err}", _way_on(err, plan, solver, args))
        return 1
    return 0


def _say(*lines: str) -> None:
    print("\n".join(lines), file=sys.stderr, flush=True)


def _show(value: Any) -> str:
    return "off" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _interrupted(plan: Plan, solver: Solver, args: argparse.Namespace) -> tuple[str, str]:
    """The two lines after Ctrl-C: where the run stopped and what it kept, and the command."""
    t = solver.trainer
    where = f"after epoch {t.epoch}"
    if t.batch:
        where = f"in epoch {t.epoch + 1} (batch {t.batch} of {len(t.train_loader)})"
    if t.last_checkpoint is None:
        first = (
            f"cnnumpy train: interrupted {where}, before the first checkpoint: nothing to resume"
        )
        return first, f"to start again: {_restart_command(args, plan.out)}"
    first = (
        f"cnnumpy train: interrupted {where}; {t.last_checkpoint} "
        f"(after epoch {t.last_checkpoint_epoch}) is intact"
    )
    return first, f"to continue: {_resume_command(plan, args)}"


def _way_on(err: Exception, plan: Plan, solver: Solver, args: argparse.Namespace) -> str:
    """The command that continues after a divergence or a failed write."""
    t, smaller = solver.trainer, f"{plan.settings['lr'] / 10:g}"
    if isinstance(err, DivergenceError):
        if t.last_checkpoint is None:
            command = _restart_command(args, plan.out, {"--lr": smaller})
            return f"to start again with smaller steps: {command}"
        return f"to continue with smaller steps: {_resume_command(plan, args)} --lr {smaller}"
    if t.last_checkpoint is None:
        return f"once the problem is fixed, start again: {_restart_command(args, plan.out)}"
    return f"once the problem is fixed, continue: {_resume_command(plan, args)}"


def _resume_command(plan: Plan, args: argparse.Namespace) -> str:
    words = ["cnnumpy", "train", "--resume", "--out", str(plan.out)]
    return shlex.join(words + (["--no-verify"] if args.no_verify else []))


def _restart_command(
    args: argparse.Namespace, out: Path, replace: dict[str, str] | None = None
) -> str:
    """The command as it was given, aimed at ``out``, replacing what the run left there, and
    with the options in ``replace`` (``{"--lr": "0.0001"}``) given new values."""
    replace = replace or {}
    dropped = {"--out", *replace}  # options whose value follows them
    kept, skip = [], False
    for word in getattr(args, "argv", ["train"]):
        name = word.partition("=")[0]
        if skip or word == "--overwrite" or (name in dropped and "=" in word):
            skip = False
            continue
        skip = word in dropped
        if not skip:
            kept.append(word)
    new = [part for item in replace.items() for part in item]
    return shlex.join(["cnnumpy", *kept, "--out", str(out), *new, "--overwrite"])

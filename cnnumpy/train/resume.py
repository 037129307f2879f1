"""Resuming a run: which settings it keeps, which may change between its legs, and changing the
learning rate of a run whose optimiser and schedule come back from a checkpoint.

A run is what its fixed settings (:data:`FIXED`) make it: the same seed, data, model and
optimiser give the same arithmetic, so a run resumed with another of them would be another run
under the old one's name, and is refused. The settings in :data:`CHANGEABLE` only steer the
rest of the run (how long, how large the steps, when to stop); a new value takes effect at the
first epoch of the new leg and is recorded as a change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..optim.lr_scheduler import LRScheduler
from .callbacks.early_stopping import EarlyStopping
from .errors import ResumeError
from .trainer import Trainer

FIXED = (
    "model", "model_options", "dataset", "seed", "batch_size", "augment", "optimizer",
    "lr_schedule", "momentum", "weight_decay", "mu", "train_size", "val_size", "sync_bn",
)  # fmt: skip
"""Settings that make the run what it is: refused when a resumed run is given another value."""
CHANGEABLE = ("lr", "epochs", "patience", "clip_grad_norm", "divergence_factor", "data_dir")
"""Settings a resumed run may change: applied from its next epoch and recorded."""


def flag(name: str) -> str:
    """The command-line option of a setting: ``batch_size`` -> ``--batch-size``."""
    return "--model-option" if name == "model_options" else "--" + name.replace("_", "-")


def _same(a: Any, b: Any) -> bool:
    """Equal as they would be after a JSON round trip (tuples and lists alike)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def merge_settings(
    recorded: Mapping[str, Any], given: Mapping[str, Any], source: str
) -> tuple[dict[str, Any], list[tuple[str, Any, Any]], list[str]]:
    """The settings of a resumed run: ``given`` (only the options given on the command line)
    over ``recorded`` (those the checkpoint ``source`` records).

    Returns ``(settings, changes, unrecorded)``: ``changes`` lists ``(name, recorded, given)``
    for each changeable setting given another value; ``unrecorded`` names the settings the
    checkpoint does not record (an older file), for which the given value, or the caller's
    default, is taken. Raises ResumeError listing every fixed setting given another value.
    """
    conflicts, changes = [], []
    for name, value in given.items():
        if name not in recorded or _same(value, recorded[name]):
            continue
        if name in FIXED:
            conflicts.append(f"{flag(name)} {_show(value)} (the run has {_show(recorded[name])})")
        elif name in CHANGEABLE:
            changes.append((name, recorded[name], value))
        else:
            raise KeyError(f"unknown setting {name!r}")
    if conflicts:
        raise ResumeError(
            f"--resume continues the run recorded in {source}, and these options would make it "
            f"another run: {'; '.join(conflicts)}. Drop them to continue the run, or start a "
            "new run with another --out (or --overwrite to replace this one)"
        )
    unrecorded = [name for name in (*FIXED, *CHANGEABLE) if name not in recorded]
    return {**recorded, **given}, changes, unrecorded


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={json.dumps(v)}" for k, v in value.items()) or "none"
    return "none" if value is None else str(value)


def change_lr(optimizer: Any, scheduler: Any, old: float, new: float) -> float:
    """Make ``new`` the base learning rate of a resumed run whose base was ``old``; return
    the rate the next epoch trains with.

    The rate in effect is scaled by ``new / old``, so a schedule continues from where it was
    with the new base (a cosine keeps its shape, a plateau keeps its reductions); without a
    schedule the rate simply becomes ``new``. From a base of 0 the rate is set to ``new``.
    """
    optimizer.lr = float(optimizer.lr) * new / old if old > 0 else float(new)
    if isinstance(scheduler, LRScheduler):
        scheduler.base_lr = float(new)
    return optimizer.lr


def apply_changes(
    trainer: Trainer,
    changes: list[tuple[str, Any, Any]],
    scheduler: Any = None,
    early: EarlyStopping | None = None,
) -> list[dict[str, Any]]:
    """Apply the settings a resumed run changes, ``(name, old, new)``, and record each in
    ``trainer.changes`` (saved with the checkpoints) with the epoch it takes effect in; return
    the records added.

    The trainer and its callbacks were built with the new values; the checkpoint brought back
    what depends on the old ones, which is put right here: ``lr`` becomes the base learning
    rate (:func:`change_lr`, with the run's ``scheduler``), and a run that early stopping had
    ended continues when the new ``patience`` of ``early`` (None: off) has not run out (for a
    run that only early stopping stops, as the Solver's).
    """
    records = []
    for name, old, new in changes:
        if name == "lr":
            change_lr(trainer.optimizer, scheduler, old, new)
        if name == "patience":
            trainer.stop_training = early is not None and early.should_stop()
        records.append({"epoch": trainer.epoch + 1, "option": name, "from": old, "to": new})
    trainer.changes.extend(records)
    return records

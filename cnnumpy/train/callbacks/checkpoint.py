"""``Checkpoint``: ``best.npz``, ``last.npz`` and ``history.json`` after every epoch, and
resuming a run from ``last.npz``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ...checkpoint import atomic_write, load_checkpoint, remove_stale_temporaries, save_checkpoint
from .base import PRIORITY_CHECKPOINT, Callback
from .best_model import STATE_PREFIX

FILES = ("best.npz", "last.npz", "history.json")


class Checkpoint(Callback):
    """At ``on_epoch_end``, last of all (after every callback has updated its state), writes
    into ``directory``, each file atomically (see :mod:`cnnumpy.checkpoint`):

    * ``best.npz`` when the epoch is the best so far (``logs["best"]``, from
      :class:`BestModel`), with the model as it is now;
    * ``last.npz``: the full training state, everything the next epoch depends on: weights,
      optimiser state, epoch, history, every registered Generator (``trainer.rngs``), whether
      training was stopped, and each callback's :meth:`~Callback.state_dict` (the best weights,
      the scheduler, early stopping's count, ...);
    * ``history.json``: ``trainer.history``.

    ``model_name``, ``normalization`` and ``extra`` (JSON-able: how the run was set up) are
    stored in both checkpoints. :meth:`resume` restores a run from ``last.npz``, so that a run
    killed at any moment continues with exactly the arithmetic of an uninterrupted one.
    """

    priority = PRIORITY_CHECKPOINT

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        model_name: str | None = None,
        normalization: dict | None = None,
        extra: dict | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.model_name, self.normalization = model_name, normalization
        self.extra = dict(extra or {})

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if logs.get("best"):
            self.save(self.directory / "best.npz")
        self.save(self.directory / "last.npz")
        self.trainer.last_checkpoint = self.directory / "last.npz"
        text = json.dumps(self.trainer.history, indent=1).encode()
        atomic_write(self.directory / "history.json", lambda f: f.write(text))

    def save(self, path: str | os.PathLike) -> None:
        """Write the trainer's full state to ``path``."""
        t = self.trainer
        save_checkpoint(
            path, model=t.model, optimizer=t.optimizer, epoch=t.epoch, history=t.history,
            rng_states=t.rngs.generators(), model_name=self.model_name,
            normalization=self.normalization, callback_states=_callback_states(t.callbacks),
            extra={**self.extra, "stopped_early": t.stop_training},
        )  # fmt: skip

    def resume(self, path: str | os.PathLike | None = None) -> dict[str, Any]:
        """Restore the trainer from ``path`` (default ``directory/last.npz``): weights,
        optimiser, every Generator, epoch, history, the stop flag and the callbacks' states
        (a callback the checkpoint has no state for keeps its own). ``fit()`` then continues
        with the epoch after the saved one. Reads the version 1 files of the old ``Solver``
        too. Returns the checkpoint's contents."""
        t = self.trainer
        path = Path(path) if path is not None else self.directory / "last.npz"
        contents = load_checkpoint(path, t.model, t.optimizer)
        t.rngs.load_state_dict(contents["rng_states"], f"checkpoint {path}")
        states = contents["callback_states"]
        if contents["version"] == 1:
            states = _states_from_version_1(contents)
        for cb in t.callbacks:
            if cb.state_key in states:
                cb.load_state_dict(states[cb.state_key])
        t.epoch = int(contents["epoch"])
        t.history = {key: list(values) for key, values in contents["history"].items()}
        t.stop_training = bool(contents["extra"].get("stopped_early", False))
        t.last_checkpoint = path
        for name in FILES:
            remove_stale_temporaries(self.directory / name)
        return contents

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.directory)!r})"


def _callback_states(callbacks: list[Callback]) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {}
    for cb in callbacks:
        state = cb.state_dict()
        if not state:
            continue
        if cb.state_key in states:
            raise ValueError(
                f"two callbacks save their state as {cb.state_key!r}; give one another state_key"
            )
        states[cb.state_key] = state
    return states


def _states_from_version_1(contents: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The callbacks' states a version 1 file (the old ``Solver``'s) holds in other places:
    the best weights in ``best/``, the scheduler in ``sched/``, the best score and epoch in
    ``extra``, from which early stopping's count follows."""
    extra, states = contents["extra"], {}
    best_score, best_epoch = extra.get("best_val_acc"), int(extra.get("best_epoch", 0))
    best = {"best_score": best_score, "best_epoch": best_epoch}
    for key, value in (contents["best_state"] or {}).items():
        best[STATE_PREFIX + key] = value
    states["BestModel"] = best
    if best_score is not None:
        states["EarlyStopping"] = {"best": best_score, "wait": int(contents["epoch"]) - best_epoch}
    if contents["scheduler_state"] is not None:
        states["LRSchedule"] = contents["scheduler_state"]
    return states

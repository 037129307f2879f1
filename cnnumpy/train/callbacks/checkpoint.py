"""``Checkpoint``: ``best.npz``, ``last.npz`` and ``history.json`` after every epoch, and
resuming a run from ``last.npz``."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...checkpoint import atomic_write, load_checkpoint, remove_stale_temporaries, save_checkpoint
from .. import strict_json
from ..errors import ResumeError, RunWriteError
from .base import PRIORITY_CHECKPOINT, Callback
from .best_model import STATE_PREFIX
from .history import EPOCH_KEYS

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
    * ``history.json``: ``trainer.history`` (strict JSON: a NaN, a value nobody measured, is
      ``null``), with ``changes`` (``trainer.changes``) when a resumed run changed a setting.

    ``model_name``, ``normalization`` and ``extra`` (JSON-able: how the run was set up) are
    stored in both checkpoints.

    On K processes it runs on every rank (the ranks' Generator states are gathered, a
    collective step) and rank 0 alone writes. The checkpoint records ``world_size`` K and each
    rank's Generators (rank 0's under their own names, rank ``r``'s as ``rank{r}:NAME``);
    resuming needs the same K, since another would give each rank other images to augment and
    other noise to draw, and batch norm other per-rank statistics.

    :meth:`resume` restores a run from ``last.npz``, so that a run killed at any moment
    continues with exactly the arithmetic of an uninterrupted one.

    A write that fails (a full disk, a lost mount) raises :class:`~cnnumpy.train.RunWriteError`
    naming the file and the last complete checkpoint: each file is replaced only by a complete
    new one, so the previous ``last.npz`` is intact. Temporary files that an interrupted write
    left behind are removed when training begins.
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

    def on_train_begin(self) -> None:
        if _rank(self.trainer) > 0:  # rank 0 owns the files
            return
        for name in FILES:
            remove_stale_temporaries(self.directory / name)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        t, last = self.trainer, self.directory / "last.npz"
        rng_states = _all_ranks_rng_states(t)
        if _rank(t) > 0:
            t.last_checkpoint, t.last_checkpoint_epoch = last, t.epoch
            return
        if logs.get("best"):
            self._write(self.directory / "best.npz", lambda p: self.save(p, rng_states))
        self._write(last, lambda p: self.save(p, rng_states))
        t.last_checkpoint, t.last_checkpoint_epoch = last, t.epoch
        record = dict(t.history) | ({"changes": t.changes} if t.changes else {})
        text = strict_json.dumps(record, indent=1).encode()
        self._write(
            self.directory / "history.json", lambda p: atomic_write(p, lambda f: f.write(text))
        )

    def _write(self, path: Path, write: Callable[[Path], None]) -> None:
        try:
            write(path)
        except OSError as err:
            raise RunWriteError(
                f"could not write {path} ({err.strerror or err}); {self.trainer.checkpoint_note()}"
                " (each file is replaced only once a complete new one is written)"
            ) from err

    def save(self, path: str | os.PathLike, rng_states: dict[str, Any] | None = None) -> None:
        """Write the trainer's full state to ``path`` (``rng_states``: every rank's, from
        :func:`_all_ranks_rng_states`; default this process's Generators)."""
        t = self.trainer
        world = _world_size(t)
        extra = {**self.extra, "stopped_early": t.stop_training, "changes": t.changes}
        if world > 1:
            extra["world_size"] = world
        save_checkpoint(
            path, model=t.model, optimizer=t.optimizer, epoch=t.epoch, history=t.history,
            rng_states=rng_states if rng_states is not None else t.rngs.generators(),
            model_name=self.model_name,
            normalization=self.normalization, callback_states=_callback_states(t.callbacks),
            extra=extra,
        )  # fmt: skip

    def resume(self, path: str | os.PathLike | None = None) -> dict[str, Any]:
        """Restore the trainer from ``path`` (default ``directory/last.npz``): weights,
        optimiser, every Generator, epoch, history, the stop flag, the changes and the
        callbacks' states. ``fit()`` then continues with the epoch after the saved one. Reads
        the version 1 files of the old ``Solver`` too. Returns the checkpoint's contents.

        Everything is read and checked here, before any step: a state that does not fit the
        trainer (another model, optimiser or schedule, a callback with state the checkpoint
        lacks, a history of the wrong length) raises ValueError naming the file; the trainer
        may then be partly restored and should not be trained.
        """
        t = self.trainer
        path = Path(path) if path is not None else self.directory / "last.npz"
        contents = load_checkpoint(path, t.model, t.optimizer)
        _check_world_size(path, contents, _world_size(t))
        t.rngs.load_state_dict(_rank_rng_states(contents["rng_states"], _rank(t)),
                               f"checkpoint {path}")  # fmt: skip
        states = contents["callback_states"]
        if contents["version"] == 1:
            states = _states_from_version_1(contents)
        _check_states(path, t.callbacks, states)
        for cb in t.callbacks:
            if cb.state_key not in states:
                continue
            try:
                cb.load_state_dict(states[cb.state_key])
            except (KeyError, TypeError, ValueError) as err:
                raise ResumeError(f"checkpoint {path}: the state of {cb.state_key} does not fit "
                                  f"this run: {err}") from None  # fmt: skip
        t.epoch = int(contents["epoch"])
        t.history = _checked_history(path, contents["history"], t.epoch)
        t.stop_training = bool(contents["extra"].get("stopped_early", False))
        t.changes = list(contents["extra"].get("changes", []))
        t.last_checkpoint, t.last_checkpoint_epoch = path, t.epoch
        return contents

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.directory)!r})"


def _rank(trainer: Any) -> int:
    comm = getattr(trainer, "comm", None)
    return 0 if comm is None else comm.rank


def _world_size(trainer: Any) -> int:
    comm = getattr(trainer, "comm", None)
    return 1 if comm is None else comm.size


def _all_ranks_rng_states(trainer: Any) -> dict[str, Any]:
    """Every rank's Generator states: rank 0's by name, rank ``r``'s as ``rank{r}:name``
    (collective on K processes)."""
    own = trainer.rngs.state_dict()
    if _world_size(trainer) == 1:
        return own
    states: dict[str, Any] = {}
    for rank, theirs in enumerate(trainer.comm.allgather(own)):
        prefix = "" if rank == 0 else f"rank{rank}:"
        states.update({prefix + name: state for name, state in theirs.items()})
    return states


def _rank_rng_states(states: dict[str, Any], rank: int) -> dict[str, Any]:
    if rank == 0:
        return {k: v for k, v in states.items() if not k.startswith("rank")}
    prefix = f"rank{rank}:"
    return {k[len(prefix) :]: v for k, v in states.items() if k.startswith(prefix)}


def _check_world_size(path: Path, contents: dict[str, Any], world: int) -> None:
    written = int(contents["extra"].get("world_size", 1))
    if written != world:
        how = f"mpirun -n {written} " if written > 1 else "one process (without mpirun) "
        raise ResumeError(
            f"checkpoint {path} was written by a run on {written} process"
            f"{'es' if written > 1 else ''}, this one has {world}: resume it with {how}"
            "(on another number each process would augment other images and draw other "
            "dropout noise, so the run would not continue as it started)"
        )


def _check_states(path: Path, callbacks: list[Callback], states: dict[str, Any]) -> None:
    """ResumeError when a callback with state finds none in the checkpoint (unless its state is
    optional): started fresh, a best-model keeper would take a worse epoch for the best."""
    lacking = [
        cb.state_key
        for cb in callbacks
        if cb.state_dict() and cb.state_key not in states and not cb.optional_state
    ]
    if lacking:
        raise ResumeError(
            f"checkpoint {path} holds no state for {', '.join(lacking)}, which this run has: "
            "it was written by a run set up differently"
        )


def _checked_history(path: Path, history: Any, epoch: int) -> dict[str, list]:
    """The history, after checking that it has a value per epoch for each per-epoch key and
    at least one mini-batch loss per epoch."""
    if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
        raise ResumeError(f"checkpoint {path}: the history is not a dict of lists")
    if "val_loss" not in history:  # written before the validation loss was recorded
        history = {**history, "val_loss": [math.nan] * epoch}
    wrong = [key for key in EPOCH_KEYS if len(history.get(key, ())) != epoch]
    if len(history.get("loss", ())) < epoch:
        wrong.append("loss")
    if wrong:
        raise ResumeError(
            f"checkpoint {path}: the history of {', '.join(wrong)} does not match the "
            f"{epoch} epochs it records"
        )
    return {key: list(values) for key, values in history.items()}


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

"""Checkpoints: one ``.npz`` file, written atomically, read without ever unpickling, and
validated whole before anything is loaded.

Layout of the archive (every member a plain NumPy array, so it is read with
``allow_pickle=False``)::

    model/<key>       the model's state_dict (``model/0.weight``, ...)
    optim/<key>       the optimiser's flat state_dict, if one was given
    sched/<key>       the learning-rate scheduler's flat state_dict, if one was given
    best/<key>        a second model state (the best one so far), if one was given
    cb/<name>/<key>   the arrays in the state of the training callback ``name``
    meta              0-d unicode array holding a JSON object: format and version, model name
                      and class, architecture hash, epoch, history, RNG states (each a numpy
                      ``bit_generator.state`` dict), normalisation statistics, the callbacks'
                      other state entries (``callbacks``), anything ``extra``

Version 2 added the callbacks' states (``cb/`` and ``callbacks``); version 1 files, which the
``Solver`` wrote before the training loop had callbacks, are still read (their
``callback_states`` are empty, and the trainer's checkpoint callback translates their
``best``/``sched`` groups and ``extra`` entries).

:func:`load_checkpoint` checks the whole file first: what the file is (a PNG, a text file or
``history.json`` is named as such), its format version, every ``meta`` field against the schema
in :mod:`._meta`, and every array against the rules in :mod:`._arrays` (weights floating and
finite, never cast; ``best/`` shaped as ``model/``; the optimiser's state shaped as the
parameters; no unknown entry). Anything it cannot use is one :class:`CheckpointError` naming
the file, what was expected and what came, and no model, optimiser or scheduler is touched.
:func:`save_checkpoint` applies the same checks to what it is about to write.

The architecture hash is the sha256 of the model's class name and the sorted
``(key, shape, dtype)`` list of its state_dict, so two models share it exactly when their
checkpoints are interchangeable.

Writes go to a temporary file in the target's directory, which is flushed, fsync'ed and then
``os.replace``d onto the target (and the directory fsync'ed): a crash at any moment leaves either
the old file or the new one, never a mixture.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..nn.module import Module
from ._archive import CheckpointError, atomic_write, read_archive, refuse, remove_stale_temporaries
from ._arrays import Groups, architecture_hash, array_problems, split_groups
from ._loading import load_states
from ._meta import FORMAT, FORMAT_VERSION, READABLE_VERSIONS, meta_problems, parse_meta
from ._rng import rng_state, set_rng_state
from ._schema import jsonable

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "CheckpointError",
    "architecture_hash",
    "atomic_write",
    "load_checkpoint",
    "remove_stale_temporaries",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]


# -- saving -------------------------------------------------------------------------------------
def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: Module,
    optimizer: Any = None,
    epoch: int,
    history: Mapping[str, Any],
    rng_states: Mapping[str, np.random.Generator | Mapping],
    extra: Mapping[str, Any] | None = None,
    model_name: str | None = None,
    normalization: Mapping[str, Any] | None = None,
    scheduler: Any = None,
    best_state: Mapping[str, np.ndarray] | None = None,
    callback_states: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Write ``model`` (and optionally optimiser, scheduler and a best state) to ``path``.

    ``rng_states`` maps names to Generators (or their saved states); ``history``, ``extra`` and
    ``normalization`` must be JSON-serialisable. ``model_name`` defaults to the class name.
    ``optimizer`` and ``scheduler`` need ``state_dict() -> dict[str, np.ndarray]``.
    ``callback_states`` maps a callback's name (no ``/``) to its state: entries that are
    arrays are stored as arrays, the others must be JSON-serialisable.

    Raises ValueError, writing nothing, when the result would not load (non-finite weights, a
    negative epoch, a best state of other shapes, ...: the rules :func:`load_checkpoint` applies).
    """
    groups = Groups(model=_plain("model", model.state_dict()))
    if optimizer is not None:
        groups.optim = _plain("optim", optimizer.state_dict())
    if scheduler is not None:
        groups.sched = _plain("sched", scheduler.state_dict())
    if best_state is not None:
        groups.best = _plain("best", best_state)
    callbacks = {}
    for name, state in (callback_states or {}).items():
        if not name or "/" in name:
            raise ValueError(f"a callback state's name must be non-empty without '/': {name!r}")
        arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
        groups.cb[name] = _plain(f"cb/{name}", arrays)
        callbacks[name] = jsonable({k: v for k, v in state.items() if k not in arrays})
    meta = {
        "format": FORMAT, "version": FORMAT_VERSION,
        "model_name": model_name or type(model).__name__, "model_class": type(model).__name__,
        "arch_hash": architecture_hash(model),
        "optimizer_class": None if optimizer is None else type(optimizer).__name__,
        "scheduler_class": None if scheduler is None else type(scheduler).__name__,
        "has_best_state": best_state is not None, "epoch": jsonable(epoch),
        "history": jsonable(dict(history)),
        "rng_states": {name: rng_state(r) if isinstance(r, np.random.Generator)
                       else jsonable(dict(r)) for name, r in rng_states.items()},
        "normalization": None if normalization is None else jsonable(dict(normalization)),
        "callbacks": callbacks, "extra": jsonable(dict(extra or {})),
    }  # fmt: skip
    _refuse_to_write(path, meta, groups)
    arrays = {f"{group}/{key}": value for group, key, value in _entries(groups)}
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _plain(group: str, state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    arrays = {key: np.asarray(value) for key, value in state.items()}
    for key, value in arrays.items():
        if value.dtype.hasobject:
            raise TypeError(f"{group}/{key} is an object array; checkpoints hold plain arrays only")
    return arrays


def _entries(groups: Groups) -> Iterator[tuple[str, str, np.ndarray]]:
    """``(group, key, array)`` of every array, in the archive's order."""
    for group in ("model", "optim", "sched", "best"):
        for key, value in getattr(groups, group).items():
            yield group, key, value
    for name, arrays in groups.cb.items():
        for key, value in arrays.items():
            yield f"cb/{name}", key, value


def _refuse_to_write(path: str | os.PathLike, meta: dict[str, Any], groups: Groups) -> None:
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"cannot write checkpoint {path}: meta is not JSON-serialisable ({e})"
        ) from None
    problems = meta_problems(meta)
    problems += array_problems(groups, meta) if not problems else []
    if problems:
        shown = "; ".join(problems[:6])
        raise ValueError(f"refusing to write checkpoint {path}, it would not load: {shown}")


# -- loading ------------------------------------------------------------------------------------
def load_checkpoint(
    path: str | os.PathLike,
    model: Module | None = None,
    optimizer: Any = None,
    *,
    scheduler: Any = None,
    strict: bool = True,
) -> dict[str, Any]:
    """Read and validate ``path``; load its states into whichever of model/optimizer/scheduler
    are given.

    Returns the metadata (``version``, ``model_name``, ``model_class``, ``arch_hash``,
    ``epoch``, ``history``, ``rng_states``, ``normalization``, ``extra``, ...) plus the arrays:
    ``model_state``, ``optimizer_state``, ``scheduler_state``, ``best_state`` (the last three
    None if absent), and ``callback_states`` (name -> state, arrays and JSON entries together;
    empty for a version 1 file).

    Raises FileNotFoundError when there is no file, :class:`CheckpointError` (a ValueError)
    naming the path when the file is not a usable checkpoint (see the module docstring), and
    ValueError naming the path when the given objects do not fit it: another architecture
    (naming both models and the mismatched keys and shapes; ``strict=False`` skips the hash
    comparison and loads non-strictly), another dtype (never cast, even with ``strict=False``),
    an optimiser or scheduler whose state has other keys or shapes. Either everything given
    is loaded or nothing is changed.
    """
    path = Path(path)
    contents = _read(path)
    load_states(path, contents, model, optimizer, scheduler, strict)
    return contents


def _read(path: Path) -> dict[str, Any]:
    arrays = read_archive(path)
    meta = parse_meta(arrays.pop("meta", None), path)
    groups, problems = split_groups(arrays, meta)
    meta_found = meta_problems(meta)
    refuse(path, meta_found + problems + (array_problems(groups, meta) if not meta_found else []))
    contents = dict(meta)
    states = {name: dict(part) for name, part in meta.get("callbacks", {}).items()}
    for name, arrays_of_one in groups.cb.items():
        states[name].update(arrays_of_one)
    contents["callback_states"] = states
    contents["model_state"] = groups.model
    contents["optimizer_state"] = groups.optim if meta["optimizer_class"] else None
    contents["scheduler_state"] = groups.sched if meta["scheduler_class"] else None
    contents["best_state"] = groups.best if meta["has_best_state"] else None
    return contents

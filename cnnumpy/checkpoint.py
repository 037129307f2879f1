"""Checkpoints: one ``.npz`` file, written atomically, read without ever unpickling.

Layout of the archive (every member a plain NumPy array, so ``np.load(allow_pickle=False)``
reads it)::

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

The architecture hash is the sha256 of the model's class name and the sorted
``(key, shape, dtype)`` list of its state_dict, so two models share it exactly when their
checkpoints are interchangeable.

Writes go to a temporary file in the target's directory, which is flushed, fsync'ed and then
``os.replace``d onto the target (and the directory fsync'ed): a crash at any moment leaves either
the old file or the new one, never a mixture.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from .nn.module import Module

FORMAT = "cnnumpy-checkpoint"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
_GROUPS = ("model", "optim", "sched", "best", "cb")
_REQUIRED = ("model_name", "model_class", "arch_hash", "epoch", "history", "rng_states")
_TMP_SUFFIX = ".tmp"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupted, or not a checkpoint."""


# -- atomic writes ------------------------------------------------------------------------------
def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then move it onto ``path``.

    The temporary file is flushed and fsync'ed before ``os.replace``, and the directory is
    fsync'ed after it. If ``write`` raises, the temporary file is removed and ``path`` is left
    as it was.
    """
    path = Path(path)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644  # mkstemp's is 0o600
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    try:
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that interrupted :func:`atomic_write` calls for ``path`` left."""
    path = Path(path)
    stale = [p for p in path.parent.glob(f".{path.name}.*{_TMP_SUFFIX}") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


# -- identities ---------------------------------------------------------------------------------
def architecture_hash(model: Module) -> str:
    """sha256 (hex) of the class name and the sorted ``(key, shape, dtype)`` of the state_dict."""
    entries = sorted(
        (key, list(value.shape), str(value.dtype)) for key, value in model.state_dict().items()
    )
    payload = json.dumps([type(model).__name__, entries], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def rng_state(rng: np.random.Generator) -> dict:
    """JSON-ready ``rng.bit_generator.state`` (arrays, as in MT19937's key, become lists)."""
    return _jsonable(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, state: Mapping, name: str = "generator") -> None:
    """Restore a state from :func:`rng_state`; ValueError if the bit generator kind differs."""
    kind = type(rng.bit_generator).__name__
    if state.get("bit_generator") != kind:
        raise ValueError(
            f"cannot restore {name}: saved state is for {state.get('bit_generator')!r}, "
            f"the generator is {kind}"
        )
    rng.bit_generator.state = dict(state)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


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
    """
    arrays: dict[str, np.ndarray] = {}
    _add_group(arrays, "model", model.state_dict())
    if optimizer is not None:
        _add_group(arrays, "optim", optimizer.state_dict())
    if scheduler is not None:
        _add_group(arrays, "sched", scheduler.state_dict())
    if best_state is not None:
        _add_group(arrays, "best", best_state)
    callbacks = {}
    for name, state in (callback_states or {}).items():
        if not name or "/" in name:
            raise ValueError(f"a callback state's name must be non-empty without '/': {name!r}")
        _add_group(arrays, f"cb/{name}", {k: v for k, v in state.items() if _is_array(v)})
        callbacks[name] = _jsonable({k: v for k, v in state.items() if not _is_array(v)})
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model_name": model_name or type(model).__name__,
        "model_class": type(model).__name__,
        "arch_hash": architecture_hash(model),
        "optimizer_class": None if optimizer is None else type(optimizer).__name__,
        "scheduler_class": None if scheduler is None else type(scheduler).__name__,
        "has_best_state": best_state is not None,
        "epoch": int(epoch),
        "history": _jsonable(dict(history)),
        "rng_states": {
            name: rng_state(r) if isinstance(r, np.random.Generator) else _jsonable(dict(r))
            for name, r in rng_states.items()
        },
        "normalization": None if normalization is None else _jsonable(dict(normalization)),
        "callbacks": callbacks,
        "extra": _jsonable(dict(extra or {})),
    }
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray)


def _add_group(arrays: dict[str, np.ndarray], group: str, state: Mapping[str, Any]) -> None:
    for key, value in state.items():
        value = np.asarray(value)
        if value.dtype.hasobject:
            raise TypeError(f"{group}/{key} is an object array; checkpoints hold plain arrays only")
        arrays[f"{group}/{key}"] = value


# -- loading ------------------------------------------------------------------------------------
def load_checkpoint(
    path: str | os.PathLike,
    model: Module | None = None,
    optimizer: Any = None,
    *,
    scheduler: Any = None,
    strict: bool = True,
) -> dict[str, Any]:
    """Read ``path``; load its states into whichever of model/optimizer/scheduler are given.

    Returns the metadata (``version``, ``model_name``, ``model_class``, ``arch_hash``,
    ``epoch``, ``history``, ``rng_states``, ``normalization``, ``extra``, ...) plus the arrays:
    ``model_state``, ``optimizer_state``, ``scheduler_state``, ``best_state`` (the last three
    None if absent), and ``callback_states`` (name -> state, arrays and JSON entries together;
    empty for a version 1 file).

    Raises :class:`CheckpointError` (a ValueError) naming the path when the file is not a
    readable checkpoint, and ValueError naming both models and the mismatched keys and shapes
    when ``model`` has another architecture (``strict=False`` skips the hash comparison and
    loads non-strictly). The file is opened with ``allow_pickle=False`` only.
    """
    contents = _read(Path(path))
    if model is not None:
        if strict and contents["arch_hash"] != architecture_hash(model):
            _raise_mismatch(path, contents, model)
        model.load_state_dict(contents["model_state"], strict=strict)
    if optimizer is not None:
        if contents["optimizer_state"] is None:
            raise ValueError(f"checkpoint {path} holds no optimiser state")
        optimizer.load_state_dict(contents["optimizer_state"])
    if scheduler is not None:
        if contents["scheduler_state"] is None:
            raise ValueError(f"checkpoint {path} holds no scheduler state")
        scheduler.load_state_dict(contents["scheduler_state"])
    return contents


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = arrays.pop("meta", None)
        meta = json.loads(str(meta[()])) if meta is not None and meta.dtype.kind == "U" else None
    except Exception as e:  # zipfile, zlib, header parsing, pickled members, JSON: all corrupt
        reason = str(e).split(". ")[0]  # not numpy's advice to load with allow_pickle=True
        raise CheckpointError(
            f"checkpoint {path} is unreadable or corrupt ({type(e).__name__}: {reason})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a cnnumpy checkpoint (no valid 'meta' entry)")
    if meta.get("version") not in READABLE_VERSIONS:
        versions = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise CheckpointError(
            f"checkpoint {path} has format version {meta.get('version')!r}; "
            f"this cnnumpy reads versions {versions}"
        )
    missing = [key for key in _REQUIRED if key not in meta]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks metadata entries {missing}")
    groups: dict[str, dict[str, np.ndarray]] = {g: {} for g in _GROUPS}
    for name, value in arrays.items():
        group, _, key = name.partition("/")
        owner, _, entry = key.partition("/")  # a callback's name and its entry, under cb/
        if group not in groups or not key or (group == "cb" and not (owner and entry)):
            raise CheckpointError(f"checkpoint {path} has an unexpected entry {name!r}")
        groups[group][key] = value
    contents = dict(meta)
    contents["callback_states"] = _callback_states(meta.get("callbacks", {}), groups["cb"])
    contents["model_state"] = groups["model"]
    contents["optimizer_state"] = groups["optim"] if meta.get("optimizer_class") else None
    contents["scheduler_state"] = groups["sched"] if meta.get("scheduler_class") else None
    contents["best_state"] = groups["best"] if meta.get("has_best_state") else None
    return contents


def _callback_states(
    json_parts: Mapping[str, Mapping[str, Any]], arrays: Mapping[str, np.ndarray]
) -> dict[str, dict[str, Any]]:
    states = {name: dict(part) for name, part in json_parts.items()}
    for key, value in arrays.items():
        name, _, entry = key.partition("/")
        states.setdefault(name, {})[entry] = value
    return states


def _raise_mismatch(path: str | os.PathLike, contents: dict[str, Any], model: Module) -> None:
    """ValueError naming both models and, via ``Module.load_state_dict``, what does not fit."""
    saved = f"{contents['model_name']!r} ({contents['model_class']}, {contents['arch_hash'][:12]})"
    given = f"{type(model).__name__} ({architecture_hash(model)[:12]})"
    lines = [f"checkpoint {path} was saved from model {saved}, which differs from {given}"]
    snapshot = model.state_dict()
    try:  # load_state_dict changes nothing when it raises; when it fits, undo it below
        model.load_state_dict(contents["model_state"])
    except ValueError as e:
        lines.append(str(e))
    else:
        model.load_state_dict(snapshot)
        dtypes = [
            f"{k} (checkpoint {v.dtype}, model {snapshot[k].dtype})"
            for k, v in contents["model_state"].items()
            if v.dtype != snapshot[k].dtype
        ]
        if dtypes:
            lines.append("dtype mismatches: " + "; ".join(dtypes))
        else:
            lines.append("keys, shapes and dtypes agree but the model classes differ")
        lines.append("pass strict=False to load it anyway")
    raise ValueError("\n".join(lines))

"""The schema of a checkpoint's ``meta`` record: every field cnnumpy writes, its type and its
constraint, for format versions 1 and 2.

==================  ==========================================================================
field               expected
==================  ==========================================================================
format              "cnnumpy-checkpoint"
version             1 or 2
model_name          a non-empty string
model_class         a non-empty string
arch_hash           64 lowercase hex digits (see ``architecture_hash``)
optimizer_class     null or a non-empty string (null exactly when there are no ``optim/``)
scheduler_class     null or a non-empty string (null exactly when there are no ``sched/``)
has_best_state      true or false (true exactly when there are ``best/`` arrays)
epoch               an integer >= 0
history             an object of lists of finite numbers, NaN (not measured) or null
rng_states          an object of bit generator states, each valid for its kind (``_rng``)
normalization       null, or {"mean": [finite...], "std": [finite > 0...]} of equal lengths
callbacks           version 2 only: an object of callbacks' JSON states (BestModel:
                    best_score null/number, best_epoch 0..epoch; EarlyStopping: best
                    null/number, wait 0..epoch; LRSchedule: nothing); others free
extra               an object; its known keys typed: config (model, model_kwargs, dataset,
                    data_dir, augment, lr_schedule, train_size), seed, batch_size,
                    stopped_early, changes (a list of objects: epoch >= 1, option),
                    world_size (>= 1: the processes of a data-parallel run), and
                    version 1's best_val_acc (null or in [0, 1]) and best_epoch (0..epoch),
                    both required in a version 1 file with a best state
==================  ==========================================================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._archive import CheckpointError
from ._rng import RNG_STATE
from ._schema import (
    ANY,
    BOOLEAN,
    MISSING,
    Check,
    DictOf,
    ListOf,
    Nullable,
    Record,
    constant,
    integer,
    number,
    string,
    unit_interval,
)

FORMAT = "cnnumpy-checkpoint"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

_COUNT = integer(0)
_SCORE = Nullable(number(nan=True))  # a monitored value; NaN when nothing was measured
_NORMALIZATION = Record({"mean": ListOf(number(), nonempty=True),
                         "std": ListOf(number(above=0), nonempty=True)})  # fmt: skip
_CONFIG = Record(
    {
        "model": string(), "model_kwargs": DictOf(ANY), "dataset": string(),
        "data_dir": Nullable(string()), "augment": string(), "lr_schedule": string(),
        "train_size": Nullable(integer(1)),
    },
    optional=("model", "model_kwargs", "dataset", "data_dir", "augment", "lr_schedule",
              "train_size"),
    others=ANY,
)  # fmt: skip
_EXTRA_FIELDS = {
    "config": _CONFIG, "seed": integer(0), "batch_size": integer(1), "stopped_early": BOOLEAN,
    "best_val_acc": Nullable(unit_interval()), "best_epoch": _COUNT, "world_size": integer(1),
    "changes": ListOf(Record({"epoch": integer(1), "option": string()},
                             optional=("epoch", "option"), others=ANY)),
}  # fmt: skip
_EXTRA = Record(_EXTRA_FIELDS, optional=tuple(_EXTRA_FIELDS), others=ANY)
_CALLBACKS = DictOf(
    Record({}, others=ANY),
    known={
        "BestModel": Record({"best_score": _SCORE, "best_epoch": _COUNT}),
        "EarlyStopping": Record({"best": _SCORE, "wait": _COUNT}),
        "LRSchedule": Record({}),
    },
)
_FIELDS = {
    "format": constant(FORMAT),
    "version": Check("1 or 2", lambda v: type(v) is int and v in READABLE_VERSIONS),
    "model_name": string(),
    "model_class": string(),
    "arch_hash": Check("64 lowercase hex digits",
                       lambda v: isinstance(v, str) and len(v) == 64
                       and all(c in "0123456789abcdef" for c in v)),
    "optimizer_class": Nullable(string()),
    "scheduler_class": Nullable(string()),
    "has_best_state": BOOLEAN,
    "epoch": _COUNT,
    "history": DictOf(ListOf(Nullable(number(nan=True)))),
    "rng_states": DictOf(RNG_STATE),
    "normalization": Nullable(_NORMALIZATION),
    "callbacks": _CALLBACKS,
    "extra": _EXTRA,
}  # fmt: skip
SCHEMAS = {
    1: Record({k: v for k, v in _FIELDS.items() if k != "callbacks"}),
    2: Record(_FIELDS),
}
"""The ``meta`` record of each readable format version."""


def parse_meta(meta: np.ndarray | None, path: Path) -> dict[str, Any]:
    """The JSON object in the ``meta`` entry, once it is one of a readable format version."""
    if meta is None:
        raise CheckpointError(f"{path} is not a cnnumpy checkpoint (the archive has no 'meta')")
    if meta.shape != () or meta.dtype.kind != "U":
        raise CheckpointError(
            f"checkpoint {path}: 'meta' must be a 0-d string array holding JSON, got a "
            f"{meta.dtype} array of shape {meta.shape}"
        )
    try:
        value = json.loads(str(meta[()]))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint {path}: 'meta' is not JSON ({e})") from None
    if not isinstance(value, dict) or value.get("format", MISSING) != FORMAT:
        got = value.get("format", MISSING) if isinstance(value, dict) else value
        raise CheckpointError(
            f"{path} is not a cnnumpy checkpoint (meta.format must be {FORMAT!r}, "
            f"got {_short(got)})"
        )
    version = value.get("version", MISSING)
    if type(version) is not int or version not in READABLE_VERSIONS:
        versions = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise CheckpointError(
            f"checkpoint {path} has format version {_short(version)}; "
            f"this cnnumpy reads versions {versions}"
        )
    return value


def _short(value: Any) -> str:
    return "nothing" if value is MISSING else json.dumps(value)[:60]


def meta_problems(meta: dict[str, Any]) -> list[str]:
    """Every way ``meta`` (of a readable version) misfits its schema, then its cross-checks."""
    found = SCHEMAS[meta["version"]].problems(meta, "meta")
    return found or _consistency(meta)


def _consistency(meta: dict[str, Any]) -> list[str]:
    """What the fields' types cannot say: lengths and epochs that must agree."""
    found, epoch, extra = [], meta["epoch"], meta["extra"]
    norm = meta["normalization"]
    if norm is not None and len(norm["mean"]) != len(norm["std"]):
        found.append(
            f"meta.normalization: expected as many std as mean values (one per channel), got "
            f"{len(norm['mean'])} and {len(norm['std'])}"
        )
    counts = [("meta.extra.best_epoch", extra.get("best_epoch"))]
    callbacks = meta.get("callbacks", {})
    counts.append(('meta.callbacks["BestModel"].best_epoch',
                   callbacks.get("BestModel", {}).get("best_epoch")))  # fmt: skip
    counts.append(('meta.callbacks["EarlyStopping"].wait',
                   callbacks.get("EarlyStopping", {}).get("wait")))  # fmt: skip
    for where, count in counts:
        if count is not None and count > epoch:
            found.append(f"{where}: expected an integer in [0, {epoch}] (meta.epoch), got {count}")
    if meta["version"] == 1 and meta["has_best_state"]:
        for name in ("best_val_acc", "best_epoch"):  # the old Solver's resume needs both
            if name not in extra:
                spec = _EXTRA_FIELDS[name].expected
                found.append(
                    f"meta.extra.{name}: expected {spec} (a version 1 file with a best state "
                    "keeps its score and epoch there), got nothing (the field is missing)"
                )
    return found

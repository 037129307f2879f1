"""The arrays of a checkpoint: their groups, and the rules each group's arrays must satisfy.

==================  ==========================================================================
entries             rule
==================  ==========================================================================
model/<key>         floating point and finite; an integer only for BatchNorm's
                    ``num_batches_tracked`` (0-d, >= 0); keys, shapes and dtypes hash to
                    ``meta.arch_hash`` with ``meta.model_class``
best/<key>          present exactly when ``meta.has_best_state``; the keys, shapes and dtypes
cb/BestModel/       of ``model/`` (``state.<key>`` under the callback), finite
  state.<key>
optim/<name>.<i>    per parameter ``i`` (0, 1, ... without gaps): ``step.<i>`` a 0-d integer
                    >= 0; its other buffers finite floating arrays of one shape and dtype,
                    those of some ``model/`` array (each array serving one parameter)
optim/<name>        hyper-parameters: 0-d or 1-d booleans, integers, finite floats or strings
sched/<name>        0-d or 1-d booleans, integers, floats (not NaN) or strings; likewise the
cb/LRSchedule/...   arrays of the LRSchedule callback
cb/<name>/<key>     version 2 only, for a callback named in ``meta.callbacks``; no key both
                    an array and a JSON entry
==================  ==========================================================================
Any other entry is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..nn.module import Module

GROUPS = ("model", "optim", "sched", "best", "cb")
INTEGER_BUFFERS = ("num_batches_tracked",)
"""The last part of the state_dict keys that hold integers (BatchNorm's batch counter)."""
BEST_PREFIX = "state."
"""Of the best weights' entries in BestModel's state (as ``train.callbacks.best_model`` writes)."""
_PER_PARAMETER = re.compile(r"^(?P<name>.+)\.(?P<index>0|[1-9][0-9]*)$")
_SCALAR_KINDS = "biufU"


@dataclass
class Groups:
    """A checkpoint's arrays by group, each keyed without its group's prefix."""

    model: dict[str, np.ndarray] = field(default_factory=dict)
    optim: dict[str, np.ndarray] = field(default_factory=dict)
    sched: dict[str, np.ndarray] = field(default_factory=dict)
    best: dict[str, np.ndarray] = field(default_factory=dict)
    cb: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def architecture_hash(model: Module) -> str:
    """sha256 (hex) of the class name and the sorted ``(key, shape, dtype)`` of the state_dict."""
    return state_hash(type(model).__name__, model.state_dict())


def state_hash(class_name: str, state: dict[str, np.ndarray]) -> str:
    """:func:`architecture_hash` of a model of class ``class_name`` whose state is ``state``."""
    entries = sorted((key, list(v.shape), str(v.dtype)) for key, v in state.items())
    payload = json.dumps([class_name, entries], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def split_groups(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> tuple[Groups, list[str]]:
    """The arrays (``meta`` taken out) by group, and the entries that belong to none."""
    groups, found = Groups(), []
    callbacks = meta.get("callbacks") if meta.get("version") == 2 else None
    for name, value in arrays.items():
        group, _, key = name.partition("/")
        owner, _, entry = key.partition("/")
        if group == "cb" and owner and entry and isinstance(callbacks, dict):
            if owner in callbacks:
                groups.cb.setdefault(owner, {})[entry] = value
                continue
        elif group in GROUPS and group != "cb" and key:
            getattr(groups, group)[key] = value
            continue
        found.append(
            f"unexpected entry {name!r} (expected meta, model/KEY, optim/KEY, "
            "sched/KEY, best/KEY or cb/CALLBACK/KEY of a callback in meta.callbacks)"
        )
    return groups, found


def array_problems(groups: Groups, meta: dict[str, Any]) -> list[str]:
    """Every rule of the module docstring that ``groups`` break, given a valid ``meta``."""
    weights = _model(groups.model)
    found = _presence(groups, meta) + weights
    if not weights and state_hash(meta["model_class"], groups.model) != meta["arch_hash"]:
        found.append(
            "model/: the keys, shapes and dtypes of its arrays do not match meta.arch_hash "
            f"(of a {meta['model_class']}): the arrays or the hash were changed after saving"
        )
    found += twin_problems("best/", groups.best, groups.model)
    found += _optimizer(groups.optim, groups.model) + _scalars("sched/", groups.sched)
    for name, json_part in meta.get("callbacks", {}).items():
        found += _callback(name, groups.cb.get(name, {}), json_part, groups.model)
    return found


def _presence(groups: Groups, meta: dict[str, Any]) -> list[str]:
    found = []
    for group, flag in (("optim", "optimizer_class"), ("sched", "scheduler_class"),
                        ("best", "has_best_state")):  # fmt: skip
        has = bool(getattr(groups, group))
        if has != bool(meta[flag]):
            state = "has" if has else "has no"
            found.append(
                f"{group}/: the archive {state} {group}/ arrays, but meta.{flag} is "
                f"{json.dumps(meta[flag])}"
            )
    return found


def _model(model: dict[str, np.ndarray]) -> list[str]:
    found = []
    for key, value in model.items():
        where = f"model/{key}"
        if key.rpartition(".")[2] in INTEGER_BUFFERS and value.dtype.kind in "iu":
            if value.shape != () or int(value) < 0:
                found.append(f"{where}: expected a 0-d count >= 0, got {_describe(value)}")
        elif value.dtype.kind != "f":
            found.append(
                f"{where}: expected a floating-point array, got {_describe(value)} "
                "(weights are never cast)"
            )
        else:
            found += _finite(where, value)
    return found


def twin_problems(
    prefix: str, state: dict[str, np.ndarray], model: dict[str, np.ndarray]
) -> list[str]:
    """A second model state (``best/``, BestModel's): ``model/``'s keys, shapes, dtypes; finite."""
    if not state:
        return []
    found = []
    missing, unexpected = sorted(model.keys() - state.keys()), sorted(state.keys() - model.keys())
    if missing or unexpected:
        got = [f"{len(keys)} {what} {keys[:4]}" for what, keys in
               (("missing", missing), ("unexpected", unexpected)) if keys]  # fmt: skip
        found.append(f"{prefix}*: expected the keys of model/, got {' and '.join(got)}")
    for key in sorted(state.keys() & model.keys()):
        got, like = state[key], model[key]
        if got.shape != like.shape or got.dtype != like.dtype:
            found.append(
                f"{prefix}{key}: expected {_describe(like)} as model/{key}, got {_describe(got)}"
            )
        elif got.dtype.kind == "f":
            found += _finite(prefix + key, got)
    return found


def _optimizer(optim: dict[str, np.ndarray], model: dict[str, np.ndarray]) -> list[str]:
    found, per_index = [], {}
    for key, value in optim.items():
        match = _PER_PARAMETER.match(key)
        if match is None:
            found += _scalars("optim/", {key: value}, finite=True)
        else:
            per_index.setdefault(int(match["index"]), {})[match["name"]] = value
    if sorted(per_index) != list(range(len(per_index))):
        found.append(
            f"optim/: expected the state of parameters 0, 1, ... without gaps, got "
            f"indices {sorted(per_index)[:8]}"
        )
    kinds = Counter()
    for index, buffers in sorted(per_index.items()):
        problems, kind = _parameter_state(index, buffers)
        found += problems
        if kind is not None:
            kinds[kind] += 1
    available = Counter((v.shape, str(v.dtype)) for v in model.values() if v.dtype.kind == "f")
    for (shape, dtype), count in (kinds - available).items():
        found.append(
            f"optim/: {count} parameter state(s) of shape {shape} {dtype}, but "
            f"model/ has {available[(shape, dtype)]} array(s) of that shape and dtype"
        )
    return found


def _parameter_state(index: int, buffers: dict[str, np.ndarray]) -> tuple[list[str], Any]:
    """Problems of parameter ``index``'s optimiser state, and its (shape, dtype) if it has any."""
    found = []
    step = buffers.pop("step", None)
    if step is None or step.shape != () or step.dtype.kind not in "iu" or int(step) < 0:
        got = "nothing" if step is None else _describe(step, values=True)
        found.append(f"optim/step.{index}: expected a 0-d integer >= 0, got {got}")
    kinds = {(v.shape, str(v.dtype)) for v in buffers.values()}
    for name, value in sorted(buffers.items()):
        if value.dtype.kind != "f":
            found.append(
                f"optim/{name}.{index}: expected a floating-point array, got {_describe(value)}"
            )
        else:
            found += _finite(f"optim/{name}.{index}", value)
    if len(kinds) > 1:
        shown = ", ".join(f"{shape} {dtype}" for shape, dtype in sorted(kinds))
        found.append(
            f"optim/: expected one shape and dtype for parameter {index}'s buffers "
            f"(the parameter's), got {shown}"
        )
    return found, (kinds.pop() if len(kinds) == 1 and not found else None)


def _scalars(prefix: str, arrays: dict[str, np.ndarray], finite: bool = False) -> list[str]:
    """Hyper-parameters and counters: small arrays of plain kinds; NaN never, inf only when
    not ``finite`` (ReduceLROnPlateau starts its best at -inf)."""
    found = []
    for key, value in arrays.items():
        where = prefix + key
        if value.ndim > 1 or value.dtype.kind not in _SCALAR_KINDS:
            found.append(
                f"{where}: expected a 0-d or 1-d array of booleans, numbers or "
                f"strings, got {_describe(value)}"
            )
        elif value.dtype.kind == "f" and (np.isnan(value).any() or finite):
            found += _finite(where, value)
    return found


def _callback(
    name: str, arrays: dict[str, np.ndarray], json_part: dict, model: dict[str, np.ndarray]
) -> list[str]:
    where = f"cb/{name}/"
    found = [f"{where}{key}: the key is both an array and a JSON entry in meta.callbacks"
             for key in sorted(arrays.keys() & json_part.keys())]  # fmt: skip
    if name == "BestModel":
        kept = {k[len(BEST_PREFIX) :]: v for k, v in arrays.items() if k.startswith(BEST_PREFIX)}
        found += [f"unexpected entry '{where}{k}' (BestModel keeps only {BEST_PREFIX}KEY arrays)"
                  for k in sorted(arrays) if not k.startswith(BEST_PREFIX)]  # fmt: skip
        found += twin_problems(where + BEST_PREFIX, kept, model)
        if not kept and json_part.get("best_epoch", 0) > 0:
            found.append(
                f"{where}{BEST_PREFIX}*: expected the weights of the best epoch "
                f'(meta.callbacks["BestModel"].best_epoch is {json_part["best_epoch"]}), got none'
            )
    elif name == "EarlyStopping":
        found += [f"unexpected entry '{where}{k}' (EarlyStopping keeps no arrays)" for k in arrays]
    elif name == "LRSchedule":
        found += _scalars(where, arrays)
    return found


def _finite(where: str, value: np.ndarray) -> list[str]:
    bad = int(value.size - np.count_nonzero(np.isfinite(value)))
    if not bad:
        return []
    nan = int(np.count_nonzero(np.isnan(value)))
    return [f"{where}: expected finite values, got {nan} NaN and {bad - nan} infinite of "
            f"{value.size}"]  # fmt: skip


def _describe(value: np.ndarray, values: bool = False) -> str:
    text = f"{value.dtype} of shape {value.shape}"
    if values and value.size == 1:
        text += f" ({value.item()!r})"
    return text

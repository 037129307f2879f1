"""The settings of a ``cnnumpy train`` run: their defaults, the ones given on the command line,
the ones a checkpoint records, and ``--model-option`` values checked against the model.

Every option of a run's settings defaults to None on the command line, so that "not given" can
be told from "given the default value": a new run fills what was not given from
:data:`DEFAULTS`, a resumed run from the settings its checkpoint records (see
:mod:`cnnumpy.train.resume` for which of them may change).
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..models import build_model, canonical_spec, is_custom, model_spec, source_sha256
from ..nn.module import Module
from ..train.callbacks.divergence import DEFAULT_FACTOR
from ..train.resume import CHANGEABLE, FIXED
from ._common import DEFAULT_DATA_DIR

DEFAULTS: dict[str, Any] = {
    "model": "convnet", "model_options": {}, "dataset": "digits", "data_dir": None, "seed": 0,
    "batch_size": 32, "augment": "none", "optimizer": "adam", "lr": None, "lr_schedule": "none",
    "momentum": 0.9, "weight_decay": 0.0, "mu": 0.02, "train_size": None, "val_size": None,
    "epochs": 20, "patience": None, "clip_grad_norm": None, "divergence_factor": DEFAULT_FACTOR,
    "sync_bn": False,
}  # fmt: skip
"""A new run's settings when not given; ``lr`` None is the optimiser's default, the sizes None
the whole training set and the data set's own validation split."""
DATA_FIXED = ("in_channels", "input_size", "num_classes")
"""Builder arguments the data set decides."""
OFF_WHEN_ZERO = ("patience", "clip_grad_norm", "divergence_factor")
"""Settings that 0 turns off (recorded as None), so that a resumed run can turn them off."""


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (None in ``args``: not given), normalised as
    they are recorded: model options a dict, the data directory an absolute path, 0 as None
    for the settings 0 turns off."""
    given = {name: getattr(args, name) for name in DEFAULTS if getattr(args, name) is not None}
    if "model_options" in given:
        given["model_options"] = dict(given["model_options"])
    if "model" in given and is_custom(given["model"]):
        given["model"] = canonical_spec(given["model"])  # loadable from any directory
    if "data_dir" in given:
        given["data_dir"] = str(Path(given["data_dir"]).resolve())
    for name in OFF_WHEN_ZERO:
        if name in given and not given[name] >= 0:  # NaN too
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0 (0: off), got {given[name]}")
        if given.get(name) == 0:
            given[name] = None
    return given


def data_dir_for(dataset: str, data_dir: str | None) -> str | None:
    """The directory the data set is read from, absolute; None for the built-in digits."""
    return None if dataset == "digits" else str(Path(data_dir or DEFAULT_DATA_DIR).resolve())


def recorded_settings(contents: dict[str, Any]) -> dict[str, Any]:
    """The settings a checkpoint (``load_checkpoint``'s contents) records. An older one records
    fewer in its ``config``; its optimiser's, taken from the optimiser and schedule states."""
    extra = contents["extra"]
    config = dict(extra.get("config") or {})
    recorded = _from_states(contents)
    recorded |= {k: v for k, v in config.items() if k in (*FIXED, *CHANGEABLE)}
    if "model_kwargs" in config:
        kwargs = config["model_kwargs"]
        recorded["model_options"] = {k: v for k, v in kwargs.items() if k not in DATA_FIXED}
    for name in ("seed", "batch_size"):
        if name in extra:
            recorded[name] = extra[name]
    return recorded


_OPTIMIZER_NAMES = {"Adam": "adam", "AdamW": "adamw", "SGD": "sgd", "RMSprop": "rmsprop",
                    "SDLM": "sdlm"}  # fmt: skip


def _from_states(contents: dict[str, Any]) -> dict[str, Any]:
    """Optimiser settings read back from the saved states: the optimiser's name, momentum,
    weight decay and mu, and the base learning rate (the schedule's, or the constant one)."""
    name = _OPTIMIZER_NAMES.get(contents.get("optimizer_class"))
    state = contents.get("optimizer_state") or {}
    # version 1 files keep the schedule in sched/, later ones as the LRSchedule callback's state
    sched = contents.get("scheduler_state") or contents["callback_states"].get("LRSchedule")
    found: dict[str, Any] = {} if name is None else {"optimizer": name}
    for key in ("momentum", "weight_decay", "mu"):
        if key in state and (key != "momentum" or name in ("sgd", "rmsprop")):
            found[key] = float(state[key])
    if sched is None and "lr" in state:
        found["lr"] = float(state["lr"])  # a constant rate
    elif sched is not None and "base_lr" in sched:
        found["lr"] = float(sched["base_lr"])
    return found


def to_config(settings: dict[str, Any], model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """What the checkpoints record as ``config`` (the keys ``cnnumpy eval`` reads first); for
    a builder of the user's own also ``model_sha256``, its file's hash when trained."""
    config = {k: v for k, v in settings.items() if k not in ("model_options", "seed", "batch_size")}
    if is_custom(settings["model"]):
        config["model_sha256"] = source_sha256(settings["model"])
    return {"model_kwargs": model_kwargs, **config}


# -- --model-option -----------------------------------------------------------------------------
def check_model_options(model: str, options: dict[str, Any]) -> None:
    """ValueError naming the option when it is one the run sets itself or its value has
    another type than the builder's parameter declares; an unknown model, or a builder of
    the user's own that cannot be loaded, is a ValueError too."""
    build = model_spec(model).build
    for key, value in options.items():
        shown = f"--model-option {key}={json.dumps(value)}"
        if key == "rng":
            raise ValueError(f"{shown}: the model's random generator is seeded by --seed")
        if key in DATA_FIXED:
            raise ValueError(f"--model-option cannot set {key}: the data set fixes it")
        param = inspect.signature(build).parameters.get(key)
        annotation = getattr(param, "annotation", None)
        if isinstance(annotation, str) and _accepts(annotation, value) is False:
            raise ValueError(
                f"{shown}: {model}'s {key} expects {annotation}, got {type(value).__name__} "
                f"{json.dumps(value)}"
            )


def build_checked(model: str, seed: int, model_kwargs: dict[str, Any], options: dict) -> Module:
    """``build_model``; an error while options are given names them."""
    try:
        return build_model(model, rng=np.random.default_rng(seed), **model_kwargs)
    except (TypeError, ValueError) as err:
        if not options:
            raise
        shown = " ".join(f"{k}={json.dumps(v)}" for k, v in options.items())
        raise ValueError(f"--model-option {shown}: building {model} failed: {err}") from None


_SCALARS = {"int": int, "float": (int, float), "bool": bool, "str": str}


def _accepts(annotation: str, value: Any) -> bool | None:
    """Whether ``value`` fits ``annotation`` (``int | None``, ``tuple[int, ...]``, ...); None
    when the annotation is not one this reads."""
    verdicts = [_accepts_one(part.strip(), value) for part in annotation.split("|")]
    if True in verdicts:
        return True
    return None if None in verdicts else False


def _accepts_one(part: str, value: Any) -> bool | None:
    if part == "None":
        return value is None
    if part in _SCALARS:
        is_bool = isinstance(value, bool)
        return isinstance(value, _SCALARS[part]) and (is_bool == (part == "bool"))
    match = re.fullmatch(r"tuple\[(.*)\]", part)
    if match is None:
        return None
    if not isinstance(value, (list, tuple)):
        return False
    items = [item.strip() for item in match.group(1).split(",")]
    if items[-1] == "...":
        items = items[:1] * len(value)
    verdicts = [_accepts_one(item, v) for item, v in zip(items, value, strict=False)]
    if len(items) != len(value) or False in verdicts:
        return False
    return None if None in verdicts else True

"""Loading a validated checkpoint's states into a model, an optimiser and a scheduler: all of
them or, when anything does not fit, none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..nn.module import Module
from ._arrays import architecture_hash


def load_states(
    path: Path, contents: dict[str, Any], model: Module | None, optimizer: Any, scheduler: Any,
    strict: bool,
) -> None:  # fmt: skip
    """Check that each object given fits its saved state, then load them all; ValueError
    naming ``path`` (and nothing changed) when one does not fit."""
    if model is not None:
        _check_model(path, contents, model, strict)
    pairs = [(model, contents["model_state"])] if model is not None else []
    for owner, state, what in ((optimizer, contents["optimizer_state"], "optimiser"),
                               (scheduler, contents["scheduler_state"], "scheduler")):  # fmt: skip
        if owner is None:
            continue
        if state is None:
            raise ValueError(f"checkpoint {path} holds no {what} state")
        _check_flat_state(path, owner, state)
        pairs.append((owner, state))
    _load_all(path, pairs, strict)


def _check_model(path: Path, contents: dict[str, Any], model: Module, strict: bool) -> None:
    if strict and contents["arch_hash"] != architecture_hash(model):
        _raise_mismatch(path, contents, model)
    mine = model.state_dict()
    dtypes = [
        f"{k} (checkpoint {v.dtype}, model {mine[k].dtype})"
        for k, v in contents["model_state"].items()
        if k in mine and v.dtype != mine[k].dtype
    ]
    if dtypes:
        raise ValueError(
            f"checkpoint {path}: dtype mismatches: {'; '.join(dtypes)} (weights are never cast: "
            "load into a model of the checkpoint's dtype, then convert it with .to(dtype))"
        )


def _check_flat_state(path: Path, owner: Any, saved: dict[str, np.ndarray]) -> None:
    """An optimiser's or scheduler's saved state against its own: the same keys and shapes,
    and per-parameter buffers of exactly its dtypes."""
    name, mine = type(owner).__name__, owner.state_dict()
    missing, unexpected = sorted(mine.keys() - saved.keys()), sorted(saved.keys() - mine.keys())
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {path}: its state does not fit the {name} given (saved with another "
            f"optimiser, scheduler or parameter list?): missing {missing[:6]}, unexpected "
            f"{unexpected[:6]}"
        )
    for key, ref in mine.items():
        got = saved[key]
        buffer = ref.dtype.kind == "f" and ref.ndim > 0 and key.rpartition(".")[2].isdigit()
        if got.shape != ref.shape or (buffer and got.dtype != ref.dtype):
            raise ValueError(
                f"checkpoint {path}: {name} entry {key!r} is {got.dtype} of shape {got.shape}, "
                f"the {name} given has {ref.dtype} of shape {ref.shape}"
            )


def _load_all(path: Path, pairs: list[tuple[Any, dict[str, np.ndarray]]], strict: bool) -> None:
    """``owner.load_state_dict(state)`` for each pair; on an error put back what was loaded."""
    done: list[tuple[Any, dict[str, np.ndarray]]] = []
    try:
        for owner, state in pairs:
            snapshot = owner.state_dict()
            if isinstance(owner, Module):  # its strictness is the caller's
                owner.load_state_dict(state, strict=strict)
            else:
                owner.load_state_dict(state)
            done.append((owner, snapshot))
    except (ValueError, TypeError) as e:
        for owner, snapshot in reversed(done):
            owner.load_state_dict(snapshot)
        raise ValueError(f"checkpoint {path}: {type(owner).__name__}: {e}") from None


def _raise_mismatch(path: Path, contents: dict[str, Any], model: Module) -> None:
    """ValueError naming both models and the keys, shapes and dtypes that differ."""
    saved = f"{contents['model_name']!r} ({contents['model_class']}, {contents['arch_hash'][:12]})"
    given = f"{type(model).__name__} ({architecture_hash(model)[:12]})"
    mine, theirs = model.state_dict(), contents["model_state"]
    both = [k for k in mine if k in theirs]
    found = {
        "missing keys": [k for k in mine if k not in theirs],
        "unexpected keys": [k for k in theirs if k not in mine],
        "shape mismatches": [f"{k} (checkpoint {theirs[k].shape}, model {mine[k].shape})"
                             for k in both if theirs[k].shape != mine[k].shape],
        "dtype mismatches": [f"{k} (checkpoint {theirs[k].dtype}, model {mine[k].dtype})"
                             for k in both if theirs[k].dtype != mine[k].dtype],
    }  # fmt: skip
    parts = [f"{what}: {', '.join(keys)}" for what, keys in found.items() if keys]
    if not parts:
        parts = ["keys, shapes and dtypes agree but the model classes differ; pass strict=False "
                 "to load it anyway"]  # fmt: skip
    raise ValueError(
        f"checkpoint {path} was saved from model {saved}, which differs from {given}: "
        + " | ".join(parts)
    )

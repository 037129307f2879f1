"""A module's state: its parameters and buffers by dotted name, saved, loaded and cast.

The walk follows attribute assignment order, which gives ``state_dict`` keys in PyTorch's order
and with its dotted names (``"stage2.0.conv1.weight"``). ``Module.state_dict``,
``load_state_dict`` and ``to`` call these functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from .parameter import Parameter

if TYPE_CHECKING:
    from .module import Module


def state_slots(module: Module, prefix: str = "") -> Iterator[tuple[str, Module, str]]:
    """``(key, owner, attribute)`` for every parameter and buffer, in ``state_dict`` order."""
    for name, value in vars(module).items():
        if isinstance(value, Parameter):
            yield prefix + name, module, name
    for name in module._buffer_names:
        if getattr(module, name) is not None:
            yield prefix + name, module, name
    for name, child in module.named_children():
        yield from state_slots(child, prefix + name + ".")


def state_dict(module: Module) -> dict[str, np.ndarray]:
    """Copies of all parameters and buffers, keyed like PyTorch's (``"0.weight"``, ...)."""
    return {key: np.array(_array(owner, attr)) for key, owner, attr in state_slots(module)}


def load_state_dict(module: Module, state: dict[str, np.ndarray], strict: bool = True) -> None:
    """Copy ``state`` into the module's parameters and buffers, keeping their dtypes.

    Missing keys, unexpected keys (both only with ``strict=True``), shape mismatches and values
    of another kind (integers for float weights, floats for an integer counter, objects) are
    reported together in one ValueError, and nothing is changed unless everything fits. A float
    of another precision is converted, as PyTorch's ``load_state_dict`` does. Parameters are
    written in place, so an optimiser holding them stays valid.
    """
    slots = {key: (owner, attr) for key, owner, attr in state_slots(module)}
    problems = []
    if strict:
        missing = [k for k in slots if k not in state]
        unexpected = [k for k in state if k not in slots]
        if missing:
            problems.append("missing keys: " + ", ".join(missing))
        if unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
    wrong = [
        f"{k} (checkpoint {np.shape(state[k])}, model {_array(*slots[k]).shape})"
        for k in slots
        if k in state and np.shape(state[k]) != _array(*slots[k]).shape
    ]
    if wrong:
        problems.append("shape mismatches: " + "; ".join(wrong))
    kinds = [
        f"{k} (checkpoint {np.asarray(state[k]).dtype}, model {_array(*slots[k]).dtype})"
        for k in slots
        if k in state and not _same_kind(np.asarray(state[k]).dtype, _array(*slots[k]).dtype)
    ]
    if kinds:
        problems.append("values of another kind, never cast: " + "; ".join(kinds))
    if problems:
        name = type(module).__name__
        raise ValueError(f"state dict does not fit {name}: " + " | ".join(problems))
    for key, (owner, attr) in slots.items():
        if key not in state:
            continue
        value = getattr(owner, attr)
        if isinstance(value, Parameter):
            np.copyto(value.data, np.asarray(state[key]), casting="unsafe")
        else:
            setattr(owner, attr, np.array(state[key], dtype=value.dtype))


def _same_kind(given: np.dtype, wanted: np.dtype) -> bool:
    """Floats for floats, integers for integers: a change of precision only."""
    return given.kind == wanted.kind or {given.kind, wanted.kind} <= {"i", "u"}


def cast(module: Module, dtype: type | np.dtype) -> None:
    """Cast every parameter (with its gradient and curvature) and floating buffer of the module
    and its descendants to ``dtype``, in place."""
    for m in module.modules():
        for value in vars(m).values():
            if isinstance(value, Parameter):
                value.data = value.data.astype(dtype)
                value.grad = value.grad.astype(dtype)
                if value.curvature is not None:
                    value.curvature = value.curvature.astype(dtype)
        for name in m._buffer_names:
            buf = getattr(m, name)
            if buf is not None and buf.dtype.kind == "f":
                setattr(m, name, buf.astype(dtype))


def _array(owner: Module, attr: str) -> np.ndarray:
    value = getattr(owner, attr)
    return value.data if isinstance(value, Parameter) else value

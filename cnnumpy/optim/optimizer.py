"""Optimizer base class and the flat, pickle-free state-dict format shared with the schedulers.

An optimiser holds a list of :class:`~cnnumpy.nn.parameter.Parameter` (one parameter group) and
updates each ``param.data`` in place from ``param.grad``; parameters with
``requires_grad=False`` are skipped (they keep their state untouched, as PyTorch skips a
parameter whose ``.grad`` is None).

State-dict format: a flat ``dict[str, np.ndarray]`` so that ``np.savez(path, **d)`` and
``dict(np.load(path))`` round-trip it without pickling. Hyper-parameters are stored under their
own names as 0-d arrays (``"lr"``, ``"momentum"``, ...; a pair such as ``betas`` as a 1-D array);
per-parameter state as ``"<name>.<index>"`` (``"step.0"``, ``"exp_avg.0"``, ...), where index is
the parameter's position in the list given to the constructor.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from ..nn.parameter import Parameter

Scalar = bool | int | float | str | tuple


def to_array(value: Scalar) -> np.ndarray:
    """A hyper-parameter or counter as an array: 0-d for scalars, 1-D for a tuple."""
    if isinstance(value, (bool, np.bool_)):
        return np.array(bool(value))
    if isinstance(value, (int, np.integer)):
        return np.array(int(value), dtype=np.int64)
    if isinstance(value, (float, np.floating)):
        return np.array(float(value), dtype=np.float64)
    if isinstance(value, str):
        return np.array(value)
    if isinstance(value, tuple):
        is_int = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
        return np.array(value, dtype=np.int64 if is_int else np.float64).reshape(len(value))
    raise TypeError(f"cannot store {value!r} of type {type(value).__name__} in a state dict")


def from_array(array: np.ndarray, like: Scalar) -> Scalar:
    """Inverse of :func:`to_array`; ``like`` (the current value) gives the Python type."""
    if isinstance(like, (bool, np.bool_)):
        return bool(array)
    if isinstance(like, (int, np.integer)):
        return int(array)
    if isinstance(like, (float, np.floating)):
        return float(array)
    if isinstance(like, str):
        return str(array)
    return tuple(array.tolist())


# which array kinds may stand for a value of each reference kind
_COMPATIBLE_KINDS = {"b": "b", "i": "iu", "u": "iu", "f": "fiu", "U": "U"}


def check_state_dict(
    owner: str, given: dict[str, np.ndarray], expected: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Check ``given`` against ``expected`` (same keys, shapes, kinds); return it as arrays.

    Raises ValueError naming the missing or unexpected keys, or the first entry whose shape or
    kind differs from the expected one.
    """
    if not isinstance(given, dict):
        raise TypeError(f"{owner}.load_state_dict expects a dict, got {type(given).__name__}")
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{owner}.load_state_dict: keys do not match (saved with a different configuration "
            f"or a different parameter list?); missing {missing}, unexpected {unexpected}"
        )
    out = {}
    for key, ref in expected.items():
        value = np.asarray(given[key])
        if value.shape != ref.shape:
            raise ValueError(
                f"{owner}.load_state_dict: entry {key!r} has shape {value.shape}, "
                f"expected {ref.shape}"
            )
        if value.dtype.kind not in _COMPATIBLE_KINDS.get(ref.dtype.kind, ref.dtype.kind):
            raise ValueError(
                f"{owner}.load_state_dict: entry {key!r} has dtype {value.dtype}, "
                f"expected {ref.dtype}"
            )
        out[key] = value
    return out


def _as_param_list(params: Iterable[Parameter], owner: str) -> list[Parameter]:
    if isinstance(params, Parameter):
        raise TypeError(f"{owner} expects an iterable of Parameters, got a single Parameter")
    params = list(params)
    if not params:
        raise ValueError(f"{owner} got an empty parameter list")
    seen = set()
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"{owner}: params[{i}] is a {type(p).__name__}, not a Parameter")
        if id(p) in seen:
            raise ValueError(f"{owner}: params[{i}] appears more than once in the list")
        seen.add(id(p))
    return params


def check_non_negative(owner: str, **values: float) -> None:
    """Raise ValueError for the first value that is negative (or NaN)."""
    for name, value in values.items():
        if not value >= 0.0:
            raise ValueError(f"{owner}: invalid {name} {value!r}, expected >= 0")


class Optimizer:
    """Base class: holds ``params``, the learning rate ``lr`` and per-parameter ``state``.

    Subclasses list their hyper-parameters in ``_hyper`` (saved in the state dict and restored by
    ``load_state_dict``), validate them in ``_check_hyper(**values)``, name their per-parameter
    buffers in ``_buffers()`` (zeros like the parameter), and implement ``_update(p, state)``.
    Every parameter's state also holds ``step``, the number of updates it received.
    """

    _hyper: tuple[str, ...] = ("lr",)
    lr: float

    def __init__(self, params: Iterable[Parameter]) -> None:
        self.params = _as_param_list(params, type(self).__name__)
        self._check_hyper(**{name: getattr(self, name) for name in self._hyper})
        self.state: list[dict[str, np.ndarray]] = []
        for p in self.params:
            slots = {"step": np.array(0, dtype=np.int64)}
            slots.update({name: np.zeros_like(p.data) for name in self._buffers()})
            self.state.append(slots)

    # -- subclass hooks
    def _check_hyper(self, **values: Scalar) -> None:
        check_non_negative(type(self).__name__, lr=values["lr"])

    def _buffers(self) -> tuple[str, ...]:
        return ()

    def _update(self, p: Parameter, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    # -- public API
    def zero_grad(self) -> None:
        """Set every parameter's ``grad`` to zeros (modules accumulate into it)."""
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        """Apply one update to every parameter with ``requires_grad``, in place."""
        for p, state in self._active():
            state["step"] += 1
            self._update(p, state)

    def state_dict(self) -> dict[str, np.ndarray]:
        """A flat dict of arrays (copies): hyper-parameters and ``"<buffer>.<index>"`` entries."""
        d = {name: to_array(getattr(self, name)) for name in self._hyper}
        for i, state in enumerate(self.state):
            for name, value in state.items():
                d[f"{name}.{i}"] = value.copy()
        return d

    def load_state_dict(self, state_dict: dict[str, np.ndarray]) -> None:
        """Restore hyper-parameters and buffers; the dict must match this optimiser's layout.

        Raises ValueError (and changes nothing) when keys, shapes or dtypes do not match or a
        restored hyper-parameter is invalid.
        """
        owner = type(self).__name__
        d = check_state_dict(owner, state_dict, self.state_dict())
        hyper = {name: from_array(d[name], getattr(self, name)) for name in self._hyper}
        self._check_hyper(**hyper)
        for i in range(len(self.state)):
            if int(d[f"step.{i}"]) < 0:
                raise ValueError(f"{owner}.load_state_dict: step.{i} is negative")
        for name, value in hyper.items():
            setattr(self, name, value)
        for i, state in enumerate(self.state):
            for name in state:  # a copy, in the dtype the buffer has (the parameter's)
                state[name] = np.array(d[f"{name}.{i}"], dtype=state[name].dtype)

    def _active(self) -> Iterator[tuple[Parameter, dict[str, np.ndarray]]]:
        for p, state in zip(self.params, self.state, strict=True):
            if p.requires_grad:
                yield p, state

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._hyper)
        return f"{type(self).__name__}({len(self.params)} parameters, {args})"


def lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start += weight * (end - start)`` in place, evaluated as ``torch.lerp`` does.

    For ``|weight| < 0.5``: ``start + weight * (end - start)``; otherwise
    ``end - (end - start) * (1 - weight)`` (the form that is exact at ``weight = 1``).
    """
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1.0 - weight)

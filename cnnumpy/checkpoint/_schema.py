"""Small composable specs for JSON values: each says what it expects and lists what misfits.

A spec answers ``problems(value, where) -> list[str]``: empty when ``value`` fits, else one line
per misfit, each naming the field (``meta.rng_states["solver.shuffle"].state.inc``) and saying
what was expected and what came. :mod:`._meta` builds the checkpoint's schema from them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

MISSING = object()
"""Stands for a field that is absent (``null`` is a value)."""


def show(value: Any) -> str:
    """``value`` as JSON text, cut to 60 characters."""
    if value is MISSING:
        return "nothing (the field is missing)"
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Spec:
    """Any JSON value. Subclasses narrow :meth:`accepts` (the value itself) and :meth:`nested`
    (what is inside it, checked only when the value itself is accepted)."""

    expected = "any JSON value"

    def accepts(self, value: Any) -> bool:
        return value is not MISSING

    def nested(self, value: Any, where: str) -> list[str]:
        return []

    def problems(self, value: Any, where: str) -> list[str]:
        if not self.accepts(value):
            return [f"{where}: expected {self.expected}, got {show(value)}"]
        return self.nested(value, where)


class Check(Spec):
    """A scalar: ``test(value)`` says whether it fits; ``expected`` says in words what does."""

    def __init__(self, expected: str, test: Callable[[Any], bool]) -> None:
        self.expected, self.test = expected, test

    def accepts(self, value: Any) -> bool:
        return value is not MISSING and self.test(value)


class Nullable(Spec):
    """``null`` or what ``inner`` accepts."""

    def __init__(self, inner: Spec) -> None:
        self.inner, self.expected = inner, f"null or {inner.expected}"

    def accepts(self, value: Any) -> bool:
        return value is None or self.inner.accepts(value)

    def nested(self, value: Any, where: str) -> list[str]:
        return [] if value is None else self.inner.nested(value, where)


class ListOf(Spec):
    """A list of ``item``\\ s: of exactly ``length`` items, or of at least one if ``nonempty``."""

    def __init__(self, item: Spec, length: int | None = None, nonempty: bool = False) -> None:
        self.item, self.length, self.min_length = item, length, int(nonempty)
        size = f"a list of {length} items" if length is not None else "a list"
        size = "a non-empty list" if length is None and nonempty else size
        self.expected = f"{size}, each {item.expected}"

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, list) or len(value) < self.min_length:
            return False
        return self.length is None or len(value) == self.length

    def nested(self, value: list, where: str) -> list[str]:
        return [p for i, v in enumerate(value) for p in self.item.problems(v, f"{where}[{i}]")]


class Record(Spec):
    """A JSON object with named ``fields`` (all required but the ``optional`` ones). A field
    not named is checked with ``others``, or refused when ``others`` is None."""

    expected = "an object"

    def __init__(
        self, fields: Mapping[str, Spec], optional: tuple[str, ...] = (), others: Spec | None = None
    ) -> None:
        self.fields, self.optional, self.others = dict(fields), set(optional), others

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)

    def nested(self, value: dict, where: str) -> list[str]:
        found = []
        for name, spec in self.fields.items():
            if name in value or name not in self.optional:
                found += spec.problems(value.get(name, MISSING), f"{where}.{name}")
        for name in value.keys() - self.fields.keys():
            if self.others is None:
                found.append(f"{where}: unexpected field {name!r}")
            else:
                found += self.others.problems(value[name], f"{where}.{name}")
        return found


class DictOf(Spec):
    """A JSON object mapping free names (non-empty, without ``/``) to ``value``\\ s; a name in
    ``known`` has that spec instead."""

    expected = "an object"

    def __init__(self, value: Spec, known: Mapping[str, Spec] | None = None) -> None:
        self.value, self.known = value, dict(known or {})

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)

    def nested(self, value: dict, where: str) -> list[str]:
        found = []
        for name, item in value.items():
            if not name or "/" in name:
                found.append(f"{where}: expected names without '/', got {name!r}")
            found += self.known.get(name, self.value).problems(item, f'{where}["{name}"]')
        return found


# -- scalars ------------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(low: int | None = None, high: int | None = None, words: str | None = None) -> Check:
    """An integer (never a bool or a float) in ``[low, high]``."""
    if words is None:
        words = "an integer" if low is None else f"an integer >= {low}"
        if low is not None and high is not None:
            words = f"an integer in [{low}, {high}]"

    def test(v: Any) -> bool:
        return _is_int(v) and (low is None or v >= low) and (high is None or v <= high)

    return Check(words, test)


def unsigned(bits: int, odd: bool = False) -> Check:
    """An integer in ``[0, 2**bits)`` (a bit generator's word), odd if asked."""
    words = f"{'an odd' if odd else 'an'} integer in [0, 2**{bits})"
    return Check(words, lambda v: _is_int(v) and 0 <= v < 2**bits and (not odd or v % 2 == 1))


def number(low: float | None = None, above: float | None = None, nan: bool = False) -> Check:
    """A finite number ``>= low`` / ``> above``; NaN too when ``nan``; never infinity."""
    words = "a finite number"
    words += f" >= {low}" if low is not None else f" > {above}" if above is not None else ""
    words += " (or NaN)" if nan else ""

    def test(v: Any) -> bool:
        if not _is_number(v):
            return False
        if math.isnan(v):
            return nan
        return math.isfinite(v) and (low is None or v >= low) and (above is None or v > above)

    return Check(words, test)


def unit_interval() -> Check:
    """A fraction: an accuracy."""
    return Check("a number in [0, 1]", lambda v: _is_number(v) and 0 <= v <= 1)


def string(nonempty: bool = True) -> Check:
    return Check("a non-empty string" if nonempty else "a string",
                 lambda v: isinstance(v, str) and (bool(v) or not nonempty))  # fmt: skip


def constant(value: Any) -> Check:
    return Check(json.dumps(value), lambda v: v == value and type(v) is type(value))


BOOLEAN = Check("true or false", lambda v: isinstance(v, bool))
ANY = Spec()


def jsonable(value: Any) -> Any:
    """``value`` with NumPy arrays and scalars (at any depth in dicts) as Python lists/scalars."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value

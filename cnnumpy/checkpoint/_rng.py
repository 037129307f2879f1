"""Random generators' states as JSON, and the schema a saved state must fit.

NumPy's ``bit_generator.state`` setter accepts floats for integers, an MT19937 position past the
key's end and other values no generator ever had; the specs below accept exactly the states the
five bit generators of ``numpy.random`` produce, so a damaged one is refused by name before any
generator is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._schema import MISSING, ListOf, Record, Spec, constant, integer, jsonable, unsigned

_FLAG = integer(0, 1)  # has_uint32: whether a 32-bit half of the last 64-bit draw is kept


def _with_uint32(kind: str, state: Record, **more: Spec) -> Record:
    return Record({"bit_generator": constant(kind), "state": state, **more,
                   "has_uint32": _FLAG, "uinteger": unsigned(32)})  # fmt: skip


_PCG = Record({"state": unsigned(128), "inc": unsigned(128, odd=True)})
KINDS: dict[str, Record] = {
    "PCG64": _with_uint32("PCG64", _PCG),
    "PCG64DXSM": _with_uint32("PCG64DXSM", _PCG),
    "MT19937": Record(
        {
            "bit_generator": constant("MT19937"),
            "state": Record({"key": ListOf(unsigned(32), length=624), "pos": integer(0, 624)}),
        }
    ),  # fmt: skip
    "Philox": _with_uint32(
        "Philox",
        Record({"counter": ListOf(unsigned(64), length=4), "key": ListOf(unsigned(64), length=2)}),
        buffer=ListOf(unsigned(64), length=4),
        buffer_pos=integer(0, 4),
    ),  # fmt: skip
    "SFC64": _with_uint32("SFC64", Record({"state": ListOf(unsigned(64), length=4)})),
}
"""The schema of each bit generator's saved state, by the name in its ``bit_generator``."""


class RngState(Spec):
    """A saved ``bit_generator.state`` of one of :data:`KINDS`."""

    expected = f"a bit generator state (an object whose bit_generator is one of {', '.join(KINDS)})"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict) and value.get("bit_generator") in KINDS

    def nested(self, value: dict, where: str) -> list[str]:
        return KINDS[value["bit_generator"]].nested(value, where)


RNG_STATE = RngState()


def rng_state(rng: np.random.Generator) -> dict:
    """JSON-ready ``rng.bit_generator.state`` (arrays, as in MT19937's key, become lists)."""
    return jsonable(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, state: Mapping, name: str = "generator") -> None:
    """Restore a state from :func:`rng_state`. ValueError, naming ``name`` and leaving ``rng``
    as it was, when the state is of another bit generator kind or does not fit its schema."""
    kind = type(rng.bit_generator).__name__
    saved = state.get("bit_generator", MISSING) if isinstance(state, Mapping) else MISSING
    if saved != kind:
        shown = "no bit generator" if saved is MISSING else repr(saved)
        raise ValueError(
            f"cannot restore {name}: saved state is for {shown}, the generator is {kind}"
        )
    problems = RNG_STATE.problems(jsonable(dict(state)), name)
    if problems:
        raise ValueError(f"cannot restore {name}: {'; '.join(problems)}")
    rng.bit_generator.state = dict(state)

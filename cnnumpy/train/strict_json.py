"""Strict JSON for every file a run writes (``history.json``, ``metrics.jsonl``, ``result.json``).

Python's ``json`` writes NaN and infinity as the bare words ``NaN`` and ``Infinity``, which are
not JSON and which other readers (``jq``, JavaScript, most JSON libraries) refuse. Here a value
nobody measured (NaN, such as ``val_acc`` of a run without validation) or an infinite one is
written as ``null``, and ``json.dumps(..., allow_nan=False)`` makes any that slipped through an
error instead of a broken file.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None, NumPy scalars and arrays made plain
    Python, and tuples made lists; dict keys are kept."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`jsonable` ``(value)``, refusing NaN (``allow_nan=False``)."""
    return json.dumps(jsonable(value), allow_nan=False, **kwargs)

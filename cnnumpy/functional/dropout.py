"""Dropout (Hinton et al. 2012; Srivastava et al. 2014), inverted or classic.

!!! ``p`` IS THE PROBABILITY OF DROPPING A UNIT, AS IN PYTORCH'S ``F.dropout(x, p)``. !!!
The CS231n notebooks pass the probability of KEEPING a unit under the same name ``p``:
their ``dropout_param = {'p': 0.8}`` keeps 80% of the units and is ``p=0.2`` here.

Two conventions give the same network in expectation:

- inverted (``inverted=True``, PyTorch's): training scales the kept units by ``1 / (1 - p)``, so
  each unit's expected value is unchanged and evaluation is the identity;
- classic (``inverted=False``, as in AlexNet): training only zeroes the dropped units, and
  evaluation multiplies every unit by the keep probability ``1 - p`` instead.

A network trained one way has, at test time, the outputs of the other with its next layer's
weights scaled by ``1 - p``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import check_array, check_generator


class DropoutCache(NamedTuple):
    mask: np.ndarray | None  # bool, True where a unit was kept; None when nothing was dropped
    scale: float  # the factor applied to the kept units


def _check_p(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"p (the probability of dropping a unit) must be a number, got {p!r}")
    if not 0 <= p <= 1:  # also rejects NaN
        raise ValueError(f"p is the probability of DROPPING a unit and must be in [0, 1], got {p}")
    return float(p)


def dropout_forward(
    x: np.ndarray,
    *,
    p: float = 0.5,
    training: bool = True,
    rng: np.random.Generator | None = None,
    inverted: bool = True,
) -> tuple[np.ndarray, DropoutCache]:
    """Zero each unit with probability ``p`` in training.

    !!! ``p`` is the probability of DROPPING a unit (PyTorch's meaning), NOT CS231n's keep
    probability. !!!

    ``mask ~ Bernoulli(1 - p)`` elementwise, drawn from ``rng`` (required in training when
    ``p > 0``) with uniforms in x's dtype, so a fresh generator with the same seed gives the same
    mask for the same shape and dtype.

    - ``inverted=True``: training ``out = x * mask / (1 - p)``; evaluation ``out = x``.
    - ``inverted=False``: training ``out = x * mask``; evaluation ``out = x * (1 - p)``.

    ``p = 1`` drops everything and returns zeros (no division by zero); a dropped unit is an
    exact 0 even where x is inf or NaN. Evaluation returns a new array, never ``x`` itself.
    Shapes: ``x`` any, ``out`` like ``x``.
    """
    check_array(x, "x")
    p = _check_p(p)
    keep = 1 - p
    if not training:
        scale = 1.0 if inverted else keep
        return x * scale, DropoutCache(None, scale)
    if p == 0:
        return x.copy(), DropoutCache(None, 1.0)
    check_generator(rng, "dropout_forward (p > 0)")
    mask = rng.random(x.shape, dtype=x.dtype) >= p  # uniforms in [0, 1): P(u >= p) = 1 - p
    # With p == 1 no unit is kept, so the scale never multiplies anything; 1 avoids 1 / 0.
    scale = 1 / keep if inverted and keep > 0 else 1.0
    out = np.where(mask, x, 0)
    if scale != 1.0:
        out *= scale
    return out, DropoutCache(mask, scale)


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """``out = x * mask * scale`` is linear in x, so ``dx = dout * mask * scale`` with the
    forward's own mask (the dropped units get no gradient).
    """
    mask, scale = cache
    if mask is None:
        return dout * scale
    dx = np.where(mask, dout, 0)
    if scale != 1.0:
        dx *= scale
    return dx

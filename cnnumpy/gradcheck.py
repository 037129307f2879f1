"""Numerical gradients by central differences, for checking hand-derived backward passes.

Use float64: with ``h = 1e-6`` the truncation error is O(h^2) ~ 1e-12 and the rounding error
O(eps / h) ~ 1e-10, so a correct backward agrees to about 1e-8 relative or better.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Gradient of the scalar ``f()`` with respect to ``x``, which ``f`` reads.

    ``df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h)``. ``x`` is perturbed in place, one entry at
    a time, and restored exactly afterwards.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    flat_x = x.reshape(-1)  # a view: writing to it perturbs x
    if not np.shares_memory(flat_x, x):
        raise ValueError("x must be contiguous so it can be perturbed in place")
    flat_g = grad.reshape(-1)
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + h
        f_plus = f()
        flat_x[i] = old - h
        f_minus = f()
        flat_x[i] = old
        flat_g[i] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_gradient_array(
    f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-6
) -> np.ndarray:
    """Gradient of ``sum(f() * dout)`` with respect to ``x``: what a backward given dout returns."""
    return numerical_gradient(lambda: float(np.sum(f() * dout)), x, h)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a - b| / max(max|a|, max|b|)``: the worst error relative to the gradient's scale.

    Relative to the scale of the whole array rather than entry by entry, so an entry that is
    zero up to rounding does not dominate.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(a - b)) / scale)

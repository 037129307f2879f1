"""Numerical gradients by central differences, for checking hand-derived backward passes.

Use float64: with ``h = 1e-6`` the truncation error is O(h^2) ~ 1e-12 and the rounding error
O(eps / h) ~ 1e-10, so a correct backward agrees to about 1e-8 relative or better.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import nn

GRAD_FLOOR = 1e-3  # gradients smaller than this are judged by absolute error (see below)


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Gradient of the scalar ``f()`` with respect to ``x``, which ``f`` reads: a float64
    array of ``x``'s shape (any shape; ``x`` must be contiguous).

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
    """Gradient of ``sum(f() * dout)`` with respect to ``x``: what a backward given dout returns.

    ``dout`` has the shape of ``f()``'s output; the result has ``x``'s shape.
    """
    return numerical_gradient(lambda: float(np.sum(f() * dout)), x, h)


def relative_error(a: np.ndarray, b: np.ndarray, floor: float = 0.0) -> float:
    """``max|a - b| / max(max|a|, max|b|, floor)``: the worst error relative to the gradient's
    scale, for two arrays of the same shape.

    Relative to the scale of the whole array rather than entry by entry, so an entry that is
    zero up to rounding does not dominate. ``floor`` turns it into an absolute error for
    gradients that are zero in exact arithmetic (a bias followed by batch norm).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0), floor)
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(a - b)) / scale)


def _rewinding_objective(
    model: nn.Module, loss: nn.Module, x: np.ndarray, y: np.ndarray
) -> Callable[[], float]:
    """``f() = loss(model(x), y)`` with every noise layer (a module with an ``rng`` Generator)
    rewound before each call, so dropout draws the same mask for every perturbed entry."""
    noisy = [m for m in model.modules() if isinstance(getattr(m, "rng", None), np.random.Generator)]
    states = [m.rng.bit_generator.state for m in noisy]

    def objective() -> float:
        for m, state in zip(noisy, states, strict=True):
            m.rng.bit_generator.state = state
        return float(loss(model(x), y))

    return objective


def _worst_entry_error(
    objective: Callable[[], float],
    flat: np.ndarray,
    idx: np.ndarray,
    exact: np.ndarray,
    tol: float,
) -> float:
    """Worst error of the analytic ``exact[j]`` against a central difference at ``flat[idx[j]]``,
    relative to ``max(max|exact|, GRAD_FLOOR)``; see :func:`check_model_gradients` for the
    steps tried."""
    scale = max(float(np.max(np.abs(exact))), GRAD_FLOOR)
    worst = 0.0
    for i, g in zip(idx, exact, strict=True):
        old = flat[i]
        for h in (1e-5, 1e-6, 1e-7, 1e-8):
            step = h * max(1.0, abs(old))
            flat[i] = old + step
            f_plus = objective()
            flat[i] = old - step
            f_minus = objective()
            flat[i] = old
            err = abs((f_plus - f_minus) / (2 * step) - g) / scale
            if err <= tol:
                break
        worst = max(worst, err)
    return worst


def check_model_gradients(
    model: nn.Module,
    loss: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    max_entries: int = 10,
    seed: int = 0,
    tol: float = 1e-6,
) -> dict[str, float]:
    """Worst relative error between analytic and numerical gradients, per parameter of a model.

    ``model`` is a ``cnnumpy.nn.Module`` already in float64, ``x: (N, C, H, W)`` its input,
    ``y: (N,)`` the labels and ``loss`` a loss module. The scalar checked is
    ``loss(model(x), y)``. Up to ``max_entries`` entries of each parameter (chosen at random
    with ``seed``) and of ``x`` are perturbed; noise layers (any module with an ``rng``
    Generator) have their Generators rewound before every forward, so dropout draws the same
    mask each time. The input's gradient is reported under the key ``"input"``.

    Errors are relative to ``max(max|gradient|, GRAD_FLOOR)``, so a gradient that is exactly
    zero (a bias before batch norm) reads as a small absolute error, not a relative error of 1.
    The step starts at ``h = 1e-5 * max(1, |w|)``, which keeps rounding small for losses of
    size ~100 (LeNet-5's RBF penalties); an entry whose error exceeds ``tol`` is retried with
    ``h`` ten, a hundred and a thousand times smaller, because deep plain nets at
    initialisation are so curved (their gradients explode) that a larger step crosses ReLU
    kinks. A wrong backward agrees at none of the steps, so taking the best one is still a test.
    """
    objective = _rewinding_objective(model, loss, x, y)
    objective()
    model.zero_grad()
    dx = model.backward(loss.backward())
    pick = np.random.default_rng(seed)
    targets = [("input", x, dx)] + [
        (name, p.data, p.grad) for name, p in model.named_parameters() if p.requires_grad
    ]
    errors = {}
    for name, array, analytic in targets:
        flat = array.reshape(-1)
        idx = pick.choice(flat.size, size=min(max_entries, flat.size), replace=False)
        errors[name] = _worst_entry_error(objective, flat, idx, analytic.reshape(-1)[idx], tol)
    return errors

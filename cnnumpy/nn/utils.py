"""Helpers that act on a model's gradients between ``backward`` and the optimiser's ``step``."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .parameter import Parameter


def clip_grad_norm_(
    parameters: Iterable[Parameter],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale the gradients in place so that their joint norm is at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_`` does; return the norm they had before.

    The norm is taken over all the gradients as if concatenated into one vector:
    ``total = (sum_p sum_i |g_pi|^q)^(1/q)`` for ``q = norm_type`` (``math.inf``: the largest
    ``|g_pi|``). When ``total > max_norm`` every gradient is multiplied by
    ``max_norm / (total + 1e-6)`` (PyTorch's epsilon), so the direction of the step is kept and
    only its length shrinks: one outlier mini-batch cannot throw the weights far. Parameters
    with ``requires_grad=False`` are left out. A non-finite total raises ``ValueError`` with
    ``error_if_nonfinite``; otherwise the gradients are scaled by NaN, as PyTorch does.
    """
    if not (isinstance(max_norm, (int, float)) and max_norm > 0):
        raise ValueError(f"max_norm must be a positive number, got {max_norm!r}")
    if not (norm_type == math.inf or norm_type > 0):
        raise ValueError(f"norm_type must be positive or math.inf, got {norm_type!r}")
    grads = [p.grad for p in parameters if p.requires_grad]
    if not grads:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.abs(g).max(initial=0.0)) for g in grads)
    else:
        # in float64, so that many float32 gradients do not lose the small ones to rounding
        powers = sum(float(np.sum(np.abs(g, dtype=np.float64) ** norm_type)) for g in grads)
        total = powers ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise ValueError(
            f"the total norm of the gradients is {total}, so they cannot be clipped; pass "
            "error_if_nonfinite=False to scale them by it anyway"
        )
    scale = max_norm / (total + 1e-6)
    if scale < 1.0 or math.isnan(scale):
        for g in grads:
            g *= scale
    return total

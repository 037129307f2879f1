"""Pure kernels: arrays in, ``(out, cache)`` out, and a backward that consumes the cache.

Every layer ``NAME`` has ``NAME_forward(x, *params, **hyper) -> (out, cache)`` and
``NAME_backward(dout, cache) -> dx`` or ``(dx, dparam1, ...)`` in the order of the forward's
array arguments. Losses are ``NAME_loss(scores, y) -> (loss, dscores)``.
"""

from .linear import linear_backward, linear_forward

__all__ = [
    "linear_backward",
    "linear_forward",
]

"""Constant padding of the two spatial axes (PyTorch's ``F.pad(x, (l, r, t, b), value=v)``).

LeNet-5 pads 28x28 MNIST digits to 32x32 with the *background* value (-0.1 after its input
scaling), not with zeros; a zero-padding convolution cannot express that, this layer can.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_array, check_shape

Pads = tuple[int, int, int, int]  # (left, right, top, bottom): PyTorch's order for F.pad


def resolve_pads(padding: int | tuple[int, int, int, int]) -> Pads:
    """An int pads every side; a 4-tuple is ``(left, right, top, bottom)`` as in PyTorch."""
    pads = (padding,) * 4 if isinstance(padding, (int, np.integer)) else tuple(padding)
    if len(pads) != 4 or not all(isinstance(p, (int, np.integer)) for p in pads):
        raise TypeError(f"padding must be an int or (left, right, top, bottom), got {padding!r}")
    if min(pads) < 0:
        raise ValueError(f"padding must be >= 0 on every side, got {padding!r}")
    return tuple(int(p) for p in pads)  # type: ignore[return-value]


def constant_pad2d_forward(
    x: np.ndarray, padding: int | tuple[int, int, int, int], value: float = 0.0
) -> tuple[np.ndarray, tuple[tuple[int, ...], Pads]]:
    """``x: (N, C, H, W)`` -> ``(N, C, top + H + bottom, left + W + right)``, the new border
    filled with ``value``: ``out[n, c, top + i, left + j] = x[n, c, i, j]``."""
    check_array(x, "x", ndim=4)
    left, right, top, bottom = pads = resolve_pads(padding)
    n, c, h, w = x.shape
    out = np.full((n, c, top + h + bottom, left + w + right), value, dtype=x.dtype)
    out[:, :, top : top + h, left : left + w] = x
    return out, (x.shape, pads)


def constant_pad2d_backward(dout: np.ndarray, cache: tuple[tuple[int, ...], Pads]) -> np.ndarray:
    """``dx = dout`` cropped back to ``x``'s pixels: the border is a constant, it has no input."""
    (n, c, h, w), (left, right, top, bottom) = cache
    check_shape(dout, (n, c, top + h + bottom, left + w + right), "dout")
    return np.ascontiguousarray(dout[:, :, top : top + h, left : left + w])

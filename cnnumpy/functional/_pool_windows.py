"""Pooling windows: their geometry and the strided views that see them all at once.

Shared by ``pool.py`` (average pooling, subsampling, the public max pooling functions) and
``_maxpool.py`` (the max pooling kernel), which import it and not each other.

Padding and ``ceil_mode`` are handled by one padded buffer: the input sits at offset
``(PH, PW)`` and the buffer is wide enough for every window, including a last window that
``ceil_mode`` lets run past the right padding. Output size along each axis, as in PyTorch
(``ceil_mode=False`` uses the floor)::

    OH = ceil((H + 2*PH - KH) / SH) + 1,  minus 1 if (OH - 1) * SH >= H + PH

The correction keeps the last window starting inside the input or its left padding.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import check_array, pair


class PoolGeometry(NamedTuple):
    """Everything about the windows that forward and backward share."""

    x_shape: tuple[int, int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    out_hw: tuple[int, int]


def _output_length(size: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    # Floor division rounds toward -inf like PyTorch's div_rtn, also for negative numerators.
    out = (size + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def pool_geometry(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None,
    padding: int | tuple[int, int],
    ceil_mode: bool,
) -> PoolGeometry:
    """Validate ``x: (N, C, H, W)`` and the hyper-parameters; compute the output size."""
    check_array(x, "x", ndim=4)
    kernel = pair(kernel_size, "kernel_size")
    stride_ = kernel if stride is None else pair(stride, "stride")
    pad = pair(padding, "padding")
    n, c, h, w = x.shape
    if h < 1 or w < 1:
        raise ValueError(f"x must have a non-empty (H, W), got shape {x.shape}")
    if min(kernel) < 1:
        raise ValueError(f"kernel_size must be positive, got {kernel}")
    if min(stride_) < 1:
        raise ValueError(f"stride must be positive, got {stride_}")
    if min(pad) < 0 or pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        raise ValueError(
            f"padding must be between 0 and half the kernel size (kernel_size {kernel}), "
            f"got padding {pad}"
        )
    oh = _output_length(h, kernel[0], stride_[0], pad[0], ceil_mode)
    ow = _output_length(w, kernel[1], stride_[1], pad[1], ceil_mode)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"kernel_size {kernel} is bigger than the padded input "
            f"({h + 2 * pad[0]}, {w + 2 * pad[1]}) (x shape {x.shape}, padding {pad}): "
            f"the output would be {oh} x {ow}"
        )
    return PoolGeometry((n, c, h, w), kernel, stride_, pad, (oh, ow))


def buffer_shape(g: PoolGeometry) -> tuple[int, int, int, int]:
    """Shape of the padded buffer: the input at offset padding, plus room for every window."""
    n, c, h, w = g.x_shape
    extent_h = (g.out_hw[0] - 1) * g.stride[0] + g.kernel[0]
    extent_w = (g.out_hw[1] - 1) * g.stride[1] + g.kernel[1]
    return n, c, max(extent_h, g.padding[0] + h), max(extent_w, g.padding[1] + w)


def window_views(buf: np.ndarray, g: PoolGeometry) -> list[np.ndarray]:
    """For each kernel position ``(p, q)`` in row-major order, the ``(..., OH, OW)`` view
    ``view[..., i, j] = buf[..., i*SH + p, j*SW + q]`` of a padded buffer ``buf: (..., Hb, Wb)``
    (``(N, C)`` batches in ``pool.py``, planes in ``_maxpool.py``)."""
    (kh, kw), (sh, sw), (oh, ow) = g.kernel, g.stride, g.out_hw
    return [
        buf[..., p : p + (oh - 1) * sh + 1 : sh, q : q + (ow - 1) * sw + 1 : sw]
        for p in range(kh)
        for q in range(kw)
    ]

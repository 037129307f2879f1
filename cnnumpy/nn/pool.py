"""Pooling layers, and LeNet-5's trainable subsampling."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .module import Module, default_rng, format_args
from .parameter import Parameter
from .stateless import StatelessLayer


class MaxPool2d(StatelessLayer):
    """Maximum over each window; overlapping windows (stride < kernel_size) are allowed.

    Shape: ``(N, C, H, W) -> (N, C, H', W')``, ``H' = floor((H + 2p - k) / s) + 1`` (ceil with
    ``ceil_mode``). ``stride`` defaults to ``kernel_size``. The padded image must hold one
    window (``H + 2p >= k``; a 1x1 image with ``p = k // 2`` does); an empty batch gives an
    empty output and ``dx``, as in PyTorch.
    """

    kernel_forward = staticmethod(F.max_pool2d_forward)
    kernel_backward = staticmethod(F.max_pool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode

    def kernel_kwargs(self) -> dict[str, Any]:
        return {
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "ceil_mode": self.ceil_mode,
        }

    def extra_repr(self) -> str:
        # count_include_pad is AvgPool2d's only.
        defaults = {
            "stride": self.kernel_size, "padding": 0, "ceil_mode": False, "count_include_pad": True,
        }  # fmt: skip
        shown = {k: (v, defaults[k]) for k, v in self.kernel_kwargs().items() if k in defaults}
        return format_args(f"kernel_size={self.kernel_size!r}", **shown)


class AvgPool2d(MaxPool2d):
    """Mean over each window; ``count_include_pad`` as in PyTorch. Shapes, 1x1 images and
    empty batches as in :class:`MaxPool2d`."""

    kernel_forward = staticmethod(F.avg_pool2d_forward)
    kernel_backward = staticmethod(F.avg_pool2d_backward)

    def __init__(
        self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True
    ) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = count_include_pad

    def kernel_kwargs(self) -> dict[str, Any]:
        return {**super().kernel_kwargs(), "count_include_pad": self.count_include_pad}


class AdaptiveAvgPool2d(StatelessLayer):
    """Global average pooling: ``(N, C, H, W) -> (N, C, 1, 1)``. Only ``output_size=1`` (or
    ``(1, 1)``) is supported, which is what the classic networks use. An empty batch gives an
    empty ``(0, C, 1, 1)`` output; ``H`` and ``W`` must be at least 1."""

    kernel_forward = staticmethod(F.global_avg_pool2d_forward)
    kernel_backward = staticmethod(F.global_avg_pool2d_backward)

    def __init__(self, output_size: int | tuple[int, int] = 1) -> None:
        super().__init__()
        if F.pair(output_size, "output_size") != (1, 1):
            raise ValueError(f"only output_size=1 (global pooling) is supported, got {output_size}")
        self.output_size = output_size

    def extra_repr(self) -> str:
        return format_args(output_size=(self.output_size, 1))


class Subsampling(Module):
    """LeNet-5's S-layers: ``out = weight[c] * (sum of each k x k window) + bias[c]``.

    Shape: ``(N, C, H, W) -> (N, C, H/k, W/k)``; ``weight: (C,)``, ``bias: (C,)``.
    Initialised as in LeCun et al. 1998: uniform in ``+-2.4 / fan_in`` with ``fan_in = k*k``.
    An empty batch gives an empty output, an empty ``dx`` and zero gradients.
    """

    def __init__(
        self,
        in_channels: int,
        kernel_size: int = 2,
        stride: int | None = None,
        bias: bool = True,
        *,
        rng: np.random.Generator | None = None,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        self.in_channels, self.kernel_size = in_channels, kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.weight = Parameter(np.empty(in_channels, dtype=dtype))
        self.bias = Parameter(np.empty(in_channels, dtype=dtype)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Weight, then bias, uniform in ``+-2.4 / (kernel_size**2)``, drawn in that order."""
        rng = default_rng(rng)
        bound = 2.4 / (self.kernel_size * self.kernel_size)
        self.weight.data[...] = rng.uniform(-bound, bound, self.in_channels)
        if self.bias is not None:
            self.bias.data[...] = rng.uniform(-bound, bound, self.in_channels)

    def forward(self, x: np.ndarray) -> np.ndarray:
        b = self.bias.data if self.bias is not None else None
        out, cache = F.subsampling_forward(
            x, self.weight.data, b, kernel_size=self.kernel_size, stride=self.stride
        )
        self.save_for_backward(cache)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx, dw, db = F.subsampling_backward(dout, self.take_saved("backward"))
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray:
        h_x, h_w, h_b = F.subsampling_curvature(h_out, self.take_saved("curvature_backward"))
        self._add_curvature(h_w, h_b)
        return h_x

    def extra_repr(self) -> str:
        return format_args(
            self.in_channels,
            kernel_size=(self.kernel_size, 2),
            stride=(self.stride, self.kernel_size),
            bias=(self.bias is not None, True),
        )

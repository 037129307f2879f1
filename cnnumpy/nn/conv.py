"""Convolution layers: thin owners of ``weight``/``bias`` over the conv kernels."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import init
from .module import Module, default_rng, format_args
from .parameter import Parameter


def _check_channels(in_channels: int, out_channels: int, groups: int, kernel_size) -> tuple:
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}"
        )
    return F.pair(kernel_size, "kernel_size")


class _ConvNd(Module):
    """Shared set-up: parameters, PyTorch's default initialisation, gradient bookkeeping.

    ``weight_shape`` is the weight's full shape and ``out_channels`` the length of the bias.
    """

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]

    def __init__(self, weight_shape, out_channels: int, bias: bool, rng, dtype) -> None:
        super().__init__()
        self.weight = Parameter(np.empty(weight_shape, dtype=dtype))
        self.bias = Parameter(np.empty((out_channels,), dtype=dtype)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """PyTorch's default: weight, then bias, uniform in ``+-1/sqrt(fan_in)`` with
        ``fan_in = prod(weight.shape[1:])``, drawn from ``rng`` in that order."""
        rng = default_rng(rng)
        shape, dtype = self.weight.shape, self.weight.dtype
        self.weight.data[...] = init.default_weight(shape, rng, dtype=dtype)
        if self.bias is not None:
            fan_in = int(np.prod(shape[1:]))
            self.bias.data[...] = init.default_bias(self.bias.shape, fan_in, rng, dtype=dtype)

    def _params(self) -> tuple[np.ndarray, np.ndarray | None]:
        return self.weight.data, (self.bias.data if self.bias is not None else None)

    def _accumulate(self, grads: tuple) -> np.ndarray | None:
        dx, dw, db = grads
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def _repr_head(self) -> list[str]:
        return [str(self.in_channels), str(self.out_channels), f"kernel_size={self.kernel_size}"]


class Conv2d(_ConvNd):
    """2-D cross-correlation, as ``torch.nn.Conv2d``.

    Shape: ``(N, in_channels, H, W) -> (N, out_channels, H', W')`` with
    ``H' = floor((H + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1``.
    ``weight: (out_channels, in_channels/groups, KH, KW)``, ``bias: (out_channels,)``.
    Default initialisation is PyTorch's: weight and bias uniform in ``+-1/sqrt(fan_in)``,
    ``fan_in = in_channels/groups * KH * KW``.

    Degenerate input, as in PyTorch: an empty batch gives an empty output, and its backward an
    empty ``dx`` and zero weight and bias gradients; any image the padded, dilated kernel fits
    works, 1x1 included (a 1x1 kernel, or padding of at least ``dilation*(KH-1)/2``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        rng: np.random.Generator | None = None,
        dtype: type = np.float32,
    ) -> None:
        kh, kw = _check_channels(in_channels, out_channels, groups, kernel_size)
        shape = (out_channels, in_channels // groups, kh, kw)
        super().__init__(shape, out_channels, bias, rng, dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.dilation, self.groups = dilation, groups

    def forward(self, x: np.ndarray) -> np.ndarray:
        w, b = self._params()
        out, cache = F.conv2d_forward(
            x, w, b, stride=self.stride, padding=self.padding,
            dilation=self.dilation, groups=self.groups,
        )  # fmt: skip
        self.save_for_backward(cache)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """``dx`` (None after ``set_input_grad(False)``); accumulates the parameters' grads."""
        cache = self.take_saved("backward")
        return self._accumulate(F.conv2d_backward(dout, cache, input_grad=self.input_grad))

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray | None:
        """``h_x`` (None after ``set_input_grad(False)``); accumulates the parameters'
        ``curvature`` (see ``F.conv2d_curvature``)."""
        cache = self.take_saved("curvature_backward")
        h_x, h_w, h_b = F.conv2d_curvature(h_out, cache, input_curvature=self.input_grad)
        self._add_curvature(h_w, h_b)
        return h_x

    def extra_repr(self) -> str:
        return format_args(
            *self._repr_head(), stride=(self.stride, 1), padding=(self.padding, 0),
            dilation=(self.dilation, 1), groups=(self.groups, 1),
            bias=(self.bias is not None, True),
        )  # fmt: skip


class ConvTranspose2d(_ConvNd):
    """Transposed convolution (the adjoint of ``Conv2d``), as ``torch.nn.ConvTranspose2d``.

    Shape: ``(N, in_channels, H, W) -> (N, out_channels, H', W')`` with
    ``H' = (H-1)*stride - 2*padding + dilation*(kernel_size-1) + output_padding + 1``.
    ``weight: (in_channels, out_channels/groups, KH, KW)``, ``bias: (out_channels,)``.
    Default initialisation is PyTorch's: uniform in ``+-1/sqrt(fan_in)`` with PyTorch's
    ``fan_in = out_channels/groups * KH * KW`` (computed from the weight's second axis).
    An empty batch gives an empty output, an empty ``dx`` and zero gradients, as in PyTorch.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
        *,
        rng: np.random.Generator | None = None,
        dtype: type = np.float32,
    ) -> None:
        kh, kw = _check_channels(in_channels, out_channels, groups, kernel_size)
        shape = (in_channels, out_channels // groups, kh, kw)
        super().__init__(shape, out_channels, bias, rng, dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.output_padding, self.groups, self.dilation = output_padding, groups, dilation

    def forward(self, x: np.ndarray) -> np.ndarray:
        w, b = self._params()
        out, cache = F.conv_transpose2d_forward(
            x, w, b, stride=self.stride, padding=self.padding,
            output_padding=self.output_padding, groups=self.groups, dilation=self.dilation,
        )  # fmt: skip
        self.save_for_backward(cache)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        cache = self.take_saved("backward")
        return self._accumulate(F.conv_transpose2d_backward(dout, cache))

    def extra_repr(self) -> str:
        return format_args(
            *self._repr_head(), stride=(self.stride, 1), padding=(self.padding, 0),
            dilation=(self.dilation, 1), output_padding=(self.output_padding, 0),
            groups=(self.groups, 1), bias=(self.bias is not None, True),
        )  # fmt: skip

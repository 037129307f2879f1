"""Convolution layers: thin owners of ``weight``/``bias`` over the conv kernels."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import init
from .module import Module, default_rng
from .parameter import Parameter


def _check_channels(in_channels: int, out_channels: int, groups: int, kernel_size) -> tuple:
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}"
        )
    return F.pair(kernel_size, "kernel_size")


class _ConvNd(Module):
    """Shared set-up: hyper-parameters, PyTorch's default initialisation, gradient bookkeeping."""

    def __init__(self, weight_shape, bias, fan_in_hint, rng, dtype) -> None:
        super().__init__()
        rng = default_rng(rng)
        self.weight = Parameter(init.default_weight(weight_shape, rng, dtype=dtype))
        fan_in = int(np.prod(weight_shape[1:]))
        self.bias = (
            Parameter(init.default_bias((fan_in_hint,), fan_in, rng, dtype=dtype)) if bias else None
        )
        self._cache = None

    def _params(self) -> tuple[np.ndarray, np.ndarray | None]:
        return self.weight.data, (self.bias.data if self.bias is not None else None)

    def _accumulate(self, grads: tuple) -> np.ndarray | None:
        dx, dw, db = grads
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx


class Conv2d(_ConvNd):
    """2-D cross-correlation, as ``torch.nn.Conv2d``.

    Shape: ``(N, in_channels, H, W) -> (N, out_channels, H', W')`` with
    ``H' = floor((H + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1``.
    ``weight: (out_channels, in_channels/groups, KH, KW)``, ``bias: (out_channels,)``.
    Default initialisation is PyTorch's: weight and bias uniform in ``+-1/sqrt(fan_in)``,
    ``fan_in = in_channels/groups * KH * KW``.
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
        super().__init__(shape, bias, out_channels, rng, dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.dilation, self.groups = dilation, groups

    def forward(self, x: np.ndarray) -> np.ndarray:
        w, b = self._params()
        out, self._cache = F.conv2d_forward(
            x, w, b, stride=self.stride, padding=self.padding,
            dilation=self.dilation, groups=self.groups,
        )  # fmt: skip
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """``dx`` (None after ``set_input_grad(False)``); accumulates the parameters' grads."""
        cache = self._take_cache()
        return self._accumulate(F.conv2d_backward(dout, cache, input_grad=self.input_grad))

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray | None:
        """``h_x`` (None after ``set_input_grad(False)``); accumulates the parameters'
        ``curvature`` (see ``F.conv2d_curvature``)."""
        cache = self._take_cache()
        h_x, h_w, h_b = F.conv2d_curvature(h_out, cache, input_curvature=self.input_grad)
        self._add_curvature(h_w, h_b)
        return h_x

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}" if self.stride != 1 else ""
        s += f", padding={self.padding!r}" if self.padding != 0 else ""
        s += f", dilation={self.dilation}" if self.dilation != 1 else ""
        s += f", groups={self.groups}" if self.groups != 1 else ""
        return s + (", bias=False" if self.bias is None else "")


class ConvTranspose2d(_ConvNd):
    """Transposed convolution (the adjoint of ``Conv2d``), as ``torch.nn.ConvTranspose2d``.

    Shape: ``(N, in_channels, H, W) -> (N, out_channels, H', W')`` with
    ``H' = (H-1)*stride - 2*padding + dilation*(kernel_size-1) + output_padding + 1``.
    ``weight: (in_channels, out_channels/groups, KH, KW)``, ``bias: (out_channels,)``.
    Default initialisation is PyTorch's: uniform in ``+-1/sqrt(fan_in)`` with PyTorch's
    ``fan_in = out_channels/groups * KH * KW`` (computed from the weight's second axis).
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
        super().__init__(shape, bias, out_channels, rng, dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.output_padding, self.groups, self.dilation = output_padding, groups, dilation

    def forward(self, x: np.ndarray) -> np.ndarray:
        w, b = self._params()
        out, self._cache = F.conv_transpose2d_forward(
            x, w, b, stride=self.stride, padding=self.padding,
            output_padding=self.output_padding, groups=self.groups, dilation=self.dilation,
        )  # fmt: skip
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self._accumulate(F.conv_transpose2d_backward(dout, self._cache))

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}" if self.stride != 1 else ""
        s += f", padding={self.padding}" if self.padding != 0 else ""
        s += f", output_padding={self.output_padding}" if self.output_padding != 0 else ""
        s += f", groups={self.groups}" if self.groups != 1 else ""
        s += f", dilation={self.dilation}" if self.dilation != 1 else ""
        return s + (", bias=False" if self.bias is None else "")

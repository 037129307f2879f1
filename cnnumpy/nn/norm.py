"""Normalisation layers: batch norm (running statistics as buffers), layer and group norm
(per-sample statistics, no buffers) and local response norm."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .module import Module, format_args
from .parameter import Parameter
from .stateless import StatelessLayer


class _BatchNorm(Module):
    """Shared body of ``BatchNorm1d`` and ``BatchNorm2d``.

    ``weight`` (gamma) starts at 1 and ``bias`` (beta) at 0; ``running_mean``/``running_var``
    (0 and 1) and ``num_batches_tracked`` are buffers, as in PyTorch, so they appear in
    ``state_dict`` but not in ``parameters()``. The kernel returns new running statistics,
    which are stored here.

    Degenerate batches, as in PyTorch. With batch statistics (training, or eval without
    running statistics) a single value per channel (``N = 1`` for 1-D input, ``N * H * W = 1``
    for images) raises ValueError: its variance is 0 and there is nothing to normalise. An
    empty batch gives an empty output in either mode and leaves the running statistics as they
    were (``num_batches_tracked`` still counts the call in training, as PyTorch's does); its
    backward gives an empty ``dx`` and zero ``weight`` and ``bias`` gradients. In eval mode
    with running statistics any batch size works.
    """

    _buffer_names = ("running_mean", "running_var", "num_batches_tracked")
    kernel_forward: Any
    kernel_backward: Any

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.empty(num_features, dtype)) if affine else None
        self.bias = Parameter(np.empty(num_features, dtype)) if affine else None
        self.running_mean: np.ndarray | None = None
        self.running_var: np.ndarray | None = None
        self.num_batches_tracked: np.ndarray | None = None
        if track_running_stats:
            self.running_mean = np.zeros(num_features, dtype)
            self.running_var = np.ones(num_features, dtype)
            self.num_batches_tracked = np.array(0, dtype=np.int64)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """``running_mean`` to 0, ``running_var`` to 1, ``num_batches_tracked`` to 0, each in
        the dtype it has."""
        if self.running_mean is not None and self.running_var is not None:
            self.running_mean = np.zeros_like(self.running_mean)
            self.running_var = np.ones_like(self.running_var)
            self.num_batches_tracked = np.array(0, dtype=np.int64)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """As PyTorch: the running statistics reset, ``weight`` to 1 and ``bias`` to 0 (nothing
        is drawn, so ``rng`` is unused)."""
        self.reset_running_stats()
        if self.weight is not None and self.bias is not None:
            self.weight.data[...] = 1
            self.bias.data[...] = 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        w = self.weight.data if self.affine else None
        b = self.bias.data if self.affine else None
        out, cache, mean, var = self.kernel_forward(
            x, w, b, self.running_mean, self.running_var,
            training=self.training, momentum=self.momentum, eps=self.eps,
        )  # fmt: skip
        self.save_for_backward(cache)
        if self.training and self.track_running_stats:
            self.running_mean, self.running_var = mean, var
            self.num_batches_tracked = self.num_batches_tracked + 1
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx, dw, db = self.kernel_backward(dout, self.take_saved("backward"))
        if self.affine:
            self.weight.grad += dw
            self.bias.grad += db
        return dx

    def extra_repr(self) -> str:
        return format_args(
            self.num_features, eps=(self.eps, 1e-5), momentum=(self.momentum, 0.1),
            affine=(self.affine, True), track_running_stats=(self.track_running_stats, True),
        )  # fmt: skip


class BatchNorm1d(_BatchNorm):
    """Batch norm over ``(N, D)``: ``y = (x - mean) / sqrt(var + eps) * weight + bias`` per
    feature, with batch statistics in training and running statistics in eval."""

    kernel_forward = staticmethod(F.batch_norm_forward)
    kernel_backward = staticmethod(F.batch_norm_backward)


class BatchNorm2d(_BatchNorm):
    """Spatial batch norm over ``(N, C, H, W)``: statistics per channel over N, H and W."""

    kernel_forward = staticmethod(F.spatial_batch_norm_forward)
    kernel_backward = staticmethod(F.spatial_batch_norm_backward)


class _PerSampleNorm(Module):
    """Shared body of ``LayerNorm`` and ``GroupNorm``: statistics of each sample alone, so the
    same in training and eval, with no buffers; ``weight`` starts at 1 and ``bias`` at 0."""

    kernel_forward: Any
    kernel_backward: Any

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """As PyTorch: ``weight`` to 1 and ``bias`` to 0 (nothing is drawn, so ``rng`` is
        unused)."""
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def kernel_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def forward(self, x: np.ndarray) -> np.ndarray:
        w = self.weight.data if self.weight is not None else None
        b = self.bias.data if self.bias is not None else None
        out, cache = self.kernel_forward(x, w, b, **self.kernel_kwargs())
        self.save_for_backward(cache)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx, dw, db = self.kernel_backward(dout, self.take_saved("backward"))
        if self.weight is not None:
            self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx


class LayerNorm(_PerSampleNorm):
    """Layer norm over the trailing ``normalized_shape`` dims of each sample:
    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, as PyTorch's ``LayerNorm``.

    Shape: ``x, y: (*, *normalized_shape)``; ``weight, bias: normalized_shape`` (None when
    ``elementwise_affine=False``; ``bias`` None also when ``bias=False``). An int
    ``normalized_shape`` means ``(normalized_shape,)``. An empty batch gives an empty output
    and zero parameter gradients, as in PyTorch.
    """

    kernel_forward = staticmethod(F.layer_norm_forward)
    kernel_backward = staticmethod(F.layer_norm_backward)

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        *,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape = tuple(shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        affine = elementwise_affine
        self.weight = Parameter(np.empty(self.normalized_shape, dtype)) if affine else None
        self.bias = Parameter(np.empty(self.normalized_shape, dtype)) if affine and bias else None
        self.reset_parameters()

    def kernel_kwargs(self) -> dict[str, Any]:
        return {"normalized_shape": self.normalized_shape, "eps": self.eps}

    def extra_repr(self) -> str:
        return format_args(
            self.normalized_shape, eps=(self.eps, 1e-5),
            elementwise_affine=(self.elementwise_affine, True),
            bias=(self.bias is not None or not self.elementwise_affine, True),
        )  # fmt: skip


class GroupNorm(_PerSampleNorm):
    """Group norm, as PyTorch's ``GroupNorm``: the ``num_channels`` channels split into
    ``num_groups`` groups of consecutive channels, each sample's group normalised over its
    channels and pixels, then a per-channel ``weight`` and ``bias``.

    Shape: ``x, y: (N, C, H, W)`` (any ``(N, C, *)``) with ``C = num_channels``;
    ``weight, bias: (C,)``, None when ``affine=False``. ``num_groups=1`` normalises over
    ``(C, H, W)``; ``num_groups=num_channels`` is instance norm. An empty batch gives an empty
    output and zero parameter gradients, as in PyTorch.
    """

    kernel_forward = staticmethod(F.group_norm_forward)
    kernel_backward = staticmethod(F.group_norm_backward)

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        *,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(
                f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})"
            )
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        self.weight = Parameter(np.empty(num_channels, dtype)) if affine else None
        self.bias = Parameter(np.empty(num_channels, dtype)) if affine else None
        self.reset_parameters()

    def kernel_kwargs(self) -> dict[str, Any]:
        return {"num_groups": self.num_groups, "eps": self.eps}

    def extra_repr(self) -> str:
        return format_args(
            self.num_groups, self.num_channels, eps=(self.eps, 1e-5), affine=(self.affine, True)
        )


class LocalResponseNorm(StatelessLayer):
    """AlexNet's LRN across channels:
    ``y_c = x_c / (k + alpha/size * sum_{c' near c} x_{c'}^2)^beta``, as in PyTorch. Any
    ``(N, C, ...)`` input, an empty batch and a single channel included."""

    kernel_forward = staticmethod(F.local_response_norm_forward)
    kernel_backward = staticmethod(F.local_response_norm_backward)

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def kernel_kwargs(self) -> dict[str, Any]:
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}

    def extra_repr(self) -> str:
        return format_args(
            self.size, alpha=(self.alpha, 1e-4), beta=(self.beta, 0.75), k=(self.k, 1.0)
        )

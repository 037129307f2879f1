"""Three ONNX operators that the library's layers cover only in part.

- ``AvgPoolNd``: ONNX ``AveragePool`` over any number of trailing axes (``nn.AvgPool2d`` is
  2-D); PyTorch's exporter writes ``LocalResponseNorm`` as a 3-D average pool over
  ``(channels, 1, 1)`` windows.
- ``MirroredLocalResponseNorm``: ONNX ``LRN`` of an even ``size``. ONNX sums the squares over
  channels ``c - floor((size-1)/2) .. c + ceil((size-1)/2)``, PyTorch (and
  ``nn.LocalResponseNorm``) over ``c - floor(size/2) .. c + floor((size-1)/2)``: the same
  window for an odd size, its mirror image for an even one. Reversing the channels, applying
  PyTorch's window and reversing back gives ONNX's.
- ``TrailingLayerNorm``: ONNX ``LayerNormalization`` without an elementwise scale or bias,
  whose normalised sizes are known only when it runs (the export of ``nn.GroupNorm`` normalises
  each group's values this way).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from .. import functional as F
from ..nn.module import Module
from ..nn.norm import LocalResponseNorm


class AvgPoolNd(Module):
    """Mean over ``kernel`` windows of the trailing ``len(kernel)`` axes, every window divided
    by ``prod(kernel)`` (zero padding counts, ONNX's ``count_include_pad=1``).

    ``out[..., i] = sum_{o < kernel} xp[..., i * strides + o] / prod(kernel)`` with ``xp`` the
    input zero-padded by ``pads`` on both sides; output size ``(n + 2p - k) // s + 1`` per axis.
    Backward: each window element gets ``dout / prod(kernel)``, overlapping windows add.
    """

    def __init__(self, kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int]):
        super().__init__()
        self.kernel, self.strides, self.pads = tuple(kernel), tuple(strides), tuple(pads)
        if not len(self.kernel) == len(self.strides) == len(self.pads):
            raise ValueError("kernel, strides and pads need one entry per pooled axis")

    def _windows(self, padded_shape: tuple[int, ...]) -> tuple[tuple[int, ...], list]:
        """The output sizes and, per kernel offset, the slices of the padded input it reads."""
        lead = len(padded_shape) - len(self.kernel)
        sizes = tuple(
            (n - k) // s + 1
            for n, k, s in zip(padded_shape[lead:], self.kernel, self.strides, strict=True)
        )
        if min(sizes) < 1:
            raise ValueError(f"kernel {self.kernel} is bigger than the input {padded_shape}")
        views = [
            (Ellipsis, *(slice(o, o + s * (m - 1) + 1, s)
                         for o, s, m in zip(offset, self.strides, sizes, strict=True)))
            for offset in itertools.product(*(range(k) for k in self.kernel))
        ]  # fmt: skip
        return sizes, views

    def forward(self, x: np.ndarray) -> np.ndarray:
        lead = x.ndim - len(self.kernel)
        xp = np.pad(x, [(0, 0)] * lead + [(p, p) for p in self.pads])
        sizes, views = self._windows(xp.shape)
        out = np.zeros(x.shape[:lead] + sizes, dtype=x.dtype)
        for view in views:
            out += xp[view]
        out /= np.prod(self.kernel)
        self.save_for_backward((x.shape, xp.shape))
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_shape, padded_shape = self.take_saved("backward")
        _, views = self._windows(padded_shape)
        share = dout / np.prod(self.kernel)
        dxp = np.zeros(padded_shape, dtype=dout.dtype)
        for view in views:
            dxp[view] += share
        lead = len(x_shape) - len(self.kernel)
        crop = tuple(slice(p, p + n) for p, n in zip(self.pads, x_shape[lead:], strict=True))
        return np.ascontiguousarray(dxp[(Ellipsis, *crop)])

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, strides={self.strides}, pads={self.pads}"


class MirroredLocalResponseNorm(LocalResponseNorm):
    """ONNX's ``LRN`` for any ``size``: ``nn.LocalResponseNorm`` on the channels reversed,
    reversed back (see the module docstring); for an odd size it equals the plain layer."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(super().forward(np.ascontiguousarray(x[:, ::-1]))[:, ::-1])

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = super().backward(np.ascontiguousarray(dout[:, ::-1]))
        return np.ascontiguousarray(dx[:, ::-1])


class TrailingLayerNorm(Module):
    """``(x - mean) / sqrt(var + eps)`` over the last ``axes`` axes of each sample, their sizes
    taken from the input: ``F.layer_norm_forward`` with ``normalized_shape = x.shape[-axes:]``
    and no weight or bias. Shape: ``(*, *normalized) -> (*, *normalized)``."""

    def __init__(self, axes: int, eps: float = 1e-5) -> None:
        super().__init__()
        if axes < 1:
            raise ValueError(f"axes must be >= 1, got {axes}")
        self.axes, self.eps = axes, eps

    def forward(self, x: np.ndarray) -> np.ndarray:
        shape = x.shape[x.ndim - self.axes :]
        out, cache = F.layer_norm_forward(x, None, None, normalized_shape=shape, eps=self.eps)
        self.save_for_backward(cache)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return F.layer_norm_backward(dout, self.take_saved("backward"))[0]

    def extra_repr(self) -> str:
        return f"axes={self.axes}, eps={self.eps}"

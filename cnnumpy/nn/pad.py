"""``ConstantPad2d``: a border of a constant value around each feature map."""

from __future__ import annotations

from typing import Any

from .. import functional as F
from .stateless import StatelessLayer


class ConstantPad2d(StatelessLayer):
    """As ``torch.nn.ConstantPad2d``: ``padding`` is an int or ``(left, right, top, bottom)``.

    Shape: ``(N, C, H, W) -> (N, C, top + H + bottom, left + W + right)``. An empty batch
    gives an empty output and ``dx``.
    """

    kernel_forward = staticmethod(F.constant_pad2d_forward)
    kernel_backward = staticmethod(F.constant_pad2d_backward)
    # The crop's Jacobian holds only zeros and ones, its own square: curvature passes as dx does.
    kernel_curvature = staticmethod(F.constant_pad2d_backward)

    def __init__(self, padding: int | tuple[int, int, int, int], value: float) -> None:
        super().__init__()
        self.padding = F.pad.resolve_pads(padding)
        self.value = float(value)

    def kernel_kwargs(self) -> dict[str, Any]:
        return {"padding": self.padding, "value": self.value}

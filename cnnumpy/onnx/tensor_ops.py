"""Moving values around without arithmetic: the modules behind ONNX's ``Identity``,
``Reshape``, ``Flatten`` (any axis), ``Concat``, ``Pad``, ``Slice``, ``Squeeze``,
``Unsqueeze``, ``Transpose``, ``Cast`` and ``Shape`` in an imported graph.

Each output element is one input element (or a constant), so each backward puts ``dout``
back where its values came from: a reshape back, a split, a crop, a scatter into zeros.
``Shape`` outputs integers that take no gradient. Static arguments (axes, pads, slice
bounds) are read from the ONNX file when the graph is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..nn.module import Module


class Identity(Module):
    """``out = x``, ``dx = dout``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.save_for_backward()
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.take_saved("backward")
        return dout


class _Rearrange(Module):
    """Base for single-input ops whose backward is ``dout`` reshaped to the input's shape."""

    def rearrange(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.save_for_backward(np.shape(x))
        return self.rearrange(np.asarray(x))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return np.reshape(dout, self.take_saved("backward"))


class Flatten(_Rearrange):
    """ONNX ``Flatten``: ``(d_0, ..., d_n) -> (d_0 * ... * d_{axis-1}, d_axis * ... * d_n)``."""

    def __init__(self, axis: int = 1) -> None:
        super().__init__()
        self.axis = axis

    def rearrange(self, x):
        axis = self.axis % x.ndim if x.ndim else 0
        return x.reshape(int(np.prod(x.shape[:axis])), -1)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Squeeze(_Rearrange):
    """Drop the size-1 ``axes`` (every size-1 axis when None)."""

    def __init__(self, axes: Sequence[int] | None = None) -> None:
        super().__init__()
        self.axes = None if axes is None else tuple(axes)

    def rearrange(self, x):
        return np.squeeze(x, axis=self.axes)

    def extra_repr(self) -> str:
        return f"axes={self.axes}"


class Unsqueeze(_Rearrange):
    """Insert size-1 axes at ``axes``, numbered in the output."""

    def __init__(self, axes: Sequence[int]) -> None:
        super().__init__()
        self.axes = tuple(axes)

    def rearrange(self, x):
        return np.expand_dims(x, self.axes)

    def extra_repr(self) -> str:
        return f"axes={self.axes}"


class Reshape(Module):
    """ONNX ``Reshape(x, shape)``: a ``-1`` is inferred and, unless ``allowzero``, a ``0``
    copies the input's size on that axis. ``shape`` is an input (it may be computed at run
    time from ``Shape``); it takes no gradient."""

    def __init__(self, allowzero: bool = False) -> None:
        super().__init__()
        self.allowzero = allowzero

    def forward(self, x: np.ndarray, shape: np.ndarray) -> np.ndarray:
        target = [int(s) for s in np.asarray(shape).reshape(-1)]
        if not self.allowzero:
            target = [x.shape[i] if s == 0 else s for i, s in enumerate(target)]
        self.save_for_backward(np.shape(x))
        return np.reshape(x, target)

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, None]:
        return np.reshape(dout, self.take_saved("backward")), None


class Transpose(Module):
    """``out = x.transpose(perm)``; ``dx = dout.transpose(argsort(perm))``."""

    def __init__(self, perm: Sequence[int] | None = None) -> None:
        super().__init__()
        self.perm = None if perm is None else tuple(perm)

    def forward(self, x: np.ndarray) -> np.ndarray:
        perm = self.perm if self.perm is not None else tuple(reversed(range(x.ndim)))
        self.save_for_backward(perm)
        return np.transpose(x, perm)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return np.transpose(dout, np.argsort(self.take_saved("backward")))


class Cat(Module):
    """ONNX ``Concat``: any number of inputs joined along ``axis``; backward splits ``dout``."""

    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, *xs: np.ndarray) -> np.ndarray:
        xs = tuple(np.asarray(x) for x in xs)
        self.save_for_backward(np.cumsum([x.shape[self.axis] for x in xs])[:-1])
        return np.concatenate(xs, axis=self.axis)

    def backward(self, dout: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        pieces = tuple(np.split(dout, self.take_saved("backward"), axis=self.axis))
        return pieces[0] if len(pieces) == 1 else pieces

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Pad(Module):
    """Constant padding of any axes: ``pads = (begin_0, ..., begin_n, end_0, ..., end_n)`` in
    ONNX's order, every one >= 0; backward crops ``dout`` to the input's elements."""

    def __init__(self, pads: Sequence[int], value: float = 0.0) -> None:
        super().__init__()
        if len(pads) % 2 or min(pads, default=0) < 0:
            raise ValueError(f"pads must be 2 * rank non-negative sizes, got {list(pads)}")
        self.pads, self.value = tuple(int(p) for p in pads), float(value)

    def forward(self, x: np.ndarray) -> np.ndarray:
        rank = len(self.pads) // 2
        if x.ndim != rank:
            raise ValueError(f"Pad has pads for {rank} axes, got input of shape {x.shape}")
        widths = list(zip(self.pads[:rank], self.pads[rank:], strict=True))
        crop = tuple(slice(b, b + n) for (b, _), n in zip(widths, x.shape, strict=True))
        self.save_for_backward(crop)
        return np.pad(x, widths, constant_values=self.value)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(dout[self.take_saved("backward")])

    def extra_repr(self) -> str:
        return f"pads={self.pads}, value={self.value}"


class Slice(Module):
    """ONNX ``Slice`` with static bounds: on each of ``axes``, ``start:end:step`` with ONNX's
    clamping (a negative bound counts from the end; ``end`` may reach before the first element
    when ``step < 0``). Backward scatters ``dout`` into zeros of the input's shape."""

    def __init__(self, starts, ends, axes, steps) -> None:
        super().__init__()
        self.starts, self.ends = tuple(starts), tuple(ends)
        self.axes, self.steps = tuple(axes), tuple(steps)

    def forward(self, x: np.ndarray) -> np.ndarray:
        index = [slice(None)] * x.ndim
        bounds = zip(self.starts, self.ends, self.axes, self.steps, strict=True)
        for start, end, axis, step in bounds:
            index[axis] = _onnx_slice(x.shape[axis], start, end, step)
        self.save_for_backward((x.shape, x.dtype, tuple(index)))
        return x[tuple(index)]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        shape, dtype, index = self.take_saved("backward")
        dx = np.zeros(shape, dtype=dout.dtype)
        dx[index] = dout
        return dx

    def extra_repr(self) -> str:
        return f"starts={self.starts}, ends={self.ends}, axes={self.axes}, steps={self.steps}"


def _onnx_slice(dim: int, start: int, end: int, step: int) -> slice:
    """A Python slice with ONNX's meaning of ``start:end:step`` on an axis of size ``dim``."""
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        return slice(min(max(start, 0), dim), min(max(end, 0), dim), step)
    start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return slice(start, end if end >= 0 else None, step)  # -1 would wrap around in Python


class Cast(Module):
    """``out = x.astype(dtype)``; the gradient is cast back to the input's dtype."""

    def __init__(self, dtype: np.dtype) -> None:
        super().__init__()
        self.dtype = np.dtype(dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.save_for_backward(np.asarray(x).dtype)
        return np.asarray(x).astype(self.dtype)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.astype(self.take_saved("backward"))

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}"


class Shape(Module):
    """``out = x.shape[start:end]`` as int64: a shape, which takes no gradient."""

    def __init__(self, start: int = 0, end: int | None = None) -> None:
        super().__init__()
        self.start, self.end = start, end

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.save_for_backward()
        return np.array(np.shape(x)[self.start : self.end], dtype=np.int64)

    def backward(self, dout: np.ndarray) -> None:
        self.take_saved("backward")
        return None

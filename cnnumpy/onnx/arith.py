"""Arithmetic between tensors, for the ONNX nodes no library layer covers: ``Add``, ``Sub``,
``Mul``, ``Div``, ``Pow`` and ``MatMul`` on two inputs with NumPy's (and ONNX's) broadcasting,
``Expand``, ``ReduceSum`` and ``ReduceMean``.

Each is a module of an imported :class:`~cnnumpy.nn.Graph` and keeps the module contract
(forward saves, backward takes). A two-input module's backward returns ``(da, db)``, each summed
back to its input's shape over the axes broadcasting stretched: if ``a`` of shape ``(C, 1, 1)``
was added to every pixel, ``da`` is the sum of ``dout`` over the batch and the pixels.
"""

from __future__ import annotations

import numpy as np

from ..nn.module import Module


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``grad`` (of the broadcast result's shape) summed down to ``shape``."""
    grad = np.asarray(grad)
    lead = grad.ndim - len(shape)
    if lead > 0:
        grad = grad.sum(axis=tuple(range(lead)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return np.asarray(grad).reshape(shape)


class _Binary(Module):
    """``out = f(a, b)``; subclasses give ``compute`` and the local gradients ``grads``."""

    def compute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def grads(self, dout, a, b, out) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.asarray(self.compute(a, b))
        self.save_for_backward((a, b, out))
        return out

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b, out = self.take_saved("backward")
        da, db = self.grads(dout, a, b, out)
        return unbroadcast(da, np.shape(a)), unbroadcast(db, np.shape(b))


class Add(_Binary):
    """``a + b``: ``da = db = dout``."""

    def compute(self, a, b):
        return a + b

    def grads(self, dout, a, b, out):
        return dout, dout


class Sub(_Binary):
    """``a - b``: ``da = dout``, ``db = -dout``."""

    def compute(self, a, b):
        return a - b

    def grads(self, dout, a, b, out):
        return dout, -dout


class Mul(_Binary):
    """``a * b``: ``da = dout * b``, ``db = dout * a``."""

    def compute(self, a, b):
        return a * b

    def grads(self, dout, a, b, out):
        return dout * b, dout * a


class Div(_Binary):
    """``a / b``: ``da = dout / b``, ``db = -dout * a / b**2 = -dout * out / b``."""

    def compute(self, a, b):
        return a / b

    def grads(self, dout, a, b, out):
        da = dout / b
        return da, -da * out


class Pow(_Binary):
    """``a ** b``: ``da = dout * b * a**(b-1)``, ``db = dout * out * log(a)`` (0 where
    ``a <= 0``, where the real power has no derivative in ``b``)."""

    def compute(self, a, b):
        return np.power(a, b)

    def grads(self, dout, a, b, out):
        with np.errstate(divide="ignore", invalid="ignore"):
            da = dout * b * np.power(a, b - 1)
            db = np.where(a > 0, dout * out * np.log(np.where(a > 0, a, 1)), 0)
        return da, db


class MatMul(_Binary):
    """``a @ b`` over the last two axes, the leading ones broadcast (``numpy.matmul``):
    ``da = dout @ b^T``, ``db = a^T @ dout``. Both inputs need at least 2 dimensions."""

    def compute(self, a, b):
        if np.ndim(a) < 2 or np.ndim(b) < 2:
            raise ValueError(f"MatMul needs 2-D or larger inputs, got {np.shape(a)}, {np.shape(b)}")
        return np.matmul(a, b)

    def grads(self, dout, a, b, out):
        return np.matmul(dout, np.swapaxes(b, -1, -2)), np.matmul(np.swapaxes(a, -1, -2), dout)


class ReduceSum(Module):
    """``out = x.sum(axis=axes, keepdims=keepdims)`` (all axes when ``axes`` is None);
    backward spreads ``dout`` over the summed axes: ``dx = broadcast(dout)``."""

    def __init__(self, axes: tuple[int, ...] | None, keepdims: bool = True) -> None:
        super().__init__()
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.save_for_backward(x.shape)
        return np.asarray(x.sum(axis=self.axes, keepdims=self.keepdims))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        shape = self.take_saved("backward")
        if not self.keepdims:
            axes = range(len(shape)) if self.axes is None else self.axes
            dout = np.expand_dims(dout, tuple(a % len(shape) for a in axes))
        return np.broadcast_to(dout, shape).copy()

    def extra_repr(self) -> str:
        return f"axes={self.axes}, keepdims={self.keepdims}"


class ReduceMean(ReduceSum):
    """``out = x.mean(axis=axes, keepdims=keepdims)``: ``dx = broadcast(dout) / count`` with
    ``count`` the number of elements averaged into each output."""

    def _count(self, shape: tuple[int, ...]) -> int:
        axes = range(len(shape)) if self.axes is None else self.axes
        return int(np.prod([shape[a] for a in axes]))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return super().forward(x) / self._count(x.shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = super().backward(dout)
        return dx / self._count(dx.shape)


class Expand(Module):
    """ONNX ``Expand(x, shape)``: ``x`` broadcast against ``shape`` (both ways, as NumPy);
    ``dx`` is ``dout`` summed back over the broadcast axes, the shape takes no gradient."""

    def forward(self, x: np.ndarray, shape: np.ndarray) -> np.ndarray:
        target = np.broadcast_shapes(np.shape(x), tuple(int(s) for s in np.reshape(shape, -1)))
        self.save_for_backward(np.shape(x))
        return np.broadcast_to(x, target).copy()

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, None]:
        return unbroadcast(dout, self.take_saved("backward")), None

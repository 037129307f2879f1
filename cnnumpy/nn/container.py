"""Containers for the graphs the classic networks need: a chain, parallel branches, a residual.

Each container's backward first takes its own saved state with ``descendants=True``: it raises,
before any child has added a gradient, unless the container and every module below it still
hold what their forward saved (see :class:`~cnnumpy.nn.module.Module`).
"""

from __future__ import annotations

import numpy as np

from .module import DescendantsChecked, Module


class Sequential(Module):
    """Children applied in order; backward runs their backwards in reverse.

    Children are named ``"0"``, ``"1"``, ... so ``state_dict`` keys match ``torch.nn.Sequential``.
    When a child returns None from its backward (``set_input_grad(False)``), the chain stops
    there; the children before it keep their saved state until the next forward replaces it.
    """

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential takes Modules, got {type(layer).__name__} at {i}")
            setattr(self, str(i), layer)

    def __len__(self) -> int:
        return sum(1 for _ in self.children())

    def __getitem__(self, i: int) -> Module:
        return list(self.children())[i]

    def __iter__(self):
        return self.children()

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.children():
            x = layer(x)
        self.save_for_backward()
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        return self._backwards("backward", dout)

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray | None:
        return self._backwards("curvature_backward", h_out)

    def _backwards(self, method: str, value: np.ndarray | None) -> np.ndarray | None:
        """Each child's ``method`` in reverse order, each fed the previous one's result."""
        self.take_saved(method, descendants=True)
        with DescendantsChecked():
            for layer in reversed(list(self.children())):
                if value is None:  # a child skipped its dx: what lies before has no parameters
                    return None
                value = getattr(layer, method)(value)
        return value

    def set_input_grad(self, enabled: bool) -> Module:
        """The first child reads the chain's input, so the setting is its (see ``Module``).

        A first child without trainable parameters (LeNet-5's ``pad``) needs no backward at all
        when its input's gradient is unwanted, so the setting also goes to the child after it,
        and so on up to the first one with parameters; ``backward`` stops where a child
        returned None.
        """
        self.input_grad = enabled
        for child in self.children():
            child.set_input_grad(enabled)
            if any(p.requires_grad for p in child.parameters()):
                break
        return self


class Concat(Module):
    """Parallel branches on the same input, outputs joined on the channel axis (Inception).

    ``out = concatenate([b(x) for b in branches], axis=1)``; backward splits ``dout`` along the
    channels and sums the branches' ``dx``, since every branch read the same ``x``.
    """

    def __init__(self, *branches: Module) -> None:
        super().__init__()
        if not branches:
            raise ValueError("Concat needs at least one branch")
        for i, branch in enumerate(branches):
            setattr(self, str(i), branch)

    def forward(self, x: np.ndarray) -> np.ndarray:
        outs = [branch(x) for branch in self.children()]
        spatial = {o.shape[2:] for o in outs}
        if len(spatial) != 1:
            shapes = ", ".join(str(o.shape) for o in outs)
            raise ValueError(f"Concat branches must agree in all but the channel axis: {shapes}")
        self.save_for_backward(list(np.cumsum([o.shape[1] for o in outs])[:-1]))
        return np.concatenate(outs, axis=1)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        splits = self.take_saved("backward", descendants=True)
        pieces = np.split(dout, splits, axis=1)
        dx = None
        with DescendantsChecked():
            for branch, piece in zip(self.children(), pieces, strict=True):
                d = branch.backward(np.ascontiguousarray(piece))
                dx = d if dx is None else dx + d
        return dx


class Residual(Module):
    """``out = body(x) + shortcut(x)``, with the identity as the default shortcut (ResNet).

    Backward: the sum's gradient flows unchanged into both paths, so
    ``dx = body.backward(dout) + shortcut.backward(dout)`` (or ``+ dout`` for the identity).
    The activation after the addition, if any, is the next layer's business.
    """

    def __init__(self, body: Module, shortcut: Module | None = None) -> None:
        super().__init__()
        self.body = body
        if shortcut is not None:
            self.shortcut = shortcut

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = self.body(x)
        skip = self.shortcut(x) if hasattr(self, "shortcut") else x
        if skip.shape != out.shape:
            raise ValueError(
                f"Residual body gives {out.shape} but the shortcut gives {skip.shape}; "
                "use a projection or padding shortcut when the shape changes"
            )
        self.save_for_backward()
        return out + skip

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.take_saved("backward", descendants=True)
        with DescendantsChecked():
            dx = self.body.backward(dout)
            skip = self.shortcut.backward(dout) if hasattr(self, "shortcut") else dout
        return dx + skip

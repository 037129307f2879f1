"""``Module``: the base of every layer and model, with PyTorch's names.

There is no autograd tape. A module's ``forward(x)`` keeps what its backward needs (the kernel's
cache) and ``backward(dout)`` returns ``dx`` and *accumulates* into each parameter's ``grad``.
The large layers (convolutions, batch norm, activations) drop their cache in ``backward``, as
PyTorch frees saved tensors, so a training step's memory falls as its backward proceeds.
Containers run their children's backwards in reverse order. So a module must see one
``forward`` before each ``backward``; calling the same module twice in one forward (weight
sharing) is not supported.

``curvature_backward(h_out)`` is a second kind of backward, for the layers that have a rule
for it: it back-propagates a diagonal second-derivative estimate (``h_in = (J**2)^T h_out``,
see :mod:`cnnumpy.functional.curvature`) and accumulates into each parameter's ``curvature``.
It is called after a forward *instead of* ``backward`` and consumes the cache the same way.

Parameters, buffers and children are found by walking the instance's attributes in the order
they were assigned, which gives ``state_dict`` keys in PyTorch's order and with its dotted names.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .parameter import Parameter


class Module:
    """Base class. Subclasses set ``_buffer_names`` for non-trainable state (running statistics)."""

    _buffer_names: tuple[str, ...] = ()
    # Whether ``backward`` must return dx; see ``set_input_grad``.
    input_grad: bool = True

    def __init__(self) -> None:
        self.training = True

    # -- computation -------------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def curvature_backward(self, h_out: np.ndarray) -> np.ndarray | None:
        """Diagonal Gauss-Newton curvature w.r.t. the input, from ``h_out`` w.r.t. the output.

        Returns ``h_in = (J**2)^T h_out`` (``J`` the Jacobian of the last forward, squared
        elementwise) and adds ``(J_w**2)^T h_out`` to each parameter's ``curvature``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no curvature rule (curvature_backward), so a "
            "curvature-based optimiser such as SDLM cannot train a model that contains it"
        )

    def _add_curvature(self, h_weight: np.ndarray, h_bias: np.ndarray | None) -> None:
        """Add a layer's parameter curvatures to ``weight`` and, when it has one, ``bias``."""
        self.weight.add_curvature(h_weight)
        if getattr(self, "bias", None) is not None:
            self.bias.add_curvature(h_bias)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- structure ---------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def modules(self) -> Iterator[Module]:
        """This module and all its descendants, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for name in self._buffer_names:
            value = getattr(self, name)
            if value is not None:
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_buffers(prefix + name + ".")

    # -- modes and gradients -----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def zero_curvature(self) -> None:
        for p in self.parameters():
            p.zero_curvature()

    def _take_cache(self):
        """The cache the last ``forward`` left, cleared so its arrays can be freed: each forward
        allows one backward."""
        cache = getattr(self, "_cache", None)
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward needs a forward first (one backward each)"
            )
        self._cache = None
        return cache

    def set_input_grad(self, enabled: bool) -> Module:
        """Say whether ``backward`` must return the gradient of this module's input.

        The first layer of a network reads the data, whose gradient nobody uses, and for a
        convolution with few input channels computing it is most of the backward (PyTorch
        skips it too, as the input tensor does not require grad). With ``enabled=False`` a
        ``Conv2d`` returns None from ``backward``; a chain passes the setting to the child that
        reads its input. Other modules still compute it. The ``Solver`` disables it while it
        trains.
        """
        self.input_grad = enabled
        return self

    def to(self, dtype: type | np.dtype) -> Module:
        """Cast every parameter (with its gradient and curvature) and floating buffer to
        ``dtype``, in place."""
        for m in self.modules():
            for value in vars(m).values():
                if isinstance(value, Parameter):
                    value.data = value.data.astype(dtype)
                    value.grad = value.grad.astype(dtype)
                    if value.curvature is not None:
                        value.curvature = value.curvature.astype(dtype)
            for name in m._buffer_names:
                buf = getattr(m, name)
                if buf is not None and buf.dtype.kind == "f":
                    setattr(m, name, buf.astype(dtype))
        return self

    # -- state -------------------------------------------------------------------------------
    def _state_slots(self, prefix: str = "") -> Iterator[tuple[str, Module, str]]:
        """``(key, owner, attribute)`` for every parameter and buffer, in ``state_dict`` order."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, self, name
        for name in self._buffer_names:
            if getattr(self, name) is not None:
                yield prefix + name, self, name
        for name, child in self.named_children():
            yield from child._state_slots(prefix + name + ".")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters and buffers, keyed like PyTorch's (``"0.weight"``, ...)."""
        return {key: np.array(_array(owner, attr)) for key, owner, attr in self._state_slots()}

    def load_state_dict(self, state: dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy ``state`` into this module's parameters and buffers, keeping their dtypes.

        Missing keys, unexpected keys (both only with ``strict=True``) and shape mismatches are
        reported together in one ValueError, and nothing is changed unless everything fits.
        Parameters are written in place, so an optimiser holding them stays valid.
        """
        slots = {key: (owner, attr) for key, owner, attr in self._state_slots()}
        problems = []
        if strict:
            missing = [k for k in slots if k not in state]
            unexpected = [k for k in state if k not in slots]
            if missing:
                problems.append("missing keys: " + ", ".join(missing))
            if unexpected:
                problems.append("unexpected keys: " + ", ".join(unexpected))
        wrong = [
            f"{k} (checkpoint {np.shape(state[k])}, model {_array(*slots[k]).shape})"
            for k in slots
            if k in state and np.shape(state[k]) != _array(*slots[k]).shape
        ]
        if wrong:
            problems.append("shape mismatches: " + "; ".join(wrong))
        if problems:
            name = type(self).__name__
            raise ValueError(f"state dict does not fit {name}: " + " | ".join(problems))
        for key, (owner, attr) in slots.items():
            if key not in state:
                continue
            value = getattr(owner, attr)
            if isinstance(value, Parameter):
                np.copyto(value.data, np.asarray(state[key]), casting="unsafe")
            else:
                setattr(owner, attr, np.array(state[key], dtype=value.dtype))

    # -- printing ----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The constructor arguments worth showing, as PyTorch prints them."""
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)


def _array(owner: Module, attr: str) -> np.ndarray:
    value = getattr(owner, attr)
    return value.data if isinstance(value, Parameter) else value


def default_rng(rng: np.random.Generator | None) -> np.random.Generator:
    """The Generator a layer initialises from: the one given, or a fresh unseeded one."""
    return rng if rng is not None else np.random.default_rng()

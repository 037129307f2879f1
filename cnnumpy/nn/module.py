"""``Module``: the base of every layer and model, with PyTorch's names.

There is no autograd tape. A module's ``forward(x)`` keeps what its backward needs with
``self.save_for_backward(cache)``, and ``backward(dout)`` takes it back with
``self.take_saved()``, returns ``dx`` and *accumulates* into each parameter's ``grad``.
Taking the saved state frees it, as PyTorch frees saved tensors, so a training step's memory
falls as its backward proceeds, and a second backward after one forward (which would add the
parameters' gradients twice) raises a RuntimeError before anything changes. A container checks
up front that it and every module below it still hold their saved state (``take_saved(...,
descendants=True)``; only the outermost container walks the tree), so a half-run chain cannot
double gradients either. Every module's forward therefore saves something, even if only the
fact that it ran; ``module(x)`` records that much by itself for a module whose forward does
not call ``save_for_backward`` (one written outside the library that keeps its own state).

``curvature_backward(h_out)`` is a second kind of backward, for the layers that have a rule
for it: it back-propagates a diagonal second-derivative estimate (``h_in = (J**2)^T h_out``,
see :mod:`cnnumpy.functional.curvature`) and accumulates into each parameter's ``curvature``.
It is called after a forward *instead of* ``backward`` and consumes the saved state the same way.

``module(*inputs)`` runs ``forward`` and then the hooks of ``register_forward_hook``, as in
PyTorch. The base signatures take ``*args`` so that losses (``loss(scores, y)``,
``loss.backward()``) fit the same interface as layers (``layer(x)``, ``layer.backward(dout)``).

Parameters, buffers and children are found by walking the instance's attributes in the order
they were assigned, which gives ``state_dict`` keys (:mod:`cnnumpy.nn.state`) in PyTorch's order
and with its dotted names. Calling the same module twice in one forward (weight sharing) is not
supported.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np

from . import state
from .hooks import ForwardHook, RemovableHandle
from .parameter import Parameter


class Module:
    """Base class. Subclasses set ``_buffer_names`` for non-trainable state (running statistics)."""

    _buffer_names: tuple[str, ...] = ()
    # Whether ``backward`` must return dx; see ``set_input_grad``.
    input_grad: bool = True

    def __init__(self) -> None:
        self.training = True
        self._saved: Any = None  # what the last forward left for one backward; None once taken
        self._forward_hooks: dict[int, ForwardHook] = {}

    # -- computation -------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        """``dx`` from ``dout`` (both shaped like the forward's input and output); adds each
        parameter's gradient to its ``grad``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def curvature_backward(self, *args: Any, **kwargs: Any) -> Any:
        """Diagonal Gauss-Newton curvature w.r.t. the input, from ``h_out`` w.r.t. the output.

        Returns ``h_in = (J**2)^T h_out`` (``J`` the Jacobian of the last forward, squared
        elementwise) and adds ``(J_w**2)^T h_out`` to each parameter's ``curvature``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no curvature rule (curvature_backward), so a "
            "curvature-based optimiser such as SDLM cannot train a model that contains it"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.forward(*args, **kwargs)
        if self._saved is None:
            # A module written outside the library may keep its own state instead of calling
            # save_for_backward; mark that it ran, so the containers around it can check it.
            self._saved = ()
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                result = hook(self, args, out)
                if result is not None:
                    out = result
        return out

    def register_forward_hook(self, hook: ForwardHook) -> RemovableHandle:
        """Call ``hook(module, inputs, output)`` after every ``forward`` run through
        ``module(...)``; ``inputs`` is the tuple of positional arguments, and a non-None return
        value replaces the output. Hooks run in the order they were registered."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def _add_curvature(self, h_weight: np.ndarray, h_bias: np.ndarray | None) -> None:
        """Add a layer's parameter curvatures to ``weight`` and, when it has one, ``bias``."""
        self.weight.add_curvature(h_weight)
        if getattr(self, "bias", None) is not None:
            self.bias.add_curvature(h_bias)

    # -- what a forward leaves for its backward ----------------------------------------------
    def save_for_backward(self, saved: Any = ()) -> None:
        """Keep ``saved`` (a kernel's cache; by default nothing but the fact that a forward ran)
        for the next ``backward`` or ``curvature_backward``. A new forward replaces it."""
        self._saved = saved

    def take_saved(self, method: str = "backward", *, descendants: bool = False) -> Any:
        """What the last forward saved, released so its arrays can be freed.

        Raises RuntimeError, naming the module and ``method``, when there is none: no forward
        ran, or a backward already took it. With ``descendants=True`` (containers) every module
        below this one must hold its saved state too, so a container whose backward would stop
        halfway raises before any gradient changes; inside another container's backward (see
        ``DescendantsChecked``) that walk is skipped, as the outer container has done it.
        """
        if self._saved is None:
            raise RuntimeError(_no_forward(self, method))
        if descendants and not _DESCENDANTS_CHECKED.get():
            _check_descendants_saved(self, method)
        saved, self._saved = self._saved, None
        return saved

    def peek_saved(self, method: str) -> Any:
        """What the last forward saved, kept for later calls (for losses, which own no
        parameters, so a repeated backward cannot add anything twice)."""
        if self._saved is None:
            raise RuntimeError(_no_forward(self, method))
        return self._saved

    # -- structure ---------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def named_modules(
        self, memo: set[Module] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """``("", self)`` first (``(prefix, self)``), then every descendant depth first with its
        dotted name (``"stage2.0.conv1"``), each module once, as ``torch.nn.Module``'s."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if self in memo:
                return
            memo.add(self)
        yield prefix, self
        for name, child in self.named_children():
            child_prefix = f"{prefix}.{name}" if prefix else name
            yield from child.named_modules(memo, child_prefix, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        """This module and all its descendants, depth first."""
        for _, module in self.named_modules():
            yield module

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

    def set_input_grad(self, enabled: bool) -> Module:
        """Say whether ``backward`` must return the gradient of this module's input.

        The first layer of a network reads the data, whose gradient nobody uses, and for a
        convolution with few input channels computing it is most of the backward (PyTorch
        skips it too, as the input tensor does not require grad). With ``enabled=False`` a
        ``Conv2d`` returns None from ``backward``; a chain passes the setting to the child that
        reads its input. Other modules still compute it. The ``Trainer`` disables it while it
        trains.
        """
        self.input_grad = enabled
        return self

    def to(self, dtype: type | np.dtype) -> Module:
        """Cast every parameter (with its gradient and curvature) and floating buffer to
        ``dtype``, in place."""
        state.cast(self, dtype)
        return self

    # -- state (see cnnumpy.nn.state) --------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters and buffers, keyed like PyTorch's (``"0.weight"``, ...)."""
        return state.state_dict(self)

    def load_state_dict(self, state_dict: dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy ``state_dict`` into the parameters (in place) and buffers, keeping their dtypes;
        a ValueError lists every missing, unexpected or misshapen key and changes nothing."""
        state.load_state_dict(self, state_dict, strict)

    # -- printing ----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The constructor arguments worth showing: the required ones, and the others only where
        they differ from their defaults (see ``format_args``)."""
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


# True while a container's backward runs its children (``DescendantsChecked``): the outermost
# container has checked every module below it, so the containers inside need not walk again.
_DESCENDANTS_CHECKED: ContextVar[bool] = ContextVar("descendants_checked", default=False)


class DescendantsChecked:
    """Context for a container's children's backwards, after its ``take_saved(...,
    descendants=True)``: containers below skip the walk, so a backward walks the tree once."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _DESCENDANTS_CHECKED.set(True)

    def __exit__(self, *exc_info: object) -> None:
        _DESCENDANTS_CHECKED.reset(self._token)


def _check_descendants_saved(module: Module, method: str) -> None:
    stack = list(module.named_children())
    while stack:
        name, sub = stack.pop()
        if sub._saved is None:
            who = f"its submodule {name!r} ({type(sub).__name__})"
            raise RuntimeError(_no_forward(module, method, who))
        stack.extend((f"{name}.{child_name}", child) for child_name, child in sub.named_children())


def _no_forward(module: Module, method: str, who: str = "") -> str:
    detail = f": {who} holds nothing from a forward" if who else ""
    return (
        f"{type(module).__name__}.{method} needs a forward first{detail}. Each forward saves "
        "what one backward (or curvature_backward) uses and that backward frees it, so run a "
        "forward before each backward (and every module's forward must call save_for_backward)"
    )


def default_rng(rng: np.random.Generator | None) -> np.random.Generator:
    """The Generator a layer initialises from: the one given, or a fresh unseeded one."""
    return rng if rng is not None else np.random.default_rng()


def format_args(*required: object, **optional: tuple[object, object]) -> str:
    """An ``extra_repr`` as PyTorch prints one: the ``required`` items as they are, then each
    ``name=(value, default)`` as ``name=value`` only where ``value`` is not the default.

    A tuple such as ``stride=((1, 1), 1)`` counts as the default ``1``, since the layers accept
    either form: ``format_args(1, 6, "kernel_size=(5, 5)", stride=((1, 1), 1), bias=(False,
    True))`` is ``"1, 6, kernel_size=(5, 5), bias=False"``.
    """
    parts = [str(v) for v in required]
    parts += [f"{k}={v!r}" for k, (v, default) in optional.items() if not _same(v, default)]
    return ", ".join(parts)


def _same(value: object, default: object) -> bool:
    if isinstance(value, tuple) and not isinstance(default, tuple):
        return len(value) > 0 and all(_same(v, default) for v in value)
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    return value == default

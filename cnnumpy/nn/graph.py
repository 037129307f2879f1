"""``Graph``: a module that runs named nodes over named tensors, in topological order.

It is what :func:`cnnumpy.onnx.load` builds from an ONNX file, and it can be written by hand
for any network a chain of containers cannot express (a tensor read by several layers far
apart, several inputs or outputs). Each node is a child module applied to tensors named by
strings: the graph's inputs, its parameters, its constants, or an earlier node's output.

Forward runs the nodes in the order given (which must be topological: a node reads only
tensors defined before it). Backward runs them in reverse: each node's ``backward`` gets the
gradient of its output and returns the gradients of its inputs (one array for a node with
one input, a tuple of them otherwise, None for an input that takes no gradient, such as a
shape). Where a tensor feeds several nodes, its gradient is the sum of what they return, by
the multivariate chain rule ``dL/dt = sum_k dL/dy_k dy_k/dt``. A node whose output reaches no
graph output gets no gradient and its backward is not called.

Graph-level parameters (``parameters``: ONNX initializers that no layer absorbed, such as
LeNet-5's subsampling coefficients) are attributes of the graph under their own names, so
``state_dict`` keys are those names. Constants (shape vectors, fixed scalars) are not state:
they live in ``constants`` and take no gradient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from . import state
from .module import DescendantsChecked, Module
from .parameter import Parameter


class GraphNode(NamedTuple):
    name: str  # the child module's attribute name
    inputs: tuple[str, ...]  # the tensors it reads, in the order its forward takes them
    output: str  # the tensor it defines


NodeSpec = tuple[str, Module, Sequence[str], str]  # (name, module, inputs, output)
# What a Graph keeps as attributes itself: no node or parameter may take these names.
_OWN_ATTRIBUTES = frozenset(
    ("inputs", "outputs", "constants", "nodes", "_param_names", "training", "_saved",
     "_forward_hooks")
)  # fmt: skip


class Graph(Module):
    """Nodes ``(name, module, inputs, output)`` over named tensors; see the module docstring.

    ``Graph(inputs, nodes, outputs, parameters=None, constants=None)``: ``forward(*xs)``
    takes one array per name in ``inputs`` and returns the ``outputs`` (one array, or a tuple
    when there are several); ``backward(*douts)`` takes one gradient per output and returns
    the inputs' gradients the same way.
    """

    def __init__(
        self,
        inputs: Sequence[str],
        nodes: Sequence[NodeSpec],
        outputs: Sequence[str],
        *,
        parameters: Mapping[str, Parameter] | None = None,
        constants: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)
        self.constants = {k: np.asarray(v) for k, v in (constants or {}).items()}
        self._param_names = tuple(parameters or {})
        reserved = set(_OWN_ATTRIBUTES) | set(dir(type(self)))
        defined = set(self.inputs) | set(self.constants)
        if len(defined) != len(self.inputs) + len(self.constants):
            raise ValueError("Graph inputs and constants must have distinct names")
        for name, param in (parameters or {}).items():
            _check_name(name, reserved | defined, "parameter")
            if not isinstance(param, Parameter):
                raise TypeError(f"parameter {name!r} must be a Parameter, got {type(param)}")
            setattr(self, name, param)
            defined.add(name)
            reserved.add(name)
        self.nodes = tuple(self._add_nodes(nodes, reserved, defined))
        missing = [o for o in self.outputs if o not in defined]
        if missing or not self.outputs:
            raise ValueError(f"Graph outputs {missing or '(none)'} are not defined by any node")
        keys = [key for key, _, _ in state.state_slots(self)]
        if len(keys) != len(set(keys)):
            clashes = sorted({k for k in keys if keys.count(k) > 1})
            raise ValueError(f"Graph state_dict keys clash: {', '.join(clashes)}")

    def _add_nodes(self, nodes: Sequence[NodeSpec], reserved: set, defined: set):
        seen_modules: set[int] = set()
        for name, module, inputs, output in nodes:
            _check_name(name, reserved, "node")
            if not isinstance(module, Module):
                raise TypeError(f"node {name!r} must be a Module, got {type(module).__name__}")
            if id(module) in seen_modules:
                raise ValueError(f"node {name!r} reuses a module: one module per node")
            unknown = [t for t in inputs if t not in defined]
            if unknown:
                raise ValueError(
                    f"node {name!r} reads {unknown}, defined by no input, parameter, constant "
                    "or earlier node (nodes must be in topological order)"
                )
            if output in defined:
                raise ValueError(f"node {name!r} redefines tensor {output!r}")
            seen_modules.add(id(module))
            reserved.add(name)
            defined.add(output)
            setattr(self, name, module)
            yield GraphNode(name, tuple(inputs), output)

    @classmethod
    def is_reserved(cls, name: str) -> bool:
        """Whether ``name`` is taken by the Graph itself (an attribute or a method)."""
        return name in _OWN_ATTRIBUTES or hasattr(cls, name)

    # -- computation -------------------------------------------------------------------------
    def forward(self, *xs: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        if len(xs) != len(self.inputs):
            raise ValueError(f"Graph takes {len(self.inputs)} inputs {self.inputs}, got {len(xs)}")
        env = {**self.constants, **{k: getattr(self, k).data for k in self._param_names}}
        env.update(zip(self.inputs, xs, strict=True))
        for node in self.nodes:
            env[node.output] = getattr(self, node.name)(*(env[t] for t in node.inputs))
        self.save_for_backward(tuple((np.shape(x), np.asarray(x).dtype) for x in xs))
        outs = tuple(env[o] for o in self.outputs)
        return outs[0] if len(outs) == 1 else outs

    def backward(self, *douts: np.ndarray) -> np.ndarray | tuple[np.ndarray | None, ...] | None:
        """The inputs' gradients; adds each parameter's gradient to its ``grad``."""
        in_specs = self.take_saved("backward", descendants=True)
        if len(douts) != len(self.outputs):
            raise ValueError(f"Graph has {len(self.outputs)} outputs, got {len(douts)} gradients")
        grads: dict[str, np.ndarray] = {}
        for name, dout in zip(self.outputs, douts, strict=True):
            _accumulate(grads, name, dout)
        with DescendantsChecked():
            for node in reversed(self.nodes):
                dout = grads.pop(node.output, None)
                if dout is None:  # the output reaches no graph output
                    continue
                result = getattr(self, node.name).backward(dout)
                results = (result,) if len(node.inputs) == 1 else result
                if len(results) != len(node.inputs):
                    raise RuntimeError(
                        f"node {node.name!r} ({type(getattr(self, node.name)).__name__}) has "
                        f"{len(node.inputs)} inputs but its backward returned {len(results)}"
                    )
                for name, d in zip(node.inputs, results, strict=True):
                    if d is not None and name not in self.constants:
                        _accumulate(grads, name, d)
        for name in self._param_names:
            param = getattr(self, name)
            if name in grads and param.requires_grad:
                param.grad += grads[name]
        if not self.input_grad:
            return None
        dxs = tuple(
            grads[name] if name in grads else np.zeros(shape, dtype)
            for name, (shape, dtype) in zip(self.inputs, in_specs, strict=True)
        )
        return dxs[0] if len(dxs) == 1 else dxs

    # -- structure and state -----------------------------------------------------------------
    def set_input_grad(self, enabled: bool) -> Module:
        """With ``enabled=False`` backward returns None, and the nodes that read a graph input
        skip their input gradient (see ``Module.set_input_grad``)."""
        self.input_grad = enabled
        for node in self.nodes:
            if any(t in self.inputs for t in node.inputs):
                getattr(self, node.name).set_input_grad(enabled)
        return self

    def to(self, dtype: type | np.dtype) -> Module:
        """As ``Module.to``, and the floating constants too."""
        super().to(dtype)
        self.constants = {
            k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in self.constants.items()
        }
        return self

    def __repr__(self) -> str:
        lines = [f"Graph(inputs={list(self.inputs)}, outputs={list(self.outputs)}"]
        for name in self._param_names:
            lines.append(f"  ({name}): {getattr(self, name)!r}")
        for node in self.nodes:
            body = repr(getattr(self, node.name)).replace("\n", "\n  ")
            lines.append(f"  ({node.name}): {body}  [{', '.join(node.inputs)} -> {node.output}]")
        lines.append(")")
        return "\n".join(lines)


def _check_name(name: str, reserved: set, kind: str) -> None:
    if not isinstance(name, str) or not name or name in reserved:
        raise ValueError(f"{kind} name {name!r} is empty, repeated or an attribute of Graph")


def _accumulate(grads: dict[str, np.ndarray], name: str, d: np.ndarray) -> None:
    # A new array, never in place: ``d`` may be an array a node returned as it got it.
    grads[name] = grads[name] + d if name in grads else d

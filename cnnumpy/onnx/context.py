"""What the import converters read an ONNX graph through: attributes, weights, static values
and tensor ranks, and the errors they raise."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..nn.module import Module


class UnsupportedOperatorError(ValueError):
    """An ONNX graph (or one node's settings) that cannot become a cnnumpy model."""


class Converted(NamedTuple):
    module: Module
    inputs: list[str]  # the tensors the module reads at run time, in its forward's order
    name_hint: str | None = None  # a name for the node, from its weights' names


class ImportContext:
    """One ONNX graph being converted.

    ``initializers`` and ``constants`` (``Constant`` nodes) hold the static tensors. A layer
    converter takes its weights with ``weight()``, which marks the initializer as *absorbed*:
    it becomes that layer's parameter, not a parameter of the graph. ``ranks`` and ``dtypes``
    (element types) come from ONNX shape inference.
    """

    def __init__(
        self, onnx: Any, graph: Any, opset: int, ranks: dict[str, int], dtypes: dict[str, Any]
    ) -> None:
        self.onnx, self.opset, self.ranks, self.dtypes = onnx, opset, ranks, dtypes
        to_array = onnx.numpy_helper.to_array
        self.initializers = {t.name: to_array(t) for t in graph.initializer}
        self.constants: dict[str, np.ndarray] = {}
        self.absorbed: dict[str, str] = {}  # initializer -> the node whose layer took it

    def attrs(self, node: Any) -> dict[str, Any]:
        """The node's attributes as Python values: strings decoded, and floats as the shortest
        decimal that ONNX's float32 stands for (``epsilon=1e-5``, not 9.99999974738e-06)."""
        values = {}
        for a in node.attribute:
            v = self.onnx.helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, float):
                v = float(str(np.float32(v)))
            elif isinstance(v, list) and v and isinstance(v[0], float):
                v = [float(str(np.float32(f))) for f in v]
            values[a.name] = v
        return values

    def input(self, node: Any, i: int) -> str | None:
        """The name of input ``i``, None when it is absent (optional inputs may be ``""``)."""
        return node.input[i] if i < len(node.input) and node.input[i] else None

    def is_static(self, name: str | None) -> bool:
        return name is not None and (name in self.initializers or name in self.constants)

    def static(self, node: Any, name: str | None, what: str) -> np.ndarray:
        """The value of an initializer or constant that ``node`` needs at load time."""
        if name in self.constants:
            return self.constants[name]
        if name in self.initializers:
            return self.initializers[name]
        raise self.error(node, f"its {what} must be a constant or initializer, not computed")

    def weight(self, node: Any, name: str | None, what: str) -> np.ndarray | None:
        """A layer's weight (None when the input is absent), absorbed into the layer."""
        if name is None:
            return None
        if name in self.initializers:
            if name in self.absorbed:
                other = self.absorbed[name]
                raise self.error(
                    node,
                    f"its {what} {name!r} is also the weight of node {other!r}; shared "
                    "weights are unsupported",
                )
            self.absorbed[name] = node.name or node.output[0]
        return self.static(node, name, what)

    def rank(self, node: Any, name: str) -> int:
        if name not in self.ranks:
            raise self.error(node, f"the rank of {name!r} is unknown (shape inference failed)")
        return self.ranks[name]

    def error(self, node: Any, message: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(f"{node.op_type} node {node.name or node.output[0]!r}: "
                                        f"{message}")  # fmt: skip


def weight_prefix(name: str | None) -> str | None:
    """``"features.0"`` for the initializer ``"features.0.weight"``: the layer's name."""
    if name is None or "." not in name:
        return None
    return name.rsplit(".", 1)[0]


def pair_from(values: list[int] | None, default: int, node: Any, ctx: ImportContext, what: str):
    """A 2-D operator's ``(h, w)`` setting from an ONNX list (``default`` when absent)."""
    if values is None:
        return (default, default)
    if len(values) != 2:
        raise ctx.error(node, f"only 2-D {what} are supported, got {list(values)}")
    return tuple(int(v) for v in values)


def symmetric_pads(pads: list[int] | None, node: Any, ctx: ImportContext) -> tuple[int, ...]:
    """ONNX pads ``(begin..., end...)`` as one size per axis; asymmetric pads are an error."""
    if not pads:
        return ()
    half = len(pads) // 2
    begin, end = tuple(pads[:half]), tuple(pads[half:])
    if begin != end:
        raise ctx.error(node, f"asymmetric pads {list(pads)} are not supported")
    return begin

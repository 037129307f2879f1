"""``OnnxBuilder``: the nodes and initializers of one ONNX graph, as the converters of
:mod:`.ops_export`, :mod:`.ops_export_composite` and :mod:`.ops_export_graph` add them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..nn.module import Module
from ._proto import require_onnx

Converter = Callable[["OnnxBuilder", Any, str, str], str]


class ExportError(ValueError):
    """A model that cannot be written as ONNX; the message names the layer and its class."""


class OnnxBuilder:
    """Collects the nodes and initializers of one graph; converters call its methods.

    ``emit(module, name, x)`` converts ``module`` (dotted name ``name``) applied to the tensor
    named ``x`` and returns the name of its output tensor.
    """

    def __init__(
        self, dtype: np.dtype, shapes: dict[int, tuple[int, ...]], table: dict, opset: int
    ) -> None:
        self.onnx = require_onnx()
        self.dtype, self.shapes, self.table, self.opset = np.dtype(dtype), shapes, table, opset
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()

    def fresh(self, base: str) -> str:
        """A tensor or node name not used yet, ``base`` itself when free."""
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def node(self, op: str, inputs: list[str], base: str, **attrs: Any) -> str:
        """Add one ``op`` node; returns its output's name (``base/op``, made unique)."""
        out = self.fresh(f"{base}/{op}" if base else op)
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def parameter(self, key: str, array: np.ndarray) -> str:
        """An initializer named ``key`` (a ``state_dict`` key) holding ``array``."""
        if key in self._names:
            raise ExportError(f"two tensors would be named {key!r}")
        self._names.add(key)
        value = np.asarray(array, dtype=self.dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(value, key))
        return key

    def constant(self, value: Any, base: str, dtype: type | np.dtype | None = None) -> str:
        """A ``Constant`` node holding ``value`` (in the model's float type unless ``dtype``)."""
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        out = self.fresh(f"{base}/const" if base else "const")
        tensor = self.onnx.numpy_helper.from_array(array, out)
        self.nodes.append(self.onnx.helper.make_node("Constant", [], [out], name=out, value=tensor))
        return out

    def ints(self, values: list[int], base: str) -> str:
        """An int64 ``Constant`` (pads, axes, slice bounds)."""
        return self.constant(np.array(values, dtype=np.int64), base, np.int64)

    def input_shape(self, module: Module) -> tuple[int, ...]:
        """The shape of ``module``'s input in the example run."""
        return self.shapes[id(module)]

    def emit(self, module: Module, name: str, x: str) -> str:
        return converter_for(module, name, self.table)(self, module, name, x)


def converter_for(module: Module, name: str, table: dict[type, Converter]) -> Converter:
    """The converter of ``module``'s class, or of a base class whose ``forward`` it keeps
    (``LeNet5`` is exported as the ``Sequential`` it is); else an ExportError naming it."""
    cls = type(module)
    for base in cls.__mro__:
        if base in table and (base is cls or cls.forward is base.forward):
            return table[base]
    raise ExportError(
        f"cannot export {name or '<model>'!r} ({cls.__name__}): no ONNX mapping for "
        f"{cls.__module__}.{cls.__qualname__}; exportable layers: "
        + ", ".join(sorted({t.__name__ for t in table}))
    )

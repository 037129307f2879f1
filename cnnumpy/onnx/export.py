"""``export(model, example_input, path)``: a cnnumpy model as an ONNX file, built with the
``onnx`` package's helpers and checked by ``onnx.checker``.

The model is walked from the top: a container emits its children's nodes and joins them
(``Sequential`` chains them, ``Concat`` concatenates its branches, ``Residual`` adds its two
paths), and every layer becomes one or a few standard ONNX operators (the tables are in
:mod:`.ops_export` and :mod:`.ops_export_composite`). The model is exported in eval mode, as
inference runs it: dropout is the identity and batch norm uses its running statistics.

Every parameter and buffer is an initializer named by its ``state_dict`` key (``c1.weight``,
``bn1.running_mean``), reshaped where an operator needs another layout (a per-channel
coefficient as ``(C, 1, 1)``); fixed numbers the layers imply (the scaled tanh's 1.7159, a
pad width) are ``Constant`` nodes, so :func:`cnnumpy.onnx.load` knows them from weights.
The batch axis is dynamic (``N``); the other axes are those of ``example_input``, which
is run through the model once to learn every layer's input shape.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..nn.module import Module
from ._proto import FLOAT_TYPES, OPSET, require_onnx, tensor_type

Converter = Callable[["OnnxBuilder", Any, str, str], str]


class ExportError(ValueError):
    """A model that cannot be written as ONNX; the message names the layer and its class."""


class OnnxBuilder:
    """Collects the nodes and initializers of one graph; converters call its methods.

    ``emit(module, name, x)`` converts ``module`` (dotted name ``name``) applied to the tensor
    named ``x`` and returns the name of its output tensor.
    """

    def __init__(self, dtype: np.dtype, shapes: dict[int, tuple[int, ...]], table: dict) -> None:
        self.onnx = require_onnx()
        self.dtype, self.shapes, self.table = np.dtype(dtype), shapes, table
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


def _record_input_shapes(model: Module, x: np.ndarray) -> tuple[dict[int, tuple], np.ndarray]:
    """Run ``x`` through ``model`` in eval mode; each module's input shape, and the output."""
    shapes: dict[int, tuple[int, ...]] = {}
    handles = []
    modes = [(m, m.training) for m in model.modules()]

    def hook(m: Module, inputs: tuple, output: Any) -> None:
        shapes[id(m)] = np.shape(inputs[0]) if inputs else ()

    try:
        handles = [m.register_forward_hook(hook) for m in model.modules()]
        model.eval()
        out = model(x)
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes:
            m.training = training
    return shapes, out


def export(
    model: Module,
    example_input: np.ndarray,
    path: str | os.PathLike | None = None,
    *,
    opset: int = OPSET,
    input_name: str = "input",
    output_name: str = "output",
    metadata: Mapping[str, str] | None = None,
) -> Any:
    """Write ``model`` as ONNX to ``path`` (when given) and return the ``onnx.ModelProto``.

    ``example_input: (N, C, H, W)`` (any N) fixes every axis but the batch and the element
    type, which must be the parameters' (float32 or float64). ``opset`` >= 17; ``metadata``
    goes to the file's ``metadata_props`` (the normalisation the model expects, say). Raises
    ExportError (a ValueError) naming the first layer that has no ONNX mapping, and
    ``onnx.checker.ValidationError`` if the result is not valid ONNX (a bug).
    """
    from .ops_export import EXPORTERS
    from .ops_export_composite import COMPOSITE_EXPORTERS

    onnx = require_onnx()
    x = np.asarray(example_input)
    if x.dtype.type not in FLOAT_TYPES:
        raise ExportError(f"example_input must be float32 or float64, got {x.dtype}")
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes and dtypes != {x.dtype}:
        raise ExportError(f"example_input is {x.dtype} but the parameters are {sorted(dtypes)}")
    if opset < OPSET:
        raise ExportError(f"opset must be {OPSET} or newer, got {opset}")
    table = {**EXPORTERS, **COMPOSITE_EXPORTERS}
    converter_for(model, "", table)  # an unexportable model fails before it is run
    shapes, out = _record_input_shapes(model, x)
    builder = OnnxBuilder(x.dtype, shapes, table)
    builder._names.add(input_name)
    last = builder.emit(model, "", input_name)
    if last == input_name:  # a model that passes its input through
        last = builder.node("Identity", [input_name], "")
    for node in builder.nodes:  # the last tensor takes the output's name
        node.output[:] = [output_name if o == last else o for o in node.output]
    helper = onnx.helper
    graph = helper.make_graph(
        builder.nodes, type(model).__name__,
        [helper.make_tensor_value_info(input_name, tensor_type(x.dtype), ["N", *x.shape[1:]])],
        [helper.make_tensor_value_info(output_name, tensor_type(x.dtype),
                                       ["N", *np.shape(out)[1:]])],
        initializer=builder.initializers,
    )  # fmt: skip
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="cnnumpy"
    )
    helper.set_model_props(proto, {str(k): str(v) for k, v in (metadata or {}).items()})
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto

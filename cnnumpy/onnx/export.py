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
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..nn.graph import Graph
from ..nn.module import Module
from ._proto import FLOAT_TYPES, OPSET, require_onnx, tensor_type
from .builder import Converter, ExportError, OnnxBuilder, converter_for
from .ops_export import EXPORTERS
from .ops_export_composite import COMPOSITE_EXPORTERS
from .ops_export_graph import graph


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
    onnx = require_onnx()
    x = np.asarray(example_input)
    _check_arguments(model, x, opset)
    table = _exporters()
    converter_for(model, "", table)  # an unexportable model fails before it is run
    shapes, out = _record_input_shapes(model, x)
    builder = OnnxBuilder(x.dtype, shapes, table, opset)
    builder.fresh(input_name)  # reserved: no node may name its output so
    last = builder.emit(model, "", input_name)
    if last == input_name:  # a model that passes its input through
        last = builder.node("Identity", [input_name], "")
    for node in builder.nodes:  # the last tensor takes the output's name
        node.output[:] = [output_name if o == last else o for o in node.output]
    helper = onnx.helper
    dtype = tensor_type(x.dtype)
    graph = helper.make_graph(
        builder.nodes, type(model).__name__,
        [helper.make_tensor_value_info(input_name, dtype, ["N", *x.shape[1:]])],
        [helper.make_tensor_value_info(output_name, dtype, ["N", *np.shape(out)[1:]])],
        initializer=builder.initializers,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="cnnumpy")
    # The oldest IR version the opset allows, so that older runtimes read the file too.
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    helper.set_model_props(proto, {str(k): str(v) for k, v in (metadata or {}).items()})
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto


def _check_arguments(model: Module, x: np.ndarray, opset: int) -> None:
    if x.dtype.type not in FLOAT_TYPES:
        raise ExportError(f"example_input must be float32 or float64, got {x.dtype}")
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes and dtypes != {x.dtype}:
        raise ExportError(f"example_input is {x.dtype} but the parameters are {sorted(dtypes)}")
    if opset < OPSET:
        raise ExportError(f"opset must be {OPSET} or newer, got {opset}")


def _exporters() -> dict[type, Converter]:
    """Every converter by class."""
    return {**EXPORTERS, **COMPOSITE_EXPORTERS, Graph: graph}

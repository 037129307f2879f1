"""``load(path)``: an ONNX model as a trainable cnnumpy :class:`~cnnumpy.nn.Graph`.

Every node becomes one module (a library layer where one exists, see :mod:`.ops_import`;
the tensor operators of :mod:`.ops_import_tensor` otherwise), and the graph runs them in the
file's order, which ONNX requires to be topological. ``Constant`` nodes become the graph's
constants. An initializer that a layer reads as its weight becomes that layer's parameter,
and the layer is named after it (``features.0.weight`` makes a ``Conv2d`` named
``features.0``, so ``state_dict`` keys are the file's names); any other floating initializer
becomes a parameter of the graph under its own name. A tensor operator that reads only
constants (shape arithmetic, the zero bias PyTorch computes for a convolution without one) is
evaluated once, here, and becomes a constant.

Anything outside the tables is refused up front with one UnsupportedOperatorError that lists
every unsupported operator and the nodes where it occurs.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from ..nn.graph import Graph
from ..nn.parameter import Parameter
from ._proto import require_onnx
from .context import Converted, ImportContext, UnsupportedOperatorError
from .ops_import import LAYER_IMPORTERS
from .ops_import_tensor import TENSOR_IMPORTERS

IMPORTERS = {**LAYER_IMPORTERS, **TENSOR_IMPORTERS}


def load(source: str | os.PathLike | Any, *, dtype: type | np.dtype | None = None) -> Graph:
    """Build a :class:`~cnnumpy.nn.Graph` from an ONNX file (or an ``onnx.ModelProto``).

    The graph comes back in eval mode (``.train()`` for batch statistics and dropout), with
    the file's element type unless ``dtype`` casts it (``np.float64`` for gradient checks).
    Its ``forward`` takes one array per graph input, in the file's order.
    """
    onnx = require_onnx()
    proto = source if isinstance(source, onnx.ModelProto) else onnx.load(os.fspath(source))
    graph = proto.graph
    _check_supported(graph)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
    inferred = onnx.shape_inference.infer_shapes(proto)
    ctx = ImportContext(onnx, graph, opset, *_tensor_info(onnx, inferred.graph))
    converted = _convert_nodes(ctx, graph)
    parameters, constants = _graph_state(ctx, converted, [o.name for o in graph.output])
    names = _node_names(converted, parameters)
    inputs = [i.name for i in graph.input if i.name not in ctx.initializers]
    model = Graph(
        inputs,
        [(name, c.module, c.inputs, node.output[0])
         for name, (node, c) in zip(names, converted, strict=True)],
        [o.name for o in graph.output],
        parameters=parameters, constants=constants,
    )  # fmt: skip
    if dtype is not None:
        model.to(dtype)
    return model.eval()


def _convert_nodes(ctx: ImportContext, graph: Any) -> list[tuple[Any, Converted]]:
    """``(node, Converted)`` for every node that stays a node, in the file's order."""
    consumed = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    converted = []
    for node in graph.node:
        if node.op_type == "Constant":
            ctx.constants[node.output[0]] = _constant_value(ctx, node)
            continue
        if node.op_type == "Identity" and node.input[0] in ctx.initializers:
            # PyTorch's TorchScript exporter stores equal tensors once and copies them with
            # Identity nodes; each copy is a weight of its own (BN's bias and running mean).
            value = ctx.initializers[node.input[0]]
            ctx.initializers[node.output[0]] = value.copy()
            ctx.ranks[node.output[0]] = value.ndim
            continue
        extra = [o for o in node.output[1:] if o and o in consumed]
        if extra:
            raise ctx.error(node, f"only its first output is supported, {extra} are read")
        result = IMPORTERS[node.op_type](ctx, node)
        if node.op_type in TENSOR_IMPORTERS and _fold(ctx, node, result):
            continue
        converted.append((node, result))
    return converted


def _check_supported(graph: Any) -> None:
    """One error listing every unsupported operator and the nodes where it occurs."""
    missing: dict[str, list[str]] = {}
    for i, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx") or (
            node.op_type not in IMPORTERS and node.op_type != "Constant"
        ):
            op = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
            missing.setdefault(op, []).append(node.name or f"#{i} -> {node.output[0]}")
    if missing:
        listed = "; ".join(f"{op} (nodes {', '.join(map(repr, nodes))})"
                           for op, nodes in sorted(missing.items()))  # fmt: skip
        raise UnsupportedOperatorError(
            f"unsupported ONNX operators: {listed}. Supported: "
            + ", ".join(sorted([*IMPORTERS, "Constant"]))
        )


def _fold(ctx: ImportContext, node: Any, c: Converted) -> bool:
    """Evaluate now, as a constant, a node that reads only static tensors: shape arithmetic,
    or the zero bias PyTorch's exporter computes for a convolution without one. A floating
    result computed from an initializer stays a node, so the initializer stays trainable."""
    if not all(ctx.is_static(name) for name in c.inputs):
        return False
    out = np.asarray(c.module(*(ctx.static(node, name, "input") for name in c.inputs)))
    reads_weight = any(ctx.initializers.get(name, np.empty(0, int)).dtype.kind == "f"
                       for name in c.inputs)  # fmt: skip
    if out.dtype.kind == "f" and reads_weight:
        return False
    ctx.constants[node.output[0]] = out
    return True


def _tensor_info(onnx: Any, graph: Any) -> tuple[dict[str, int], dict[str, np.dtype]]:
    """Every tensor's rank and element type that the file states or shape inference found."""
    ranks = {t.name: len(t.dims) for t in graph.initializer}
    dtypes = {t.name: onnx.helper.tensor_dtype_to_np_dtype(t.data_type) for t in graph.initializer}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor = info.type.tensor_type
        if tensor.HasField("shape"):
            ranks[info.name] = len(tensor.shape.dim)
        if tensor.elem_type:
            dtypes[info.name] = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
    return ranks, dtypes


def _constant_value(ctx: ImportContext, node: Any) -> np.ndarray:
    for key, value in ctx.attrs(node).items():
        if key == "value":
            return ctx.onnx.numpy_helper.to_array(value)
        if key in ("value_float", "value_floats"):
            return np.array(value, dtype=np.float32)
        if key in ("value_int", "value_ints"):
            return np.array(value, dtype=np.int64)
    raise ctx.error(node, "only numeric tensor constants are supported")


def _graph_state(ctx: ImportContext, converted: list, outputs: list[str]) -> tuple[dict, dict]:
    """The graph's parameters (floating initializers read at run time) and constants."""
    read = {name for _, c in converted for name in c.inputs} | set(outputs)
    parameters, constants = {}, {}
    for name, value in ctx.initializers.items():
        if name not in read:
            continue
        if name in ctx.absorbed:
            raise UnsupportedOperatorError(
                f"initializer {name!r} is the weight of node {ctx.absorbed[name]!r} and is "
                "read by other nodes too; shared weights are unsupported"
            )
        if value.dtype.kind == "f":
            parameters[name] = Parameter(np.array(value))
        else:
            constants[name] = value
    constants.update({k: v for k, v in ctx.constants.items() if k in read})
    return parameters, constants


def _node_names(converted: list, parameters: dict) -> list[str]:
    """A name per node: its weights' prefix, else its ONNX name, else ``op_type`` and index;
    never one that the graph or a parameter's ``state_dict`` key already uses."""
    used: set[str] = set()
    names = []
    for i, (node, c) in enumerate(converted):
        candidates = [c.name_hint, _sanitize(node.name), f"{node.op_type.lower()}_{i}"]
        for candidate in candidates:
            if candidate and _free(candidate, used, parameters):
                break
        else:
            candidate = f"{node.op_type.lower()}_{i}"
            while not _free(candidate, used, parameters):
                candidate += "_"
        used.add(candidate)
        names.append(candidate)
    return names


def _free(name: str, used: set[str], parameters: dict) -> bool:
    if name in used or name in parameters or Graph.is_reserved(name):
        return False
    return not any(p.startswith(name + ".") for p in parameters)


def _sanitize(name: str) -> str:
    """An ONNX node name (``/features/features.0/Conv``) as a module name."""
    return re.sub(r"[^0-9A-Za-z_.]", "_", name.strip("/"))

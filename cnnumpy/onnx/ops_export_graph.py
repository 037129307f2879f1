"""Exporting an ``nn.Graph`` (an imported model, fine-tuned, say): its nodes written back as
the operators they came from, keyed by class in ``GRAPH_EXPORTERS``.

A node that is a library layer goes through the layer tables (:mod:`.ops_export`); the
tensor operators of an imported graph, which may read several tensors, have converters
``f(builder, module, name, inputs) -> output`` here. The graph's parameters become
initializers under their own names and its constants ``Constant`` nodes, so a round trip
through ``load`` and ``export`` keeps every name.
"""

from __future__ import annotations

from collections.abc import Callable

from ..nn.graph import Graph
from . import arith
from . import tensor_ops as T
from .builder import ExportError, OnnxBuilder
from .extra_layers import AvgPoolNd

OpConverter = Callable[[OnnxBuilder, object, str, list[str]], str]


def graph(b: OnnxBuilder, m: Graph, name: str, x: str) -> str:
    if len(m.inputs) != 1 or len(m.outputs) != 1:
        raise ExportError(
            f"cannot export {name or '<model>'!r} (Graph): export writes one input and one "
            f"output, it has {len(m.inputs)} and {len(m.outputs)}"
        )
    prefix = f"{name}." if name else ""
    env = {m.inputs[0]: x}
    for key in m._param_names:
        env[key] = b.parameter(prefix + key, getattr(m, key).data)
    for key, value in m.constants.items():
        env[key] = b.constant(value, prefix + key, value.dtype if value.dtype.kind != "f" else None)
    for node in m.nodes:
        module, inputs = getattr(m, node.name), [env[t] for t in node.inputs]
        convert = GRAPH_EXPORTERS.get(type(module))
        if convert is not None:
            env[node.output] = convert(b, module, prefix + node.name, inputs)
        elif len(inputs) == 1:
            env[node.output] = b.emit(module, prefix + node.name, inputs[0])
        else:
            raise ExportError(
                f"cannot export {prefix + node.name!r} ({type(module).__name__}) with "
                f"{len(inputs)} inputs"
            )
    return env[m.outputs[0]]


def _op(op: str, **attrs_of: Callable[[object], object]) -> OpConverter:
    """A converter to the single ONNX op ``op``, its attributes computed from the module."""

    def convert(b: OnnxBuilder, m: object, name: str, inputs: list[str]) -> str:
        return b.node(op, inputs, name, **{k: f(m) for k, f in attrs_of.items()})

    return convert


def _with_axes(op: str, **attrs_of: Callable[[object], object]) -> OpConverter:
    """``op`` with the module's ``axes`` as an int64 input (opset 13+ for these ops)."""

    def convert(b: OnnxBuilder, m: object, name: str, inputs: list[str]) -> str:
        attrs = {k: f(m) for k, f in attrs_of.items()}
        if m.axes is None:
            return b.node(op, inputs, name, **attrs)
        return b.node(op, [*inputs, b.ints(list(m.axes), name)], name, **attrs)

    return convert


def _reduce_mean(b: OnnxBuilder, m: arith.ReduceMean, name: str, inputs: list[str]) -> str:
    # Opset 18 moved ReduceMean's axes from an attribute to an input.
    keep = int(m.keepdims)
    if m.axes is None:
        return b.node("ReduceMean", inputs, name, keepdims=keep)
    if b.opset >= 18:
        return b.node("ReduceMean", [*inputs, b.ints(list(m.axes), name)], name, keepdims=keep)
    return b.node("ReduceMean", inputs, name, axes=list(m.axes), keepdims=keep)


def _pad(b: OnnxBuilder, m: T.Pad, name: str, inputs: list[str]) -> str:
    pads, value = b.ints(list(m.pads), name), b.constant(m.value, name)
    return b.node("Pad", [*inputs, pads, value], name, mode="constant")


def _slice(b: OnnxBuilder, m: T.Slice, name: str, inputs: list[str]) -> str:
    bounds = [b.ints(list(v), name) for v in (m.starts, m.ends, m.axes, m.steps)]
    return b.node("Slice", [*inputs, *bounds], name)


def _cast(b: OnnxBuilder, m: T.Cast, name: str, inputs: list[str]) -> str:
    return b.node("Cast", inputs, name, to=b.onnx.helper.np_dtype_to_tensor_dtype(m.dtype))


def _avg_pool_nd(b: OnnxBuilder, m: AvgPoolNd, name: str, inputs: list[str]) -> str:
    return b.node("AveragePool", inputs, name, kernel_shape=list(m.kernel),
                  strides=list(m.strides), pads=list(m.pads) * 2, count_include_pad=1)  # fmt: skip


def _shape(b: OnnxBuilder, m: T.Shape, name: str, inputs: list[str]) -> str:
    ends = {} if m.end is None else {"end": m.end}
    return b.node("Shape", inputs, name, start=m.start, **ends)


GRAPH_EXPORTERS: dict[type, OpConverter] = {
    arith.Add: _op("Add"),
    arith.Sub: _op("Sub"),
    arith.Mul: _op("Mul"),
    arith.Div: _op("Div"),
    arith.Pow: _op("Pow"),
    arith.MatMul: _op("MatMul"),
    arith.Expand: _op("Expand"),
    arith.ReduceSum: _with_axes("ReduceSum", keepdims=lambda m: int(m.keepdims)),
    arith.ReduceMean: _reduce_mean,
    T.Identity: _op("Identity"),
    T.Reshape: _op("Reshape", allowzero=lambda m: int(m.allowzero)),
    T.Flatten: _op("Flatten", axis=lambda m: m.axis),
    T.Squeeze: _with_axes("Squeeze"),
    T.Unsqueeze: _with_axes("Unsqueeze"),
    T.Transpose: lambda b, m, name, inputs: b.node(
        "Transpose", inputs, name, **({} if m.perm is None else {"perm": list(m.perm)})
    ),
    T.Cat: _op("Concat", axis=lambda m: m.axis),
    T.Pad: _pad,
    T.Slice: _slice,
    T.Cast: _cast,
    T.Shape: _shape,
    AvgPoolNd: _avg_pool_nd,
}

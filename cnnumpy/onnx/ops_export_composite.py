"""Layers written as several standard ONNX operators, and the containers, keyed by class in
``COMPOSITE_EXPORTERS``. Each converter is ``f(builder, module, name, x) -> output``.

==================  ========================================================================
layer               ONNX
==================  ========================================================================
ScaledTanh          ``Mul(Tanh(Mul(x, 2/3)), 1.7159)``: LeCun's ``A tanh(S x)``
Subsampling         ``AveragePool(k, stride) * k^2`` (the window sum) ``* weight + bias``, the
                    coefficients as ``(C, 1, 1)`` initializers ``NAME.weight``/``NAME.bias``
TableConv2d         ``Conv`` whose ``(F, C, KH, KW)`` weight holds each table entry's kernel at
                    ``[f, c]`` and zeros where map ``f`` does not read map ``c``
RBFOutput           ``ReduceSum((Unsqueeze(x, 1) - W)^2, axis 2)``: ``y_i = sum_j (x_j - w_ij)^2``
                    with the differences formed explicitly, as the layer does
Dropout             nothing (the identity in eval), or ``Mul(x, 1 - p)`` when not inverted
ConstantPad2d       ``Pad(x, (0, 0, top, left, 0, 0, bottom, right), value)``
PadShortcut         ``Slice`` every ``stride``-th pixel, then ``Pad`` zero channels after
Sequential          its children's nodes, chained
Concat              each branch's nodes on the same input, then ``Concat(axis=1)``
Residual            ``Add(body(x), shortcut(x))`` (``x`` itself for the identity shortcut)
==================  ========================================================================
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..functional.activation import SCALED_TANH_A, SCALED_TANH_S
from ..models.blocks import PadShortcut
from .builder import OnnxBuilder
from .ops_export import key

INT64_MAX = np.iinfo(np.int64).max


def scaled_tanh(b: OnnxBuilder, m: nn.ScaledTanh, name: str, x: str) -> str:
    inner = b.node("Tanh", [b.node("Mul", [x, b.constant(SCALED_TANH_S, name)], name)], name)
    return b.node("Mul", [inner, b.constant(SCALED_TANH_A, name)], name)


def dropout(b: OnnxBuilder, m: nn.Dropout, name: str, x: str) -> str:
    if m.inverted or m.p == 0:
        return x
    return b.node("Mul", [x, b.constant(1.0 - m.p, name)], name)


def subsampling(b: OnnxBuilder, m: nn.Subsampling, name: str, x: str) -> str:
    k, s = m.kernel_size, m.stride
    mean = b.node("AveragePool", [x], name, kernel_shape=[k, k], strides=[s, s])
    window_sum = b.node("Mul", [mean, b.constant(k * k, name)], name)
    per_channel = (-1, 1, 1)
    weight = b.parameter(key(name, "weight"), m.weight.data.reshape(per_channel))
    out = b.node("Mul", [window_sum, weight], name)
    if m.bias is None:
        return out
    return b.node("Add", [out, b.parameter(key(name, "bias"), m.bias.data.reshape(per_channel))],
                  name)  # fmt: skip


def table_conv2d(b: OnnxBuilder, m: nn.TableConv2d, name: str, x: str) -> str:
    k = m.kernel_size
    dense = np.zeros((m.out_channels, m.in_channels, k, k), dtype=m.weight.dtype)
    dense[m.out_index, m.in_index] = m.weight.data
    inputs = [x, b.parameter(key(name, "weight"), dense)]
    if m.bias is not None:
        inputs.append(b.parameter(key(name, "bias"), m.bias.data))
    return b.node("Conv", inputs, name, kernel_shape=[k, k])


def rbf_output(b: OnnxBuilder, m: nn.RBFOutput, name: str, x: str) -> str:
    rows = b.node("Unsqueeze", [x, b.ints([1], name)], name)  # (N, 1, D)
    diff = b.node("Sub", [rows, b.parameter(key(name, "weight"), m.weight.data)], name)
    square = b.node("Mul", [diff, diff], name)  # (N, K, D)
    return b.node("ReduceSum", [square, b.ints([2], name)], name, keepdims=0)


def constant_pad2d(b: OnnxBuilder, m: nn.ConstantPad2d, name: str, x: str) -> str:
    left, right, top, bottom = m.padding
    pads = b.ints([0, 0, top, left, 0, 0, bottom, right], name)
    return b.node("Pad", [x, pads, b.constant(m.value, name)], name, mode="constant")


def pad_shortcut(b: OnnxBuilder, m: PadShortcut, name: str, x: str) -> str:
    s, channels = m.stride, b.input_shape(m)[1]
    bounds = [[0, 0], [INT64_MAX, INT64_MAX], [2, 3], [s, s]]
    kept = b.node("Slice", [x, *(b.ints(v, name) for v in bounds)], name)
    pads = b.ints([0, 0, 0, 0, 0, m.out_channels - channels, 0, 0], name)
    return b.node("Pad", [kept, pads], name, mode="constant")


def _child(name: str, child: str) -> str:
    return f"{name}.{child}" if name else child


def sequential(b: OnnxBuilder, m: nn.Sequential, name: str, x: str) -> str:
    for child_name, child in m.named_children():
        x = b.emit(child, _child(name, child_name), x)
    return x


def concat(b: OnnxBuilder, m: nn.Concat, name: str, x: str) -> str:
    outs = [b.emit(branch, _child(name, n), x) for n, branch in m.named_children()]
    return b.node("Concat", outs, name, axis=1)


def residual(b: OnnxBuilder, m: nn.Residual, name: str, x: str) -> str:
    out = b.emit(m.body, _child(name, "body"), x)
    skip = b.emit(m.shortcut, _child(name, "shortcut"), x) if hasattr(m, "shortcut") else x
    return b.node("Add", [out, skip], name)


COMPOSITE_EXPORTERS = {
    nn.ScaledTanh: scaled_tanh,
    nn.Dropout: dropout,
    nn.Subsampling: subsampling,
    nn.TableConv2d: table_conv2d,
    nn.RBFOutput: rbf_output,
    nn.ConstantPad2d: constant_pad2d,
    PadShortcut: pad_shortcut,
    nn.Sequential: sequential,
    nn.Concat: concat,
    nn.Residual: residual,
}

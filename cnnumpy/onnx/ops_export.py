"""Layers that are one standard ONNX operator each (opset 17), keyed by class in ``EXPORTERS``.

Each converter ``f(builder, module, name, x) -> output`` adds the layer's nodes for the input
tensor ``x``; ``name`` is the layer's dotted name, and its parameters become initializers
named by their ``state_dict`` keys.

==================  ========================================================================
layer               ONNX
==================  ========================================================================
Conv2d              ``Conv``: pads ``(top, left, bottom, right)``, strides, dilations, group
ConvTranspose2d     ``ConvTranspose`` (same weight layout ``(C_in, C_out/groups, KH, KW)``)
Linear              ``Gemm(x, W, b, transB=1)`` = ``x W^T + b``, after ``Flatten`` if x is not 2-D
Flatten             ``Flatten(axis=1)``
MaxPool2d           ``MaxPool`` (pads, ceil_mode)
AvgPool2d           ``AveragePool`` (pads, ceil_mode, count_include_pad)
AdaptiveAvgPool2d   ``GlobalAveragePool``
BatchNorm1d/2d      ``BatchNormalization`` with the running statistics; ONNX's momentum is
                    ``1 - momentum`` (it weights the old running value)
LocalResponseNorm   ``LRN``: ``x / (k + alpha/size * sum x^2)^beta``, alpha divided by size in
                    both; an even size as PyTorch's arithmetic (``AveragePool`` of the
                    squares over channels, ``Pow``, ``Div``; see ``lrn``)
LayerNorm           ``LayerNormalization(axis=-len(normalized_shape))``, weight and bias as
                    its scale and bias (a scale of 1 without them)
GroupNorm           ``Reshape`` to ``(N, G, -1)``, ``LayerNormalization(axis=-1)`` with a
                    scale of 1, ``Reshape`` back, then ``Mul``/``Add`` of the per-channel
                    weight and bias as ``(C, 1, 1)`` (opset 18's ``GroupNormalization`` scales
                    per group, not per channel, until opset 21)
ReLU, NoisyReLU     ``Relu`` (NoisyReLU is ReLU in eval)
LeakyReLU, ELU      ``LeakyRelu(alpha=negative_slope)``, ``Elu(alpha)``
PReLU               ``PRelu`` with the slopes as ``(C, 1, 1)`` to broadcast over the pixels
Sigmoid, Tanh       ``Sigmoid``, ``Tanh``
Softmax, LogSoftmax ``Softmax(axis=dim)``, ``LogSoftmax(axis=dim)``
==================  ========================================================================
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..functional._im2col import resolve_padding
from .builder import ExportError, OnnxBuilder


def key(name: str, attr: str) -> str:
    """The ``state_dict`` key of attribute ``attr`` of the layer named ``name``."""
    return f"{name}.{attr}" if name else attr


def _weight_and_bias(b: OnnxBuilder, m: nn.Module, name: str, x: str) -> list[str]:
    inputs = [x, b.parameter(key(name, "weight"), m.weight.data)]
    if getattr(m, "bias", None) is not None:
        inputs.append(b.parameter(key(name, "bias"), m.bias.data))
    return inputs


def conv2d(b: OnnxBuilder, m: nn.Conv2d, name: str, x: str) -> str:
    stride, dilation = F.pair(m.stride, "stride"), F.pair(m.dilation, "dilation")
    top, bottom, left, right = resolve_padding(m.padding, m.kernel_size, stride, dilation)
    return b.node(
        "Conv", _weight_and_bias(b, m, name, x), name, kernel_shape=list(m.kernel_size),
        strides=list(stride), pads=[top, left, bottom, right], dilations=list(dilation),
        group=m.groups,
    )  # fmt: skip


def conv_transpose2d(b: OnnxBuilder, m: nn.ConvTranspose2d, name: str, x: str) -> str:
    ph, pw = F.pair(m.padding, "padding")
    return b.node(
        "ConvTranspose", _weight_and_bias(b, m, name, x), name,
        kernel_shape=list(m.kernel_size), strides=list(F.pair(m.stride, "stride")),
        pads=[ph, pw, ph, pw], dilations=list(F.pair(m.dilation, "dilation")),
        output_padding=list(F.pair(m.output_padding, "output_padding")), group=m.groups,
    )  # fmt: skip


def linear(b: OnnxBuilder, m: nn.Linear, name: str, x: str) -> str:
    if len(b.input_shape(m)) != 2:  # Linear reads (N, *) as (N, prod(*)); Gemm needs 2-D
        x = b.node("Flatten", [x], name, axis=1)
    return b.node("Gemm", _weight_and_bias(b, m, name, x), name, transB=1)


def flatten(b: OnnxBuilder, m: nn.Flatten, name: str, x: str) -> str:
    return b.node("Flatten", [x], name, axis=1)


def _pool_attrs(m: nn.MaxPool2d) -> dict:
    ph, pw = F.pair(m.padding, "padding")
    return {
        "kernel_shape": list(F.pair(m.kernel_size, "kernel_size")),
        "strides": list(F.pair(m.stride, "stride")),
        "pads": [ph, pw, ph, pw],
        "ceil_mode": int(m.ceil_mode),
    }


def max_pool2d(b: OnnxBuilder, m: nn.MaxPool2d, name: str, x: str) -> str:
    return b.node("MaxPool", [x], name, **_pool_attrs(m))


def avg_pool2d(b: OnnxBuilder, m: nn.AvgPool2d, name: str, x: str) -> str:
    attrs = _pool_attrs(m)
    return b.node("AveragePool", [x], name, count_include_pad=int(m.count_include_pad), **attrs)


def global_avg_pool(b: OnnxBuilder, m: nn.AdaptiveAvgPool2d, name: str, x: str) -> str:
    return b.node("GlobalAveragePool", [x], name)


def batch_norm(b: OnnxBuilder, m: nn.BatchNorm2d, name: str, x: str) -> str:
    if m.running_mean is None or m.running_var is None:
        raise ExportError(
            f"cannot export {name!r} ({type(m).__name__}) with track_running_stats=False: it "
            "normalises by each batch's statistics, which ONNX's BatchNormalization does not"
        )
    if m.affine:
        scale = b.parameter(key(name, "weight"), m.weight.data)
        shift = b.parameter(key(name, "bias"), m.bias.data)
    else:
        scale = b.constant(np.ones(m.num_features), name)
        shift = b.constant(np.zeros(m.num_features), name)
    stats = [b.parameter(key(name, s), getattr(m, s)) for s in ("running_mean", "running_var")]
    return b.node(
        "BatchNormalization", [x, scale, shift, *stats], name,
        epsilon=float(m.eps), momentum=1.0 - float(m.momentum),
    )  # fmt: skip


def lrn(b: OnnxBuilder, m: nn.LocalResponseNorm, name: str, x: str) -> str:
    """``LRN`` for an odd size. ONNX centres an even window one channel later than PyTorch
    (see :mod:`.extra_layers`) and ONNX Runtime refuses even sizes, so an even size is
    written as PyTorch defines it: the squares averaged over a window of ``size`` channels
    (``AveragePool`` over the channel axis of ``Unsqueeze(x^2, 1)``, padded by ``size//2``
    in front and ``(size-1)//2`` behind), then ``x / (k + alpha * mean)^beta``."""
    if m.size % 2:
        attrs = {"alpha": float(m.alpha), "beta": float(m.beta), "bias": float(m.k)}
        return b.node("LRN", [x], name, size=m.size, **attrs)
    rank = len(b.input_shape(m)) + 1  # of the unsqueezed squares: (N, 1, C, ...)
    squares = b.node("Unsqueeze", [b.node("Mul", [x, x], name), b.ints([1], name)], name)
    pads = [0] * (2 * rank)
    pads[2], pads[rank + 2] = m.size // 2, (m.size - 1) // 2
    padded = b.node("Pad", [squares, b.ints(pads, name)], name, mode="constant")
    window = [m.size] + [1] * (rank - 3)
    mean = b.node("AveragePool", [padded], name, kernel_shape=window)
    mean = b.node("Squeeze", [mean, b.ints([1], name)], name)
    scaled = b.node("Mul", [mean, b.constant(m.alpha, name)], name)
    denominator = b.node("Add", [scaled, b.constant(m.k, name)], name)
    power = b.node("Pow", [denominator, b.constant(m.beta, name)], name)
    return b.node("Div", [x, power], name)


def layer_norm(b: OnnxBuilder, m: nn.LayerNorm, name: str, x: str) -> str:
    if m.weight is not None:
        inputs = _weight_and_bias(b, m, name, x)
    else:  # a scale of 1, broadcast over the normalised dims
        inputs = [x, b.constant(np.ones(1), name)]
    axis = -len(m.normalized_shape)
    return b.node("LayerNormalization", inputs, name, axis=axis, epsilon=float(m.eps))


def group_norm(b: OnnxBuilder, m: nn.GroupNorm, name: str, x: str) -> str:
    shape = b.input_shape(m)
    # Each sample's group as one row, normalised by LayerNormalization; 0 keeps the batch size.
    rows = b.node("Reshape", [x, b.ints([0, m.num_groups, -1], name)], name)
    rows = b.node("LayerNormalization", [rows, b.constant(np.ones(1), name)], name,
                  axis=-1, epsilon=float(m.eps))  # fmt: skip
    out = b.node("Reshape", [rows, b.ints([0, *shape[1:]], name)], name)
    if m.affine:
        channel = (-1,) + (1,) * (len(shape) - 2)
        weight = b.parameter(key(name, "weight"), m.weight.data.reshape(channel))
        bias = b.parameter(key(name, "bias"), m.bias.data.reshape(channel))
        out = b.node("Add", [b.node("Mul", [out, weight], name), bias], name)
    return out


def _unary(op: str, **attrs_of: tuple[str, type]):
    """A converter for an activation that is the single ONNX op ``op``; ``attrs_of`` maps an
    ONNX attribute to the layer attribute that gives it and the attribute's type."""

    def convert(b: OnnxBuilder, m: nn.Module, name: str, x: str) -> str:
        attrs = {k: kind(getattr(m, attr)) for k, (attr, kind) in attrs_of.items()}
        return b.node(op, [x], name, **attrs)

    return convert


def prelu(b: OnnxBuilder, m: nn.PReLU, name: str, x: str) -> str:
    # ONNX broadcasts the slope from the right, PyTorch's per-channel slope sits on axis 1.
    trailing = max(len(b.input_shape(m)) - 2, 0) if m.num_parameters > 1 else 0
    slope = m.weight.data.reshape((-1,) + (1,) * trailing)
    return b.node("PRelu", [x, b.parameter(key(name, "weight"), slope)], name)


EXPORTERS = {
    nn.Conv2d: conv2d,
    nn.ConvTranspose2d: conv_transpose2d,
    nn.Linear: linear,
    nn.Flatten: flatten,
    nn.MaxPool2d: max_pool2d,
    nn.AvgPool2d: avg_pool2d,
    nn.AdaptiveAvgPool2d: global_avg_pool,
    nn.BatchNorm1d: batch_norm,
    nn.BatchNorm2d: batch_norm,
    nn.LocalResponseNorm: lrn,
    nn.LayerNorm: layer_norm,
    nn.GroupNorm: group_norm,
    nn.ReLU: _unary("Relu"),
    nn.NoisyReLU: _unary("Relu"),
    nn.LeakyReLU: _unary("LeakyRelu", alpha=("negative_slope", float)),
    nn.ELU: _unary("Elu", alpha=("alpha", float)),
    nn.PReLU: prelu,
    nn.Sigmoid: _unary("Sigmoid"),
    nn.Tanh: _unary("Tanh"),
    nn.Softmax: _unary("Softmax", axis=("dim", int)),
    nn.LogSoftmax: _unary("LogSoftmax", axis=("dim", int)),
}

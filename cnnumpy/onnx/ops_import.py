"""ONNX operators that become library layers, keyed by op type in ``LAYER_IMPORTERS``.

Each converter ``f(ctx, node) -> Converted(module, runtime inputs, name hint)`` builds the
layer with the node's weights (its initializers, absorbed: ``conv1.weight`` becomes the
``weight`` of a ``Conv2d`` named ``conv1``) and its attributes.

=====================  ====================================================================
ONNX                   cnnumpy
=====================  ====================================================================
Conv                   ``nn.Conv2d`` (2-D; group, dilations, symmetric or "same" pads)
ConvTranspose          ``nn.ConvTranspose2d`` (symmetric pads, output_padding)
Gemm                   ``nn.Linear``: ``alpha * A B' + beta * C`` (transA = 0, B and C weights)
MatMul                 ``nn.Linear`` without bias when ``A`` is 2-D and ``B`` a weight; else a
                       product of two tensors (:class:`.arith.MatMul`)
BatchNormalization     ``nn.BatchNorm2d`` (4-D) or ``nn.BatchNorm1d`` (2-D) with the running
                       statistics; ``momentum = 1 - ONNX momentum``
LayerNormalization     ``nn.LayerNorm`` when the scale covers the normalised axes;
                       :class:`.extra_layers.TrailingLayerNorm` for a scale of ones and no
                       bias (how ``nn.GroupNorm`` is exported)
LRN                    ``nn.LocalResponseNorm(size, alpha, beta, k=bias)`` for an odd size;
                       :class:`.extra_layers.MirroredLocalResponseNorm` for an even one
MaxPool                ``nn.MaxPool2d`` (symmetric pads, ceil_mode, no dilation)
AveragePool            ``nn.AvgPool2d``; other ranks :class:`.extra_layers.AvgPoolNd`
GlobalAveragePool      ``nn.AdaptiveAvgPool2d(1)``
Relu, Sigmoid, Tanh    ``nn.ReLU``, ``nn.Sigmoid``, ``nn.Tanh``
LeakyRelu, Elu         ``nn.LeakyReLU(alpha)``, ``nn.ELU(alpha)``
PRelu                  ``nn.PReLU`` with one slope or one per channel
Softmax, LogSoftmax    ``nn.Softmax(dim=axis)``, ``nn.LogSoftmax(dim=axis)``
Dropout                ``nn.Dropout(p=ratio)`` (the identity in eval)
Flatten                ``nn.Flatten`` (axis 1), :class:`.tensor_ops.Flatten` for another axis
=====================  ====================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn
from .arith import MatMul
from .context import Converted, ImportContext, pair_from, symmetric_pads, weight_prefix
from .extra_layers import AvgPoolNd, MirroredLocalResponseNorm, TrailingLayerNorm
from .tensor_ops import Flatten

_RNG = np.random.default_rng(0)  # layers draw an initialisation that the weights overwrite


def _load(module: nn.Module, **arrays: np.ndarray | None) -> nn.Module:
    for attr, value in arrays.items():
        if value is not None:
            getattr(module, attr).data[...] = value
    return module


def _bias(ctx: ImportContext, node: Any, index: int) -> np.ndarray | None:
    """The layer's bias; a constant of zeros (not a weight) counts as none, which is how
    PyTorch's exporter writes a convolution without bias."""
    name = ctx.input(node, index)
    bias = ctx.weight(node, name, "bias")
    if bias is not None and name not in ctx.initializers and not np.any(bias):
        return None
    return bias


def _conv_padding(ctx: ImportContext, node: Any, a: dict, kernel, stride, dilation):
    """Conv2d's ``padding`` for the node's ``pads``/``auto_pad``: a pair, or ``"same"``."""
    auto = a.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return (0, 0)
    same = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
    same_pads = [same[0] // 2, same[1] // 2, same[0] - same[0] // 2, same[1] - same[1] // 2]
    if auto == "SAME_UPPER" or (auto == "NOTSET" and list(a.get("pads", [])) == same_pads):
        if stride == (1, 1):
            return "same" if same_pads[:2] != same_pads[2:] else tuple(same_pads[:2])
    if auto != "NOTSET":
        raise ctx.error(node, f"auto_pad={auto} with strides {stride} is not supported")
    return symmetric_pads(a.get("pads"), node, ctx) or (0, 0)


def conv(ctx: ImportContext, node: Any) -> Converted:
    a = ctx.attrs(node)
    w = ctx.weight(node, ctx.input(node, 1), "weight")
    b = _bias(ctx, node, 2)
    if w.ndim != 4:
        raise ctx.error(node, f"only 2-D convolutions are supported (weight shape {w.shape})")
    group = int(a.get("group", 1))
    kernel = (w.shape[2], w.shape[3])
    stride = pair_from(a.get("strides"), 1, node, ctx, "strides")
    dilation = pair_from(a.get("dilations"), 1, node, ctx, "dilations")
    padding = _conv_padding(ctx, node, a, kernel, stride, dilation)
    m = nn.Conv2d(w.shape[1] * group, w.shape[0], kernel, stride, padding, dilation, group,
                  bias=b is not None, rng=_RNG, dtype=w.dtype)  # fmt: skip
    return Converted(_load(m, weight=w, bias=b), [node.input[0]], weight_prefix(node.input[1]))


def conv_transpose(ctx: ImportContext, node: Any) -> Converted:
    a = ctx.attrs(node)
    if "output_shape" in a or a.get("auto_pad", "NOTSET") != "NOTSET":
        raise ctx.error(node, "output_shape and auto_pad are not supported; give pads")
    w = ctx.weight(node, ctx.input(node, 1), "weight")
    b = _bias(ctx, node, 2)
    if w.ndim != 4:
        raise ctx.error(node, f"only 2-D transposed convolutions are supported ({w.shape})")
    group = int(a.get("group", 1))
    m = nn.ConvTranspose2d(
        w.shape[0], w.shape[1] * group, (w.shape[2], w.shape[3]),
        stride=pair_from(a.get("strides"), 1, node, ctx, "strides"),
        padding=symmetric_pads(a.get("pads"), node, ctx) or 0,
        output_padding=pair_from(a.get("output_padding"), 0, node, ctx, "output_padding"),
        groups=group, bias=b is not None,
        dilation=pair_from(a.get("dilations"), 1, node, ctx, "dilations"),
        rng=_RNG, dtype=w.dtype,
    )  # fmt: skip
    return Converted(_load(m, weight=w, bias=b), [node.input[0]], weight_prefix(node.input[1]))


def gemm(ctx: ImportContext, node: Any) -> Converted:
    a = ctx.attrs(node)
    if a.get("transA", 0) or not ctx.is_static(node.input[1]):
        raise ctx.error(node, "only x @ B (+ C) with B a weight (transA = 0) is supported")
    w = ctx.weight(node, node.input[1], "weight")
    w = (w if a.get("transB", 0) else w.T) * a.get("alpha", 1.0)
    c = _bias(ctx, node, 2)
    if c is not None:
        if c.size not in (1, w.shape[0]):
            raise ctx.error(node, f"bias of shape {c.shape} is not one value per output")
        c = np.broadcast_to(c.reshape(-1) * a.get("beta", 1.0), (w.shape[0],))
    m = nn.Linear(w.shape[1], w.shape[0], bias=c is not None, rng=_RNG, dtype=w.dtype)
    return Converted(_load(m, weight=w, bias=c), [node.input[0]], weight_prefix(node.input[1]))


def matmul(ctx: ImportContext, node: Any) -> Converted:
    x, b = node.input[0], node.input[1]
    if ctx.is_static(b) and ctx.static(node, b, "B").ndim == 2 and ctx.ranks.get(x) == 2:
        w = ctx.weight(node, b, "weight").T
        m = nn.Linear(w.shape[1], w.shape[0], bias=False, rng=_RNG, dtype=w.dtype)
        return Converted(_load(m, weight=w), [x], weight_prefix(b))
    return Converted(MatMul(), [x, b])


def batch_norm(ctx: ImportContext, node: Any) -> Converted:
    a = ctx.attrs(node)
    scale, shift, mean, var = (ctx.weight(node, node.input[i], what) for i, what in
                               enumerate(("scale", "bias", "mean", "var"), 1))  # fmt: skip
    rank = ctx.rank(node, node.input[0])
    if rank not in (2, 4):
        raise ctx.error(node, f"only 2-D and 4-D inputs are supported, got rank {rank}")
    cls = nn.BatchNorm2d if rank == 4 else nn.BatchNorm1d
    fixed = not any(n in ctx.initializers for n in node.input[1:3])
    affine = not (fixed and np.all(scale == 1) and np.all(shift == 0))
    momentum = float(f"{1.0 - a.get('momentum', 0.9):.6g}")  # 0.1, not 0.09999999999999998
    m = cls(mean.shape[0], eps=a.get("epsilon", 1e-5), momentum=momentum, affine=affine,
            dtype=mean.dtype)  # fmt: skip
    if affine:
        _load(m, weight=scale, bias=shift)
    m.running_mean, m.running_var = mean.copy(), var.copy()
    hint = weight_prefix(node.input[1] if affine else node.input[3])
    return Converted(m, [node.input[0]], hint)


def layer_norm(ctx: ImportContext, node: Any) -> Converted:
    a = ctx.attrs(node)
    rank = ctx.rank(node, node.input[0])
    axis, eps = int(a.get("axis", -1)), a.get("epsilon", 1e-5)
    axes = rank - (axis % rank)  # the normalised trailing axes
    scale_name, bias_name = ctx.input(node, 1), ctx.input(node, 2)
    scale = ctx.weight(node, scale_name, "scale")
    bias = ctx.weight(node, bias_name, "bias")
    weighted = scale_name in ctx.initializers or bias_name in ctx.initializers
    if not weighted and np.all(scale == 1) and (bias is None or not np.any(bias)):
        return Converted(TrailingLayerNorm(axes, eps=eps), [node.input[0]])
    if scale.ndim == axes:
        m = nn.LayerNorm(scale.shape, eps=eps, bias=bias is not None, dtype=scale.dtype)
        _load(m, weight=scale, bias=None if bias is None else np.broadcast_to(bias, scale.shape))
        return Converted(m, [node.input[0]], weight_prefix(scale_name))
    raise ctx.error(
        node,
        f"a scale of shape {scale.shape} for {axes} normalised axes is not supported: give "
        "one scale per normalised value, or a constant scale of ones",
    )


def lrn(ctx: ImportContext, node: Any) -> Converted:
    a = ctx.attrs(node)
    size = int(a["size"])
    cls = nn.LocalResponseNorm if size % 2 else MirroredLocalResponseNorm
    m = cls(size, alpha=a.get("alpha", 1e-4), beta=a.get("beta", 0.75), k=a.get("bias", 1.0))
    return Converted(m, [node.input[0]])


def _pool_settings(ctx: ImportContext, node: Any, a: dict) -> dict:
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise ctx.error(node, f"auto_pad={a['auto_pad']} is not supported; give pads")
    if any(d != 1 for d in a.get("dilations", [])) or a.get("storage_order", 0):
        raise ctx.error(node, "dilated pooling and storage_order are not supported")
    kernel = list(a["kernel_shape"])
    return {
        "kernel": kernel, "strides": list(a.get("strides", [1] * len(kernel))),
        "pads": list(symmetric_pads(a.get("pads"), node, ctx) or [0] * len(kernel)),
        "ceil_mode": bool(a.get("ceil_mode", 0)),
    }  # fmt: skip


def max_pool(ctx: ImportContext, node: Any) -> Converted:
    s = _pool_settings(ctx, node, ctx.attrs(node))
    if len(s["kernel"]) != 2:
        raise ctx.error(node, f"only 2-D max pooling is supported, kernel {s['kernel']}")
    m = nn.MaxPool2d(tuple(s["kernel"]), tuple(s["strides"]), tuple(s["pads"]), s["ceil_mode"])
    return Converted(m, [node.input[0]])


def average_pool(ctx: ImportContext, node: Any) -> Converted:
    a = ctx.attrs(node)
    s = _pool_settings(ctx, node, a)
    include_pad = bool(a.get("count_include_pad", 0))
    if len(s["kernel"]) == 2:
        m = nn.AvgPool2d(tuple(s["kernel"]), tuple(s["strides"]), tuple(s["pads"]),
                         s["ceil_mode"], include_pad)  # fmt: skip
    elif s["ceil_mode"] or (any(s["pads"]) and not include_pad):
        raise ctx.error(node, "pooling other than 2-D needs ceil_mode=0 and counted pads")
    else:
        m = AvgPoolNd(s["kernel"], s["strides"], s["pads"])
    return Converted(m, [node.input[0]])


def global_average_pool(ctx: ImportContext, node: Any) -> Converted:
    if ctx.rank(node, node.input[0]) != 4:
        raise ctx.error(node, "only 4-D inputs (N, C, H, W) are supported")
    return Converted(nn.AdaptiveAvgPool2d(1), [node.input[0]])


def prelu(ctx: ImportContext, node: Any) -> Converted:
    slope = ctx.weight(node, node.input[1], "slope")
    # ONNX broadcasts the slope from the right: one per channel means it lands on axis 1 only.
    shape = (1,) * (ctx.rank(node, node.input[0]) - slope.ndim) + slope.shape
    if slope.size > 1 and (len(shape) < 2 or shape[1] != slope.size):
        raise ctx.error(node, f"slope of shape {slope.shape} is neither one nor per channel")
    m = nn.PReLU(slope.size, dtype=slope.dtype)
    return Converted(_load(m, weight=slope.reshape(-1)), [node.input[0]],
                     weight_prefix(node.input[1]))  # fmt: skip


def _softmax(cls: type):
    def convert(ctx: ImportContext, node: Any) -> Converted:
        axis = ctx.attrs(node).get("axis", -1 if ctx.opset >= 13 else 1)
        if ctx.opset < 13 and ctx.rank(node, node.input[0]) != 2:
            raise ctx.error(node, "before opset 13 only 2-D inputs are supported")
        return Converted(cls(dim=axis), [node.input[0]])

    return convert


def _activation(cls: type, **defaults: float):
    """A converter for a layer built from the node's attributes ``defaults`` (ONNX names)."""

    def convert(ctx: ImportContext, node: Any) -> Converted:
        a = ctx.attrs(node)
        return Converted(cls(*(a.get(k, v) for k, v in defaults.items())), [node.input[0]])

    return convert


def dropout(ctx: ImportContext, node: Any) -> Converted:
    ratio = ctx.input(node, 1)
    p = float(ctx.static(node, ratio, "ratio")) if ratio else ctx.attrs(node).get("ratio", 0.5)
    return Converted(nn.Dropout(p), [node.input[0]])


def flatten(ctx: ImportContext, node: Any) -> Converted:
    axis = ctx.attrs(node).get("axis", 1)
    return Converted(nn.Flatten() if axis == 1 else Flatten(axis), [node.input[0]])


LAYER_IMPORTERS = {
    "Conv": conv,
    "ConvTranspose": conv_transpose,
    "Gemm": gemm,
    "MatMul": matmul,
    "BatchNormalization": batch_norm,
    "LayerNormalization": layer_norm,
    "LRN": lrn,
    "MaxPool": max_pool,
    "AveragePool": average_pool,
    "GlobalAveragePool": global_average_pool,
    "Relu": _activation(nn.ReLU),
    "LeakyRelu": _activation(nn.LeakyReLU, alpha=0.01),
    "Elu": _activation(nn.ELU, alpha=1.0),
    "PRelu": prelu,
    "Sigmoid": _activation(nn.Sigmoid),
    "Tanh": _activation(nn.Tanh),
    "Softmax": _softmax(nn.Softmax),
    "LogSoftmax": _softmax(nn.LogSoftmax),
    "Dropout": dropout,
    "Flatten": flatten,
}

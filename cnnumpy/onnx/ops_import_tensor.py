"""ONNX operators on whole tensors, keyed by op type in ``TENSOR_IMPORTERS``: arithmetic and
the shape and indexing operators, which become the modules of :mod:`.arith` and
:mod:`.tensor_ops`. Their operands are read at run time, so an initializer that one of them
reads (a bias added with ``Add``) becomes a parameter of the graph, named as in the file.

=====================  ====================================================================
ONNX                   cnnumpy
=====================  ====================================================================
Add, Sub, Mul, Div     :class:`.arith.Add` ... with broadcasting; gradients summed back
Pow                    :class:`.arith.Pow`
Expand                 :class:`.arith.Expand`
ReduceSum              :class:`.arith.ReduceSum` (static axes)
ReduceMean             ``nn.AdaptiveAvgPool2d(1)`` over the pixels of a 4-D tensor (keepdims),
                       else :class:`.arith.ReduceMean`
Concat                 :class:`.tensor_ops.Cat`
Reshape                :class:`.tensor_ops.Reshape` (the shape may be computed)
Pad                    ``nn.ConstantPad2d`` for the two spatial axes of a 4-D tensor, else
                       :class:`.tensor_ops.Pad` (constant mode, non-negative pads)
Slice                  :class:`.tensor_ops.Slice` (static starts, ends, axes, steps)
Squeeze, Unsqueeze     :class:`.tensor_ops.Squeeze`, :class:`.tensor_ops.Unsqueeze`
Transpose, Cast        :class:`.tensor_ops.Transpose`, :class:`.tensor_ops.Cast`
CastLike               :class:`.tensor_ops.Cast` to the second input's (inferred) type
Shape                  :class:`.tensor_ops.Shape` (no gradient)
Identity               :class:`.tensor_ops.Identity`
=====================  ====================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn
from . import arith
from . import tensor_ops as T
from .context import Converted, ImportContext


def _binary(cls: type):
    def convert(ctx: ImportContext, node: Any) -> Converted:
        return Converted(cls(), [node.input[0], node.input[1]])

    return convert


def _axes(ctx: ImportContext, node: Any, index: int) -> list[int] | None:
    """The ``axes`` of a node: its input ``index`` from opset 13 (18 for reductions), else
    its attribute; None when neither is given."""
    name = ctx.input(node, index)
    if name is not None:
        return [int(a) for a in ctx.static(node, name, "axes").reshape(-1)]
    axes = ctx.attrs(node).get("axes")
    return None if axes is None else [int(a) for a in axes]


def reduce_sum(ctx: ImportContext, node: Any) -> Converted:
    a = ctx.attrs(node)
    axes = _axes(ctx, node, 1)
    if not axes and a.get("noop_with_empty_axes", 0):
        return Converted(T.Identity(), [node.input[0]])
    keepdims = bool(a.get("keepdims", 1))
    return Converted(arith.ReduceSum(tuple(axes) if axes else None, keepdims), [node.input[0]])


def reduce_mean(ctx: ImportContext, node: Any) -> Converted:
    """``nn.AdaptiveAvgPool2d(1)`` for the mean over the pixels of ``(N, C, H, W)``, as PyTorch
    writes global average pooling; :class:`.arith.ReduceMean` otherwise."""
    axes, keepdims = _axes(ctx, node, 1), bool(ctx.attrs(node).get("keepdims", 1))
    rank = ctx.ranks.get(node.input[0])
    if rank == 4 and keepdims and axes and sorted(a % 4 for a in axes) == [2, 3]:
        return Converted(nn.AdaptiveAvgPool2d(1), [node.input[0]])
    return Converted(arith.ReduceMean(tuple(axes) if axes else None, keepdims), [node.input[0]])


def expand(ctx: ImportContext, node: Any) -> Converted:
    return Converted(arith.Expand(), [node.input[0], node.input[1]])


def concat(ctx: ImportContext, node: Any) -> Converted:
    return Converted(T.Cat(int(ctx.attrs(node)["axis"])), list(node.input))


def reshape(ctx: ImportContext, node: Any) -> Converted:
    allowzero = bool(ctx.attrs(node).get("allowzero", 0))
    return Converted(T.Reshape(allowzero), [node.input[0], node.input[1]])


def pad(ctx: ImportContext, node: Any) -> Converted:
    mode = ctx.attrs(node).get("mode", "constant")
    if mode != "constant":
        raise ctx.error(node, f"only constant padding is supported, got mode={mode}")
    pads = [int(p) for p in ctx.static(node, node.input[1], "pads").reshape(-1)]
    value_name = ctx.input(node, 2)
    value = float(ctx.static(node, value_name, "value")) if value_name else 0.0
    axes = _axes(ctx, node, 3)
    rank = ctx.rank(node, node.input[0])
    if axes is not None:  # pads for some axes only: spread them over all
        full = [0] * (2 * rank)
        for i, axis in enumerate(a % rank for a in axes):
            full[axis], full[rank + axis] = pads[i], pads[len(axes) + i]
        pads = full
    if min(pads, default=0) < 0:
        raise ctx.error(node, f"negative pads (cropping) are not supported: {pads}")
    if rank == 4 and pads[:2] == [0, 0] and pads[4:6] == [0, 0]:
        top, left, bottom, right = pads[2], pads[3], pads[6], pads[7]
        return Converted(nn.ConstantPad2d((left, right, top, bottom), value), [node.input[0]])
    return Converted(T.Pad(pads, value), [node.input[0]])


def slice_(ctx: ImportContext, node: Any) -> Converted:
    starts, ends = (ctx.static(node, node.input[i], what).reshape(-1).tolist()
                    for i, what in ((1, "starts"), (2, "ends")))  # fmt: skip
    axes = _axes(ctx, node, 3)
    steps_name = ctx.input(node, 4)
    steps = ctx.static(node, steps_name, "steps").reshape(-1).tolist() if steps_name else None
    rank = ctx.rank(node, node.input[0])
    axes = [a % rank for a in axes] if axes is not None else list(range(len(starts)))
    module = T.Slice(starts, ends, axes, steps or [1] * len(starts))
    return Converted(module, [node.input[0]])


def squeeze(ctx: ImportContext, node: Any) -> Converted:
    return Converted(T.Squeeze(_axes(ctx, node, 1)), [node.input[0]])


def unsqueeze(ctx: ImportContext, node: Any) -> Converted:
    return Converted(T.Unsqueeze(_axes(ctx, node, 1) or []), [node.input[0]])


def transpose(ctx: ImportContext, node: Any) -> Converted:
    return Converted(T.Transpose(ctx.attrs(node).get("perm")), [node.input[0]])


def cast(ctx: ImportContext, node: Any) -> Converted:
    to = ctx.attrs(node)["to"]
    dtype = np.dtype(ctx.onnx.helper.tensor_dtype_to_np_dtype(to))
    return Converted(T.Cast(dtype), [node.input[0]])


def cast_like(ctx: ImportContext, node: Any) -> Converted:
    """``Cast`` to the element type of the second input, which shape inference knows."""
    if node.input[1] not in ctx.dtypes:
        raise ctx.error(node, f"the element type of {node.input[1]!r} is unknown")
    return Converted(T.Cast(ctx.dtypes[node.input[1]]), [node.input[0]])


def shape(ctx: ImportContext, node: Any) -> Converted:
    a = ctx.attrs(node)
    return Converted(T.Shape(a.get("start", 0), a.get("end")), [node.input[0]])


def identity(ctx: ImportContext, node: Any) -> Converted:
    return Converted(T.Identity(), [node.input[0]])


TENSOR_IMPORTERS = {
    "Add": _binary(arith.Add),
    "Sub": _binary(arith.Sub),
    "Mul": _binary(arith.Mul),
    "Div": _binary(arith.Div),
    "Pow": _binary(arith.Pow),
    "ReduceSum": reduce_sum,
    "ReduceMean": reduce_mean,
    "Expand": expand,
    "Concat": concat,
    "Reshape": reshape,
    "Pad": pad,
    "Slice": slice_,
    "Squeeze": squeeze,
    "Unsqueeze": unsqueeze,
    "Transpose": transpose,
    "Cast": cast,
    "CastLike": cast_like,
    "Shape": shape,
    "Identity": identity,
}

"""Affine (fully connected) layer.

Like CS231n's ``affine_forward``, the input's trailing dimensions are flattened, so a conv
feature map ``(N, C, H, W)`` can be fed straight to a linear layer.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._checks import check_array, check_same_dtype, check_shape


class LinearCache(NamedTuple):
    x_shape: tuple[int, ...]
    x2d: np.ndarray  # the input flattened to (N, D)
    weight: np.ndarray
    has_bias: bool


def linear_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *, check_finite: bool = False
) -> tuple[np.ndarray, LinearCache]:
    """``out = x.reshape(N, D) @ weight.T + bias``.

    Shapes: ``x: (N, d_1, ..., d_k)`` with ``D = d_1 * ... * d_k``; ``weight: (M, D)`` (PyTorch's
    ``(out_features, in_features)``); ``bias: (M,)`` or None; ``out: (N, M)``. An empty batch
    (``N = 0``) gives an empty ``(0, M)`` output, as in PyTorch.
    """
    check_array(x, "x", finite=check_finite)
    check_array(weight, "weight", ndim=2)
    check_same_dtype(x, weight, "weight")
    if x.ndim < 2:
        raise ValueError(f"x must be (N, D) or (N, d_1, ..., d_k), got shape {x.shape}")
    n = x.shape[0]
    x2d = x.reshape(n, math.prod(x.shape[1:]))  # not -1: NumPy cannot infer it when N = 0
    if x2d.shape[1] != weight.shape[1]:
        raise ValueError(
            f"x has {x2d.shape[1]} features per sample (shape {x.shape}) but weight expects "
            f"{weight.shape[1]} (weight shape {weight.shape})"
        )
    out = x2d @ weight.T
    if bias is not None:
        check_array(bias, "bias", ndim=1)
        check_same_dtype(x, bias, "bias")
        check_shape(bias, (weight.shape[0],), "bias")
        out += bias
    return out, LinearCache(x.shape, x2d, weight, bias is not None)


def linear_backward(
    dout: np.ndarray, cache: LinearCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of ``out = x W^T + b``.

    Derivation: ``out[n, m] = sum_d x[n, d] W[m, d] + b[m]``, so
    ``dx = dout @ W`` (reshaped back to x's shape), ``dW = dout^T @ x``, ``db = sum_n dout[n]``.
    Returns ``(dx, dweight, dbias)``; ``dbias`` is None when the forward had no bias. An empty
    batch needs no special case: the products and the sum over no rows are zeros.
    """
    dx = (dout @ cache.weight).reshape(cache.x_shape)
    dweight = dout.T @ cache.x2d
    dbias = dout.sum(axis=0) if cache.has_bias else None
    return dx, dweight, dbias

"""Per-sample normalisation kernels: layer normalisation and group normalisation.

Both normalise each sample on its own, so neither needs batch statistics, running statistics
or a training mode. They share one core: the input seen as rows of ``K`` values, each row
centred and scaled by its own mean and variance, and one compact backward over rows.

- Layer norm: a row is one sample's trailing ``normalized_shape`` block, so
  ``x: (*, *normalized_shape)`` becomes ``(M, K)`` with ``K = prod(normalized_shape)``; the
  affine weight and bias have ``normalized_shape`` and act element by element.
- Group norm: a row is the ``C/G`` channels of one group of one sample, so
  ``x: (N, C, H, W)`` becomes ``(N*G, (C/G)*H*W)``; the affine weight and bias are per channel.

``group_norm_naive.py`` holds loop references that the tests compare these with.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import check_array, check_eps, check_same_dtype


class RowNormCache(NamedTuple):
    xhat: np.ndarray  # (M, K) the normalised rows (x - mean) * invstd
    invstd: np.ndarray  # (M, 1) 1 / sqrt(var + eps) of each row
    weight: np.ndarray | None  # as passed: normalized_shape for layer norm, (C,) for group norm
    has_bias: bool
    x_shape: tuple[int, ...]
    num_groups: int  # 0 for layer norm: the cache says which backward it belongs to
    param_axes: tuple[int, ...]  # the axes of x the parameter gradients are summed over


def _check_param(x: np.ndarray, a: np.ndarray | None, name: str, shape: tuple, what: str) -> None:
    if a is None:
        return
    check_array(a, name)
    check_same_dtype(x, a, name)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape} ({what}), got {a.shape}")


def _normalise_rows(rows: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``(xhat, invstd)`` of ``rows: (M, K)``, with K >= 1."""
    mean = rows.mean(axis=1, keepdims=True)
    xhat = rows - mean
    # Two-pass variance (of the centred values): no cancellation as in E[x^2] - E[x]^2.
    var = np.einsum("mk,mk->m", xhat, xhat)[:, None] / rows.shape[1]
    invstd = 1.0 / np.sqrt(var + eps)
    xhat *= invstd
    return xhat, invstd


def _rows_backward(g: np.ndarray, xhat: np.ndarray, invstd: np.ndarray) -> np.ndarray:
    """``dx = invstd * (g - mean(g) - xhat * mean(g * xhat))`` per row, for ``g = dL/dxhat``."""
    k = g.shape[1]
    mean_g = g.sum(axis=1, keepdims=True) / k
    mean_gx = np.einsum("mk,mk->m", g, xhat)[:, None] / k
    dx = g - mean_g
    dx -= xhat * mean_gx
    dx *= invstd
    return dx


def _as_shape(normalized_shape: int | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """``normalized_shape`` as a tuple of ints; an int ``D`` means ``(D,)``, as in PyTorch."""
    if isinstance(normalized_shape, (int, np.integer)) and not isinstance(normalized_shape, bool):
        return (int(normalized_shape),)
    if isinstance(normalized_shape, (tuple, list)) and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in normalized_shape
    ):
        return tuple(int(d) for d in normalized_shape)
    raise TypeError(f"normalized_shape must be an int or a tuple of ints, got {normalized_shape!r}")


def check_layer_norm_args(x, weight, bias, normalized_shape, eps) -> tuple[tuple[int, ...], float]:
    """Validate layer-norm arguments; return ``(normalized_shape, eps)`` as Python types.

    Shared with the naive reference so both reject the same inputs in the same words.
    """
    check_array(x, "x")
    shape = _as_shape(normalized_shape)
    if not shape:
        raise ValueError("normalized_shape must have at least one dimension, got ()")
    if x.ndim < len(shape) or x.shape[x.ndim - len(shape) :] != shape:
        raise ValueError(
            f"Given normalized_shape={shape}, expected input with shape (*, "
            f"{', '.join(map(str, shape))}), but got input of shape {x.shape}"
        )
    for name, a in [("weight", weight), ("bias", bias)]:
        _check_param(x, a, name, shape, "normalized_shape")
    return shape, check_eps(eps)


def layer_norm_forward(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    *,
    normalized_shape: int | tuple[int, ...],
    eps: float = 1e-5,
) -> tuple[np.ndarray, RowNormCache]:
    """Layer normalisation over the trailing dims, as ``torch.nn.functional.layer_norm``.

    Shapes: ``x, out: (*, *normalized_shape)`` (any leading dims, none included);
    ``weight, bias: normalized_shape`` or None.

    For each leading index, over its ``K = prod(normalized_shape)`` values:
    ``out = (x - mean) / sqrt(var + eps) * weight + bias`` with the biased variance. An input
    without values (``N = 0``) gives an empty output, and its backward zero parameter gradients.
    """
    shape, eps = check_layer_norm_args(x, weight, bias, normalized_shape, eps)
    lead = x.ndim - len(shape)
    xhat, invstd = _rows(x, int(np.prod(x.shape[:lead])), int(np.prod(shape)), eps)
    out = _affine(xhat.reshape(x.shape), weight, bias)
    cache = RowNormCache(xhat, invstd, weight, bias is not None, x.shape, 0, tuple(range(lead)))
    return out, cache


def _rows(x: np.ndarray, m: int, k: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``(xhat, invstd)`` of x seen as ``(m, k)`` rows; placeholders when x has no values."""
    if x.size == 0:  # nothing to normalise: an empty output, and a backward that returns early
        return np.zeros((m, k), x.dtype), np.ones((m, 1), x.dtype)
    return _normalise_rows(x.reshape(m, k), eps)


def _affine(xhat: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None) -> np.ndarray:
    """``xhat * weight + bias`` as a new array; the parameters already broadcast against xhat."""
    out = xhat * weight if weight is not None else xhat.copy()
    if bias is not None:
        out += bias
    return out


def layer_norm_backward(
    dout: np.ndarray, cache: RowNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients of layer norm: ``(dx, dweight, dbias)``, None for a None weight or bias.

    Shapes: ``dout, dx: (*, *normalized_shape)``; ``dweight, dbias: normalized_shape``.

    Derivation, per row of ``K`` values with ``s = 1/sqrt(var + eps)``, ``xhat = (x - mean) s``
    and ``g = dout * weight`` (the gradient reaching xhat): ``dbias = sum over rows of dout``,
    ``dweight = sum over rows of dout * xhat``. Within a row ``d mean/dx_i = 1/K`` and
    ``d var/dx_i = 2 (x_i - mean)/K``, so ``d xhat_j/dx_i = s (delta_ij - 1/K - xhat_j xhat_i/K)``
    and, summing ``g_j d xhat_j/dx_i`` over the row's ``j``,
    ``dx_i = (s / K) (K g_i - sum(g) - xhat_i sum(g xhat))``: batch norm's formula with the
    sums over the normalised axes instead of the batch.
    """
    if cache.num_groups:
        raise ValueError("this cache is from group_norm_forward: use its backward")
    return _affine_backward(dout, cache)


def check_group_norm_args(x, weight, bias, num_groups, eps) -> tuple[int, float]:
    """Validate group-norm arguments; return ``(num_groups, eps)`` as Python types."""
    check_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must be (N, C, ...) with 2 or more dimensions, got shape {x.shape}")
    if not isinstance(num_groups, (int, np.integer)) or isinstance(num_groups, bool):
        raise TypeError(f"num_groups must be an int, got {num_groups!r}")
    c = x.shape[1]
    if num_groups < 1:
        raise ValueError(f"num_groups must be >= 1, got {num_groups}")
    if c % num_groups:
        raise ValueError(
            f"the number of channels must be divisible by num_groups: x has C={c} channels "
            f"(shape {x.shape}), which {num_groups} groups do not divide"
        )
    for name, a in [("weight", weight), ("bias", bias)]:
        _check_param(x, a, name, (c,), f"one value per channel of x {x.shape}")
    return int(num_groups), check_eps(eps)


def group_norm_forward(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    *,
    num_groups: int,
    eps: float = 1e-5,
) -> tuple[np.ndarray, RowNormCache]:
    """Group normalisation, as ``torch.nn.functional.group_norm``.

    Shapes: ``x, out: (N, C, H, W)`` (any ``(N, C, *)`` works); ``weight, bias: (C,)`` or None;
    ``C`` divisible by ``G = num_groups``.

    Channels ``[g C/G, (g+1) C/G)`` form group ``g``; per sample and group, over its
    ``K = (C/G) H W`` values, ``xhat = (x - mean) / sqrt(var + eps)`` (biased variance), then
    ``out[:, c] = xhat[:, c] * weight[c] + bias[c]``. ``G = 1`` normalises each sample over
    ``(C, H, W)`` (layer norm with a per-channel affine); ``G = C`` is instance norm.
    """
    num_groups, eps = check_group_norm_args(x, weight, bias, num_groups, eps)
    n, c = x.shape[:2]
    k = (c // num_groups) * int(np.prod(x.shape[2:]))
    xhat, invstd = _rows(x, n * num_groups, k, eps)
    channel = (c,) + (1,) * (x.ndim - 2)  # a per-channel parameter, broadcast over pixels
    out = _affine(
        xhat.reshape(x.shape),
        None if weight is None else weight.reshape(channel),
        None if bias is None else bias.reshape(channel),
    )
    axes = (0, *range(2, x.ndim))
    return out, RowNormCache(xhat, invstd, weight, bias is not None, x.shape, num_groups, axes)


def group_norm_backward(
    dout: np.ndarray, cache: RowNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients of group norm: ``(dx, dweight, dbias)``.

    Shapes: ``dout, dx: (N, C, H, W)``; ``dweight, dbias: (C,)``.

    With ``g = dout * weight[c]``, each row (a sample's group, ``K = (C/G) H W`` values) gets
    layer norm's ``dx_i = (s / K) (K g_i - sum(g) - xhat_i sum(g xhat))``, the sums over the
    group's channels and pixels. The affine is per channel: ``dweight[c] = sum over (N, H, W)
    of dout * xhat`` and ``dbias[c] = sum over (N, H, W) of dout``.
    """
    if not cache.num_groups:
        raise ValueError("this cache is from layer_norm_forward: use its backward")
    return _affine_backward(dout, cache)


def _affine_backward(dout: np.ndarray, cache: RowNormCache):
    """The backward both share: the parameter gradients summed over ``cache.param_axes``,
    then ``dx`` by rows from ``g = dout * weight`` (the weight broadcast as in the forward)."""
    shape, weight, axes = cache.x_shape, cache.weight, cache.param_axes
    if dout.shape != shape:
        raise ValueError(f"dout must have the forward output's shape {shape}, got {dout.shape}")
    xhat = cache.xhat.reshape(shape)
    dweight = None if weight is None else np.sum(dout * xhat, axis=axes)
    dbias = np.sum(dout, axis=axes) if cache.has_bias else None
    if dout.size == 0:  # nothing flows back; the parameters get zero gradients, as in PyTorch
        return np.zeros(shape, dout.dtype), dweight, dbias
    g = dout
    if weight is not None:
        g = dout * (weight.reshape((-1,) + (1,) * (len(shape) - 2)) if cache.num_groups else weight)
    dx = _rows_backward(np.reshape(g, cache.xhat.shape), cache.xhat, cache.invstd)
    return dx.reshape(shape), dweight, dbias

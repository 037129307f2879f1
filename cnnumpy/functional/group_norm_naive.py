"""Reference forms of the kernels in ``group_norm.py``, written for clarity, not speed.

Each normalised block (one sample's trailing dims for layer norm, one sample's group of
channels for group norm) is flattened to a vector and run through a computational graph, one
node per line (mean, centred input, variance, standard deviation, its inverse, normalised
input); the backward walks the graph in reverse applying each node's local gradient. The
affine step is a loop over the parameters' elements (layer norm) or channels (group norm).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .group_norm import check_group_norm_args, check_layer_norm_args


class BlockCache(NamedTuple):
    xmu: np.ndarray  # (K,) x - mean
    sqrtvar: float  # sqrt(var + eps)
    ivar: float  # 1 / sqrtvar
    xhat: np.ndarray  # (K,) xmu * ivar


def _block_forward(v: np.ndarray, eps: float) -> BlockCache:
    k = v.size
    if k == 0:  # a block without values (no pixels): nothing to normalise
        return BlockCache(v, 1.0, 1.0, v)
    mu = np.sum(v) / k  # mean
    xmu = v - mu  # centred
    var = np.sum(xmu**2) / k  # biased variance
    sqrtvar = np.sqrt(var + eps)  # standard deviation
    ivar = 1.0 / sqrtvar  # its inverse
    return BlockCache(xmu, sqrtvar, ivar, xmu * ivar)  # normalised


def _block_backward(dxhat: np.ndarray, c: BlockCache) -> np.ndarray:
    k = dxhat.size
    if k == 0:
        return dxhat
    divar = np.sum(dxhat * c.xmu)  # xhat = xmu * ivar
    dxmu1 = dxhat * c.ivar
    dsqrtvar = -divar / c.sqrtvar**2  # ivar = 1 / sqrtvar
    dvar = 0.5 * dsqrtvar / c.sqrtvar  # sqrtvar = sqrt(var + eps)
    dxmu2 = 2 * c.xmu * dvar / k  # var = sum(xmu ** 2) / k
    dx1 = dxmu1 + dxmu2  # xmu = x - mu: the path through x ...
    dmu = -np.sum(dx1)  # ... and through mu
    return dx1 + dmu / k  # mu = sum(x) / k


class NormNaiveCache(NamedTuple):
    blocks: list[BlockCache]  # one per normalised block, in the order of ``_block_slices``
    xhat: np.ndarray  # x's shape
    weight: np.ndarray | None
    has_bias: bool
    num_groups: int  # 0 for layer norm
    lead: int  # layer norm: the number of leading (not normalised) dims of x


def _block_slices(shape: tuple[int, ...], lead: int, num_groups: int) -> list[tuple]:
    """The index of each normalised block: every leading index (layer norm, ``num_groups = 0``)
    or every ``(sample, group)`` pair with its channel range (group norm)."""
    if not num_groups:
        return list(np.ndindex(*shape[:lead]))
    per = shape[1] // num_groups
    return [(i, slice(g * per, (g + 1) * per)) for i in range(shape[0]) for g in range(num_groups)]


def _forward(x, weight, bias, lead: int, num_groups: int, eps: float):
    xhat = np.zeros_like(x)
    blocks = []
    for idx in _block_slices(x.shape, lead, num_groups):
        c = _block_forward(x[idx].ravel(), eps)
        xhat[idx] = c.xhat.reshape(x[idx].shape)
        blocks.append(c)
    out = xhat.copy()
    if num_groups:  # the affine, per channel
        for ch in range(x.shape[1]):
            out[:, ch] = out[:, ch] * (1 if weight is None else weight[ch])
            out[:, ch] += 0 if bias is None else bias[ch]
    else:  # the affine, per element of normalized_shape
        for j in np.ndindex(*x.shape[lead:]):
            at = (Ellipsis, *j)
            out[at] = out[at] * (1 if weight is None else weight[j])
            out[at] += 0 if bias is None else bias[j]
    return out, NormNaiveCache(blocks, xhat, weight, bias is not None, num_groups, lead)


def _backward(dout: np.ndarray, cache: NormNaiveCache):
    xhat, weight, num_groups, lead = cache.xhat, cache.weight, cache.num_groups, cache.lead
    dxhat = np.array(dout, dtype=xhat.dtype)
    if num_groups:
        axes = (0, *range(2, xhat.ndim))
        for ch in range(xhat.shape[1]):
            dxhat[:, ch] *= 1 if weight is None else weight[ch]
    else:
        axes = tuple(range(lead))
        if weight is not None:
            for j in np.ndindex(*weight.shape):
                dxhat[(Ellipsis, *j)] *= weight[j]
    dweight = None if weight is None else np.sum(dout * xhat, axis=axes)
    dbias = np.sum(dout, axis=axes) if cache.has_bias else None
    dx = np.zeros_like(xhat)
    for idx, c in zip(_block_slices(xhat.shape, lead, num_groups), cache.blocks, strict=True):
        dx[idx] = _block_backward(dxhat[idx].ravel(), c).reshape(dx[idx].shape)
    return dx, dweight, dbias


def layer_norm_forward_naive(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    *,
    normalized_shape: int | tuple[int, ...],
    eps: float = 1e-5,
) -> tuple[np.ndarray, NormNaiveCache]:
    """Reference for ``group_norm.layer_norm_forward`` (same contract): a graph per sample."""
    shape, eps = check_layer_norm_args(x, weight, bias, normalized_shape, eps)
    return _forward(x, weight, bias, x.ndim - len(shape), 0, eps)


def layer_norm_backward_naive(
    dout: np.ndarray, cache: NormNaiveCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Reference for ``group_norm.layer_norm_backward``: each graph's local gradients in reverse."""
    return _backward(dout, cache)


def group_norm_forward_naive(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    *,
    num_groups: int,
    eps: float = 1e-5,
) -> tuple[np.ndarray, NormNaiveCache]:
    """Reference for ``group_norm.group_norm_forward``: a graph per sample and group."""
    num_groups, eps = check_group_norm_args(x, weight, bias, num_groups, eps)
    return _forward(x, weight, bias, 0, num_groups, eps)


def group_norm_backward_naive(
    dout: np.ndarray, cache: NormNaiveCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Reference for ``group_norm.group_norm_backward``."""
    return _backward(dout, cache)

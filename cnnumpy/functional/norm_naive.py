"""Reference forms of the normalisation kernels in ``norm.py``, written for clarity, not speed.

Batch norm is built node by node as a computational graph (mean, centred input, variance,
standard deviation, its inverse, normalised input, scale, shift), and its backward walks the
graph in reverse applying each node's local gradient. Local response norm loops over channels.
The fast kernels are tested against these.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .norm import _check_batch_norm_args, _check_lrn_args


class BatchNormNaiveCache(NamedTuple):
    xmu: np.ndarray  # x - mean, (M, D)
    sqrtvar: np.ndarray  # sqrt(var + eps), (D,)
    ivar: np.ndarray  # 1 / sqrtvar, (D,)
    xhat: np.ndarray  # xmu * ivar, (M, D)
    gamma: np.ndarray  # the weight, or ones when there is none
    has_weight: bool
    has_bias: bool
    batch_stats: bool
    x_shape: tuple[int, ...]  # the caller's shape: (M, D), or (N, C, H, W) for the spatial form


def _graph_forward(x2d, weight, bias, running_mean, running_var, use_batch, momentum, eps):
    """Batch norm of the columns of ``x2d: (M, D)``, one graph node per line."""
    m, d = x2d.shape
    gamma = weight if weight is not None else np.ones(d, dtype=x2d.dtype)
    beta = bias if bias is not None else np.zeros(d, dtype=x2d.dtype)
    if use_batch and m == 0:  # an empty batch has no statistics; the output is empty anyway
        mu, var = np.zeros(d, dtype=x2d.dtype), np.ones(d, dtype=x2d.dtype)
        xmu = x2d - mu
    elif use_batch:
        mu = np.sum(x2d, axis=0) / m  # mean
        xmu = x2d - mu  # centred
        sq = xmu**2
        var = np.sum(sq, axis=0) / m  # biased variance
    else:
        mu = running_mean
        xmu = x2d - mu
        var = running_var
    sqrtvar = np.sqrt(var + eps)  # standard deviation
    ivar = 1.0 / sqrtvar  # its inverse
    xhat = xmu * ivar  # normalised
    gammax = gamma * xhat  # scale
    out = gammax + beta  # shift
    if running_mean is None:
        new_mean = new_var = None
    elif use_batch and m > 0:
        new_mean = (1.0 - momentum) * running_mean + momentum * mu
        new_var = (1.0 - momentum) * running_var + momentum * var * m / (m - 1)
    else:
        new_mean, new_var = running_mean.copy(), running_var.copy()
    cache = BatchNormNaiveCache(
        xmu,
        sqrtvar,
        ivar,
        xhat,
        gamma,
        weight is not None,
        bias is not None,
        use_batch,
        x2d.shape,
    )
    return out, cache, new_mean, new_var


def _graph_backward(dout2d, cache: BatchNormNaiveCache):
    """Walk the graph of ``_graph_forward`` backwards, one local gradient per line."""
    m = dout2d.shape[0]
    dbeta = np.sum(dout2d, axis=0)  # shift: out = gammax + beta
    dgammax = dout2d
    dgamma = np.sum(dgammax * cache.xhat, axis=0)  # scale: gammax = gamma * xhat
    dxhat = dgammax * cache.gamma
    divar = np.sum(dxhat * cache.xmu, axis=0)  # xhat = xmu * ivar
    dxmu1 = dxhat * cache.ivar
    if cache.batch_stats:
        dsqrtvar = -divar / cache.sqrtvar**2  # ivar = 1 / sqrtvar
        dvar = 0.5 * dsqrtvar / cache.sqrtvar  # sqrtvar = sqrt(var + eps)
        dsq = np.ones_like(cache.xmu) * dvar / m  # var = sum(sq) / m
        dxmu2 = 2 * cache.xmu * dsq  # sq = xmu ** 2
        dx1 = dxmu1 + dxmu2  # xmu = x - mu: the path through x ...
        dmu = -np.sum(dx1, axis=0)  # ... and through mu
        dx2 = np.ones_like(dout2d) * dmu / m  # mu = sum(x) / m
        dx = dx1 + dx2
    else:
        dx = dxmu1  # eval: mean and variance are constants
    return (
        dx,
        dgamma if cache.has_weight else None,
        dbeta if cache.has_bias else None,
    )


def batch_norm_forward_naive(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, BatchNormNaiveCache, np.ndarray | None, np.ndarray | None]:
    """Reference for ``norm.batch_norm_forward`` (same contract): ``x: (N, D)``, params ``(D,)``."""
    use_batch, momentum, eps = _check_batch_norm_args(
        x, weight, bias, running_mean, running_var, training, momentum, eps, 2
    )
    return _graph_forward(x, weight, bias, running_mean, running_var, use_batch, momentum, eps)


def batch_norm_backward_naive(
    dout: np.ndarray, cache: BatchNormNaiveCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Reference for ``norm.batch_norm_backward``: the graph's local gradients in reverse."""
    return _graph_backward(dout, cache)


def spatial_batch_norm_forward_naive(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, BatchNormNaiveCache, np.ndarray | None, np.ndarray | None]:
    """Reference for ``norm.spatial_batch_norm_forward``: ``x: (N, C, H, W)``, params ``(C,)``.

    Every ``(n, h, w)`` position becomes a row of a ``(N*H*W, C)`` matrix, normalised by the
    2-D graph, and the result is folded back to ``(N, C, H, W)``.
    """
    use_batch, momentum, eps = _check_batch_norm_args(
        x, weight, bias, running_mean, running_var, training, momentum, eps, 4
    )
    n, c, h, w = x.shape
    rows = x.transpose(0, 2, 3, 1).reshape(n * h * w, c)
    out, cache, new_mean, new_var = _graph_forward(
        rows, weight, bias, running_mean, running_var, use_batch, momentum, eps
    )
    out = out.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out), cache._replace(x_shape=x.shape), new_mean, new_var


def spatial_batch_norm_backward_naive(
    dout: np.ndarray, cache: BatchNormNaiveCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Reference for ``norm.spatial_batch_norm_backward``, on the same ``(N*H*W, C)`` rows."""
    n, c, h, w = cache.x_shape
    dx, dweight, dbias = _graph_backward(dout.transpose(0, 2, 3, 1).reshape(n * h * w, c), cache)
    return np.ascontiguousarray(dx.reshape(n, h, w, c).transpose(0, 3, 1, 2)), dweight, dbias


class LocalResponseNormNaiveCache(NamedTuple):
    x: np.ndarray
    denom: np.ndarray
    size: int
    alpha: float
    beta: float


def _window(c: int, size: int, channels: int) -> tuple[int, int]:
    """The channels ``[lo, hi)`` summed for channel ``c``: PyTorch's zero-padded window."""
    return max(0, c - size // 2), min(channels, c + (size - 1) // 2 + 1)


def local_response_norm_forward_naive(
    x: np.ndarray, *, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> tuple[np.ndarray, LocalResponseNormNaiveCache]:
    """Reference for ``norm.local_response_norm_forward``: one channel at a time."""
    alpha, beta, k = _check_lrn_args(x, size, alpha, beta, k)
    channels = x.shape[1]
    denom = np.empty_like(x)
    for c in range(channels):
        lo, hi = _window(c, size, channels)
        denom[:, c] = k + alpha / size * np.sum(x[:, lo:hi] ** 2, axis=1)
    out = x / denom**beta
    return out, LocalResponseNormNaiveCache(x, denom, int(size), alpha, beta)


def local_response_norm_backward_naive(
    dout: np.ndarray, cache: LocalResponseNormNaiveCache
) -> np.ndarray:
    """Reference for ``norm.local_response_norm_backward``.

    Each output channel ``c`` sends ``dout_c d_c^-beta`` to ``x_c`` directly, and through its
    denominator ``-2 alpha beta/size dout_c x_c d_c^(-beta-1) x_j`` to every ``x_j`` in its window.
    """
    x, denom, size, alpha, beta = cache
    channels = x.shape[1]
    dx = dout * denom**-beta
    for c in range(channels):
        lo, hi = _window(c, size, channels)
        through_denom = dout[:, c] * x[:, c] * denom[:, c] ** (-beta - 1)
        dx[:, lo:hi] -= 2 * alpha * beta / size * x[:, lo:hi] * through_denom[:, None]
    return dx

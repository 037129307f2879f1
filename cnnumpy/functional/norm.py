"""Normalisation kernels: batch normalisation (per feature and per channel) and local response
normalisation across channels.

Batch norm is written in the compact closed form, with as few passes over memory as the maths
allows: the input is seen as ``(N, C, K)`` (``K = H * W``, or 1 for 2-D input), per-channel sums
are SIMD dot products along ``K``, and every full-size step runs in place over chunks of samples
that fit in the CPU caches, shared out between threads (``_bn_passes.py``). The forward reads x
three times (mean, centred variance, output) and writes only the output; the cache keeps a
reference to x (so x must not be modified in place before the backward; nothing in the
library does), and a centred copy x - mean only for inputs small enough to stay in the
caches. ``norm_naive.py`` holds the step-by-step computational-graph form (and a channel loop
for local response norm) that these are tested against.
"""

from __future__ import annotations

from numbers import Real
from typing import NamedTuple

import numpy as np

from . import _bn_passes as passes
from ._checks import check_array, check_same_dtype


class BatchNormCache(NamedTuple):
    x: np.ndarray  # the input itself, not a copy: the backward recomputes x - mean per chunk
    centred: np.ndarray | None  # (N, C, K) x - mean, kept only for small inputs (_bn_passes)
    mean: np.ndarray  # (C,) the mean x was centred with (the batch's, or the running mean)
    invstd: np.ndarray  # (C,) 1 / sqrt(var + eps) of the statistics x was normalised with
    weight: np.ndarray | None
    has_bias: bool
    batch_stats: bool  # normalised with the batch's own statistics, so gradients flow through them


def _check_batch_norm_args(
    x, weight, bias, running_mean, running_var, training, momentum, eps, ndim: int
) -> tuple[bool, float, float]:
    """Validate batch-norm arguments; return ``(use_batch_stats, momentum, eps)`` as Python types.

    Shared with the naive reference so both reject the same inputs in the same words.
    """
    layout = "(N, D)" if ndim == 2 else "(N, C, H, W)"
    check_array(x, "x", ndim=ndim)
    what = "features" if ndim == 2 else "channels"
    c = x.shape[1]
    for name, a in [
        ("weight", weight),
        ("bias", bias),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ]:
        if a is not None:
            check_array(a, name, ndim=1)
            check_same_dtype(x, a, name)
            if a.shape != (c,):
                raise ValueError(
                    f"{name} must have shape ({c},) to match the {c} {what} of x {layout} "
                    f"(shape {x.shape}), got {a.shape}"
                )
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must both be arrays or both be None")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {training!r}")
    if momentum is None:
        raise ValueError(
            "momentum=None (a cumulative moving average) is not supported; pass a float such as 0.1"
        )
    for name, v in [("momentum", momentum), ("eps", eps)]:
        if not isinstance(v, Real) or isinstance(v, bool):
            raise TypeError(f"{name} must be a real number, got {v!r}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    # As PyTorch's modules: without running statistics, eval mode normalises with the batch's.
    use_batch_stats = bool(training) or running_mean is None
    # One value per channel has no spread to normalise by (PyTorch's check and message); none
    # at all (an empty batch) is allowed and gives an empty output, as in PyTorch.
    if use_batch_stats and c > 0 and x.size == c:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {x.shape}: "
            f"batch statistics need at least 2 values per channel (N * H * W >= 2); in eval "
            f"mode the running statistics normalise a single sample"
        )
    # Python floats keep float32 arrays float32 (an np.float64 scalar would upcast them).
    return use_batch_stats, float(momentum), float(eps)


def _forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
    use_batch, momentum, eps = _check_batch_norm_args(
        x, weight, bias, running_mean, running_var, training, momentum, eps, x.ndim
    )
    if x.size == 0:
        return _empty_forward(x, weight, bias, running_mean, running_var, use_batch)
    x3 = passes.as_3d(x)
    if use_batch:
        m = x3.shape[0] * x3.shape[2]
        mean = passes.channel_sum(x3) / m
        # Two-pass variance (sum of squared deviations): no cancellation as in E[x^2] - E[x]^2.
        centred = np.empty_like(x3) if passes.keeps_centred(x3) else None
        var = passes.centred_squares(x3, mean, centred) / m
        invstd = 1.0 / np.sqrt(var + eps)
        if running_mean is not None:
            new_mean = (1.0 - momentum) * running_mean + momentum * mean
            new_var = (1.0 - momentum) * running_var + momentum * (var * (m / (m - 1)))
        else:
            new_mean = new_var = None
    else:
        centred = None
        mean = running_mean.copy()
        invstd = 1.0 / np.sqrt(running_var + eps)
        new_mean, new_var = running_mean.copy(), running_var.copy()
    # Normalising and scaling in one pass: out = (x - mean) * (weight * invstd) + bias.
    scale = invstd if weight is None else weight * invstd
    out3 = passes.normalise(x3, mean, scale, bias, centred)
    cache = BatchNormCache(x, centred, mean, invstd, weight, bias is not None, use_batch)
    return out3.reshape(x.shape), cache, new_mean, new_var


def _empty_forward(x, weight, bias, running_mean, running_var, use_batch):
    """An input without values (``N = 0``, or no pixels) as PyTorch handles it: an empty
    output and the running statistics left as they are (there are no batch statistics)."""
    c = x.shape[1]
    # mean and invstd are never read: the backward of an empty input returns early too.
    cache = BatchNormCache(
        x, None, np.zeros(c, x.dtype), np.ones(c, x.dtype), weight, bias is not None, use_batch
    )
    if running_mean is None:
        return np.empty(x.shape, dtype=x.dtype), cache, None, None
    return np.empty(x.shape, dtype=x.dtype), cache, running_mean.copy(), running_var.copy()


def batch_norm_forward(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, BatchNormCache, np.ndarray | None, np.ndarray | None]:
    """Batch normalisation of each feature over the batch (PyTorch's ``BatchNorm1d`` on 2-D input).

    Shapes: ``x: (N, D)``; ``weight, bias, running_mean, running_var: (D,)`` or None;
    ``out: (N, D)``.

    ``out = (x - mean) / sqrt(var + eps) * weight + bias``. Training: ``mean`` and the biased
    ``var`` are the batch's (over the ``m = N`` rows), and the running statistics become
    ``(1 - momentum) * running + momentum * batch`` with the unbiased ``var * m / (m - 1)``.
    Eval: ``mean, var = running_mean, running_var``. Without running statistics (both None) the
    batch's are used in either mode, and None is returned for them.

    Degenerate batches, as in PyTorch: with batch statistics, a single value per feature
    (``N = 1``) raises ValueError (its variance is 0, so there is nothing to normalise by); an
    empty batch (``N = 0``) gives an empty output in either mode and leaves the running
    statistics as they were (returned as copies), and its backward gives an empty ``dx`` and
    zero ``dweight`` and ``dbias``.

    Returns ``(out, cache, new_running_mean, new_running_var)``; the inputs are never modified.
    """
    check_array(x, "x", ndim=2)
    return _forward(x, weight, bias, running_mean, running_var, training, momentum, eps)


def spatial_batch_norm_forward(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, BatchNormCache, np.ndarray | None, np.ndarray | None]:
    """Batch normalisation of each channel over ``(N, H, W)`` (PyTorch's ``BatchNorm2d``).

    Shapes: ``x: (N, C, H, W)``; ``weight, bias, running_mean, running_var: (C,)`` or None;
    ``out: (N, C, H, W)``. The formula and returns are those of ``batch_norm_forward`` with
    ``m = N * H * W`` values per channel: batch statistics need ``m >= 2`` (so ``N = 1`` is
    fine for images larger than 1x1), and ``m = 0`` gives an empty output.
    """
    check_array(x, "x", ndim=4)
    return _forward(x, weight, bias, running_mean, running_var, training, momentum, eps)


def _backward(dout: np.ndarray, cache: BatchNormCache):
    x, mean, invstd, weight = cache.x, cache.mean, cache.invstd, cache.weight
    if dout.shape != x.shape:
        raise ValueError(f"dout must have the forward output's shape {x.shape}, got {dout.shape}")
    if x.size == 0:  # nothing flows back; the parameters get zero gradients, as in PyTorch
        c = x.shape[1]
        dweight = np.zeros(c, x.dtype) if weight is not None else None
        return np.empty(x.shape, x.dtype), dweight, np.zeros(c, x.dtype) if cache.has_bias else None
    x3, dout3 = passes.as_3d(x), passes.as_3d(dout)
    sum_dout, sum_dout_xc = passes.backward_sums(x3, dout3, mean, cache.centred)
    sum_dout_xhat = sum_dout_xc * invstd
    scale = invstd if weight is None else weight * invstd
    if not cache.batch_stats:
        dx3 = dout3 * scale[:, None]
    else:
        m = x3.shape[0] * x3.shape[2]
        # dx = scale * (dout - sum(dout)/m - xhat * sum(dout*xhat)/m), built up in place, with
        # xhat = (x - mean) * invstd folded into the per-channel factor.
        centred_factor = -sum_dout_xhat * invstd / m
        coefficients = (centred_factor, sum_dout / m, scale)
        dx3 = passes.input_grad(x3, dout3, mean, coefficients, cache.centred)
    dweight = sum_dout_xhat if weight is not None else None
    dbias = sum_dout if cache.has_bias else None
    return dx3.reshape(x.shape), dweight, dbias


def batch_norm_backward(
    dout: np.ndarray, cache: BatchNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients of batch norm: ``(dx, dweight, dbias)``, None for a None weight or bias.

    Shapes: ``dout: (N, D)`` (or ``(N, C, H, W)`` from the spatial forward); ``dx`` likewise;
    ``dweight, dbias: (D,)``.

    Derivation, per channel over its ``m`` values, with ``s = 1/sqrt(var + eps)``,
    ``xhat = (x - mean) s`` and ``g = dout * weight`` (the gradient reaching xhat):
    ``dbias = sum(dout)``, ``dweight = sum(dout * xhat)``. Through the batch statistics,
    ``d mean/dx_i = 1/m`` and ``d var/dx_i = 2 (x_i - mean)/m`` (the mean's term sums to zero),
    hence ``d s/dx_i = -s^3 (x_i - mean)/m`` and ``d xhat_j/dx_i = s (delta_ij - 1/m - xhat_j
    xhat_i / m)``; summing ``g_j d xhat_j/dx_i`` over ``j``,
    ``dx_i = (weight s / m) (m dout_i - sum(dout) - xhat_i sum(dout xhat))``.
    In eval mode the statistics are constants and ``dx = dout * weight * s``.
    """
    if cache.x.ndim != 2:
        raise ValueError("this cache is from spatial_batch_norm_forward: use its backward")
    return _backward(dout, cache)


def spatial_batch_norm_backward(
    dout: np.ndarray, cache: BatchNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients of spatial batch norm: ``(dx, dweight, dbias)``.

    Shapes: ``dout, dx: (N, C, H, W)``; ``dweight, dbias: (C,)``. The derivation is that of
    ``batch_norm_backward`` with the sums over ``(N, H, W)`` and ``m = N * H * W``.
    """
    if cache.x.ndim != 4:
        raise ValueError("this cache is from batch_norm_forward: use its backward")
    return _backward(dout, cache)


class LocalResponseNormCache(NamedTuple):
    x: np.ndarray
    denom: np.ndarray  # d = k + alpha/size * (window sum of x^2), x's shape
    scale: np.ndarray  # d ** -beta, so out = x * scale
    size: int
    alpha: float
    beta: float


def _check_lrn_args(x, size, alpha, beta, k) -> tuple[float, float, float]:
    """Validate local-response-norm arguments; return ``(alpha, beta, k)`` as Python floats."""
    check_array(x, "x")
    if x.ndim < 3:
        raise ValueError(f"x must be (N, C, ...) with 3 or more dimensions, got shape {x.shape}")
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
        raise TypeError(f"size must be an int, got {size!r}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    for name, v in [("alpha", alpha), ("beta", beta), ("k", k)]:
        if not isinstance(v, Real) or isinstance(v, bool):
            raise TypeError(f"{name} must be a real number, got {v!r}")
    return float(alpha), float(beta), float(k)


def _channel_window_sum(a: np.ndarray, front: int, back: int) -> np.ndarray:
    """``s[:, c] = sum of a[:, c'] for c - front <= c' <= c + back``, zero outside ``[0, C)``.

    A loop over the window's offsets, each a shifted slice added along the channel axis.
    """
    c = a.shape[1]
    s = np.zeros_like(a)
    for off in range(-front, back + 1):
        if abs(off) >= c:
            continue  # this offset only reaches the zero padding
        if off >= 0:
            s[:, : c - off] += a[:, off:]
        else:
            s[:, -off:] += a[:, : c + off]
    return s


def local_response_norm_forward(
    x: np.ndarray, *, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> tuple[np.ndarray, LocalResponseNormCache]:
    """Local response normalisation across channels, as ``torch.nn.functional.local_response_norm``.

    Shapes: ``x, out: (N, C, H, W)`` (any ``(N, C, ...)`` with 3 or more dimensions works).

    ``out[:, c] = x[:, c] / d[:, c] ** beta`` with
    ``d[:, c] = k + alpha / size * sum_{c' = c - size//2}^{c + (size-1)//2} x[:, c'] ** 2``,
    channels outside ``[0, C)`` counting as zero (PyTorch pads ``size//2`` channels in front and
    ``(size-1)//2`` behind, then average-pools with a window of ``size``).
    """
    alpha, beta, k = _check_lrn_args(x, size, alpha, beta, k)
    denom = _channel_window_sum(x * x, size // 2, (size - 1) // 2)
    denom *= alpha / size
    denom += k
    scale = np.power(denom, -beta)
    out = x * scale
    return out, LocalResponseNormCache(x, denom, scale, int(size), alpha, beta)


def local_response_norm_backward(dout: np.ndarray, cache: LocalResponseNormCache) -> np.ndarray:
    """Gradient of local response normalisation: ``dx``, of x's shape.

    Derivation: ``out_c = x_c d_c^-beta`` and ``d d_c' / d x_c = 2 alpha/size x_c`` whenever ``c``
    lies in the window of ``c'``, i.e. ``c' - size//2 <= c <= c' + (size-1)//2``. So
    ``dx_c = dout_c d_c^-beta - 2 alpha beta/size x_c sum_{c': c in window(c')} dout_c' x_c'
    d_c'^(-beta-1)``, and ``c' `` runs over ``c - (size-1)//2 .. c + size//2``: the same window
    mirrored.
    """
    x, denom, scale = cache.x, cache.denom, cache.scale
    if dout.shape != x.shape:
        raise ValueError(f"dout must have the forward output's shape {x.shape}, got {dout.shape}")
    g = dout * x
    g *= scale
    g /= denom  # dout x d^(-beta-1)
    back = _channel_window_sum(g, (cache.size - 1) // 2, cache.size // 2)
    back *= x
    back *= -2.0 * cache.alpha * cache.beta / cache.size
    dx = dout * scale
    dx += back
    return dx

"""Synchronised batch norm: one batch split over K ranks, normalised as the whole batch.

Rank ``r`` holds a shard ``x_r`` of ``n_r`` samples of a global batch of ``n = sum(n_r)``;
per channel it has ``m_r = n_r * H * W`` values of the global ``m = sum(m_r)``. The forward
normalises with the statistics of the global batch and the backward sends back the
gradient through them, each with a few all-reduces of per-channel vectors; everything
full-size runs on the rank's own shard, with the passes of ``norm.py``.

Forward, in two all-reduces (two passes, as ``norm.py``: no cancellation in float32):

1. ``[m_r, sum(x_r)]`` per channel, summed: ``m`` and ``mean = sum(x) / m``;
2. ``sum((x_r - mean)^2)`` per channel, summed: the biased ``var`` (divided by ``m``).

Backward, one all-reduce of ``[sum(dout_r), sum(dout_r * xhat_r)]`` per channel (weighted,
see :func:`sync_batch_norm_backward`); ``dx`` is then formed locally.

The sums travel in float64 (the count of values is exact there at any batch size) and the
statistics are rounded once to x's dtype, so with one rank the results are bit-identical to
``spatial_batch_norm_forward`` / ``batch_norm_forward``. Every rank takes part in every
all-reduce, one with an empty shard included (it sends zeros), so no rank waits for ever.
The kernel knows the other ranks only through ``allreduce``, a callable that replaces a
float64 array by its element-wise sum over the ranks, in place (a communicator's
``allreduce_``).

``sync_batch_norm_forward_naive`` / ``sync_batch_norm_backward_naive`` are the reference:
the graph-form batch norm of ``norm_naive.py`` on the concatenation of all shards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from . import _bn_passes as passes
from ._checks import check_array
from .norm import (
    BatchNormCache,
    _check_batch_norm_args,
    batch_norm_backward,
    batch_norm_forward,
    spatial_batch_norm_backward,
    spatial_batch_norm_forward,
)
from .norm_naive import (
    BatchNormNaiveCache,
    spatial_batch_norm_backward_naive,
    spatial_batch_norm_forward_naive,
)

Allreduce = Callable[[np.ndarray], np.ndarray]


class SyncBatchNormCache(NamedTuple):
    local: BatchNormCache  # this rank's x (and x - mean) with the *global* mean and invstd
    allreduce: Allreduce | None  # None: normalised without communication (eval mode)
    count: int  # m, the values per channel over all ranks


def sync_batch_norm_forward(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    *,
    allreduce: Allreduce,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, SyncBatchNormCache, np.ndarray | None, np.ndarray | None]:
    """Batch norm of this rank's shard with the statistics of the batch of all ranks.

    Shapes: ``x: (N_r, C, H, W)`` (or ``(N_r, C)``, where ``H * W`` counts as 1);
    ``weight, bias, running_mean, running_var: (C,)`` or None; ``out: x``'s shape. ``C``,
    ``H``, ``W``, the dtype and the arguments must be the same on every rank, and every rank
    must call this (and the backward) the same number of times: the calls are collective.

    ``out = (x - mean) / sqrt(var + eps) * weight + bias``, in training with the global
    ``mean`` and biased ``var`` over the ``m = sum_r N_r * H * W`` values per channel; the
    running statistics become ``(1 - momentum) * running + momentum * batch`` with the
    unbiased ``var * m / (m - 1)``, the same on every rank. The contract is otherwise that
    of ``spatial_batch_norm_forward``: ``m = 1`` raises ValueError (on every rank, since all
    see the same ``m``); ``m = 0`` gives empty outputs and leaves the running statistics as
    they were; a rank whose own shard is empty gets an empty output and still receives the
    updated running statistics.

    Eval mode (``training=False``) calls no ``allreduce``: with running statistics the layer
    is the same on every rank, and without them (``running_mean = None``) each rank
    normalises with its own shard's statistics, as PyTorch's ``SyncBatchNorm`` does
    (evaluation is sharded, and its ranks need not call the layer equally often).

    Returns ``(out, cache, new_running_mean, new_running_var)``; the inputs are never modified.
    """
    check_array(x, "x", ndim=(2, 4))
    if not training:
        forward = spatial_batch_norm_forward if x.ndim == 4 else batch_norm_forward
        out, local, mean, var = forward(
            x, weight, bias, running_mean, running_var,
            training=training, momentum=momentum, eps=eps,
        )  # fmt: skip
        return out, SyncBatchNormCache(local, None, 0), mean, var
    # One value per channel on this rank is fine when the global batch has more: the shared
    # check sees an empty shard then, and the global count is checked below.
    probe = x[:0] if x.size and x.size == x.shape[1] else x
    _, momentum, eps = _check_batch_norm_args(
        probe, weight, bias, running_mean, running_var, training, momentum, eps, x.ndim
    )
    x3 = passes.as_3d(x)
    c, local = x3.shape[1], x3.shape[0] * x3.shape[2]
    sums = np.zeros(1 + c, np.float64)
    sums[0] = local
    if local:
        sums[1:] = passes.channel_sum(x3)
    allreduce(sums)
    m = int(round(sums[0]))
    if m == 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {x.shape} "
            f"on this rank and 1 value per channel over all ranks: batch statistics need at "
            f"least 2 values per channel (N * H * W >= 2 over all ranks)"
        )
    mean = (sums[1:] / max(m, 1)).astype(x.dtype)
    centred = np.empty_like(x3) if local and passes.keeps_centred(x3) else None
    squares = np.zeros(c, np.float64)
    if local:
        squares[:] = passes.centred_squares(x3, mean, centred)
    if m:
        allreduce(squares)
    var = (squares / max(m, 1)).astype(x.dtype)
    invstd = 1.0 / np.sqrt(var + eps)
    if running_mean is None:
        new_mean = new_var = None
    elif m == 0:  # no values on any rank: no statistics, as batch norm on an empty batch
        new_mean, new_var = running_mean.copy(), running_var.copy()
    else:
        new_mean = (1.0 - momentum) * running_mean + momentum * mean
        new_var = (1.0 - momentum) * running_var + momentum * (var * (m / (m - 1)))
    scale = invstd if weight is None else weight * invstd
    if local:
        out3 = passes.normalise(x3, mean, scale, bias, centred)
    else:
        out3 = np.empty(x3.shape, x.dtype)
    cache = BatchNormCache(x, centred, mean, invstd, weight, bias is not None, True)
    return out3.reshape(x.shape), SyncBatchNormCache(cache, allreduce, m), new_mean, new_var


def sync_batch_norm_backward(
    dout: np.ndarray, cache: SyncBatchNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients of synchronised batch norm on this rank: ``(dx, dweight, dbias)``.

    Shapes: ``dout, dx: x``'s shape; ``dweight, dbias: (C,)``, None for a None weight or bias.

    The gradients follow the convention of data-parallel training (the Trainer on K ranks):
    rank ``r``'s loss ``L_r`` is the mean over its ``n_r`` samples, the global loss is
    ``L = sum_r s_r L_r`` with ``s_r = n_r / n = m_r / m``, and the gradient of every
    parameter is ``sum_r s_r grad_r`` (the weighted all-reduce of the gradient buckets). So
    every gradient a rank holds is ``1 / s_r`` times its share of the global gradient, and so
    is ``dout = dL_r/dy_r = (1 / s_r) dL/dy_r``. With ``g = s_r dout`` (the gradient of ``L``)
    and ``xhat = (x - mean) * invstd``:

    - ``G1 = sum_r s_r sum(dout_r)`` and ``G2 = sum_r s_r sum(dout_r * xhat_r)`` are the
      global ``sum(g)`` and ``sum(g * xhat)`` over all ``m`` values: one all-reduce;
    - single-process batch norm on the whole batch gives
      ``dL/dx = (weight * invstd / m) (m g - G1 - xhat G2)``; this rank returns ``1 / s_r``
      times it, ``dx = (weight * invstd / m) (m dout - G1 / s_r - xhat G2 / s_r)``, so the
      layers below it keep the convention;
    - ``dweight = sum(dout_r * xhat_r)`` and ``dbias = sum(dout_r)``, this rank's own sums:
      ``sum_r s_r dweight_r = G2 = dL/dweight`` and ``sum_r s_r dbias_r = G1 = dL/dbias``,
      which is what the gradient all-reduce forms. Summing them here too would count the
      other ranks twice.

    So the Trainer's procedure gives exactly the gradients of single-process batch norm on
    the full batch, also for unequal shards. With equal shards (``s_r = 1/K``) this is
    PyTorch's ``SyncBatchNorm`` under DDP (``dx`` with the unweighted global sums of
    ``dout``); with one rank it is ``spatial_batch_norm_backward``, bit for bit. A rank with
    an empty shard sends zeros and gets an empty ``dx`` and zero ``dweight`` and ``dbias``.
    A cache from eval mode gives the gradients of that rank's batch norm, without
    communication.
    """
    bn = cache.local
    x = bn.x
    if cache.allreduce is None:
        backward = spatial_batch_norm_backward if x.ndim == 4 else batch_norm_backward
        return backward(dout, bn)
    if dout.shape != x.shape:
        raise ValueError(f"dout must have the forward output's shape {x.shape}, got {dout.shape}")
    x3, dout3 = passes.as_3d(x), passes.as_3d(dout)
    c, local, m = x3.shape[1], x3.shape[0] * x3.shape[2], cache.count
    sum_dout, sum_dout_xhat = np.zeros(c, x.dtype), np.zeros(c, x.dtype)
    if local:
        sum_dout, sum_dout_xc = passes.backward_sums(x3, dout3, bn.mean, bn.centred)
        sum_dout_xhat = sum_dout_xc * bn.invstd
    share = local / m if m else 0.0
    weighted = np.concatenate([sum_dout, sum_dout_xhat]).astype(np.float64) * share
    if m:  # every rank knows m, so either all of them call allreduce or none does
        cache.allreduce(weighted)
    dweight = sum_dout_xhat if bn.weight is not None else None
    dbias = sum_dout if bn.has_bias else None
    if not local:
        return np.empty(x.shape, x.dtype), dweight, dbias
    # The global sums in this rank's scale: the rank's own sums when it is alone (share 1).
    global_dout = (weighted[:c] / share).astype(x.dtype)
    global_dout_xhat = (weighted[c:] / share).astype(x.dtype)
    scale = bn.invstd if bn.weight is None else bn.weight * bn.invstd
    # dx = scale * (dout - G1/(s m) - xhat * G2/(s m)), with xhat = (x - mean) * invstd folded
    # into the per-channel factor, as in norm.py.
    centred_factor = -global_dout_xhat * bn.invstd / m
    coefficients = (centred_factor, global_dout / m, scale)
    dx3 = passes.input_grad(x3, dout3, bn.mean, coefficients, bn.centred)
    return dx3.reshape(x.shape), dweight, dbias


class SyncBatchNormNaiveCache(NamedTuple):
    whole: BatchNormNaiveCache | None  # batch norm's graph over all shards (None in eval)
    sizes: tuple[int, ...]  # N_r of each rank, in rank order


def sync_batch_norm_forward_naive(
    shards: Sequence[np.ndarray],
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    *,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[list[np.ndarray], SyncBatchNormNaiveCache, np.ndarray | None, np.ndarray | None]:
    """Reference for ``sync_batch_norm_forward`` on all ranks at once: ``shards[r]`` is rank
    ``r``'s ``x: (N_r, C, H, W)``; returns each rank's ``out``, a cache and the running
    statistics. In training, the graph-form batch norm of the concatenated batch, split back;
    in eval, each shard's own batch norm (the statistics never mix)."""
    sizes = tuple(s.shape[0] for s in shards)
    if not training:
        results = [
            spatial_batch_norm_forward_naive(
                s, weight, bias, running_mean, running_var,
                training=False, momentum=momentum, eps=eps,
            )[0]
            for s in shards
        ]  # fmt: skip
        same = (running_mean, running_var)
        copies = [None if a is None else a.copy() for a in same]
        return results, SyncBatchNormNaiveCache(None, sizes), *copies
    whole = np.concatenate(shards)
    out, cache, new_mean, new_var = spatial_batch_norm_forward_naive(
        whole, weight, bias, running_mean, running_var,
        training=True, momentum=momentum, eps=eps,
    )  # fmt: skip
    outs = np.split(out, np.cumsum(sizes)[:-1])
    return outs, SyncBatchNormNaiveCache(cache, sizes), new_mean, new_var


def sync_batch_norm_backward_naive(
    douts: Sequence[np.ndarray], cache: SyncBatchNormNaiveCache
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Reference for ``sync_batch_norm_backward`` on all ranks at once (training caches):
    ``douts[r]`` is rank ``r``'s ``dL_r/dy_r``; returns each rank's ``dx``, ``dweight`` and
    ``dbias`` (as arrays; the affine flags are not modelled).

    Said plainly: the global loss's gradient is ``g_r = s_r dout_r`` (``s_r = N_r / N``); the
    graph backward of batch norm on the whole batch gives ``dL/dx``, and rank ``r`` holds
    ``dL/dx_r / s_r``, and its own sums ``sum(dout_r * xhat_r)`` and ``sum(dout_r)``.
    """
    sizes, whole = cache.sizes, cache.whole
    total = sum(sizes)
    shares = [size / total if total else 0.0 for size in sizes]
    upstream = np.concatenate([d * s for d, s in zip(douts, shares, strict=True)])
    dx, _, _ = spatial_batch_norm_backward_naive(upstream, whole)
    bounds = np.cumsum((0, *sizes))
    per_sample = whole.xhat.shape[0] // max(total, 1)  # H * W rows per sample
    dxs, dweights, dbiases = [], [], []
    for r, size in enumerate(sizes):
        dxs.append(dx[bounds[r] : bounds[r + 1]] / shares[r] if size else douts[r].copy())
        rows = slice(bounds[r] * per_sample, bounds[r + 1] * per_sample)
        dout_rows = douts[r].transpose(0, 2, 3, 1).reshape(-1, whole.xhat.shape[1])
        dweights.append(np.sum(dout_rows * whole.xhat[rows], axis=0))
        dbiases.append(np.sum(dout_rows, axis=0))
    return dxs, dweights, dbiases

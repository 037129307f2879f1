"""LeNet-5's Euclidean RBF output layer and the MAP loss trained on it.

LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document recognition"
(Proc. IEEE, 1998), section II.B: the output layer holds one fixed prototype ``w_i`` per class (in
the paper an 84-dimensional +1/-1 bitmap of a 7x12 drawing of the character) and outputs, for
each class, the squared Euclidean distance ``y_i = sum_j (x_j - w_ij)^2`` between the F6 features
``x`` and that prototype: a *penalty*, lower is better. The prediction is therefore
``penalties.argmin(axis=1)``, not an argmax; no separate predict function is needed.

Section II.C's loss is ``map_loss`` below. The prototypes are usually kept fixed (the paper
chooses them by hand), but ``rbf_backward`` returns their gradient too.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import check_array, check_labels, check_real, check_same_dtype


class RBFCache(NamedTuple):
    x: np.ndarray  # (N, D) the features
    weight: np.ndarray  # (K, D) the prototypes


def _check_rbf(x: np.ndarray, weight: np.ndarray, check_finite: bool) -> None:
    check_array(x, "x", ndim=2, finite=check_finite)
    check_array(weight, "weight", ndim=2)
    check_same_dtype(x, weight, "weight")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"x has {x.shape[1]} features per sample (shape {x.shape}) but the prototypes in "
            f"weight have width {weight.shape[1]} (weight shape {weight.shape})"
        )


def _differences(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``diff[n, i, :] = x[n] - weight[i]``, shape ``(N, K, D)``."""
    return x[:, None, :] - weight[None, :, :]


def rbf_forward(
    x: np.ndarray, weight: np.ndarray, *, check_finite: bool = False
) -> tuple[np.ndarray, RBFCache]:
    """Euclidean RBF penalties ``out[n, i] = sum_j (x[n, j] - weight[i, j])^2``.

    Shapes: ``x: (N, D)``, ``weight: (K, D)`` (one prototype per row, PyTorch's
    ``(out_features, in_features)`` layout), ``out: (N, K)``.

    Implementation choice: the differences ``x[n] - w[i]`` are formed explicitly, an ``(N, K, D)``
    temporary, instead of the expansion ``||x||^2 - 2 x.w + ||w||^2`` with one matrix product. The
    expansion subtracts numbers of size ``||x||^2 + ||w||^2`` to get a result that, for the
    correct class of a trained network, is close to 0 (the MAP loss pulls ``x`` onto its
    prototype): its absolute error ~ eps * (||x||^2 + ||w||^2) is then a large *relative* error
    in exactly the penalty that matters, and it can even come out negative. The explicit form
    has no cancellation and agrees with ``rbf_forward_naive`` to rounding. Its cost, N*K*D
    floats, is small for LeNet-5 (K = 10, D = 84: 840 values per sample).
    """
    _check_rbf(x, weight, check_finite)
    diff = _differences(x, weight)
    out = np.einsum("nkd,nkd->nk", diff, diff)
    # The cache holds references only; backward recomputes the (N, K, D) differences rather than
    # keeping them alive between the forward and the backward pass.
    return out, RBFCache(x, weight)


def rbf_backward(dout: np.ndarray, cache: RBFCache) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``out[n, i] = sum_j (x[n, j] - w[i, j])^2``; returns ``(dx, dweight)``.

    Shapes: ``dout: (N, K)``, ``dx: (N, D)``, ``dweight: (K, D)``.

    Derivation: ``d out[n, i] / d x[n, j] = 2 (x[n, j] - w[i, j])`` and
    ``d out[n, i] / d w[i, j] = -2 (x[n, j] - w[i, j])``, so with ``diff[n, i] = x[n] - w[i]``::

        dx[n]      =  2 sum_i dout[n, i] diff[n, i]
        dweight[i] = -2 sum_n dout[n, i] diff[n, i]

    Both are batched matrix products over the differences (batched over n for dx, over i for
    dweight). As in the forward, the differences are used directly rather than expanded into
    ``x sum_i dout - dout @ w``, which would cancel when ``x`` is near a prototype.
    """
    x, weight = cache
    diff = _differences(x, weight)  # (N, K, D)
    dx = 2 * (dout[:, None, :] @ diff)[:, 0, :]  # (N, 1, K) @ (N, K, D)
    dweight = -2 * (dout.T[:, None, :] @ diff.transpose(1, 0, 2))[:, 0, :]  # (K,1,N) @ (K,N,D)
    return dx, dweight


def rbf_forward_naive(
    x: np.ndarray, weight: np.ndarray, *, check_finite: bool = False
) -> tuple[np.ndarray, RBFCache]:
    """Reference loop version of ``rbf_forward`` (same shapes and contract)."""
    _check_rbf(x, weight, check_finite)
    n, k = x.shape[0], weight.shape[0]
    out = np.zeros((n, k), dtype=x.dtype)
    for s in range(n):
        for i in range(k):
            d = x[s] - weight[i]
            out[s, i] = np.sum(d * d)
    return out, RBFCache(x, weight)


def rbf_backward_naive(dout: np.ndarray, cache: RBFCache) -> tuple[np.ndarray, np.ndarray]:
    """Reference loop version of ``rbf_backward``: one (sample, prototype) pair at a time."""
    x, weight = cache
    dx = np.zeros_like(x)
    dweight = np.zeros_like(weight)
    for s in range(x.shape[0]):
        for i in range(weight.shape[0]):
            g = 2 * dout[s, i] * (x[s] - weight[i])
            dx[s] += g
            dweight[i] -= g
    return dx, dweight


# Default for map_loss's j; see its docstring.
LENET5_MAP_J = 84.0


def map_loss(
    penalties: np.ndarray,
    y: np.ndarray,
    *,
    j: float = LENET5_MAP_J,
    check_finite: bool = False,
) -> tuple[float, np.ndarray]:
    """LeNet-5's maximum a posteriori loss on RBF penalties (eq. 9 of LeCun et al. 1998).

    Shapes: ``penalties: (N, K)`` (the ``rbf_forward`` outputs, lower is better), ``y: (N,)``
    integers in ``[0, K)``, ``dpenalties: (N, K)``.

    ``E = (1/N) sum_n [ y[n, c_n] + log(exp(-j) + sum_i exp(-y[n, i])) ]`` with ``c_n`` the label.
    The first term pulls the correct penalty down; the log term is a softmax-style normaliser
    that pushes the incorrect penalties up (a discriminative criterion: all penalties cannot
    collapse to 0 together). The ``exp(-j)`` term acts as an extra, fictitious "rubbish" class
    with constant penalty ``j``: once an incorrect penalty is a few units above ``j`` its
    push-up fades, and the correct penalty is pulled until it is a few units below ``j``.

    Default ``j = 84``: the paper only says j is a positive constant. 84 is the penalty that any
    of LeNet-5's 84-dimensional +1/-1 prototypes gives to the undecided output ``x = 0`` (the
    point equidistant from all of them): the rubbish class is then that origin, so an incorrect
    class is pushed away until it is farther than "no information", and the correct class is
    pulled until it is nearer than that. For prototypes of another width D or scale, pass
    ``j = ||w||^2`` of a prototype, or whatever threshold suits.

    Computed stably as a log-sum-exp over the K+1 exponents ``-j, -y_1, ..., -y_K`` with their
    maximum ``m = -min(j, min_i y_i)`` subtracted, so penalties of any finite size give a finite
    loss.

    Gradient: with ``Z = exp(-j) + sum_k exp(-y_k)``, ``d log Z / d y_i = -exp(-y_i) / Z``, so
    ``dE/dy[n, i] = ([i == c_n] - exp(-y[n, i]) / Z_n) / N``, where ``exp(-y_i)/Z`` is evaluated
    as ``exp(-y_i - log Z)``. An empty batch (``N = 0``) gives a NaN loss and an empty
    gradient, as the losses of ``loss.py`` do.
    """
    check_array(penalties, "penalties", ndim=2, finite=check_finite)
    n, k = penalties.shape
    if k == 0:
        raise ValueError(
            f"penalties must have at least one class (K >= 1), got shape {penalties.shape}"
        )
    check_labels(y, n, k)
    j = check_real(j, "j")
    if n == 0:  # no mean over no samples: NaN, as the losses in loss.py
        return float("nan"), np.zeros(penalties.shape, dtype=penalties.dtype)

    neg = -penalties
    m = np.maximum(neg.max(axis=1, keepdims=True), -j)  # (N, 1), the largest exponent
    sum_exp = np.exp(neg - m).sum(axis=1, keepdims=True) + np.exp(-j - m)
    log_z = m + np.log(sum_exp)  # (N, 1)
    rows = np.arange(n)
    loss = float((penalties[rows, y] + log_z[:, 0]).mean())

    dpenalties = -np.exp(neg - log_z)
    dpenalties[rows, y] += 1
    dpenalties /= n
    return loss, dpenalties

"""Diagonal Gauss-Newton curvature, back-propagated layer by layer like the gradient.

LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document recognition"
(Proc. IEEE, 1998), Appendix C, and LeCun's "diagonal second-derivative back-propagation": each
parameter ``w_k`` of a network gets an estimate ``h_kk`` of the diagonal of the loss's Hessian,
used by the stochastic diagonal Levenberg-Marquardt optimiser (``cnnumpy.optim.SDLM``).

The rule. For a layer ``out = g(x, w)`` with Jacobians ``J = d out / d x`` and
``J_w = d out / d w``, and ``h_out`` the curvature already known for each output element::

    h_x = (J ** 2)^T h_out          h_w = (J_w ** 2)^T h_out          (squares elementwise)

This is the Gauss-Newton approximation with the off-diagonal terms dropped as well: the
second derivatives of the layer itself (``d^2 out / dx^2``) are left out, which keeps every
``h`` non-negative, and ``(J^T H J)_ii`` is replaced by ``sum_o J_oi^2 H_oo``. Because the rule is
the gradient's backward with every Jacobian entry squared, each kernel below is the layer's own
backward applied to a cache whose inputs and weights are squared:

- a weighted sum ``a_o = sum_i w_oi x_i + b`` (convolution, linear, subsampling): the backward
  with ``x -> x^2`` and ``w -> w^2`` gives ``h_x = sum_o w_oi^2 h_o``, ``h_w = sum x_i^2 h_o``
  over every connection that uses ``w`` (shared weights sum over positions) and
  ``h_b = sum_o h_o``;
- an elementwise function ``x = f(a)``: ``J`` is diagonal, so ``h_a = f'(a)^2 h_x``;
- a selection (padding, crop, reshape): ``J`` holds only zeros and ones, ``J^2 = J``, and the
  curvature passes exactly as the gradient does.

All kernels take the cache the matching ``*_forward`` returned and leave it untouched.
"""

from __future__ import annotations

import numpy as np

from .activation import SCALED_TANH_A, SCALED_TANH_S, OutputCache, ScaledTanhCache
from .conv import Conv2dCache, conv2d_backward
from .linear import LinearCache, linear_backward
from .pool import SubsamplingCache, subsampling_backward
from .rbf import LENET5_MAP_J, RBFCache, _differences


def conv2d_curvature(
    hout: np.ndarray, cache: Conv2dCache, *, input_curvature: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Curvature through ``conv2d_forward``: ``(h_x, h_weight, h_bias)``, shaped like the grads.

    ``out[n, f, i, j] = b[f] + sum_{c, u, v} w[f, c, u, v] * xp[n, c, y, x]`` is linear in ``x``
    and in ``w``, with Jacobian entries ``w`` and ``xp``; so the squared Jacobians are those of the
    same convolution of ``x^2`` with ``w^2``, and ``conv2d_backward`` of that computes them::

        h_x[n, c, y, x] = sum_{f, u, v} w[f, c, u, v]^2 hout[n, f, i, j]  (taps hitting y, x)
        h_w[f, c, u, v] = sum_{n, i, j} xp[n, c, y, x]^2 hout[n, f, i, j]
        h_b[f]          = sum_{n, i, j} hout[n, f, i, j]

    Zero padding squares to zero, so it needs no special case. ``input_curvature=False`` skips
    ``h_x`` (None in its place), as ``input_grad`` does for the gradient.
    """
    squared = cache._replace(x=cache.x * cache.x, weight=cache.weight * cache.weight)
    return conv2d_backward(hout, squared, input_grad=input_curvature)


def linear_curvature(
    hout: np.ndarray, cache: LinearCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Curvature through ``out = x W^T + b``: ``(h_x, h_weight, h_bias)``.

    Shapes as ``linear_backward``'s. ``h_x = hout @ W^2``, ``h_W = hout^T @ x^2``,
    ``h_b = sum_n hout[n]``.
    """
    squared = cache._replace(x2d=cache.x2d * cache.x2d, weight=cache.weight * cache.weight)
    return linear_backward(hout, squared)


def subsampling_curvature(
    hout: np.ndarray, cache: SubsamplingCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Curvature through LeNet's ``out = weight[c] * S + bias[c]`` (``S`` the window sum).

    The coefficient's Jacobian is ``S``, each input's is ``weight[c]`` (for every window that
    holds it), the bias's is 1::

        h_x[n, c, y, x] = weight[c]^2 * sum of hout over the windows holding (y, x)
        h_weight[c]     = sum_{n, i, j} S[n, c, i, j]^2 hout[n, c, i, j]
        h_bias[c]       = sum_{n, i, j} hout[n, c, i, j]

    Returns ``(h_x, h_weight, h_bias)`` shaped like ``subsampling_backward``'s gradients.
    """
    squared = cache._replace(
        window_sum=cache.window_sum * cache.window_sum, weight=cache.weight * cache.weight
    )
    return subsampling_backward(hout, squared)


def scaled_tanh_curvature(hout: np.ndarray, cache: ScaledTanhCache) -> np.ndarray:
    """``h_x = f'(x)^2 hout`` for ``f(x) = A tanh(S x)``: ``f'(x) = A S (1 - tanh^2(S x))``."""
    t = cache.inner
    slope = (SCALED_TANH_A * SCALED_TANH_S) * (1 - t * t)
    return hout * (slope * slope)


def tanh_curvature(hout: np.ndarray, cache: OutputCache) -> np.ndarray:
    """``h_x = f'(x)^2 hout`` for ``f = tanh``: ``f'(x) = 1 - out^2``."""
    slope = 1 - cache.out * cache.out
    return hout * (slope * slope)


def sigmoid_curvature(hout: np.ndarray, cache: OutputCache) -> np.ndarray:
    """``h_x = f'(x)^2 hout`` for the logistic sigmoid: ``f'(x) = out (1 - out)``."""
    slope = cache.out * (1 - cache.out)
    return hout * (slope * slope)


def relu_curvature(hout: np.ndarray, cache: OutputCache) -> np.ndarray:
    """``h_x = f'(x)^2 hout = [x > 0] hout``: ReLU's slope is 0 or 1, its own square."""
    return hout * (cache.out > 0)


def rbf_curvature(hout: np.ndarray, cache: RBFCache) -> tuple[np.ndarray, np.ndarray]:
    """Curvature through the RBF penalties ``out[n, i] = sum_j (x[n, j] - w[i, j])^2``.

    Both Jacobians are ``+-2 (x[n, j] - w[i, j])``, so with ``diff[n, i] = x[n] - w[i]``::

        h_x[n, j] = sum_i (2 diff[n, i, j])^2 hout[n, i]
        h_w[i, j] = sum_n (2 diff[n, i, j])^2 hout[n, i]

    Shapes: ``hout: (N, K)``; returns ``(h_x: (N, D), h_weight: (K, D))``.
    """
    x, weight = cache
    diff = _differences(x, weight)  # (N, K, D)
    jac2 = 4 * diff * diff
    h_x = (hout[:, None, :] @ jac2)[:, 0, :]  # (N, 1, K) @ (N, K, D)
    h_weight = np.einsum("nk,nkd->kd", hout, jac2)
    return h_x, h_weight


def _log_sum_exp_curvature(s: np.ndarray, log_z: np.ndarray) -> np.ndarray:
    """``p (1 - p) / N`` with ``p = exp(s - log_z)``: the Hessian diagonal of a log-sum-exp loss.

    Both losses here have this form. Cross-entropy ``E = -s_y + log sum_k exp(s_k)`` and the MAP
    loss ``E = y_c + log(exp(-j) + sum_k exp(-y_k))`` (with ``s = -y``) differ from a log-sum-exp
    by a term linear in the scores, which has no second derivative; and for ``L = log Z``,
    ``d^2 L / d s_i^2 = p_i - p_i^2``. The label plays no part. Divided by ``N`` because the
    losses are batch means, exactly as their gradients are.

    Shapes: ``s: (N, K)`` (the exponents), ``log_z: (N, 1)``.
    """
    p = np.exp(s - log_z)
    return p * (1 - p) / s.shape[0]


def map_loss_curvature(penalties: np.ndarray, *, j: float = LENET5_MAP_J) -> np.ndarray:
    """Diagonal of the Hessian of ``map_loss`` (mean over the batch) w.r.t. the penalties.

    ``p_i = exp(-y_i) / (exp(-j) + sum_k exp(-y_k))``, ``d^2 E / d y_i^2 = p_i (1 - p_i) / N``
    (see :func:`_log_sum_exp_curvature`); evaluated stably as ``map_loss`` evaluates ``log Z``.
    Shapes: ``penalties: (N, K)`` -> ``(N, K)``.
    """
    neg = -penalties
    m = np.maximum(neg.max(axis=1, keepdims=True), -j)
    log_z = m + np.log(np.exp(neg - m).sum(axis=1, keepdims=True) + np.exp(-j - m))
    return _log_sum_exp_curvature(neg, log_z)


def cross_entropy_curvature(scores: np.ndarray) -> np.ndarray:
    """Diagonal of the Hessian of softmax cross-entropy (batch mean) w.r.t. the scores:
    ``p_i (1 - p_i) / N`` with ``p = softmax(scores)``, label smoothing or not (the smoothed
    targets sum to 1, so the loss is still a log-sum-exp plus a linear term).
    Shapes: ``scores: (N, K)`` -> ``(N, K)``."""
    m = scores.max(axis=1, keepdims=True)
    log_z = m + np.log(np.exp(scores - m).sum(axis=1, keepdims=True))
    return _log_sum_exp_curvature(scores, log_z)

"""Activations: ReLU and its relatives, sigmoid, tanh, LeCun's scaled tanh, and softmax.

The element-wise kernels work on an array of any shape (PReLU's per-channel slopes need the
channel axis 1); softmax and log-softmax normalise along one axis. All return the input's dtype.
Backward passes reuse what the forward computed (the output, or a mask) wherever that loses no
precision; ELU's is the exception and re-evaluates exp (see ``elu_backward``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import check_array, check_generator, check_same_dtype

# LeCun's scaled tanh f(x) = A tanh(S x) ("Efficient BackProp", 1998). S = 2/3 puts the largest
# |f''| near x = +-1 (|tanh''(u)| peaks at u = atanh(1/sqrt(3)) ~ 0.658, i.e. x ~ 0.99), and
# A = 1 / tanh(2/3) ~ 1.7159 makes f(+-1) = +-1. Targets of +-1 then sit where the curve bends
# most rather than in the flat tails, which a plain tanh only reaches at infinite inputs.
SCALED_TANH_A = 1.7159
SCALED_TANH_S = 2.0 / 3.0


def _real(value: float, name: str) -> float:
    """A finite real hyper-parameter as a Python float (a weak scalar that keeps float32 arrays)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-|x|) lies in (0, 1], so it never overflows; for large |x| it underflows quietly to 0,
    # which gives exactly 1 or 0.
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


class OutputCache(NamedTuple):
    out: np.ndarray


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, OutputCache]:
    """``out = max(0, x)`` (NaN stays NaN, as in PyTorch). Shapes: ``x`` any, ``out`` like ``x``.

    Arithmetic, not ``np.where``: a select on a random-looking mask mispredicts branches and
    was 8x slower here on a (64, 16, 32, 32) batch. The cache is the output itself, as in
    PyTorch: the next layer usually keeps it anyway (a convolution's input), so the backward
    costs no memory of its own. Nothing may change ``out`` in place before the backward.
    """
    check_array(x, "x")
    out = np.maximum(x, 0)
    return out, OutputCache(out)


def relu_backward(dout: np.ndarray, cache: OutputCache) -> np.ndarray:
    """``dx = dout * [x > 0]`` (the subgradient 0 at x = 0, as PyTorch), with ``x > 0`` read
    as ``out > 0``: the same set, NaN included. The product is taken literally, so an infinite
    ``dout`` where ``x <= 0`` gives NaN (PyTorch gives 0)."""
    return dout * (cache.out > 0)


class LeakyReluCache(NamedTuple):
    mask: np.ndarray  # bool, where the input was positive
    negative_slope: float


def leaky_relu_forward(
    x: np.ndarray, *, negative_slope: float = 0.01
) -> tuple[np.ndarray, LeakyReluCache]:
    """``out = x if x > 0 else negative_slope * x``. Shapes: ``x`` any, ``out`` like ``x``."""
    check_array(x, "x")
    slope = _real(negative_slope, "negative_slope")
    mask = x > 0
    return np.where(mask, x, slope * x), LeakyReluCache(mask, slope)


def leaky_relu_backward(dout: np.ndarray, cache: LeakyReluCache) -> np.ndarray:
    """``dx = dout if x > 0 else negative_slope * dout`` (the slope is taken at x = 0)."""
    return np.where(cache.mask, dout, cache.negative_slope * dout)


class EluCache(NamedTuple):
    x: np.ndarray
    alpha: float


def elu_forward(x: np.ndarray, *, alpha: float = 1.0) -> tuple[np.ndarray, EluCache]:
    """``out = x if x > 0 else alpha * (exp(x) - 1)``. Shapes: ``x`` any, ``out`` like ``x``.

    ``expm1`` keeps full relative precision for small negative x, and the exponential is taken
    of ``min(x, 0)`` so large positive inputs (which take the other branch) cannot overflow.
    """
    check_array(x, "x")
    a = _real(alpha, "alpha")
    out = np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))
    return out, EluCache(x, a)


def elu_backward(dout: np.ndarray, cache: EluCache) -> np.ndarray:
    """``d/dx [alpha (exp(x) - 1)] = alpha exp(x)`` for x <= 0, 1 for x > 0.

    ``alpha exp(x)`` is recomputed from x rather than as ``out + alpha``, which would cancel
    catastrophically for very negative x.
    """
    x, a = cache
    return np.where(x > 0, dout, dout * (a * np.exp(np.minimum(x, 0))))


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, OutputCache]:
    """``out = 1 / (1 + exp(-x))``, computed without overflow for any x.

    For x >= 0 it uses ``1 / (1 + exp(-x))``, for x < 0 the equal ``exp(x) / (1 + exp(x))``, so
    the exponent is never positive. Shapes: ``x`` any, ``out`` like ``x``.
    """
    check_array(x, "x")
    out = _sigmoid(x)
    return out, OutputCache(out)


def sigmoid_backward(dout: np.ndarray, cache: OutputCache) -> np.ndarray:
    """``s'(x) = exp(-x) / (1 + exp(-x))^2 = s (1 - s)``, so ``dx = dout * out * (1 - out)``."""
    y = cache.out
    return dout * y * (1 - y)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, OutputCache]:
    """``out = tanh(x)``. Shapes: ``x`` any, ``out`` like ``x``."""
    check_array(x, "x")
    out = np.tanh(x)
    return out, OutputCache(out)


def tanh_backward(dout: np.ndarray, cache: OutputCache) -> np.ndarray:
    """``tanh'(x) = 1 / cosh^2(x) = 1 - tanh^2(x)``, so ``dx = dout * (1 - out^2)``."""
    y = cache.out
    return dout * (1 - y * y)


class ScaledTanhCache(NamedTuple):
    inner: np.ndarray  # tanh(S x), before scaling by A


def scaled_tanh_forward(x: np.ndarray) -> tuple[np.ndarray, ScaledTanhCache]:
    """LeCun's ``out = A tanh(S x)`` with ``A = 1.7159``, ``S = 2/3`` (see the module constants).

    Shapes: ``x`` any, ``out`` like ``x``.
    """
    check_array(x, "x")
    inner = np.tanh(SCALED_TANH_S * x)
    return SCALED_TANH_A * inner, ScaledTanhCache(inner)


def scaled_tanh_backward(dout: np.ndarray, cache: ScaledTanhCache) -> np.ndarray:
    """Chain rule through ``u = S x``: ``dx = dout * A * S * (1 - tanh^2(S x))``."""
    t = cache.inner
    return dout * (SCALED_TANH_A * SCALED_TANH_S) * (1 - t * t)


class PreluCache(NamedTuple):
    x: np.ndarray
    slope: np.ndarray  # the weight reshaped to broadcast against x
    weight_shape: tuple[int, ...]
    reduce_axes: tuple[int, ...]  # the axes dweight sums over


def prelu_forward(x: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, PreluCache]:
    """``out = x if x > 0 else a * x`` with a learned slope ``a``.

    Shapes: ``weight: (1,)`` (one slope shared by everything; ``x`` any shape) or ``(C,)`` (one
    slope per channel; ``x: (N, C, *)`` with the channel axis 1, as PyTorch); ``out`` like ``x``.
    """
    check_array(x, "x")
    check_array(weight, "weight", ndim=1)
    check_same_dtype(x, weight, "weight")
    if weight.shape == (1,):
        slope = weight.reshape(())  # a 0-d array of x's dtype: broadcasts to any shape
        reduce_axes = tuple(range(x.ndim))
    elif x.ndim < 2:
        raise ValueError(
            f"weight of shape {weight.shape} gives one slope per channel, which needs x of shape "
            f"(N, C, *) with the channel axis 1; got x of shape {x.shape} (use a weight of shape "
            f"(1,) for a single slope)"
        )
    elif weight.shape[0] != x.shape[1]:
        raise ValueError(
            f"weight must have 1 element or one per channel ({x.shape[1]} for x of shape "
            f"{x.shape}), got shape {weight.shape}"
        )
    else:
        slope = weight.reshape((-1,) + (1,) * (x.ndim - 2))
        reduce_axes = (0,) + tuple(range(2, x.ndim))
    out = np.where(x > 0, x, slope * x)
    return out, PreluCache(x, slope, weight.shape, reduce_axes)


def prelu_backward(dout: np.ndarray, cache: PreluCache) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``out = x if x > 0 else a * x``.

    ``dout/dx = 1 if x > 0 else a``; ``dout/da = 0 if x > 0 else x``, and a slope shared by
    several entries sums their contributions: over everything for one slope, over all axes but
    the channel axis for per-channel slopes. Returns ``(dx, dweight)``, ``dweight`` shaped like
    the weight.
    """
    x, slope, weight_shape, reduce_axes = cache
    positive = x > 0
    dx = np.where(positive, dout, slope * dout)
    dweight = np.where(positive, 0, x * dout).sum(axis=reduce_axes).reshape(weight_shape)
    return dx, dweight


class NoisyReluCache(NamedTuple):
    local_grad: np.ndarray  # d out / d x for the noise drawn in the forward pass


def noisy_relu_forward(
    x: np.ndarray, *, training: bool = True, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, NoisyReluCache]:
    """Noisy ReLU (Nair & Hinton, 2010): ReLU of the input plus noise of variance sigmoid(x).

    Training: ``out = max(0, x + sqrt(sigmoid(x)) * e)`` with ``e ~ N(0, 1)`` drawn from ``rng``
    (required) in x's dtype, so a fresh generator with the same seed reproduces the output.
    Evaluation: ``out = max(0, x)``, and ``rng`` is not used. Shapes: ``x`` any, ``out`` like ``x``.
    """
    check_array(x, "x")
    if not training:
        mask = x > 0
        return np.where(mask, x, 0), NoisyReluCache(mask)
    check_generator(rng, "noisy_relu_forward")
    e = rng.standard_normal(x.shape, dtype=x.dtype)
    s = _sigmoid(x)
    root = np.sqrt(s)
    z = x + root * e
    mask = z > 0
    # The noise is a fixed draw e scaled by a function of x (reparameterised), so the gradient
    # flows through its scale too: d/dx sqrt(s) = s (1 - s) / (2 sqrt(s)) = sqrt(s) (1 - s) / 2.
    local_grad = np.where(mask, 1 + e * root * (1 - s) / 2, 0)
    return np.where(mask, z, 0), NoisyReluCache(local_grad)


def noisy_relu_backward(dout: np.ndarray, cache: NoisyReluCache) -> np.ndarray:
    """``dx = dout * [z > 0] * (1 + e sqrt(s) (1 - s) / 2)`` with ``z = x + sqrt(s) e``,
    ``s = sigmoid(x)`` and the forward's noise ``e``; in evaluation mode ``dx = dout * [x > 0]``.
    """
    return dout * cache.local_grad


# Softmax and log-softmax subtract the maximum along the axis first: the result is unchanged by
# a shift, and with the largest exponent 0 nothing overflows and one term of the sum is exactly
# 1, so the log of the sum never sees 0.


class SoftmaxCache(NamedTuple):
    out: np.ndarray
    dim: int


def _axis(x: np.ndarray, dim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim must be an int, got {dim!r}")
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(
            f"dim must be in [{-x.ndim}, {x.ndim}) for x of shape {x.shape}, got {dim}"
        )
    return int(dim) % x.ndim


def _shifted(x: np.ndarray, axis: int) -> np.ndarray:
    return x - np.max(x, axis=axis, keepdims=True)


def _empty_softmax(x: np.ndarray, axis: int) -> tuple[np.ndarray, SoftmaxCache]:
    """The (log-)softmax of an input without elements (``N = 0``, or an empty axis, whose
    maximum NumPy refuses to take): an empty output, as in PyTorch."""
    out = np.empty(x.shape, dtype=x.dtype)
    return out, SoftmaxCache(out, axis)


def softmax_forward(x: np.ndarray, *, dim: int = 1) -> tuple[np.ndarray, SoftmaxCache]:
    """``out_i = exp(x_i) / sum_j exp(x_j)`` along axis ``dim``.

    Shapes: ``x`` any with at least ``dim + 1`` dimensions (``(N, C)`` or ``(N, C, H, W)`` for
    the default ``dim=1``); ``out`` like ``x``, summing to 1 along ``dim``. An input without
    elements (an empty batch, or an empty axis ``dim``) gives an empty output, as in PyTorch.
    """
    check_array(x, "x")
    axis = _axis(x, dim)
    if x.size == 0:
        return _empty_softmax(x, axis)
    e = np.exp(_shifted(x, axis))
    out = e / e.sum(axis=axis, keepdims=True)
    return out, SoftmaxCache(out, axis)


def softmax_backward(dout: np.ndarray, cache: SoftmaxCache) -> np.ndarray:
    """Gradient of softmax along the cached axis.

    The Jacobian is ``d y_i / d x_j = y_i (delta_ij - y_j)``, so
    ``dx_j = sum_i dout_i y_i (delta_ij - y_j) = y_j dout_j - y_j sum_i dout_i y_i``, i.e.
    ``dx = y * (dout - sum(dout * y))`` with the sum along the axis, kept for broadcasting.
    """
    y, axis = cache
    return y * (dout - np.sum(dout * y, axis=axis, keepdims=True))


def log_softmax_forward(x: np.ndarray, *, dim: int = 1) -> tuple[np.ndarray, SoftmaxCache]:
    """``out_i = x_i - log(sum_j exp(x_j))`` along axis ``dim``.

    Computed as ``(x - m) - log(sum_j exp(x_j - m))`` with ``m`` the maximum, never as the log of
    a softmax, which would give -inf where the softmax underflows. Shapes: as ``softmax_forward``.
    The cache holds the output; ``exp(out)`` is the softmax.
    """
    check_array(x, "x")
    axis = _axis(x, dim)
    if x.size == 0:
        return _empty_softmax(x, axis)
    shifted = _shifted(x, axis)
    out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return out, SoftmaxCache(out, axis)


def log_softmax_backward(dout: np.ndarray, cache: SoftmaxCache) -> np.ndarray:
    """Gradient of log-softmax along the cached axis.

    ``d out_i / d x_j = delta_ij - softmax_j``, so ``dx_j = dout_j - softmax_j sum_i dout_i``,
    i.e. ``dx = dout - exp(out) * sum(dout)`` with the sum along the axis.
    """
    out, axis = cache
    return dout - np.exp(out) * np.sum(dout, axis=axis, keepdims=True)

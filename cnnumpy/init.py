"""Weight fillers: each returns a NEW array ``f(shape, rng, ..., dtype=np.float32)``.

``rng`` is a ``numpy.random.Generator``; the same seed gives the same array. Samples are drawn
in float64 and then cast to ``dtype``, so a seed gives the same values (up to rounding) in every
dtype.

Fans are written two ways, after the two frameworks:

* **Caffe** (``xavier``, ``msra``): ``fan_in = count / shape[0]``, ``fan_out = count / shape[1]``.
  For a conv weight ``(F, C, KH, KW)``: ``fan_in = C*KH*KW``, ``fan_out = F*KH*KW``; for a
  linear weight ``(out, in)``: ``fan_in = in``, ``fan_out = out``.
* **PyTorch** (``calculate_fan_in_and_fan_out`` and everything named after ``torch.nn.init``):
  ``fan_in = shape[1] * receptive``, ``fan_out = shape[0] * receptive`` with
  ``receptive = prod(shape[2:])``.

For every shape with at least 2 dimensions the two give the same numbers; they part only on 1-D
shapes (Caffe's ``fan_out = count``), which both raise ValueError here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

ShapeLike = int | Sequence[int]

_VARIANCE_NORMS = ("FAN_IN", "FAN_OUT", "AVERAGE")
_FAN_MODES = ("fan_in", "fan_out")


# --------------------------------------------------------------------------- helpers


def _shape(shape: ShapeLike) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"shape must have non-negative dimensions, got {dims}")
    return dims


def _dtype(dtype: DTypeLike) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a floating dtype (float32, float64), got {dt}")
    return dt


def _need_2d(shape: tuple[int, ...], what: str) -> None:
    if len(shape) < 2:
        raise ValueError(
            f"{what} needs a shape with at least 2 dimensions (out, in, ...), got {shape}"
        )


def _uniform(shape, rng, low, high, dtype) -> np.ndarray:
    return rng.uniform(low, high, size=_shape(shape)).astype(_dtype(dtype))


def _normal(shape, rng, mean, std, dtype) -> np.ndarray:
    return rng.normal(mean, std, size=_shape(shape)).astype(_dtype(dtype))


# --------------------------------------------------------------------------- Caffe fillers


def caffe_fan_in_and_fan_out(shape: ShapeLike) -> tuple[int, int]:
    """Caffe's fans: ``fan_in = count / shape[0]``, ``fan_out = count / shape[1]``.

    Conv weight ``(F, C, KH, KW)``: ``(C*KH*KW, F*KH*KW)``; linear weight ``(out, in)``:
    ``(in, out)``.
    """
    dims = _shape(shape)
    _need_2d(dims, "caffe_fan_in_and_fan_out")
    count = math.prod(dims)
    if dims[0] == 0 or dims[1] == 0:
        raise ValueError(f"fans are undefined for a shape with a zero leading dimension: {dims}")
    return count // dims[0], count // dims[1]


def _caffe_n(shape: tuple[int, ...], variance_norm: str, what: str) -> float:
    if variance_norm not in _VARIANCE_NORMS:
        raise ValueError(
            f"{what}: variance_norm must be one of {_VARIANCE_NORMS}, got {variance_norm!r}"
        )
    _need_2d(shape, what)
    fan_in, fan_out = caffe_fan_in_and_fan_out(shape)
    if variance_norm == "FAN_IN":
        return float(fan_in)
    if variance_norm == "FAN_OUT":
        return float(fan_out)
    return (fan_in + fan_out) / 2.0


def constant(shape: ShapeLike, value: float = 0.0, dtype: DTypeLike = np.float32) -> np.ndarray:
    """Caffe's ``constant`` filler: every entry equals ``value``."""
    return np.full(_shape(shape), value, dtype=_dtype(dtype))


def gaussian(
    shape: ShapeLike,
    rng: np.random.Generator,
    mean: float = 0.0,
    std: float = 1.0,
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """Caffe's ``gaussian`` filler: ``w ~ N(mean, std^2)``."""
    if std < 0:
        raise ValueError(f"gaussian: std must be >= 0, got {std}")
    return _normal(shape, rng, mean, std, dtype)


def uniform(
    shape: ShapeLike,
    rng: np.random.Generator,
    low: float = 0.0,
    high: float = 1.0,
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """Caffe's ``uniform`` filler: ``w ~ U[low, high)``.

    Mean ``(low + high) / 2``, variance ``(high - low)^2 / 12``.
    """
    if high < low:
        raise ValueError(f"uniform: need low <= high, got low={low}, high={high}")
    return _uniform(shape, rng, low, high, dtype)


def xavier(
    shape: ShapeLike,
    rng: np.random.Generator,
    variance_norm: str = "FAN_IN",
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """Caffe's ``xavier`` filler: ``w ~ U[-sqrt(3/n), sqrt(3/n)]``, so ``Var(w) = 1/n``.

    ``n`` is Caffe's ``fan_in`` (``"FAN_IN"``, the default), ``fan_out`` (``"FAN_OUT"``) or
    ``(fan_in + fan_out) / 2`` (``"AVERAGE"``); see :func:`caffe_fan_in_and_fan_out`.
    """
    dims = _shape(shape)
    scale = math.sqrt(3.0 / _caffe_n(dims, variance_norm, "xavier"))
    return _uniform(dims, rng, -scale, scale, dtype)


def msra(
    shape: ShapeLike,
    rng: np.random.Generator,
    variance_norm: str = "FAN_IN",
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """Caffe's ``msra`` filler (He et al. 2015): ``w ~ N(0, 2/n)``, ``n`` as in :func:`xavier`."""
    dims = _shape(shape)
    std = math.sqrt(2.0 / _caffe_n(dims, variance_norm, "msra"))
    return _normal(dims, rng, 0.0, std, dtype)


def positive_unitball(
    shape: ShapeLike, rng: np.random.Generator, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """Caffe's ``positive_unitball`` filler: ``U[0, 1)`` then each output unit sums to 1.

    Row ``i`` (the slice ``w[i]``, i.e. ``count / shape[0]`` entries) is divided by its sum.
    """
    dims = _shape(shape)
    if len(dims) < 1 or dims[0] == 0 or math.prod(dims[1:]) == 0:
        raise ValueError(f"positive_unitball needs a non-empty shape (out, ...), got {dims}")
    w = rng.uniform(0.0, 1.0, size=dims).reshape(dims[0], -1)
    w /= w.sum(axis=1, keepdims=True)
    return w.reshape(dims).astype(_dtype(dtype))


def bilinear(shape: ShapeLike, dtype: DTypeLike = np.float32) -> np.ndarray:
    """Caffe's ``bilinear`` filler: the bilinear-upsampling kernel for a transposed conv weight.

    Shape ``(C_in, C_out, K, K)``; every ``K x K`` slice is the same kernel::

        f = ceil(K / 2),  c = (K - 1) / (2 f),  w[y, x] = (1 - |x/f - c|) * (1 - |y/f - c|)

    (Caffe's ``BilinearFiller``; symmetric for every K). To upsample by an integer ``factor``
    Caffe uses ``K = 2 * factor - factor % 2``, ``stride = factor``,
    ``padding = ceil((factor - 1) / 2)`` and one group per channel (e.g. ``K=4, stride=2,
    padding=1`` doubles H and W). For those K, ``f = factor`` and ``c`` equals the
    ``(2f - 1 - f % 2) / (2f)`` of the FCN / tensorflow-fcn ports, which differ from Caffe only
    for other K.
    """
    dims = _shape(shape)
    if len(dims) != 4 or dims[2] != dims[3] or dims[2] == 0:
        raise ValueError(
            f"bilinear needs a 4-D shape (C_in, C_out, K, K) with square K >= 1, got {dims}"
        )
    k = dims[3]
    f = math.ceil(k / 2)
    c = (k - 1) / (2.0 * f)
    taps = 1.0 - np.abs(np.arange(k) / f - c)
    kernel = np.outer(taps, taps)
    return np.broadcast_to(kernel, dims).astype(_dtype(dtype))


# --------------------------------------------------------------------------- PyTorch / papers


def calculate_fan_in_and_fan_out(shape: ShapeLike) -> tuple[int, int]:
    """PyTorch's fans: ``fan_in = shape[1] * r``, ``fan_out = shape[0] * r``.

    ``r = prod(shape[2:])`` is the receptive-field size (1 for a linear weight).
    """
    dims = _shape(shape)
    _need_2d(dims, "calculate_fan_in_and_fan_out")
    receptive = math.prod(dims[2:])
    return dims[1] * receptive, dims[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain (as ``torch.nn.init.calculate_gain``).

    linear / conv / sigmoid: 1; tanh: 5/3; relu: sqrt(2); leaky_relu with slope ``a``
    (default 0.01): ``sqrt(2 / (1 + a^2))``; selu: 3/4.
    """
    if nonlinearity in (
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
    ):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope must be a number, got {slope!r}")
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _torch_fan(dims: tuple[int, ...], mode: str, what: str) -> int:
    if mode not in _FAN_MODES:
        raise ValueError(f"{what}: mode must be one of {_FAN_MODES}, got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(dims)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"{what}: {mode} is 0 for shape {dims}")
    return fan


def kaiming_uniform(
    shape: ShapeLike,
    rng: np.random.Generator,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """He et al. 2015, uniform: ``w ~ U[-b, b]``, ``b = gain * sqrt(3 / fan)``.

    ``gain = calculate_gain(nonlinearity, a)``; ``fan`` is PyTorch's fan_in or fan_out (``mode``).
    """
    dims = _shape(shape)
    fan = _torch_fan(dims, mode, "kaiming_uniform")
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _uniform(dims, rng, -bound, bound, dtype)


def kaiming_normal(
    shape: ShapeLike,
    rng: np.random.Generator,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """He et al. 2015, normal: ``w ~ N(0, std^2)``, ``std = gain / sqrt(fan)``."""
    dims = _shape(shape)
    fan = _torch_fan(dims, mode, "kaiming_normal")
    return _normal(dims, rng, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), dtype)


def xavier_uniform(
    shape: ShapeLike, rng: np.random.Generator, gain: float = 1.0, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """``w ~ U[-b, b]``, ``b = gain * sqrt(6 / (fan_in + fan_out))`` (PyTorch's fans)."""
    dims = _shape(shape)
    fan_in, fan_out = calculate_fan_in_and_fan_out(dims)
    if fan_in + fan_out == 0:
        raise ValueError(f"xavier_uniform: fan_in + fan_out is 0 for shape {dims}")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _uniform(dims, rng, -bound, bound, dtype)


def xavier_normal(
    shape: ShapeLike, rng: np.random.Generator, gain: float = 1.0, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """``w ~ N(0, std^2)``, ``std = gain * sqrt(2 / (fan_in + fan_out))`` (PyTorch's fans)."""
    dims = _shape(shape)
    fan_in, fan_out = calculate_fan_in_and_fan_out(dims)
    if fan_in + fan_out == 0:
        raise ValueError(f"xavier_normal: fan_in + fan_out is 0 for shape {dims}")
    return _normal(dims, rng, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def glorot_uniform(
    shape: ShapeLike, rng: np.random.Generator, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """Glorot & Bengio 2010, "normalized initialization" (their eq. 16).

    ``w ~ U[-sqrt(6 / (fan_in + fan_out)), sqrt(6 / (fan_in + fan_out))]``, so
    ``Var(w) = 2 / (fan_in + fan_out)``; PyTorch's fans.
    """
    return xavier_uniform(shape, rng, gain=1.0, dtype=dtype)


def lecun_uniform(
    shape: ShapeLike, rng: np.random.Generator, scale: float = 2.4, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """LeCun et al. 1998 (LeNet-5): ``w ~ U[-scale/fan_in, scale/fan_in]`` with ``scale = 2.4``.

    Note the bound is ``1/fan_in``, not ``1/sqrt(fan_in)``. PyTorch's ``fan_in``.
    """
    dims = _shape(shape)
    bound = scale / _torch_fan(dims, "fan_in", "lecun_uniform")
    return _uniform(dims, rng, -bound, bound, dtype)


# --------------------------------------------------------------------------- PyTorch defaults


def default_weight(
    shape: ShapeLike, rng: np.random.Generator, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """PyTorch's default Conv2d / Linear weight: ``kaiming_uniform(a=sqrt(5))``.

    ``gain = sqrt(2 / (1 + 5)) = sqrt(1/3)``, so ``b = sqrt(3) * gain / sqrt(fan_in)
    = 1 / sqrt(fan_in)``: ``w ~ U[-1/sqrt(fan_in), 1/sqrt(fan_in)]``.
    """
    return kaiming_uniform(shape, rng, a=math.sqrt(5.0), dtype=dtype)


def default_bias(
    shape: ShapeLike, fan_in: int, rng: np.random.Generator, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """PyTorch's default Conv2d / Linear bias: ``b ~ U[-1/sqrt(fan_in), 1/sqrt(fan_in)]``.

    ``fan_in`` is the weight's (``calculate_fan_in_and_fan_out(weight_shape)[0]``); a ``fan_in``
    of 0 gives zeros, as in PyTorch.
    """
    if isinstance(fan_in, bool) or not isinstance(fan_in, (int, np.integer)) or fan_in < 0:
        raise ValueError(f"default_bias: fan_in must be a non-negative int, got {fan_in!r}")
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return _uniform(shape, rng, -bound, bound, dtype)


__all__ = [
    "bilinear",
    "caffe_fan_in_and_fan_out",
    "calculate_fan_in_and_fan_out",
    "calculate_gain",
    "constant",
    "default_bias",
    "default_weight",
    "gaussian",
    "glorot_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_uniform",
    "msra",
    "positive_unitball",
    "uniform",
    "xavier",
    "xavier_normal",
    "xavier_uniform",
]

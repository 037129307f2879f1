"""Input checks shared by the kernels.

Every kernel validates at its boundary, so a wrong input fails with a message that says what
was expected and what came, instead of a broadcasting error deep inside NumPy.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """Return ``value`` as an ``(h, w)`` pair of ints, as PyTorch accepts ``3`` or ``(3, 3)``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def check_array(
    x: np.ndarray, name: str, ndim: int | tuple[int, ...] | None = None, finite: bool = False
) -> None:
    """Check that ``x`` is a float32/float64 ndarray with the expected number of dimensions.

    ``finite=True`` also rejects NaN and inf (the callers that ask for it say so in a keyword).
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {x.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if x.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {x.shape}")
    if finite and not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"{name} must be finite, got {bad} NaN or inf value(s)")


def check_same_dtype(x: np.ndarray, other: np.ndarray | None, name: str) -> None:
    """Parameters must share the input's dtype, so the output's dtype is the input's."""
    if other is not None and other.dtype != x.dtype:
        raise TypeError(f"{name} has dtype {other.dtype} but the input has dtype {x.dtype}")


def check_shape(a: np.ndarray, shape: tuple[int, ...], name: str) -> None:
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")


def check_labels(y: np.ndarray, n: int, num_classes: int) -> None:
    """Labels for a loss: integer array of shape (N,) with values in [0, num_classes)."""
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu":
        got = getattr(y, "dtype", type(y).__name__)
        raise TypeError(f"labels must be an integer numpy array, got {got}")
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match the scores, got {y.shape}")
    if n and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got values from {y.min()} to {y.max()}"
        )


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution or pooling window along one axis.

    ``out = floor((size + 2*padding - dilation*(kernel-1) - 1) / stride) + 1``
    """
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def check_real(value: float, name: str) -> float:
    """A finite real hyper-parameter (not a bool), returned as a Python float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def check_generator(rng: object, who: str) -> np.random.Generator:
    """Kernels that draw random numbers take a numpy Generator and never use global state."""
    if rng is None:
        raise ValueError(
            f"{who} draws random numbers in training mode: pass rng=numpy.random.default_rng(seed)"
        )
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def check_eps(eps: float) -> float:
    """``eps`` as a Python float, refused unless it is a real number >= 0."""
    if not isinstance(eps, Real) or isinstance(eps, bool):
        raise TypeError(f"eps must be a real number, got {eps!r}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    # A Python float keeps float32 arrays float32 (an np.float64 scalar would upcast them).
    return float(eps)

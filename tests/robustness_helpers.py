"""Shared by the robustness tests (``test_robustness_layers.py``, against PyTorch, and
``test_robustness_native_layers.py``, against naive references): degenerate shapes, memory
layouts that are views rather than fresh arrays, inputs made for a layer, and the comparison
with its tolerance per dtype."""

from __future__ import annotations

import math

import numpy as np
import torch
from helpers import assert_close
from hypothesis import strategies as st

from cnnumpy import nn
from cnnumpy.inspect import numerical_gradient_array

RTOL = {np.float32: 1e-4, np.float64: 1e-9}
# Absolute slack per unit of the values involved: for results that are 0 in exact arithmetic
# (batch norm over two values gives +-1 whatever they are, so its dx is pure rounding).
ATOL = {np.float32: 1e-5, np.float64: 1e-12}
# Central differences in float64 (cnnumpy.inspect.gradcheck): about 1e-10 absolute, 1e-8 relative.
NUMERICAL_RTOL, NUMERICAL_ATOL = 1e-6, 1e-8
LAYOUTS = st.sampled_from(["contiguous", "transposed", "strided", "reversed", "channels_last"])
DTYPES = st.sampled_from([np.float32, np.float64])


def arrange(values: np.ndarray, layout: str) -> np.ndarray:
    """The same values as a view that is not C-contiguous (or a fresh copy for "contiguous")."""
    if layout == "transposed":
        axes = tuple(reversed(range(values.ndim)))
        return np.ascontiguousarray(values.transpose(axes)).transpose(axes)
    if layout == "strided":  # every other element of a larger array, the rest NaN
        big = np.full([2 * s for s in values.shape], np.nan, dtype=values.dtype)
        view = big[tuple(slice(None, None, 2) for _ in values.shape)]
        view[...] = values
        return view
    if layout == "reversed":  # negative strides on every axis
        flip = tuple(slice(None, None, -1) for _ in values.shape)
        return values[flip].copy()[flip]
    if layout == "channels_last" and values.ndim == 4:
        return np.ascontiguousarray(values.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return values.copy()


def image_shape(draw, n, hw, channels: int | None = None, low: int = 1) -> tuple[int, ...]:
    """``(N, C, H, W)``: N in 0-3 unless given, sides of at least ``low`` (the spec has made
    ``low <= hw`` when ``hw`` is given)."""
    c = draw(st.integers(1, 3)) if channels is None else channels
    h, w = (draw(st.integers(low, low + 3)) if hw is None else hw for _ in "hw")
    return (draw(st.integers(0, 3)) if n is None else n, c, h, w)


def flat_shape(draw, n, features: int) -> tuple[int, int]:
    return (draw(st.integers(0, 3)) if n is None else n, features)


def any_shape(draw, n, hw) -> tuple[int, ...]:
    if hw is None and draw(st.booleans()):
        return flat_shape(draw, n, draw(st.integers(1, 4)))
    return image_shape(draw, n, hw)


def randomise(module: nn.Module, rng: np.random.Generator) -> None:
    """Parameters of either sign away from 0, and running statistics other than 0 and 1."""
    for p in module.parameters():
        p.data[...] = rng.uniform(0.5, 1.5, p.shape) * rng.choice([-1.0, 1.0], p.shape)
    if getattr(module, "running_var", None) is not None:
        dtype = module.running_var.dtype
        module.running_mean = rng.standard_normal(module.running_mean.shape).astype(dtype)
        module.running_var = rng.uniform(0.5, 2.0, module.running_var.shape).astype(dtype)


def make_input(case, data, rng: np.random.Generator, dtype: type) -> np.ndarray:
    """Standard normal values, or values made for the layer: "distinct" ones 4/size apart (no
    window of max pooling holds a tie), or "spread" ones, a shuffled even spacing per channel
    (batch statistics far from a zero variance, whose 1/std would amplify rounding errors).
    ``case`` gives ``x_shape`` and ``values``; the layout is drawn from ``data``."""
    shape, size = case.x_shape, math.prod(case.x_shape)
    if case.values == "distinct":
        values = rng.permutation(size) * (4 / max(size, 1)) - 2
    elif case.values == "spread" and size:
        per_channel = size // shape[1]
        even = np.linspace(-2, 2, per_channel) * rng.uniform(0.5, 2, (shape[1], 1))
        rows = rng.permuted(even + rng.standard_normal((shape[1], 1)), axis=1)
        values = np.moveaxis(rows.reshape(shape[1], shape[0], *shape[2:]), 0, 1)
    else:
        values = rng.standard_normal(size)
    return arrange(values.reshape(shape).astype(dtype), data.draw(LAYOUTS))


def exact(a: np.ndarray) -> np.ndarray:
    """A contiguous float64 copy for PyTorch: the layouts are ours to cope with, and PyTorch's
    own float64 batch-norm backward loses digits (1e-7 absolute) on a channels-last dout."""
    return np.array(a, dtype=np.float64, order="C")  # a fresh array: no negative strides


def check(actual, expected, dtype: type, scale: float, name: str, numerical: bool = False):
    """``actual`` has the dtype and, to the tolerance of ``dtype`` (or of central differences,
    when ``expected`` is a numerical gradient), the values expected."""
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    assert actual.dtype == dtype, f"{name}: dtype {actual.dtype}, expected {np.dtype(dtype)}"
    rtol, atol = RTOL[dtype], ATOL[dtype] * scale
    if numerical:
        rtol, atol = max(rtol, NUMERICAL_RTOL), atol + NUMERICAL_ATOL
    assert_close(actual, expected, rtol=rtol, atol=atol, name=name)


def numerical_grad(f, a: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """d sum(f() * dout) / da by central differences; zero when there is nothing to perturb or
    no output."""
    if a.size == 0 or dout.size == 0:
        return np.zeros_like(a)
    return numerical_gradient_array(f, a, dout)

"""Every layer on degenerate input, against PyTorch: batches of 0 and 1, 1x1 images, and inputs
that are views (transposed, strided, reversed, channels-last) rather than fresh arrays.

One spec per layer draws hyper-parameters and an input shape; the same runner then builds our
layer and its PyTorch twin with the same parameters and compares the output, ``dx``, every
parameter gradient and every buffer. PyTorch computes in float64 from the very values our layer
sees, so a float32 run is compared with the exact answer at a float32 tolerance. The layers
PyTorch lacks are in ``test_robustness_native_layers.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
import torch
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st
from robustness_helpers import (
    DTYPES,
    LAYOUTS,
    RTOL,
    any_shape,
    arrange,
    check,
    exact,
    flat_shape,
    image_shape,
    make_input,
    randomise,
)

from cnnumpy import nn

T = torch.nn


class Case(NamedTuple):
    ours: Callable[[type], nn.Module]  # our layer, built in a dtype
    theirs: Callable[[], T.Module]  # its PyTorch twin
    x_shape: tuple[int, ...]
    training: bool = True
    values: str = "normal"  # or "distinct" (max pooling's argmax) or "spread" (batch norm)
    classes: int = 0  # a loss on (N, classes) scores when > 0
    gain: Callable[[np.ndarray], float] = lambda x: 1.0  # how much the layer amplifies rounding


# -- one spec per layer: (draw, batch size or None, image side or None) -> Case ---------------
def _layers(ours_cls, theirs_cls, *args, typed: bool = False, **kw) -> tuple:
    """Builders of our layer (given the dtype when ``typed``: it has parameters) and its twin."""
    if typed:
        return (lambda dt: ours_cls(*args, dtype=dt, **kw)), lambda: theirs_cls(*args, **kw)
    return (lambda dt: ours_cls(*args, **kw)), lambda: theirs_cls(*args, **kw)


def conv2d(draw, n, hw):
    groups = draw(st.sampled_from([1, 2]))
    c, f = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k, d, s = (draw(st.integers(1, top)) for top in (3, 2, 2))
    reach = d * (k - 1)
    p = draw(st.integers((reach + 1) // 2, 2) if hw == 1 else st.integers(0, 2))
    shape = image_shape(draw, n, hw, c, low=max(1, reach + 1 - 2 * p))
    layers = _layers(nn.Conv2d, T.Conv2d, c, f, k, s, p, d, groups, draw(st.booleans()), typed=True)
    return Case(*layers, shape)


def conv_transpose2d(draw, n, hw):
    groups = draw(st.sampled_from([1, 2]))
    c, f = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k, d, s = (draw(st.integers(1, top)) for top in (3, 2, 3))
    p = draw(st.integers(0, d * (k - 1) // 2))  # keeps the output >= 1 pixel for any input
    op = draw(st.integers(0, max(s, d) - 1))
    args = (c, f, k, s, p, op, groups, draw(st.booleans()), d)
    return Case(
        *_layers(nn.ConvTranspose2d, T.ConvTranspose2d, *args, typed=True),
        image_shape(draw, n, hw, c),
    )


def linear(draw, n, hw):
    d_in, d_out, bias = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.booleans())
    return Case(
        *_layers(nn.Linear, T.Linear, d_in, d_out, bias, typed=True), flat_shape(draw, n, d_in)
    )


def _pool(ours_cls, theirs_cls, flags: tuple[str, ...], values: str = "normal"):
    """Max or average pooling, each boolean option in ``flags`` drawn."""

    def spec(draw, n, hw):
        k = draw(st.integers(1, 3))
        s, p = draw(st.integers(1, 3)), draw(st.integers(0, k // 2))
        # At full padding any kernel fits a 1x1 image: k - 2 * (k // 2) <= 1.
        p = k // 2 if hw is not None else p
        kw = {name: draw(st.booleans()) for name in flags}
        shape = image_shape(draw, n, hw, low=max(1, k - 2 * p))
        return Case(*_layers(ours_cls, theirs_cls, k, s, p, **kw), shape, values=values)

    return spec


def adaptive_avg_pool2d(draw, n, hw):
    return Case(*_layers(nn.AdaptiveAvgPool2d, T.AdaptiveAvgPool2d, 1), image_shape(draw, n, hw))


def _spread_gain(x: np.ndarray) -> float:
    """Batch norm's rounding errors grow like 1/std in the output and 1/var in dx (the variance
    is differentiated too): the largest such factor over the channels."""
    if x.size == 0:
        return 1.0
    var = x.astype(np.float64).var(axis=(0, *range(2, x.ndim)))
    return float(max(1.0, 1 / (var.min() + 1e-5)))


def _batch_norm(ours_cls, theirs_cls, spatial: bool):
    def spec(draw, n, hw):
        c, affine, track = draw(st.integers(1, 3)), draw(st.booleans()), draw(st.booleans())
        kw = {"momentum": draw(st.sampled_from([0.1, 0.5])), "affine": affine}
        layers = _layers(ours_cls, theirs_cls, c, typed=True, track_running_stats=track, **kw)
        shape = image_shape(draw, n, hw, c) if spatial else flat_shape(draw, n, c)
        training = draw(st.booleans())
        return Case(*layers, shape, training, values="spread", gain=_spread_gain)

    return spec


def lrn(draw, n, hw):
    size, alpha = draw(st.integers(1, 4)), draw(st.sampled_from([1e-4, 0.3]))
    beta, k = draw(st.sampled_from([0.75, 1.0])), draw(st.sampled_from([1.0, 2.0]))
    layers = _layers(nn.LocalResponseNorm, T.LocalResponseNorm, size, alpha, beta, k)
    return Case(*layers, image_shape(draw, n, hw, draw(st.integers(1, 5))))


def _row_gain(k: int) -> Callable[[np.ndarray], float]:
    """Layer and group norm's rounding grows like batch norm's, with the variance of each row
    of ``k`` values (a sample's normalised block) in place of each channel's."""

    def gain(x: np.ndarray) -> float:
        if x.size == 0:
            return 1.0
        var = x.astype(np.float64).reshape(-1, k).var(axis=1)
        return float(max(1.0, 1 / (var.min() + 1e-5)))

    return gain


def layer_norm(draw, n, hw):
    shape = any_shape(draw, n, hw)
    ns = shape[len(shape) - draw(st.integers(1, len(shape) - 1)) :]
    kw = {"elementwise_affine": draw(st.booleans()), "bias": draw(st.booleans())}
    layers = _layers(nn.LayerNorm, T.LayerNorm, ns, typed=True, **kw)
    return Case(*layers, shape, gain=_row_gain(math.prod(ns)))


def group_norm(draw, n, hw):
    groups, affine = draw(st.integers(1, 3)), draw(st.booleans())
    n_, _, h, w = image_shape(draw, n, hw, 1)
    # PyTorch refuses a batch of one value per group (N = 1, 1x1, one channel per group).
    per = draw(st.integers(2 if n_ * h * w == 1 else 1, 2))
    layers = _layers(nn.GroupNorm, T.GroupNorm, groups, groups * per, affine=affine, typed=True)
    return Case(*layers, (n_, groups * per, h, w), gain=_row_gain(per * h * w))


def _elementwise(ours_cls, theirs_cls, **ranges):
    def spec(draw, n, hw):
        kw = {name: draw(st.floats(*bounds)) for name, bounds in ranges.items()}
        return Case(*_layers(ours_cls, theirs_cls, **kw), any_shape(draw, n, hw))

    return spec


def _softmax(ours_cls, theirs_cls):
    def spec(draw, n, hw):
        shape = any_shape(draw, n, hw)
        dim = draw(st.integers(-len(shape), len(shape) - 1))
        return Case(*_layers(ours_cls, theirs_cls, dim), shape)

    return spec


def prelu(draw, n, hw):
    shape = any_shape(draw, n, hw)
    count = draw(st.sampled_from([1, shape[1]]))
    return Case(*_layers(nn.PReLU, T.PReLU, count, typed=True), shape)


def dropout(draw, n, hw):
    training = draw(st.booleans())  # training with p = 0, or eval with p > 0: the identity
    p = 0.0 if training else draw(st.sampled_from([0.2, 0.5, 1.0]))
    return Case(*_layers(nn.Dropout, T.Dropout, p), any_shape(draw, n, hw), training)


def constant_pad2d(draw, n, hw):
    pads = draw(st.one_of(st.integers(0, 2), st.tuples(*[st.integers(0, 2)] * 4)))
    value = draw(st.floats(-2, 2))
    return Case(*_layers(nn.ConstantPad2d, T.ConstantPad2d, pads, value), image_shape(draw, n, hw))


def flatten(draw, n, hw):
    return Case(*_layers(nn.Flatten, T.Flatten), any_shape(draw, n, hw))


def cross_entropy(draw, n, hw):
    smoothing, c = draw(st.sampled_from([0.0, 0.1, 0.5])), draw(st.integers(1, 4))
    layers = _layers(nn.CrossEntropyLoss, T.CrossEntropyLoss, label_smoothing=smoothing)
    return Case(*layers, flat_shape(draw, n, c), classes=c)


def multi_margin(draw, n, hw):
    p, margin = draw(st.sampled_from([1, 2])), draw(st.sampled_from([1.0, 0.5]))
    c = draw(st.integers(1, 4))
    return Case(
        *_layers(nn.MultiMarginLoss, T.MultiMarginLoss, p, margin),
        flat_shape(draw, n, c),
        classes=c,
    )


SPATIAL = {
    "Conv2d": conv2d, "ConvTranspose2d": conv_transpose2d,
    "MaxPool2d": _pool(nn.MaxPool2d, T.MaxPool2d, ("ceil_mode",), values="distinct"),
    "AvgPool2d": _pool(nn.AvgPool2d, T.AvgPool2d, ("ceil_mode", "count_include_pad")),
    "AdaptiveAvgPool2d": adaptive_avg_pool2d,
    "BatchNorm2d": _batch_norm(nn.BatchNorm2d, T.BatchNorm2d, spatial=True),
    "SyncBatchNorm": _batch_norm(nn.SyncBatchNorm, T.SyncBatchNorm, spatial=True),
    "LocalResponseNorm": lrn, "ConstantPad2d": constant_pad2d,
    "GroupNorm": group_norm,
}  # fmt: skip
ANY_SHAPE = {
    "ReLU": _elementwise(nn.ReLU, T.ReLU),
    "LeakyReLU": _elementwise(nn.LeakyReLU, T.LeakyReLU, negative_slope=(0.0, 0.5)),
    "ELU": _elementwise(nn.ELU, T.ELU, alpha=(0.1, 2.0)),
    "Sigmoid": _elementwise(nn.Sigmoid, T.Sigmoid), "Tanh": _elementwise(nn.Tanh, T.Tanh),
    "Softmax": _softmax(nn.Softmax, T.Softmax), "LogSoftmax": _softmax(nn.LogSoftmax, T.LogSoftmax),
    "PReLU": prelu, "Dropout": dropout, "Flatten": flatten,
    "LayerNorm": layer_norm,
}  # fmt: skip
FLAT = {
    "Linear": linear, "BatchNorm1d": _batch_norm(nn.BatchNorm1d, T.BatchNorm1d, spatial=False),
    "CrossEntropyLoss": cross_entropy, "MultiMarginLoss": multi_margin,
}  # fmt: skip
ALL = {**SPATIAL, **ANY_SHAPE, **FLAT}


# -- the runner ---------------------------------------------------------------------------------
def run(spec, data, n: int | None = None, hw: int | None = None) -> None:
    """Draw a case from ``spec`` and compare our layer with its PyTorch twin on it."""
    case = spec(data.draw, n, hw)
    dtype = data.draw(DTYPES)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    ours = case.ours(dtype)
    randomise(ours, rng)
    theirs = case.theirs().double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    ours.train(case.training)
    theirs.train(case.training)
    x = make_input(case, data, rng, dtype)
    tx = torch.tensor(exact(x), requires_grad=True)
    if case.classes:
        _compare_loss(ours, theirs, x, tx, rng.integers(0, case.classes, x.shape[0]))
        return
    try:
        tout = theirs(tx)
    except ValueError as err:  # batch norm over one value per channel: both refuse it
        assert "more than 1 value per channel" in str(err)
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            ours(x)
        return
    out = ours(x)
    dout = arrange(rng.standard_normal(out.shape).astype(dtype), data.draw(LAYOUTS))
    dx = ours.backward(dout)
    tout.backward(torch.tensor(exact(dout)))
    scale = case.gain(x) * max(1.0, np.abs(x).max(initial=0), np.abs(dout).max(initial=0))
    check(out, tout, dtype, scale, "out")
    check(dx, tx.grad, dtype, scale, "dx")
    _compare_state(ours, theirs, dtype, scale, empty=x.shape[0] == 0)


def _compare_state(ours: nn.Module, theirs: T.Module, dtype, scale: float, empty: bool) -> None:
    """Every parameter gradient (exactly 0 after an empty batch) and every buffer."""
    grads = {name: p.grad for name, p in ours.named_parameters()}
    assert list(grads) == [name for name, _ in theirs.named_parameters()]
    for name, p in theirs.named_parameters():
        expected = p.grad if p.grad is not None else torch.zeros_like(p)
        check(grads[name], expected, dtype, scale, f"d{name}")
        assert not (empty and grads[name].any()), f"d{name} is not 0 after an empty batch"
    state = ours.state_dict()
    for name, buffer in theirs.named_buffers():
        if buffer.dtype.is_floating_point:
            check(state[name], buffer, dtype, scale, name)
        else:
            assert state[name] == buffer.item(), f"{name}: {state[name]} != {buffer.item()}"


def _compare_loss(ours, theirs, x: np.ndarray, tx: torch.Tensor, y: np.ndarray) -> None:
    loss = ours(x, y)
    tloss = theirs(tx, torch.tensor(y))
    tloss.backward()
    dscores = ours.backward()
    assert isinstance(loss, float)
    if x.shape[0] == 0:  # the mean over no samples: NaN (PyTorch's multi-margin gives junk)
        assert math.isnan(loss)
        assert math.isnan(tloss.item()) or isinstance(theirs, T.MultiMarginLoss)
        assert dscores.shape == x.shape and dscores.dtype == x.dtype
        return
    scale = max(1.0, np.abs(x).max())
    assert_close(loss, tloss.item(), rtol=RTOL[x.dtype.type], name="loss")
    check(dscores, tx.grad, x.dtype.type, scale, "dscores")


@pytest.mark.parametrize("name", sorted(ALL))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_matches_torch(name, data):
    run(ALL[name], data)


@pytest.mark.parametrize("n", [0, 1])
@pytest.mark.parametrize("name", sorted(ALL))
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_batch_of_0_and_1_match_torch(name, n, data):
    run(ALL[name], data, n=n)


@pytest.mark.parametrize("name", sorted(SPATIAL | ANY_SHAPE))
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_1x1_images_match_torch(name, data):
    run(ALL[name], data, hw=1)

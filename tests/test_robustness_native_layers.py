"""The layers PyTorch does not have, on degenerate input: batches of 0 and 1, 1x1 images and
inputs that are views, against float64 naive references (the loops of ``functional``'s
``*_naive`` kernels, or formulas typed in here) and central-difference gradients of them.
``test_robustness_layers.py`` does the same for the layers PyTorch has."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
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
    numerical_grad,
    randomise,
)

from cnnumpy import functional as F
from cnnumpy import nn
from cnnumpy.inspect import numerical_gradient


class Native(NamedTuple):
    """A layer PyTorch lacks: our layer's builder and its float64 reference."""

    ours: Callable[[type], nn.Module]
    forward: Callable[..., np.ndarray]  # float64 reference: (x, *params) -> out, or (x, y) -> loss
    backward: Callable[..., tuple] | None  # (dout, x, *params) -> (dx, *grads); None: numerical
    x_shape: tuple[int, ...]
    training: bool = True
    values: str = "normal"
    classes: int = 0


def subsampling(draw, n, hw):
    c, k = draw(st.integers(1, 3)), 1 if hw == 1 else draw(st.integers(1, 3))
    s, bias = draw(st.integers(1, 3)), draw(st.booleans())

    def forward(x, w, *b):
        return F.subsampling_forward_naive(x, w, *b, kernel_size=k, stride=s)

    def backward(dout, x, w, *b):
        return F.subsampling_backward_naive(dout, forward(x, w, *b)[1])[: 2 + len(b)]

    return Native(
        lambda dt: nn.Subsampling(c, k, s, bias, dtype=dt),
        lambda *a: forward(*a)[0],
        backward,
        image_shape(draw, n, hw, c, low=k),
    )


def rbf_output(draw, n, hw):
    d, k = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return Native(
        lambda dt: nn.RBFOutput(d, k, trainable=True, dtype=dt),
        lambda x, w: F.rbf_forward_naive(x, w)[0],
        lambda dout, x, w: F.rbf_backward_naive(dout, F.rbf_forward_naive(x, w)[1]),
        flat_shape(draw, n, d),
    )


def table_conv2d(draw, n, hw):
    c, k, bias = (
        draw(st.integers(1, 3)),
        1 if hw == 1 else draw(st.integers(1, 3)),
        draw(st.booleans()),
    )
    rows = st.sets(st.integers(0, c - 1), min_size=1).map(sorted)
    table = draw(st.lists(rows, min_size=1, max_size=3))
    pairs = [(f, i) for f, row in enumerate(table) for i in row]  # the weight's order
    out_index, in_index = (np.array(v, dtype=np.intp) for v in zip(*pairs, strict=True))

    def forward(x, w, *b):
        return F.table_conv2d_forward_naive(x, w, *(b or [None]), out_index, in_index, len(table))

    ours = lambda dt: nn.TableConv2d(c, table, k, bias, dtype=dt)  # noqa: E731
    return Native(ours, forward, None, image_shape(draw, n, hw, c, low=k))


def scaled_tanh(draw, n, hw):
    forward = lambda x: 1.7159 * np.tanh(2 / 3 * x)  # noqa: E731  LeCun's constants, typed in
    return Native(lambda dt: nn.ScaledTanh(), forward, None, any_shape(draw, n, hw))


def noisy_relu_eval(draw, n, hw):
    return Native(
        lambda dt: nn.NoisyReLU(),
        lambda x: np.maximum(x, 0),
        lambda dout, x: (dout * (x > 0),),
        any_shape(draw, n, hw),
        training=False,
    )


def map_loss(draw, n, hw):
    c, j = draw(st.integers(1, 4)), draw(st.sampled_from([None, 0.5, 3.0]))

    def loss(scores, y):  # eq. 9 of LeCun et al. 1998, with its rubbish class of penalty j
        exponents = np.concatenate([-scores, np.full((len(y), 1), -(84.0 if j is None else j))], 1)
        top = exponents.max(axis=1)
        log_z = top + np.log(np.exp(exponents - top[:, None]).sum(axis=1))
        return float(np.mean(scores[np.arange(len(y)), y] + log_z))

    return Native(lambda dt: nn.MAPLoss(j), loss, None, flat_shape(draw, n, c), classes=c)


NATIVE = {
    "Subsampling": subsampling, "RBFOutput": rbf_output, "TableConv2d": table_conv2d,
    "ScaledTanh": scaled_tanh, "NoisyReLU-eval": noisy_relu_eval, "MAPLoss": map_loss,
}  # fmt: skip


def run_native(spec, data, n: int | None = None, hw: int | None = None) -> None:
    """Draw a case from ``spec`` and compare our layer with its float64 reference."""
    case = spec(data.draw, n, hw)
    dtype = data.draw(DTYPES)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    ours = case.ours(dtype)
    randomise(ours, rng)
    ours.train(case.training)
    x = make_input(case, data, rng, dtype)
    x64, params = exact(x), [exact(p.data) for p in ours.parameters()]
    if case.classes:
        y = rng.integers(0, case.classes, x.shape[0])
        loss, dscores = ours(x, y), ours.backward()
        if x.shape[0] == 0:  # the mean over no samples
            assert math.isnan(loss) and dscores.shape == x.shape and dscores.dtype == dtype
            return
        assert_close(loss, case.forward(x64, y), rtol=RTOL[dtype], name="loss")
        expected = numerical_gradient(lambda: case.forward(x64, y), x64)
        check(dscores, expected, dtype, 1.0, "dscores", numerical=True)
        return
    out = ours(x)
    dout = arrange(rng.standard_normal(out.shape).astype(dtype), data.draw(LAYOUTS))
    got = (ours.backward(dout), *(p.grad for p in ours.parameters()))
    d64 = exact(dout)
    if case.backward is not None:
        expected = case.backward(d64, x64, *params)
    else:
        f = lambda: case.forward(x64, *params)  # noqa: E731
        expected = [numerical_grad(f, a, d64) for a in (x64, *params)]
    scale = max(1.0, np.abs(x).max(initial=0), np.abs(dout).max(initial=0))
    check(out, case.forward(x64, *params), dtype, scale, "out")
    names = ["dx", *(f"d{name}" for name, _ in ours.named_parameters())]
    assert len(expected) == len(names)
    for name, a, e in zip(names, got, expected, strict=True):
        check(a, e, dtype, scale, name, numerical=case.backward is None)
        assert not (x.shape[0] == 0 and name != "dx" and a.any()), f"{name} is not 0"


@pytest.mark.parametrize("shape", ["any", "batch of 0", "batch of 1", "1x1 images"])
@pytest.mark.parametrize("name", sorted(NATIVE))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_layers_without_a_torch_twin_match_their_references(name, shape, data):
    n = {"batch of 0": 0, "batch of 1": 1}.get(shape)
    run_native(NATIVE[name], data, n=n, hw=1 if shape == "1x1 images" else None)

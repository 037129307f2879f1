import numpy as np
import pytest
import torch
from helpers import assert_conv_close, check_backward, n, t
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy.functional.conv import conv2d_forward
from cnnumpy.functional.conv_naive import (
    conv_transpose2d_backward_naive,
    conv_transpose2d_forward_naive,
)
from cnnumpy.functional.conv_transpose import conv_transpose2d_backward, conv_transpose2d_forward

KERNELS = [
    (conv_transpose2d_forward, conv_transpose2d_backward),
    (conv_transpose2d_forward_naive, conv_transpose2d_backward_naive),
]

# (x shape, weight shape (C_in, F / groups, KH, KW), bias?, hyper-parameters).
CONFIGS = [
    ((2, 3, 4, 5), (3, 2, 3, 3), True, {}),
    ((2, 2, 4, 3), (2, 3, 3, 3), True, {"stride": 2, "padding": 1, "output_padding": 1}),
    ((1, 2, 3, 4), (2, 2, 2, 3), True, {"stride": (3, 2), "padding": (2, 1)}),
    ((2, 2, 3, 3), (2, 1, 3, 2), False, {"stride": 3, "output_padding": (2, 1)}),
    ((2, 2, 4, 4), (2, 2, 3, 2), True, {"dilation": 2, "padding": 2}),
    # output_padding >= stride is allowed when smaller than the dilation: never-written rows
    ((1, 2, 3, 4), (2, 2, 2, 2), True, {"dilation": (3, 2), "output_padding": (2, 1)}),
    ((2, 4, 3, 4), (4, 3, 3, 3), True, {"groups": 2, "stride": 2, "padding": 1}),
    ((2, 3, 4, 3), (3, 1, 3, 3), True, {"groups": 3, "stride": (1, 2)}),  # depthwise
    ((1, 2, 3, 3), (2, 2, 2, 2), False, {"groups": 2, "stride": 2, "dilation": (1, 2)}),
    ((1, 3, 4, 4), (3, 2, 1, 1), True, {"stride": 2, "output_padding": 1}),
]
IDS = [f"x{c[0]}-w{c[1]}-{'b' if c[2] else 'nob'}-{c[3]}" for c in CONFIGS]


def _arrays(rng, x_shape, w_shape, bias, groups, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[1] * groups).astype(dtype) if bias else None
    return x, w, b


def _torch_conv_transpose(x, w, b, dout, **kw):
    tx, tw, tb = t(x), t(w), t(b)
    tout = torch.nn.functional.conv_transpose2d(tx, tw, tb, **kw)
    tout.backward(torch.tensor(dout))
    return n(tout), n(tx.grad), n(tw.grad), None if tb is None else n(tb.grad)


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kw"), CONFIGS, ids=IDS)
def test_gradcheck(rng, x_shape, w_shape, bias, kw):
    x, w, b = _arrays(rng, x_shape, w_shape, bias, kw.get("groups", 1))
    check_backward(conv_transpose2d_forward, conv_transpose2d_backward, [x, w, b], rng, **kw)


def test_gradcheck_naive(rng):
    x, w, b = _arrays(rng, (1, 2, 3, 2), (2, 2, 2, 3), True, 2)
    kw = {"stride": 2, "padding": (1, 0), "output_padding": 1, "dilation": (1, 2), "groups": 2}
    forward, backward = conv_transpose2d_forward_naive, conv_transpose2d_backward_naive
    check_backward(forward, backward, [x, w, b], rng, **kw)


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kw"), CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fast_matches_naive(rng, x_shape, w_shape, bias, kw, dtype):
    x, w, b = _arrays(rng, x_shape, w_shape, bias, kw.get("groups", 1), dtype)
    out, cache = conv_transpose2d_forward(x, w, b, **kw)
    out_naive, cache_naive = conv_transpose2d_forward_naive(x, w, b, **kw)
    dout = rng.standard_normal(out.shape).astype(dtype)
    fast = (out, *conv_transpose2d_backward(dout, cache))
    naive = (out_naive, *conv_transpose2d_backward_naive(dout, cache_naive))
    for a in fast:
        assert a is None or a.dtype == dtype
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert_conv_close(fast, naive, rtol=rtol, atol=1e-14)


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kw"), CONFIGS, ids=IDS)
def test_matches_torch_grid(rng, x_shape, w_shape, bias, kw):
    x, w, b = _arrays(rng, x_shape, w_shape, bias, kw.get("groups", 1))
    out, cache = conv_transpose2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape)
    ours = (out, *conv_transpose2d_backward(dout, cache))
    assert_conv_close(ours, _torch_conv_transpose(x, w, b, dout, **kw), rtol=1e-12, atol=1e-13)


@st.composite
def transpose_configs(draw):
    """A random valid conv_transpose2d: shapes, hyper-parameters (output size >= 1)."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c, fg = groups * draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = draw(st.tuples(st.integers(1, 4), st.integers(1, 4)))
    stride = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    dilation = draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    size, padding, output_padding = [], [], []
    for k, s, d in zip(kernel, stride, dilation, strict=True):
        h = draw(st.integers(1, 5))
        op = draw(st.integers(0, max(s, d) - 1))
        full = (h - 1) * s + d * (k - 1) + op + 1  # the output size before padding
        size.append(h)
        padding.append(draw(st.integers(0, min(2, (full - 1) // 2))))
        output_padding.append(op)
    kw = {
        "stride": stride,
        "padding": tuple(padding),
        "output_padding": tuple(output_padding),
        "dilation": dilation,
        "groups": groups,
    }
    x_shape = (draw(st.integers(1, 3)), c, *size)
    return x_shape, (c, fg, *kernel), draw(st.booleans()), kw


@settings(max_examples=40, deadline=None)
@given(
    config=transpose_configs(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_matches_torch(config, dtype, seed):
    rng = np.random.default_rng(seed)
    x_shape, w_shape, bias, kw = config
    x, w, b = _arrays(rng, x_shape, w_shape, bias, kw["groups"], dtype)
    out, cache = conv_transpose2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape).astype(dtype)
    ours = (out, *conv_transpose2d_backward(dout, cache))
    for a in ours:
        assert a is None or a.dtype == dtype
    ref = _torch_conv_transpose(x, w, b, dout, **kw)
    if dtype == np.float32:
        assert_conv_close(ours, ref, rtol=1e-4)
    else:
        assert_conv_close(ours, ref, rtol=1e-12, atol=1e-13)


@settings(max_examples=30, deadline=None)
@given(
    n_=st.integers(1, 2),
    groups=st.sampled_from([1, 2]),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    extra=st.tuples(st.integers(0, 5), st.integers(0, 5)),
    seed=st.integers(0, 2**31),
)
def test_adjoint_of_conv2d(n_, groups, kernel, stride, padding, dilation, extra, seed):
    """``<conv2d(x, w), y> == <x, conv_transpose2d(y, w)>`` for the same weight array."""
    rng = np.random.default_rng(seed)
    reach = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
    size = [max(1, r - 2 * p) + e for r, p, e in zip(reach, padding, extra, strict=True)]
    x = rng.standard_normal((n_, 2 * groups, *size))
    w = rng.standard_normal((3 * groups, 2, *kernel))  # conv2d: (F, C / groups, KH, KW)
    kw = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    ax, _ = conv2d_forward(x, w, **kw)
    y = rng.standard_normal(ax.shape)
    # The rows a strided conv2d never reads are restored by output_padding, which is < stride.
    output_padding = tuple(
        (s_in + 2 * p - r) % s for s_in, p, r, s in zip(size, padding, reach, stride, strict=True)
    )
    aty, _ = conv_transpose2d_forward(y, w, output_padding=output_padding, **kw)
    assert aty.shape == x.shape
    lhs, rhs = float(np.sum(ax * y)), float(np.sum(x * aty))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, np.sum(np.abs(ax * y)))


@pytest.mark.parametrize(("forward", "backward"), KERNELS)
def test_rejects_bad_input(rng, forward, backward):
    x, w, b = _arrays(rng, (2, 4, 3, 3), (4, 3, 3, 3), True, 1)
    w32 = w.astype(np.float32)
    bad = [
        (ValueError, "x must have 4 dimensions", (x[0], w), {}),
        (ValueError, "weight must have 4 dimensions", (x, w[0]), {}),
        (TypeError, "float32 or float64", (x.astype(np.int32), w), {}),
        (TypeError, "weight has dtype float32 but the input has dtype float64", (x, w32), {}),
        (ValueError, r"bias must have shape \(6,\)", (x, w, b), {"groups": 2}),
        (ValueError, r"x has C=4 channels .*weight.shape\[0\] = 2", (x, w[:2]), {}),
        (ValueError, "groups=3 must divide the input channels, got C=4", (x, w), {"groups": 3}),
        (ValueError, "groups must be a positive int", (x, w), {"groups": -1}),
        (ValueError, "stride must be >= 1", (x, w), {"stride": 0}),
        (ValueError, "padding must be >= 0", (x, w), {"padding": (0, -1)}),
        (ValueError, "output_padding must be >= 0", (x, w), {"output_padding": -1}),
        (
            ValueError,
            "output_padding must be smaller than stride or dilation, got output_padding=2 "
            "with stride=2 and dilation=1 along the width",
            (x, w),
            {"stride": 2, "output_padding": (1, 2)},
        ),
        (ValueError, "output would be -1x-1", (x, w), {"padding": 3}),
        (TypeError, "padding must be an int or a pair", (x, w), {"padding": "same"}),
    ]
    for error, match, args, kw in bad:
        with pytest.raises(error, match=match):
            forward(*args, **kw)
    with pytest.raises(ValueError, match="x must be finite"):
        forward(np.full_like(x, np.nan), w, check_finite=True)
    out, cache = forward(x, w, b)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3, 5, 5\)"):
        backward(out[:1], cache)

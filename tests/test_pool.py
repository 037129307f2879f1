import ast
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, check_backward, n, t
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy import backend
from cnnumpy.functional import _maxpool, _parallel
from cnnumpy.functional.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool2d_backward,
    global_avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    subsampling_backward,
    subsampling_forward,
)
from cnnumpy.functional.pool_naive import (
    avg_pool2d_backward_naive,
    avg_pool2d_forward_naive,
    global_avg_pool2d_backward_naive,
    global_avg_pool2d_forward_naive,
    max_pool2d_backward_naive,
    max_pool2d_forward_naive,
    subsampling_backward_naive,
    subsampling_forward_naive,
)

MAX = {
    "fast": (max_pool2d_forward, max_pool2d_backward),
    "naive": (max_pool2d_forward_naive, max_pool2d_backward_naive),
}
AVG = {
    "fast": (avg_pool2d_forward, avg_pool2d_backward),
    "naive": (avg_pool2d_forward_naive, avg_pool2d_backward_naive),
}
GLOBAL = {
    "fast": (global_avg_pool2d_forward, global_avg_pool2d_backward),
    "naive": (global_avg_pool2d_forward_naive, global_avg_pool2d_backward_naive),
}
SUB = {
    "fast": (subsampling_forward, subsampling_backward),
    "naive": (subsampling_forward_naive, subsampling_backward_naive),
}

# (x shape, kernel_size, stride, padding, ceil_mode)
CONFIGS = {
    "2x2/2": ((2, 3, 6, 6), 2, None, 0, False),
    "3x3/2 overlapping": ((2, 2, 7, 7), 3, 2, 0, False),
    "3x3/1 batch 1": ((1, 2, 5, 6), 3, 1, 0, False),
    "stride not dividing": ((2, 2, 7, 8), 2, 3, 0, False),
    "padding 1": ((2, 2, 6, 5), 3, 2, 1, False),
    "ceil_mode": ((2, 2, 7, 6), 3, 2, 0, True),
    "ceil_mode padding": ((2, 1, 6, 7), 2, 2, 1, True),
    "non-square": ((1, 2, 7, 9), (2, 3), (1, 2), (1, 0), False),
    "non-square ceil": ((2, 1, 5, 9), (3, 2), (2, 3), (1, 1), True),
    "ceil kernel > input": ((1, 2, 4, 4), 5, 3, 0, True),  # PyTorch allows it: one window
}
IMPLS = ["fast", "naive"]


def hyper(config):
    shape, kernel_size, stride, padding, ceil_mode = config
    return shape, {
        "kernel_size": kernel_size,
        "stride": stride,
        "padding": padding,
        "ceil_mode": ceil_mode,
    }


def distinct(rng, shape):
    """Tie-free input: values 0.01 apart, far beyond the gradient check's step of 1e-6."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01 - 1.0


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_max_pool_gradcheck(rng, config, impl):
    shape, kw = hyper(config)
    check_backward(*MAX[impl], [distinct(rng, shape)], rng, **kw)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_avg_pool_gradcheck(rng, config, count_include_pad, impl):
    shape, kw = hyper(config)
    x = rng.standard_normal(shape)
    check_backward(*AVG[impl], [x], rng, count_include_pad=count_include_pad, **kw)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (1, 1, 1, 1), (1, 2, 3, 7)])
def test_global_avg_pool_gradcheck(rng, shape, impl):
    check_backward(*GLOBAL[impl], [rng.standard_normal(shape)], rng)


SUB_CONFIGS = {
    "LeNet 2x2": ((2, 3, 6, 6), 2, None),
    "odd size": ((1, 2, 7, 5), 2, None),
    "overlapping": ((2, 2, 7, 7), 3, 2),
    "non-square": ((2, 2, 7, 9), (2, 3), (3, 2)),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("config", SUB_CONFIGS.values(), ids=SUB_CONFIGS.keys())
def test_subsampling_gradcheck(rng, config, bias, impl):
    shape, kernel_size, stride = config
    w = rng.standard_normal(shape[1])
    b = rng.standard_normal(shape[1]) if bias else None
    x = rng.standard_normal(shape)
    check_backward(*SUB[impl], [x, w, b], rng, kernel_size=kernel_size, stride=stride)


@pytest.mark.parametrize("impl", IMPLS)
def test_max_pool_first_maximum_wins(impl):
    forward, backward = MAX[impl]
    # Window 0 ties at (0, 1) and (1, 0); window 1 is constant: the first in row-major wins.
    x = np.array([[[[1.0, 3.0, 5.0, 5.0], [3.0, 2.0, 5.0, 5.0]]]])
    out, cache = forward(x, kernel_size=2)
    dx = backward(np.array([[[[10.0, 20.0]]]]), cache)
    assert_close(out, [[[[3.0, 5.0]]]], rtol=0, name="out")
    assert_close(dx, [[[[0.0, 10.0, 20.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]], rtol=0, name="dx")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_max_pool_ties_match_torch(rng, config, dtype, impl):
    shape, kw = hyper(config)
    x = rng.integers(-1, 2, shape).astype(dtype)  # three values: ties in most windows
    x[0, 0] = -1.0  # a constant map: with padding, the -inf margin must never win
    out, cache = MAX[impl][0](x, **kw)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = MAX[impl][1](dout, cache)
    tx = t(x)
    tout = F.max_pool2d(tx, **kw)
    tout.backward(torch.tensor(dout))
    assert_close(out, n(tout), rtol=0, name="out")
    assert_close(dx, n(tx.grad), rtol=1e-6, name="dx")  # exact but for overlap sums' order


@pytest.mark.parametrize("impl", IMPLS)
def test_max_pool_propagates_nan(impl):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 1, 2] = np.nan
    out, _ = MAX[impl][0](x, kernel_size=2)
    expected = F.max_pool2d(torch.tensor(x), 2).numpy()
    np.testing.assert_array_equal(out, expected)  # NaN where PyTorch has NaN, equal elsewhere
    assert np.isnan(out[0, 0, 0, 1])


@st.composite
def pool_configs(draw, allow_empty_output=False):
    """A random pooling problem: ``(shape, kwargs)``. With ``allow_empty_output`` the input may
    be too small for the kernel, for parity of the errors too."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    slack = 2 if allow_empty_output else 0
    h = draw(st.integers(max(1, kh - 2 * ph - slack), kh + 6))
    w = draw(st.integers(max(1, kw - 2 * pw - slack), kw + 6))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w)
    kernel = kh if kh == kw and draw(st.booleans()) else (kh, kw)  # an int or a pair
    return shape, {
        "kernel_size": kernel,
        "stride": stride,
        "padding": (ph, pw),
        "ceil_mode": draw(st.booleans()),
    }


def rtol_for(dtype):
    return 1e-4 if dtype == np.float32 else 1e-12


def check_against_torch(forward, backward, torch_fn, x, rng, **kw):
    """Forward and dx against PyTorch; where PyTorch refuses the input, ours must refuse too."""
    tx = t(x)
    try:
        tout = torch_fn(tx, **kw)
    except RuntimeError:
        with pytest.raises(ValueError, match="bigger than the padded input"):
            forward(x, **kw)
        return
    out, cache = forward(x, **kw)
    assert out.dtype == x.dtype
    dout = rng.standard_normal(out.shape).astype(x.dtype)
    dx = backward(dout, cache)
    assert dx.dtype == x.dtype
    tout.backward(torch.tensor(dout))
    rtol = rtol_for(x.dtype)
    assert_close(out, n(tout), rtol=rtol, atol=1e-300, name="out")
    assert_close(dx, n(tx.grad), rtol=rtol, atol=1e-300, name="dx")


dtypes = st.sampled_from([np.float32, np.float64])


@settings(max_examples=40, deadline=None)
@given(config=pool_configs(allow_empty_output=True), dtype=dtypes, seed=st.integers(0, 2**31))
def test_max_pool_matches_torch(config, dtype, seed):
    shape, kw = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    torch_fn = lambda tx, **kw: F.max_pool2d(tx, **kw)  # noqa: E731
    check_against_torch(max_pool2d_forward, max_pool2d_backward, torch_fn, x, rng, **kw)


@settings(max_examples=40, deadline=None)
@given(
    config=pool_configs(allow_empty_output=True),
    count_include_pad=st.booleans(),
    dtype=dtypes,
    seed=st.integers(0, 2**31),
)
def test_avg_pool_matches_torch(config, count_include_pad, dtype, seed):
    shape, kw = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    check_against_torch(
        avg_pool2d_forward,
        avg_pool2d_backward,
        F.avg_pool2d,
        x,
        rng,
        count_include_pad=count_include_pad,
        **kw,
    )


@settings(max_examples=20, deadline=None)
@given(
    shape=st.tuples(*(st.integers(1, 5) for _ in range(4))),
    dtype=dtypes,
    seed=st.integers(0, 2**31),
)
def test_global_avg_pool_matches_torch(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    torch_fn = lambda tx: F.adaptive_avg_pool2d(tx, 1)  # noqa: E731
    check_against_torch(global_avg_pool2d_forward, global_avg_pool2d_backward, torch_fn, x, rng)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(3, 9), st.integers(3, 9)),
    kernel_size=st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))),
    stride=st.one_of(st.none(), st.integers(1, 3)),
    bias=st.booleans(),
    dtype=dtypes,
    seed=st.integers(0, 2**31),
)
def test_subsampling_matches_torch_expression(shape, kernel_size, stride, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(shape[1]).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype) if bias else None
    out, cache = subsampling_forward(x, w, b, kernel_size=kernel_size, stride=stride)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = subsampling_backward(dout, cache)

    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    tx, tw, tb = t(x), t(w), t(b)
    tout = F.avg_pool2d(tx, kernel_size, stride) * (kh * kw) * tw[:, None, None]
    if bias:
        tout = tout + tb[:, None, None]
    tout.backward(torch.tensor(dout))
    rtol = rtol_for(dtype)
    for name, ours, theirs in [("out", out, tout), ("dx", dx, tx.grad), ("dw", dw, tw.grad)]:
        assert ours.dtype == dtype, name
        assert_close(ours, n(theirs), rtol=rtol, atol=1e-300, name=name)
    if bias:
        assert db.dtype == dtype
        assert_close(db, n(tb.grad), rtol=rtol, atol=1e-300, name="db")
    else:
        assert db is None


@settings(max_examples=30, deadline=None)
@given(config=pool_configs(), ties=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**31))
def test_naive_matches_fast(config, ties, dtype, seed):
    shape, kw = config
    rng = np.random.default_rng(seed)
    x = (rng.integers(-1, 2, shape) if ties else rng.standard_normal(shape)).astype(dtype)
    dout = None
    cases = [
        (MAX, kw),
        (AVG, {**kw, "count_include_pad": True}),
        (AVG, {**kw, "count_include_pad": False}),
        (GLOBAL, {}),
    ]
    for kernels, kwargs in cases:
        results = {}
        for impl in IMPLS:
            out, cache = kernels[impl][0](x, **kwargs)
            dout = rng.standard_normal(out.shape).astype(dtype) if impl == "fast" else dout
            results[impl] = out, kernels[impl][1](dout, cache)
        for name, fast, naive in zip(["out", "dx"], results["fast"], results["naive"], strict=True):
            assert fast.dtype == naive.dtype == dtype
            assert_close(fast, naive, rtol=rtol_for(dtype), atol=1e-300, name=name)


@settings(max_examples=20, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(3, 9), st.integers(3, 9)),
    kernel_size=st.integers(1, 3),
    stride=st.one_of(st.none(), st.integers(1, 3)),
    dtype=dtypes,
    seed=st.integers(0, 2**31),
)
def test_subsampling_naive_matches_fast(shape, kernel_size, stride, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(shape[1]).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    out, cache = subsampling_forward(x, w, b, kernel_size=kernel_size, stride=stride)
    out_n, cache_n = subsampling_forward_naive(x, w, b, kernel_size=kernel_size, stride=stride)
    dout = rng.standard_normal(out.shape).astype(dtype)
    fast = (out, *subsampling_backward(dout, cache))
    naive = (out_n, *subsampling_backward_naive(dout, cache_n))
    # dw and db are sums over the whole batch that can cancel to far below their terms: in
    # float32 allow a few roundings of the terms' total size (hypothesis found a 3x3 window
    # whose sum was 1e-5 of its terms).
    terms = np.abs(dout.astype(np.float64)).sum()
    sum_atol = {"dw": terms * kernel_size**2 * np.abs(x).max(), "db": terms}
    for name, a, b_ in zip(["out", "dx", "dw", "db"], fast, naive, strict=True):
        assert a.dtype == b_.dtype == dtype, name
        atol = 1e-6 * sum_atol[name] if dtype == np.float32 and name in sum_atol else 1e-300
        assert_close(a, b_, rtol=rtol_for(dtype), atol=atol, name=name)


@pytest.mark.parametrize("impl", IMPLS)
def test_float32_in_float32_out(rng, impl):
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    w = rng.standard_normal(3).astype(np.float32)
    runs = [
        (MAX[impl], [x], {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        (AVG[impl], [x], {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        (GLOBAL[impl], [x], {}),
        (SUB[impl], [x, w, w], {}),
    ]
    for (forward, backward), arrays, kw in runs:
        out, cache = forward(*arrays, **kw)
        grads = backward(np.ones_like(out), cache)
        grads = grads if isinstance(grads, tuple) else (grads,)
        assert out.dtype == np.float32, forward.__name__
        assert all(g.dtype == np.float32 for g in grads), backward.__name__


def test_input_not_modified_and_dx_contiguous(rng):
    x = rng.standard_normal((2, 2, 5, 5))
    x_copy = x.copy()
    for forward, backward in [MAX["fast"], AVG["fast"]]:
        out, cache = forward(x, kernel_size=3, stride=2, padding=1, ceil_mode=True)
        dx = backward(np.ones_like(out), cache)
        assert dx.shape == x.shape and dx.flags.c_contiguous
    np.testing.assert_array_equal(x, x_copy)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kernels", [MAX, AVG], ids=["max", "avg"])
def test_pool_rejects_bad_input(rng, kernels, impl):
    forward = kernels[impl][0]
    x = rng.standard_normal((2, 3, 4, 4))
    with pytest.raises(ValueError, match="4 dimensions"):
        forward(x[0], kernel_size=2)
    with pytest.raises(TypeError, match="float32 or float64"):
        forward(x.astype(np.int64), kernel_size=2)
    with pytest.raises(ValueError, match=r"kernel_size \(5, 5\) is bigger than the padded input"):
        forward(x, kernel_size=5)
    with pytest.raises(ValueError, match=r"padded input \(6, 4\)"):
        forward(x, kernel_size=(7, 3), padding=(1, 0))
    with pytest.raises(ValueError, match=r"half the kernel size .* got padding \(2, 2\)"):
        forward(x, kernel_size=3, padding=2)
    with pytest.raises(ValueError, match=r"got padding \(2, 0\)"):
        forward(x, kernel_size=(3, 4), padding=(2, 0))
    with pytest.raises(ValueError, match=r"got padding \(1, 2\)"):
        forward(x, kernel_size=(4, 3), padding=(1, 2))
    with pytest.raises(ValueError, match=r"stride must be positive, got \(0, 0\)"):
        forward(x, kernel_size=2, stride=0)
    with pytest.raises(ValueError, match="stride must be positive"):
        forward(x, kernel_size=2, stride=(1, -1))
    with pytest.raises(TypeError, match="stride must be an int or a pair"):
        forward(x, kernel_size=2, stride=1.5)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        forward(x, kernel_size=(2, 2, 2))
    with pytest.raises(ValueError, match="kernel_size must be positive"):
        forward(x, kernel_size=0)


def test_backward_rejects_wrong_dout_shape(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    for forward, backward in [MAX["fast"], AVG["fast"], MAX["naive"], AVG["naive"]]:
        out, cache = forward(x, kernel_size=2)
        with pytest.raises(ValueError, match=r"dout must have shape \(2, 3, 2, 2\)"):
            backward(np.ones((2, 3, 3, 3)), cache)
    _, cache = global_avg_pool2d_forward(x)
    with pytest.raises(ValueError, match="dout must have shape"):
        global_avg_pool2d_backward(np.ones((2, 3)), cache)


@pytest.mark.parametrize("impl", IMPLS)
def test_global_and_subsampling_reject_bad_input(rng, impl):
    x = rng.standard_normal((2, 3, 4, 4))
    w = rng.standard_normal(3)
    with pytest.raises(ValueError, match="4 dimensions"):
        GLOBAL[impl][0](x[0])
    sub = SUB[impl][0]
    with pytest.raises(ValueError, match="4 dimensions"):
        sub(x[0], w)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\), got \(4,\)"):
        sub(x, rng.standard_normal(4))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\), got \(2,\)"):
        sub(x, w, rng.standard_normal(2))
    with pytest.raises(TypeError, match="weight has dtype float32"):
        sub(x, w.astype(np.float32))
    with pytest.raises(ValueError, match="bigger than the padded input"):
        sub(x, w, kernel_size=5)


# The chunked max-pooling kernel (_maxpool.py): strided views over chunks of planes, a
# small-integer argmax from the forward. Shapes where its bookkeeping (assign or add, zeroed
# margins, -inf padding per chunk) could go wrong:
KERNEL_CONFIGS = {
    "kernel 1": ((2, 3, 5, 4), 1, None, 0, False),
    "kernel 1 stride 2": ((1, 2, 5, 6), 1, 2, 0, True),
    "stride > kernel": ((2, 2, 9, 11), 2, 3, 0, False),
    "stride > kernel ceil": ((2, 2, 9, 10), (2, 1), (3, 4), (1, 0), True),
    "3x3/2 odd padding ceil": ((3, 2, 9, 7), 3, 2, 1, True),
    "3x3/1 padding": ((2, 2, 6, 7), 3, 1, 1, False),
    "5x5/2 padding 2 ceil": ((1, 3, 11, 12), 5, 2, 2, True),
    "1x4/(1,2)": ((2, 1, 3, 9), (1, 4), (1, 2), 0, False),
    "4x1/(3,1) ceil": ((2, 1, 10, 3), (4, 1), (3, 1), (2, 0), True),
    "2x2/2 bar shape, small": ((3, 4, 8, 8), 2, None, 0, False),
}


def max_pool_data(rng, shape, kind, dtype):
    if kind == "ties":  # three values: ties in most windows, whole tied rows and columns
        return rng.integers(-1, 2, shape).astype(dtype)
    return distinct(rng, shape).astype(dtype)


@pytest.mark.parametrize("kind", ["ties", "distinct"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", KERNEL_CONFIGS.values(), ids=KERNEL_CONFIGS.keys())
def test_chunked_max_pool_matches_naive_and_torch(rng, config, kind, dtype):
    shape, kw = hyper(config)
    x = max_pool_data(rng, shape, kind, dtype)
    out, cache = max_pool2d_forward(x, **kw)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = max_pool2d_backward(dout, cache)
    out_n, cache_n = max_pool2d_forward_naive(x, **kw)
    tx = t(x)
    tout = F.max_pool2d(tx, **kw)
    tout.backward(torch.tensor(dout))
    rtol = 1e-6 if dtype == np.float32 else 1e-14  # overlapping windows sum in another order
    for name, want in [("naive", max_pool2d_backward_naive(dout, cache_n)), ("torch", tx.grad)]:
        assert_close(dx, n(want) if name == "torch" else want, rtol=rtol, name=f"dx vs {name}")
    np.testing.assert_array_equal(out, out_n)
    np.testing.assert_array_equal(out, n(tout))
    assert out.dtype == dx.dtype == dtype and dx.flags.c_contiguous


@pytest.mark.parametrize("chunk_bytes", [1, 5 * 9 * 8, 2**20])
@pytest.mark.parametrize("config", KERNEL_CONFIGS.values(), ids=KERNEL_CONFIGS.keys())
def test_max_pool_chunks_give_the_same_result(rng, monkeypatch, config, chunk_bytes):
    # One plane per chunk, a few planes (a short last chunk), everything in one chunk.
    shape, kw = hyper(config)
    x = max_pool_data(rng, shape, "ties", np.float64)
    out_n, cache_n = max_pool2d_forward_naive(x, **kw)
    dout = rng.standard_normal(out_n.shape)
    monkeypatch.setattr(_maxpool, "CHUNK_BYTES", chunk_bytes)
    out, cache = max_pool2d_forward(x, **kw)
    np.testing.assert_array_equal(out, out_n)
    assert_close(
        max_pool2d_backward(dout, cache), max_pool2d_backward_naive(dout, cache_n), rtol=1e-14
    )


@pytest.mark.parametrize(
    ("kernel", "index_dtype"), [((16, 16), np.uint8), ((1, 257), np.uint16), ((17, 16), np.uint16)]
)
def test_max_pool_big_kernels_use_a_wider_argmax(rng, kernel, index_dtype):
    # uint8 holds kernel positions 0..255 (16x16); more need uint16, not a wrapped index.
    shape = (1, 2, kernel[0] + 1, kernel[1] + 2)
    x = rng.standard_normal(shape)
    x[0, 0] = 0.0  # all tied: the first element of each window must win
    out, cache = max_pool2d_forward(x, kernel_size=kernel, stride=1)
    assert cache.argmax.dtype == index_dtype
    dout = rng.standard_normal(out.shape)
    out_n, cache_n = max_pool2d_forward_naive(x, kernel_size=kernel, stride=1)
    np.testing.assert_array_equal(out, out_n)
    assert_close(
        max_pool2d_backward(dout, cache), max_pool2d_backward_naive(dout, cache_n), rtol=1e-14
    )


def test_max_pool_all_tied_goes_to_each_windows_first_real_element():
    # Constant input: window (i, j)'s first real element in row-major order gets its gradient,
    # never the -inf padding, also where overlapping windows share elements.
    x = np.zeros((1, 1, 6, 7))
    kw = {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}
    out, cache = max_pool2d_forward(x, **kw)
    dout = np.arange(1.0, out.size + 1).reshape(out.shape)
    tx = t(x)
    F.max_pool2d(tx, **kw).backward(torch.tensor(dout))
    np.testing.assert_array_equal(max_pool2d_backward(dout, cache), n(tx.grad))


def test_max_pool_nan_propagates_with_padding_and_overlap(rng):
    x = rng.standard_normal((2, 3, 9, 8))
    x[rng.random(x.shape) < 0.05] = np.nan
    for kw in [
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": 2},
    ]:
        out, cache = max_pool2d_forward(x, **kw)
        np.testing.assert_array_equal(out, F.max_pool2d(torch.tensor(x), **kw).numpy())
        assert np.isnan(out).any()
        assert max_pool2d_backward(np.ones_like(out), cache).shape == x.shape


def test_max_pool_threads_give_identical_results(rng, monkeypatch):
    # Chunks shared out between 1, 2 or 3 threads: each writes its own planes, so the results
    # are bit-identical.
    monkeypatch.setattr(_maxpool, "CHUNK_BYTES", 3 * 9 * 8 * 8)
    x = max_pool_data(rng, (4, 5, 9, 8), "ties", np.float64)
    kw = {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}
    dout = rng.standard_normal(max_pool2d_forward(x, **kw)[0].shape)
    results = []
    monkeypatch.setattr(_parallel, "MIN_CHUNKS_PER_THREAD", 1)
    for threads in [1, 2, 3]:
        with backend.num_threads(threads):
            out, cache = max_pool2d_forward(x, **kw)
            results.append((out, max_pool2d_backward(dout, cache)))
    for out, dx in results[1:]:
        np.testing.assert_array_equal(out, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])


def _imported_modules(module) -> set[str]:
    tree = ast.parse(Path(module.__file__).read_text())
    return {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def test_max_pool_kernel_does_not_import_pool():
    # pool.py imports _maxpool.py; what both need lives in _pool_windows.py, so no import circle.
    assert "pool" not in _imported_modules(_maxpool)
    assert "_pool_windows" in _imported_modules(_maxpool)


@pytest.mark.parametrize("shape", [(0, 3, 5, 4), (2, 0, 5, 4)])
def test_max_pool_without_planes(shape):
    """No sample or no channel: no chunk of planes to pool (the forward once indexed the first
    chunk to size its buffers); empty outputs of PyTorch's shape, and an empty dx."""
    x = np.zeros(shape)
    out, cache = max_pool2d_forward(x, kernel_size=3, stride=2, padding=1)
    assert out.shape == (*shape[:2], 3, 2) and out.dtype == x.dtype
    if shape[0] == 0:  # PyTorch refuses zero channels but takes an empty batch
        assert F.max_pool2d(t(x), 3, 2, 1).shape == out.shape
    dx = max_pool2d_backward(np.zeros(out.shape), cache)
    assert dx.shape == shape
    out_naive, cache_naive = max_pool2d_forward_naive(x, kernel_size=3, stride=2, padding=1)
    assert out_naive.shape == out.shape
    assert max_pool2d_backward_naive(np.zeros(out.shape), cache_naive).shape == shape

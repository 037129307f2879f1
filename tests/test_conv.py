import numpy as np
import pytest
import torch
from helpers import assert_close, assert_conv_close, check_backward, n, t
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy import backend
from cnnumpy.functional import _parallel, conv
from cnnumpy.functional.conv import conv2d_backward, conv2d_forward
from cnnumpy.functional.conv_naive import conv2d_backward_naive, conv2d_forward_naive
from cnnumpy.functional.curvature import conv2d_curvature

# PyTorch warns that 'same' with an even kernel copies the input; that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

KERNELS = [
    (conv2d_forward, conv2d_backward),
    (conv2d_forward_naive, conv2d_backward_naive),
]

# (x shape, weight shape, bias?, hyper-parameters): small and awkward on purpose.
CONFIGS = [
    ((2, 3, 7, 5), (4, 3, 3, 3), True, {}),
    ((2, 2, 8, 7), (3, 2, 3, 3), True, {"stride": 2, "padding": 1}),
    ((1, 2, 9, 8), (2, 2, 2, 3), True, {"stride": (3, 2), "padding": (2, 1)}),
    ((2, 2, 7, 8), (3, 2, 3, 2), False, {"dilation": 2, "padding": 2}),
    ((2, 1, 8, 6), (2, 1, 2, 3), True, {"stride": (1, 2), "dilation": (2, 1)}),
    ((2, 4, 6, 5), (6, 2, 3, 3), True, {"groups": 2, "padding": 1}),
    ((2, 3, 6, 7), (3, 1, 3, 3), True, {"groups": 3, "stride": 2, "padding": 1}),  # depthwise
    ((1, 2, 5, 5), (4, 1, 2, 2), False, {"groups": 2, "stride": 3}),  # depthwise, multiplier 2
    ((2, 2, 5, 6), (3, 2, 3, 3), True, {"padding": "same", "dilation": 2}),
    ((1, 2, 6, 5), (2, 2, 4, 2), True, {"padding": "same"}),  # even kernel: asymmetric pads
    ((2, 2, 5, 5), (2, 2, 2, 3), True, {"padding": "same", "dilation": (1, 2)}),
    ((2, 2, 5, 4), (3, 2, 2, 2), True, {"padding": "valid", "stride": 2}),
    ((1, 3, 4, 4), (2, 3, 1, 1), False, {}),
    ((1, 2, 4, 5), (3, 2, 1, 2), True, {"padding": (1, 2)}),  # padded beyond the kernel's reach
    ((1, 1, 3, 3), (1, 1, 3, 3), True, {}),  # a single output pixel
]
IDS = [f"x{c[0]}-w{c[1]}-{'b' if c[2] else 'nob'}-{c[3]}" for c in CONFIGS]


def _arrays(rng, x_shape, w_shape, bias, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    return x, w, b


def _torch_conv(x, w, b, dout, **kw):
    """Forward and all gradients from PyTorch, as NumPy arrays (dbias None without bias)."""
    tx, tw, tb = t(x), t(w), t(b)
    tout = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    tout.backward(torch.tensor(dout))
    return n(tout), n(tx.grad), n(tw.grad), None if tb is None else n(tb.grad)


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kw"), CONFIGS, ids=IDS)
def test_gradcheck(rng, x_shape, w_shape, bias, kw):
    x, w, b = _arrays(rng, x_shape, w_shape, bias)
    check_backward(conv2d_forward, conv2d_backward, [x, w, b], rng, **kw)


def test_gradcheck_naive(rng):
    x, w, b = _arrays(rng, (2, 2, 5, 4), (2, 1, 2, 3), True)
    kw = {"stride": 2, "padding": (1, 2), "dilation": (2, 1), "groups": 2}
    check_backward(conv2d_forward_naive, conv2d_backward_naive, [x, w, b], rng, **kw)


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kw"), CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fast_matches_naive(rng, x_shape, w_shape, bias, kw, dtype):
    x, w, b = _arrays(rng, x_shape, w_shape, bias, dtype)
    out, cache = conv2d_forward(x, w, b, **kw)
    out_naive, cache_naive = conv2d_forward_naive(x, w, b, **kw)
    dout = rng.standard_normal(out.shape).astype(dtype)
    fast = (out, *conv2d_backward(dout, cache))
    naive = (out_naive, *conv2d_backward_naive(dout, cache_naive))
    for a in fast:
        assert a is None or a.dtype == dtype
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert_conv_close(fast, naive, rtol=rtol, atol=1e-14)


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kw"), CONFIGS, ids=IDS)
@pytest.mark.parametrize("by_correlation", [True, False])
def test_both_ways_of_computing_dx_match_naive(
    rng, monkeypatch, x_shape, w_shape, bias, kw, by_correlation
):
    """dx by correlating dout (stride 1 only) and by col2im, each forced where it applies."""
    x, w, b = _arrays(rng, x_shape, w_shape, bias)
    out, cache = conv2d_forward(x, w, b, **kw)
    g = cache.geometry
    applies = g.stride == (1, 1) and min(conv._correlation_pads(g)) >= 0
    if by_correlation and not applies:
        assert not conv._correlation_dx_applies(g, x.shape[1], w.shape[0])
        return
    monkeypatch.setattr(conv, "_correlation_dx_applies", lambda *_: by_correlation)
    dout = rng.standard_normal(out.shape)
    dx = conv2d_backward(dout, cache)[0]
    dx_naive = conv2d_backward_naive(dout, conv2d_forward_naive(x, w, b, **kw)[1])[0]
    assert_close(dx, dx_naive, rtol=1e-12, atol=1e-14, name="dx")


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kw"), CONFIGS, ids=IDS)
def test_matches_torch_grid(rng, x_shape, w_shape, bias, kw):
    x, w, b = _arrays(rng, x_shape, w_shape, bias)
    out, cache = conv2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape)
    ours = (out, *conv2d_backward(dout, cache))
    assert_conv_close(ours, _torch_conv(x, w, b, dout, **kw), rtol=1e-12, atol=1e-13)


@st.composite
def conv_configs(draw):
    """A random valid conv2d: shapes, hyper-parameters, dtype and seed."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c, f = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = draw(st.tuples(st.integers(1, 4), st.integers(1, 4)))
    dilation = draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    padding = draw(
        st.one_of(
            st.tuples(st.integers(0, 2), st.integers(0, 2)), st.sampled_from(["same", "valid"])
        )
    )
    if padding == "same":
        stride, pads = (1, 1), (0, 0)  # any size >= 1 fits
    else:
        stride = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
        pads = (0, 0) if padding == "valid" else padding
    size = []
    for k, d, p in zip(kernel, dilation, pads, strict=True):
        low = 1 if padding == "same" else max(1, d * (k - 1) + 1 - 2 * p)
        size.append(draw(st.integers(low, low + 6)))
    x_shape = (draw(st.integers(1, 3)), c, *size)
    kw = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    return x_shape, (f, c // groups, *kernel), draw(st.booleans()), kw


@settings(max_examples=40, deadline=None)
@given(
    config=conv_configs(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_matches_torch(config, dtype, seed):
    rng = np.random.default_rng(seed)
    x_shape, w_shape, bias, kw = config
    x, w, b = _arrays(rng, x_shape, w_shape, bias, dtype)
    out, cache = conv2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape).astype(dtype)
    ours = (out, *conv2d_backward(dout, cache))
    for a in ours:
        assert a is None or a.dtype == dtype
    if dtype == np.float32:
        assert_conv_close(ours, _torch_conv(x, w, b, dout, **kw), rtol=1e-4)
    else:
        assert_conv_close(ours, _torch_conv(x, w, b, dout, **kw), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("samples_per_chunk", [1, 2])
def test_batch_chunks_agree_with_one_chunk(rng, monkeypatch, samples_per_chunk):
    """Forcing several batch chunks (the last one short) changes nothing but rounding."""
    x, w, b = _arrays(rng, (5, 4, 7, 6), (6, 2, 3, 2), True)
    kw = {"stride": (2, 1), "padding": 1, "groups": 2}
    monkeypatch.setattr(_parallel, "MIN_CHUNKS_PER_THREAD", 1)
    with backend.num_threads(1):
        out, cache = conv2d_forward(x, w, b, **kw)
        assert len(conv._batch_chunks(x, cache.geometry)) == 1
        dout = rng.standard_normal(out.shape)
        whole = (out, *conv2d_backward(dout, cache))
        per_sample = 4 * 3 * 2 * out.shape[2] * out.shape[3] * x.itemsize
        monkeypatch.setattr(conv, "CHUNK_BYTES", samples_per_chunk * per_sample)
        out, cache = conv2d_forward(x, w, b, **kw)
        assert len(conv._batch_chunks(x, cache.geometry)) == -(-5 // samples_per_chunk)
        assert_conv_close((out, *conv2d_backward(dout, cache)), whole, rtol=1e-13)


def test_enough_chunks_for_every_thread(rng, monkeypatch):
    """A small column matrix is still cut into MIN_CHUNKS_PER_THREAD chunks per thread."""
    x, w, _ = _arrays(rng, (64, 2, 6, 6), (3, 2, 3, 3), False)
    g = conv2d_forward(x, w)[1].geometry
    per_sample = 2 * 3 * 3 * 4 * 4 * x.itemsize
    monkeypatch.setattr(_parallel, "MIN_CHUNKS_PER_THREAD", 4)
    monkeypatch.setattr(conv, "MIN_CHUNK_BYTES", per_sample)
    with backend.num_threads(2):
        assert [s.stop - s.start for s in conv._batch_chunks(x, g)] == [8] * 8
        # ...but not below MIN_CHUNK_BYTES.
        monkeypatch.setattr(conv, "MIN_CHUNK_BYTES", 16 * per_sample)
        assert [s.stop - s.start for s in conv._batch_chunks(x, g)] == [16] * 4


def test_int_and_pair_hyper_parameters_agree(rng):
    x, w, b = _arrays(rng, (2, 2, 7, 7), (3, 2, 3, 3), True)
    out_int, _ = conv2d_forward(x, w, b, stride=2, padding=1, dilation=2)
    out_pair, _ = conv2d_forward(x, w, b, stride=(2, 2), padding=[1, 1], dilation=(2, 2))
    np.testing.assert_array_equal(out_int, out_pair)


def test_same_keeps_size_and_valid_is_no_padding(rng):
    x, w, _ = _arrays(rng, (1, 2, 6, 5), (3, 2, 4, 3), False)
    assert conv2d_forward(x, w, padding="same", dilation=2)[0].shape == (1, 3, 6, 5)
    np.testing.assert_array_equal(
        conv2d_forward(x, w, padding="valid")[0], conv2d_forward(x, w, padding=0)[0]
    )


def test_non_contiguous_input(rng):
    x, w, b = _arrays(rng, (2, 3, 10, 9), (4, 3, 3, 3), True)
    view = x[:, ::-1, ::2]  # negative and non-unit strides
    out, cache = conv2d_forward(view, w, b, padding=1)
    ref, _ = conv2d_forward(np.ascontiguousarray(view), w, b, padding=1)
    np.testing.assert_array_equal(out, ref)
    dx = conv2d_backward(np.ones_like(out), cache)[0]
    assert dx.shape == view.shape and dx.flags.c_contiguous


@pytest.mark.parametrize(("forward", "backward"), KERNELS)
def test_rejects_bad_input(rng, forward, backward):
    x, w, b = _arrays(rng, (2, 4, 6, 6), (4, 4, 3, 3), True)
    w32, w7 = w.astype(np.float32), rng.standard_normal((4, 4, 7, 3))
    bad = [
        (ValueError, "x must have 4 dimensions", (x[0], w), {}),
        (ValueError, "weight must have 4 dimensions", (x, w[0]), {}),
        (TypeError, "float32 or float64", (x.astype(np.int64), w), {}),
        (TypeError, "weight has dtype float32 but the input has dtype float64", (x, w32), {}),
        (TypeError, "bias has dtype float32", (x, w, b.astype(np.float32)), {}),
        (ValueError, r"bias must have shape \(4,\)", (x, w, b[:2]), {}),
        (ValueError, r"x has C=4 channels but .*shape\[1\] \* groups = 8", (x, w), {"groups": 2}),
        (ValueError, r"C=4 channels .* weight.shape\[1\] \* groups = 2", (x, w[:, :2]), {}),
        (ValueError, "groups=3 must divide the input channels, got C=4", (x, w), {"groups": 3}),
        (ValueError, "must divide the output channels, got F=3", (x, w[:3]), {"groups": 2}),
        (ValueError, "groups must be a positive int", (x, w), {"groups": 0}),
        (ValueError, "kernel 7x3 .* does not fit the padded input 6x6", (x, w7), {}),
        (ValueError, r"spanning 7x7 with dilation \(3, 3\)", (x, w), {"dilation": 3}),
        (ValueError, "stride must be >= 1", (x, w), {"stride": (1, 0)}),
        (ValueError, "dilation must be >= 1", (x, w), {"dilation": 0}),
        (ValueError, "padding must be >= 0", (x, w), {"padding": -1}),
        (ValueError, "padding='same' needs stride 1", (x, w), {"padding": "same", "stride": 2}),
        (ValueError, "'same' or 'valid', got 'full'", (x, w), {"padding": "full"}),
        (TypeError, "stride must be an int or a pair", (x, w), {"stride": (1, 2, 3)}),
        (TypeError, "padding must be an int or a pair", (x, w), {"padding": 1.5}),
    ]
    for error, match, args, kw in bad:
        with pytest.raises(error, match=match):
            forward(*args, **kw)
    with pytest.raises(ValueError, match="x must be finite"):
        forward(np.full_like(x, np.inf), w, check_finite=True)
    out, cache = forward(x, w, b)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 4, 4\)"):
        backward(out[:, :, 1:], cache)


def test_backward_without_input_grad_gives_the_same_parameter_gradients(rng):
    x, w, b = _arrays(rng, (3, 2, 9, 8), (4, 2, 3, 3), True)
    out, cache = conv2d_forward(x, w, b, stride=2, padding=1)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward(dout, cache)
    skipped = conv2d_backward(dout, cache, input_grad=False)
    assert skipped[0] is None and dx is not None
    assert np.array_equal(skipped[1], dw) and np.array_equal(skipped[2], db)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threaded_chunks_give_bit_identical_results(rng, monkeypatch, threads):
    """Whatever the thread count, conv2d's outputs and gradients are the same bits, and BLAS
    gets its threads back afterwards."""
    from threadpoolctl import threadpool_info

    x, w, b = _arrays(rng, (9, 3, 8, 7), (4, 3, 3, 3), True, np.float32)
    dout = rng.standard_normal((9, 4, 8, 7)).astype(np.float32)
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1)  # one sample per chunk
    monkeypatch.setattr(_parallel, "MIN_CHUNKS_PER_THREAD", 1)

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    results = []
    for count in (1, threads):
        with backend.num_threads(count):
            out, cache = conv2d_forward(x, w, b, padding=1)
            results.append((out, *conv2d_backward(dout, cache)))
    for a, r in zip(*results, strict=True):
        assert np.array_equal(a, r)
    assert blas_threads() == before


@pytest.mark.parametrize("input_grad", [True, False])
def test_empty_batch_gives_empty_dx_and_zero_parameter_gradients(rng, input_grad):
    """N = 0, as in PyTorch (the backward once failed with an IndexError on no batch chunks)."""
    x = np.zeros((0, 4, 7, 6))
    w, b = rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6)
    out, cache = conv2d_forward(x, w, b, stride=(2, 1), padding=1, groups=2)
    assert out.shape == (0, 6, 4, 7)  # (7 + 2 - 3) // 2 + 1 and 6 + 2 - 2 + 1
    dx, dw, db = conv2d_backward(np.zeros(out.shape), cache, input_grad=input_grad)
    assert (dx is None) if not input_grad else dx.shape == x.shape
    assert dw.shape == w.shape and db.shape == b.shape and not dw.any() and not db.any()
    h_x, h_w, h_b = conv2d_curvature(np.zeros(out.shape), cache)
    assert h_x.shape == x.shape and not h_w.any() and not h_b.any()

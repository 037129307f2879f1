"""The flat-layout im2col path of conv2d (``_flat_im2col.py``): where it applies, and that
convolutions taken through it match the loop reference, PyTorch and numerical gradients."""

import numpy as np
import pytest
import torch
from helpers import assert_conv_close, check_backward, n, t

from cnnumpy import backend
from cnnumpy.functional import _flat_im2col, _parallel, conv
from cnnumpy.functional._im2col import conv2d_geometry
from cnnumpy.functional.conv import conv2d_backward, conv2d_forward
from cnnumpy.functional.conv_naive import conv2d_backward_naive, conv2d_forward_naive

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

# Stride 1, no dilation, padding within the kernel's reach: shapes the flat layout takes once
# its junk limit is lifted (``forced``). Small images, so the junk columns are many.
CONFIGS = [
    ((2, 3, 6, 5), (4, 3, 3, 3), True, {"padding": 1}),
    ((3, 2, 5, 7), (3, 2, 3, 3), False, {"padding": 1}),
    ((2, 2, 7, 6), (3, 2, 5, 3), True, {"padding": (2, 1)}),
    ((1, 2, 6, 5), (2, 2, 4, 2), True, {"padding": "same"}),  # asymmetric pads
    ((2, 2, 6, 6), (3, 2, 3, 3), True, {}),  # no padding: junk reads the next row's pixels
    ((2, 2, 5, 6), (3, 2, 2, 3), True, {"padding": (0, 1)}),
    ((2, 4, 5, 5), (6, 2, 3, 3), True, {"groups": 2, "padding": 1}),
    ((1, 3, 3, 3), (2, 3, 3, 3), False, {"padding": 1}),
    ((2, 1, 4, 4), (2, 1, 1, 1), True, {}),
]
IDS = [f"x{c[0]}-w{c[1]}-{'b' if c[2] else 'nob'}-{c[3]}" for c in CONFIGS]


@pytest.fixture
def forced(monkeypatch):
    """The flat layout wherever it is valid, whatever its junk."""
    monkeypatch.setattr(_flat_im2col, "MAX_JUNK_MACS", float("inf"))


def _arrays(rng, x_shape, w_shape, bias, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    return x, w, b


def _geometry(x, w, kw):
    return conv2d_geometry(
        x, w, stride=kw.get("stride", 1), padding=kw.get("padding", 0),
        dilation=kw.get("dilation", 1), groups=kw.get("groups", 1),
    )  # fmt: skip


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kw"), CONFIGS, ids=IDS)
def test_configs_take_the_flat_layout(rng, forced, x_shape, w_shape, bias, kw):
    x, w, _ = _arrays(rng, x_shape, w_shape, bias)
    assert _flat_im2col.applies(_geometry(x, w, kw), w.shape[0])


@pytest.mark.parametrize(
    "kw",
    [{"stride": 2, "padding": 1}, {"dilation": 2, "padding": 2}, {"padding": 3}],
    ids=["stride", "dilation", "padding-beyond-reach"],
)
def test_not_taken_where_invalid(rng, forced, kw):
    x, w, _ = _arrays(rng, (1, 2, 8, 8), (2, 2, 3, 3), False)
    assert not _flat_im2col.applies(_geometry(x, w, kw), 2)


@pytest.mark.parametrize(
    ("size", "filters", "taken"),
    [(32, 16, True), (32, 64, True), (16, 32, True), (16, 128, False), (8, 64, False)],
)
def test_junk_limit(size, filters, taken):
    """At the default limit: ResNet-20's 32x32 and 16x16 layers take it, its 8x8 ones not."""
    x, w = np.zeros((1, 4, size, size)), np.zeros((filters, 4, 3, 3))
    assert _flat_im2col.applies(_geometry(x, w, {"padding": 1}), filters) is taken


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kw"), CONFIGS, ids=IDS)
def test_gradcheck(rng, forced, x_shape, w_shape, bias, kw):
    x, w, b = _arrays(rng, x_shape, w_shape, bias)
    check_backward(conv2d_forward, conv2d_backward, [x, w, b], rng, **kw)


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kw"), CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("input_grad", [True, False])
def test_matches_naive(rng, forced, x_shape, w_shape, bias, kw, dtype, input_grad):
    x, w, b = _arrays(rng, x_shape, w_shape, bias, dtype)
    out, cache = conv2d_forward(x, w, b, **kw)
    out_naive, cache_naive = conv2d_forward_naive(x, w, b, **kw)
    dout = rng.standard_normal(out.shape).astype(dtype)
    fast = (out, *conv2d_backward(dout, cache, input_grad=input_grad))
    naive = list((out_naive, *conv2d_backward_naive(dout, cache_naive)))
    if not input_grad:
        assert fast[1] is None
        naive[1] = None
    for a in fast:
        assert a is None or a.dtype == dtype
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert_conv_close(fast, naive, rtol=rtol, atol=1e-14)


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kw"), CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_torch(rng, forced, x_shape, w_shape, bias, kw, dtype):
    x, w, b = _arrays(rng, x_shape, w_shape, bias, dtype)
    out, cache = conv2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape).astype(dtype)
    tx, tw, tb = t(x), t(w), t(b)
    tout = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    tout.backward(torch.tensor(dout))
    ref = (n(tout), n(tx.grad), n(tw.grad), None if tb is None else n(tb.grad))
    if dtype == np.float32:
        assert_conv_close((out, *conv2d_backward(dout, cache)), ref, rtol=1e-4)
    else:
        assert_conv_close((out, *conv2d_backward(dout, cache)), ref, rtol=1e-12, atol=1e-13)


def test_resnet_sizes_match_torch(rng):
    """A 32x32 and a 16x16 3x3 layer at the default limit (the flat layout), in float32."""
    for size, c in [(32, 4), (16, 8)]:
        x, w, _ = _arrays(rng, (3, c, size, size), (c, c, 3, 3), False, np.float32)
        out, cache = conv2d_forward(x, w, padding=1)
        assert _flat_im2col.applies(cache.geometry, c)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        tx, tw = t(x), t(w)
        tout = torch.nn.functional.conv2d(tx, tw, padding=1)
        tout.backward(torch.tensor(dout))
        ours = (out, *conv2d_backward(dout, cache))
        assert_conv_close(ours, (n(tout), n(tx.grad), n(tw.grad), None), rtol=1e-4)


@pytest.mark.parametrize("threads", [1, 2])
def test_chunks_agree_with_one_chunk(rng, forced, monkeypatch, threads):
    """Cut into one-sample chunks on one or two threads: the same results up to rounding."""
    x, w, b = _arrays(rng, (5, 3, 6, 7), (4, 3, 3, 3), True)
    with backend.num_threads(1):
        out, cache = conv2d_forward(x, w, b, padding=1)
        dout = rng.standard_normal(out.shape)
        whole = (out, *conv2d_backward(dout, cache))
    monkeypatch.setattr(_parallel, "MIN_CHUNKS_PER_THREAD", 1)
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1)
    monkeypatch.setattr(conv, "MIN_CHUNK_BYTES", 1)
    with backend.num_threads(threads):
        out, cache = conv2d_forward(x, w, b, padding=1)
        assert len(conv._batch_chunks(x, cache.geometry)) == 5
        assert_conv_close((out, *conv2d_backward(dout, cache)), whole, rtol=1e-13)


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kw"), CONFIGS, ids=IDS)
def test_input_grad_false_gives_the_same_parameter_gradients(
    rng, forced, x_shape, w_shape, bias, kw
):
    """Skipping dx does not change the layout dweight and dbias are computed in."""
    x, w, b = _arrays(rng, x_shape, w_shape, bias)
    out, cache = conv2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape)
    _, dw, db = conv2d_backward(dout, cache)
    skipped, dw2, db2 = conv2d_backward(dout, cache, input_grad=False)
    assert skipped is None and np.array_equal(dw, dw2)
    assert db is None and db2 is None or np.array_equal(db, db2)

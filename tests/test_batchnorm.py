import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, check_backward, n, t
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy import backend
from cnnumpy.functional import _bn_passes, _parallel
from cnnumpy.functional.norm import (
    batch_norm_backward,
    batch_norm_forward,
    spatial_batch_norm_backward,
    spatial_batch_norm_forward,
)
from cnnumpy.functional.norm_naive import (
    batch_norm_backward_naive,
    batch_norm_forward_naive,
    spatial_batch_norm_backward_naive,
    spatial_batch_norm_forward_naive,
)

FAST = {
    2: (batch_norm_forward, batch_norm_backward),
    4: (spatial_batch_norm_forward, spatial_batch_norm_backward),
}
NAIVE = {
    2: (batch_norm_forward_naive, batch_norm_backward_naive),
    4: (spatial_batch_norm_forward_naive, spatial_batch_norm_backward_naive),
}
# mode: "train"; "eval" with running statistics; "eval-nostats" (eval without running
# statistics, which normalises with the batch's as in training).
MODES = ["train", "eval", "eval-nostats"]


def make_inputs(rng, shape, mode, weight, bias, dtype=np.float64):
    c = shape[1]
    x = (rng.standard_normal(shape) * 1.5 + 0.7).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if weight else None
    b = rng.standard_normal(c).astype(dtype) if bias else None
    if mode == "eval-nostats":
        rm = rv = None
    else:
        rm = rng.standard_normal(c).astype(dtype)
        rv = rng.uniform(0.5, 2.0, c).astype(dtype)
    return x, w, b, rm, rv


def two_outputs(forward, rm, rv, **kwargs):
    """``forward`` as check_backward wants it: ``(x, w, b) -> (out, cache)``."""

    def f(x, w, b):
        out, cache, _, _ = forward(x, w, b, rm, rv, **kwargs)
        return out, cache

    return f


@pytest.mark.parametrize("shape", [(3, 5), (7, 2), (2, 3, 3, 5), (3, 2, 1, 1), (1, 2, 3, 1)])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, True), (False, False)])
@pytest.mark.parametrize("fast", [True, False])
def test_gradcheck(rng, shape, mode, affine, fast):
    forward, backward = (FAST if fast else NAIVE)[len(shape)]
    x, w, b, rm, rv = make_inputs(rng, shape, mode, *affine)
    f = two_outputs(forward, rm, rv, training=mode == "train", eps=1e-3)
    check_backward(f, backward, [x, w, b], rng)


def test_gradcheck_eval_batch_of_two(rng):
    x, w, b, rm, rv = make_inputs(rng, (2, 3), "eval", True, True)
    check_backward(
        two_outputs(batch_norm_forward, rm, rv, training=False), batch_norm_backward, [x, w, b], rng
    )


@pytest.mark.parametrize("fast", [True, False])
def test_two_rows_training_dx_is_zero(rng, fast):
    # With m = 2, xhat = +-1 whatever x is, so out does not depend on x: a gradient check would
    # compare rounding noise, so check the exact property instead.
    forward, backward = (FAST if fast else NAIVE)[2]
    x, w, b, rm, rv = make_inputs(rng, (2, 4), "train", True, True)
    out, cache, _, _ = forward(x, w, b, rm, rv, training=True, eps=0.0)
    sign = np.sign(x[0] - x[1])
    assert_close(out, np.stack([b + w * sign, b - w * sign]), rtol=1e-12, name="out")
    dx, dw, db = backward(rng.standard_normal(out.shape), cache)
    assert np.max(np.abs(dx)) < 1e-12


def run_both(impl, x, w, b, rm, rv, dout, **kwargs):
    forward, backward = impl[x.ndim]
    out, cache, new_rm, new_rv = forward(x, w, b, rm, rv, **kwargs)
    return (out, new_rm, new_rv, *backward(dout, cache))


NAMES = ["out", "running_mean", "running_var", "dx", "dweight", "dbias"]

shapes = st.one_of(
    st.tuples(st.integers(2, 6), st.integers(1, 5)),
    st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
).filter(lambda s: np.prod(s) // s[1] > 2)  # m = 2 makes dx pure rounding noise


@settings(max_examples=40, deadline=None)
@given(
    shape=shapes,
    mode=st.sampled_from(MODES),
    weight=st.booleans(),
    bias=st.booleans(),
    momentum=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
)
def test_fast_matches_naive(shape, mode, weight, bias, momentum, seed):
    rng = np.random.default_rng(seed)
    x, w, b, rm, rv = make_inputs(rng, shape, mode, weight, bias)
    dout = rng.standard_normal(shape)
    kw = dict(training=mode == "train", momentum=momentum, eps=1e-4)
    fast = run_both(FAST, x, w, b, rm, rv, dout, **kw)
    naive = run_both(NAIVE, x, w, b, rm, rv, dout, **kw)
    for name, a, e in zip(NAMES, fast, naive, strict=True):
        if e is None:
            assert a is None, name
        else:
            assert_close(a, e, rtol=1e-12, atol=1e-14, name=name)


@settings(max_examples=40, deadline=None)
@given(
    shape=shapes,
    mode=st.sampled_from(MODES),
    weight=st.booleans(),
    bias=st.booleans(),
    momentum=st.sampled_from([0.1, 0.0, 1.0, 0.37]),
    eps=st.sampled_from([1e-5, 1e-3]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_matches_torch(shape, mode, weight, bias, momentum, eps, dtype, seed):
    rng = np.random.default_rng(seed)
    x, w, b, rm, rv = make_inputs(rng, shape, mode, weight, bias, dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    training = mode == "train"
    got = run_both(FAST, x, w, b, rm, rv, dout, training=training, momentum=momentum, eps=eps)
    for name, a in zip(NAMES, got, strict=True):
        assert a is None or a.dtype == dtype, name

    tx, tw, tb = t(x), t(w), t(b)
    # torch updates its running buffers in place; F.batch_norm wants running statistics in eval
    # mode, so eval without them is the module's behaviour: training=True on the batch.
    trm, trv = t(rm, grad=False), t(rv, grad=False)
    tout = F.batch_norm(
        tx, trm, trv, tw, tb, training=training or rm is None, momentum=momentum, eps=eps
    )
    tout.backward(torch.tensor(dout))
    want = [
        n(tout),
        n(trm),
        n(trv),
        n(tx.grad),
        n(tw.grad if w is not None else None),
        n(tb.grad if b is not None else None),
    ]
    rtol, atol = (1e-4, 1e-5) if dtype == np.float32 else (1e-12, 1e-12)
    for name, a, e in zip(NAMES, got, want, strict=True):
        if e is None:
            assert a is None, name
        else:
            assert_close(a, e, rtol=rtol, atol=atol, name=name)


@pytest.mark.parametrize("ndim", [2, 4])
@pytest.mark.parametrize("mode", MODES)
def test_float32_stays_float32(rng, ndim, mode):
    shape = (4, 3) if ndim == 2 else (2, 3, 2, 2)
    x, w, b, rm, rv = make_inputs(rng, shape, mode, True, True, np.float32)
    out, new_rm, new_rv, dx, dw, db = run_both(
        FAST,
        x,
        w,
        b,
        rm,
        rv,
        np.ones(shape, np.float32),
        training=mode == "train",
        momentum=np.float64(0.1),
        eps=np.float64(1e-5),
    )
    for a in (out, dx, dw, db) + ((new_rm, new_rv) if rm is not None else ()):
        assert a.dtype == np.float32


@pytest.mark.parametrize("ndim", [2, 4])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("impl", [FAST, NAIVE], ids=["fast", "naive"])
def test_inputs_not_mutated_and_new_stats_are_new(rng, ndim, mode, impl):
    shape = (4, 3) if ndim == 2 else (2, 3, 2, 2)
    arrays = make_inputs(rng, shape, mode, True, True)
    dout = rng.standard_normal(shape)
    copies = [None if a is None else a.copy() for a in (*arrays, dout)]
    forward, backward = impl[ndim]
    out, cache, new_rm, new_rv = forward(*arrays, training=mode == "train")
    backward(dout, cache)
    for a, c in zip((*arrays, dout), copies, strict=True):
        assert (a is None and c is None) or np.array_equal(a, c)
    if arrays[3] is None:
        assert new_rm is None and new_rv is None
    else:
        assert not np.shares_memory(new_rm, arrays[3])
        assert not np.shares_memory(new_rv, arrays[4])


def test_out_does_not_alias_the_cache(rng):
    x = rng.standard_normal((5, 3))
    out, cache, _, _ = batch_norm_forward(x, None, None, None, None, training=True)
    assert not np.shares_memory(out, cache.x) and not np.shares_memory(out, x)
    assert cache.centred is not None and not np.shares_memory(out, cache.centred)


def test_eval_without_running_stats_uses_batch_stats(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    a = spatial_batch_norm_forward(x, None, None, None, None, training=True)
    b = spatial_batch_norm_forward(x, None, None, None, None, training=False)
    np.testing.assert_array_equal(a[0], b[0])
    assert b[2] is None and b[3] is None
    assert_close(b[0].mean(axis=(0, 2, 3)), np.zeros(3), rtol=0, atol=1e-12)
    assert_close(b[0].var(axis=(0, 2, 3)), np.ones(3), rtol=1e-4)


def test_rejects_bad_input(rng):
    x2, x4 = rng.standard_normal((4, 3)), rng.standard_normal((2, 3, 2, 2))
    ok, short = np.ones(3), np.ones(2)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\).*got \(2,\)"):
        batch_norm_forward(x2, short, ok, ok, ok, training=True)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\).*3 channels"):
        spatial_batch_norm_forward(x4, ok, short, ok, ok, training=True)
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\)"):
        spatial_batch_norm_forward(x4, ok, ok, short, ok, training=False)
    with pytest.raises(ValueError, match=r"running_var must have shape \(3,\)"):
        batch_norm_forward(x2, ok, ok, ok, short, training=False)
    with pytest.raises(ValueError, match="running_var must have 1 dimensions"):
        batch_norm_forward(x2, ok, ok, ok, np.ones((3, 1)), training=False)
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        batch_norm_forward(x4, ok, ok, ok, ok, training=True)
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        spatial_batch_norm_forward(x2, ok, ok, ok, ok, training=True)
    with pytest.raises(ValueError, match="both be arrays or both be None"):
        batch_norm_forward(x2, ok, ok, ok, None, training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batch_norm_forward(x2[:1], ok, ok, ok, ok, training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        spatial_batch_norm_forward(x4[:1, :, :1, :1], ok, ok, None, None, training=False)
    batch_norm_forward(x2[:1], ok, ok, ok, ok, training=False)  # eval with one row is fine
    with pytest.raises(ValueError, match="momentum=None"):
        batch_norm_forward(x2, ok, ok, ok, ok, training=True, momentum=None)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        spatial_batch_norm_forward(x4, ok, ok, ok, ok, training=True, eps=-1e-5)
    with pytest.raises(TypeError, match="training must be a bool"):
        batch_norm_forward(x2, ok, ok, ok, ok, training="yes")
    with pytest.raises(TypeError, match="dtype"):
        batch_norm_forward(x2.astype(np.float32), ok, None, None, None, training=True)
    with pytest.raises(TypeError, match="float32 or float64"):
        batch_norm_forward(np.ones((4, 3), np.int64), None, None, None, None, training=True)
    with pytest.raises(ValueError, match="momentum=None"):
        batch_norm_forward_naive(x2, ok, ok, ok, ok, training=True, momentum=None)


def test_backward_rejects_mismatched_cache_or_dout(rng):
    x2, x4 = rng.standard_normal((4, 3)), rng.standard_normal((2, 3, 2, 2))
    _, cache2, _, _ = batch_norm_forward(x2, None, None, None, None, training=True)
    _, cache4, _, _ = spatial_batch_norm_forward(x4, None, None, None, None, training=True)
    with pytest.raises(ValueError, match="spatial_batch_norm_forward"):
        batch_norm_backward(x4, cache4)
    with pytest.raises(ValueError, match="batch_norm_forward"):
        spatial_batch_norm_backward(x2, cache2)
    with pytest.raises(ValueError, match=r"dout must have the forward output's shape \(4, 3\)"):
        batch_norm_backward(x2[:2], cache2)


@pytest.mark.parametrize("chunk_bytes", [1, 3 * 3 * 20 * 8, 2**20])
@pytest.mark.parametrize("shape", [(7, 3, 4, 5), (50, 3)], ids=["spatial", "2-D"])
@pytest.mark.parametrize("mode", MODES)
def test_chunks_give_the_same_result(rng, monkeypatch, chunk_bytes, shape, mode):
    # One sample per chunk, a few samples (a short last chunk): x - mean is recomputed chunk by
    # chunk; everything in one chunk: the forward keeps x - mean for the backward. The spatial
    # shape has K = H * W = 20 values per (sample, channel): its sums take the np.vecdot path.
    monkeypatch.setattr(_bn_passes, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(_bn_passes, "KEEP_CENTRED_BYTES", chunk_bytes)
    x, w, b, rm, rv = make_inputs(rng, shape, mode, True, True)
    kept = spatial_batch_norm_forward if x.ndim == 4 else batch_norm_forward
    cache = kept(x, w, b, rm, rv, training=mode == "train")[1]
    assert (cache.centred is not None) == (chunk_bytes >= x.nbytes and mode != "eval")
    dout = rng.standard_normal(shape)
    kw = dict(training=mode == "train", momentum=0.3, eps=1e-4)
    fast = run_both(FAST, x, w, b, rm, rv, dout, **kw)
    naive = run_both(NAIVE, x, w, b, rm, rv, dout, **kw)
    for name, a, e in zip(NAMES, fast, naive, strict=True):
        if e is None:
            assert a is None, name
        else:
            assert_close(a, e, rtol=1e-12, atol=1e-14, name=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_rows_match_torch(rng, dtype):
    # Feature maps of 12 x 11 (the vecdot path) with a mean far from zero: the centring must
    # come first, as in the naive form.
    x = (rng.standard_normal((6, 4, 12, 11)) * 0.5 + 20.0).astype(dtype)
    w, b = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    rm, rv = np.zeros(4, dtype), np.ones(4, dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    got = run_both(FAST, x, w, b, rm, rv, dout, training=True)
    tx, tw, tb = t(x), t(w), t(b)
    trm, trv = t(rm, grad=False), t(rv, grad=False)
    tout = F.batch_norm(tx, trm, trv, tw, tb, training=True)
    tout.backward(torch.tensor(dout))
    want = [n(tout), n(trm), n(trv), n(tx.grad), n(tw.grad), n(tb.grad)]
    rtol, atol = (1e-4, 1e-5) if dtype == np.float32 else (1e-12, 1e-12)
    for name, a, e in zip(NAMES, got, want, strict=True):
        assert a.dtype == dtype, name
        assert_close(a, e, rtol=rtol, atol=atol, name=name)


@pytest.mark.parametrize("mode", MODES)
def test_threads_give_identical_results(rng, monkeypatch, mode):
    # Per-chunk partial sums are added in chunk order whatever the number of threads, so 1, 2
    # and 3 threads give bit-identical results.
    monkeypatch.setattr(_bn_passes, "CHUNK_BYTES", 2 * 3 * 20 * 4)
    x, w, b, rm, rv = make_inputs(rng, (9, 3, 4, 5), mode, True, True, np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    monkeypatch.setattr(_parallel, "MIN_CHUNKS_PER_THREAD", 1)
    for threads in [1, 2, 3]:
        with backend.num_threads(threads):
            results.append(run_both(FAST, x, w, b, rm, rv, dout, training=mode == "train"))
    for other in results[1:]:
        for name, a, e in zip(NAMES, other, results[0], strict=True):
            assert (a is None and e is None) or np.array_equal(a, e), name


@pytest.mark.parametrize("ndim", [2, 4])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_batch_as_pytorch(rng, ndim, mode, dtype):
    """N = 0: an empty output, the running statistics as they were (PyTorch leaves them too),
    an empty dx and zero parameter gradients; the naive reference agrees."""
    shape = (0, 3) if ndim == 2 else (0, 3, 4, 5)
    x, w, b, rm, rv = make_inputs(rng, shape, mode, True, True, dtype)
    for forward, backward in (FAST[ndim], NAIVE[ndim]):
        out, cache, mean, var = forward(x, w, b, rm, rv, training=mode == "train")
        assert out.shape == shape and out.dtype == dtype
        if rm is None:
            assert mean is None and var is None
        else:
            assert np.array_equal(mean, rm) and np.array_equal(var, rv) and mean is not rm
        dx, dw, db = backward(np.zeros(shape, dtype), cache)
        assert dx.shape == shape and dx.dtype == dtype
        assert dw.dtype == db.dtype == dtype and not dw.any() and not db.any()
    theirs = torch.nn.BatchNorm2d(3) if ndim == 4 else torch.nn.BatchNorm1d(3)
    theirs.running_mean.fill_(0.5)
    assert theirs(torch.zeros(shape)).shape == shape
    assert torch.all(theirs.running_mean == 0.5), "PyTorch keeps its statistics too"


def test_one_value_per_channel_is_refused_with_batch_statistics_only(rng):
    x, w, b, rm, rv = make_inputs(rng, (1, 3, 1, 1), "train", True, True)
    with pytest.raises(ValueError, match=r"more than 1 value per channel .* in eval mode"):
        spatial_batch_norm_forward(x, w, b, rm, rv, training=True)
    spatial_batch_norm_forward(x, w, b, rm, rv, training=False)  # running statistics: fine
    spatial_batch_norm_forward(x[:, :, :, [0, 0]], w, b, rm, rv, training=True)  # N*H*W = 2

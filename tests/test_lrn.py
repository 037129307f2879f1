import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, check_backward, n, t
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy.functional.norm import local_response_norm_backward, local_response_norm_forward
from cnnumpy.functional.norm_naive import (
    local_response_norm_backward_naive,
    local_response_norm_forward_naive,
)

IMPLS = {
    "fast": (local_response_norm_forward, local_response_norm_backward),
    "naive": (local_response_norm_forward_naive, local_response_norm_backward_naive),
}


# alpha is large so the denominator's share of the gradient is checked, not drowned by k.
@pytest.mark.parametrize("shape", [(2, 5, 3, 2), (1, 4, 1, 3), (3, 1, 2, 2), (2, 6, 3)])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 9])
@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_gradcheck(rng, shape, size, impl):
    forward, backward = IMPLS[impl]
    x = rng.standard_normal(shape)
    check_backward(forward, backward, [x], rng, size=size, alpha=2.0, beta=0.75, k=1.5)


@pytest.mark.parametrize("beta", [0.5, 1.3])
def test_gradcheck_other_beta(rng, beta):
    x = rng.standard_normal((2, 7, 2, 2))
    check_backward(
        local_response_norm_forward,
        local_response_norm_backward,
        [x],
        rng,
        size=4,
        alpha=0.8,
        beta=beta,
        k=0.7,
    )


hyper = dict(
    size=st.integers(1, 8),
    alpha=st.sampled_from([1e-4, 0.3, 2.0]),
    beta=st.sampled_from([0.75, 0.5, 1.0, 2.2]),
    k=st.sampled_from([1.0, 2.0, 0.5]),
)
shapes = st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 3), st.integers(1, 3))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31), **hyper)
def test_fast_matches_naive(shape, seed, size, alpha, beta, k):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2
    dout = rng.standard_normal(shape)
    kw = dict(size=size, alpha=alpha, beta=beta, k=k)
    out, cache = local_response_norm_forward(x, **kw)
    out_n, cache_n = local_response_norm_forward_naive(x, **kw)
    assert_close(out, out_n, rtol=1e-12, name="out")
    assert_close(
        local_response_norm_backward(dout, cache),
        local_response_norm_backward_naive(dout, cache_n),
        rtol=1e-12,
        name="dx",
    )


@settings(max_examples=40, deadline=None)
@given(
    shape=shapes,
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
    **hyper,
)
def test_matches_torch(shape, dtype, seed, size, alpha, beta, k):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    out, cache = local_response_norm_forward(x, size=size, alpha=alpha, beta=beta, k=k)
    dx = local_response_norm_backward(dout, cache)
    assert out.dtype == dtype and dx.dtype == dtype

    tx = t(x)
    tout = F.local_response_norm(tx, size, alpha=alpha, beta=beta, k=k)
    tout.backward(torch.tensor(dout))
    rtol, atol = (1e-4, 1e-6) if dtype == np.float32 else (1e-12, 1e-14)
    assert_close(out, n(tout), rtol=rtol, atol=atol, name="out")
    assert_close(dx, n(tx.grad), rtol=rtol, atol=atol, name="dx")


@pytest.mark.parametrize("shape", [(2, 4, 3), (1, 3, 2, 2, 2)])
def test_other_ranks_match_torch(rng, shape):
    x = rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    out, cache = local_response_norm_forward(x, size=3, alpha=0.5, beta=0.75, k=1.0)
    tx = t(x)
    tout = F.local_response_norm(tx, 3, alpha=0.5, beta=0.75, k=1.0)
    tout.backward(torch.tensor(dout))
    assert_close(out, n(tout), rtol=1e-12, name="out")
    assert_close(local_response_norm_backward(dout, cache), n(tx.grad), rtol=1e-12, name="dx")


@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_float32_stays_float32_and_inputs_not_mutated(rng, impl):
    forward, backward = IMPLS[impl]
    x = rng.standard_normal((2, 5, 3, 3)).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    x0, dout0 = x.copy(), dout.copy()
    out, cache = forward(x, size=3, alpha=np.float64(0.1), beta=np.float64(0.75), k=np.float64(1))
    dx = backward(dout, cache)
    assert out.dtype == np.float32 and dx.dtype == np.float32
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dout, dout0)


def test_size_one_divides_by_own_square(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    out, _ = local_response_norm_forward(x, size=1, alpha=0.5, beta=0.75, k=1.0)
    np.testing.assert_allclose(out, x / (1.0 + 0.5 * x**2) ** 0.75, rtol=1e-14)


@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_rejects_bad_input(rng, impl):
    forward = IMPLS[impl][0]
    x = rng.standard_normal((2, 3, 2, 2))
    with pytest.raises(ValueError, match="size must be >= 1, got 0"):
        forward(x, size=0)
    with pytest.raises(TypeError, match="size must be an int"):
        forward(x, size=2.0)
    with pytest.raises(ValueError, match=r"3 or more dimensions, got shape \(2, 3\)"):
        forward(x[:, :, 0, 0], size=2)
    with pytest.raises(TypeError, match="float32 or float64"):
        forward(np.ones((2, 3, 2, 2), np.int32), size=2)
    with pytest.raises(TypeError, match="beta must be a real number"):
        forward(x, size=2, beta="0.75")


def test_backward_rejects_wrong_dout_shape(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    _, cache = local_response_norm_forward(x, size=2)
    with pytest.raises(ValueError, match=r"dout must have the forward output's shape"):
        local_response_norm_backward(x[:1], cache)

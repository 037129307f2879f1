import math
import warnings

import numpy as np
import pytest
import torch
from helpers import assert_close, check_backward, n, t
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy.functional.dropout import dropout_backward, dropout_forward
from cnnumpy.functional.linear import linear_forward


def seeded(seed, **kwargs):
    """dropout_forward with a fresh generator each call, so every call draws the same mask."""

    def forward(x):
        return dropout_forward(x, rng=np.random.default_rng(seed), **kwargs)

    return forward


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_fraction_dropped_is_p(p):
    num = 1_000_000
    out, cache = dropout_forward(np.ones((1000, 1000)), p=p, rng=np.random.default_rng(1))
    dropped = np.count_nonzero(out == 0) / num
    # 5 standard errors of a binomial proportion: about 0.0015 to 0.0025 here.
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / num)
    assert cache.mask.dtype == np.bool_
    np.testing.assert_array_equal(out == 0, ~cache.mask)


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_expected_value(p):
    """Inverted dropout keeps the mean; classic training shrinks it by 1 - p, which its
    evaluation mode matches."""
    num = 1_000_000
    x = np.random.default_rng(2).uniform(0.5, 1.5, num)
    inv, _ = dropout_forward(x, p=p, rng=np.random.default_rng(3))
    assert abs(inv.mean() - x.mean()) < 5 * inv.std() / math.sqrt(num)
    cls, _ = dropout_forward(x, p=p, rng=np.random.default_rng(3), inverted=False)
    cls_eval, _ = dropout_forward(x, p=p, training=False, inverted=False)
    assert abs(cls.mean() - cls_eval.mean()) < 5 * cls.std() / math.sqrt(num)
    # a meaningful bound: it would notice a scale off by 5%
    assert 0.05 * x.mean() > 5 * inv.std() / math.sqrt(num)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eval(rng, dtype):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    out, cache = dropout_forward(x, p=0.3, training=False)
    np.testing.assert_array_equal(out, x)
    assert out.dtype == dtype and not np.shares_memory(out, x)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)

    out, cache = dropout_forward(x, p=0.3, training=False, inverted=False)
    np.testing.assert_array_equal(out, x * np.array(0.7, dtype=dtype))
    dx = dropout_backward(dout, cache)
    assert out.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(dx, dout * np.array(0.7, dtype=dtype))


def test_classic_and_inverted_are_the_same_network(rng):
    """A linear layer after classic dropout with weights W / (1 - p) computes, in training (same
    mask) and in evaluation, what the same layer with weights W computes after inverted dropout."""
    p = 0.4
    x = rng.standard_normal((6, 10))
    w = rng.standard_normal((3, 10))
    w_classic = w / (1 - p)
    for training in (True, False):
        h_inv, _ = dropout_forward(x, p=p, training=training, rng=np.random.default_rng(5))
        h_cls, _ = dropout_forward(
            x, p=p, training=training, rng=np.random.default_rng(5), inverted=False
        )
        y_inv, _ = linear_forward(h_inv, w)
        y_cls, _ = linear_forward(h_cls, w_classic)
        assert_close(y_cls, y_inv, rtol=1e-12, name=f"predictions (training={training})")
    # and the eval outputs themselves differ by exactly the keep factor
    h_inv, _ = dropout_forward(x, p=p, training=False)
    h_cls, _ = dropout_forward(x, p=p, training=False, inverted=False)
    assert_close(h_cls, (1 - p) * h_inv, rtol=1e-15, name="eval outputs")


@pytest.mark.parametrize("inverted", [True, False])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape, p", [((4, 5), 0.5), ((2, 3, 3, 3), 0.25), ((1,), 0.6)])
def test_gradcheck(rng, shape, p, training, inverted):
    forward = seeded(0, p=p, training=training, inverted=inverted)
    check_backward(forward, dropout_backward, [rng.standard_normal(shape)], rng)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    p=st.sampled_from([0.0, 0.1, 0.5, 0.8, 1.0]),
    inverted=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_backward_uses_the_forward_mask(shape, p, inverted, dtype, seed):
    """Compare with PyTorch autograd of x * mask / (1 - p) (or x * mask) for the mask we drew."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)  # no exact zeros, so out == 0 marks the mask
    out, cache = dropout_forward(x, p=p, rng=rng, inverted=inverted)
    dout = rng.standard_normal(shape).astype(dtype)
    dx = dropout_backward(dout, cache)
    assert out.dtype == dx.dtype == dtype

    tx = t(x)
    mask = torch.tensor(out != 0)
    tout = tx * mask / (1 - p) if inverted and p < 1 else tx * mask
    tout.backward(torch.tensor(dout))
    rtol = 1e-6 if dtype == np.float32 else 1e-15
    assert_close(out, n(tout), rtol=rtol, name="out")
    assert_close(dx, n(tx.grad), rtol=rtol, name="dx")
    np.testing.assert_array_equal(dx == 0, out == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_seed_same_mask(rng, dtype):
    x = rng.standard_normal((8, 9)).astype(dtype)
    a, _ = dropout_forward(x, rng=np.random.default_rng(4))
    b, _ = dropout_forward(x, rng=np.random.default_rng(4))
    c, _ = dropout_forward(x, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == dtype


@pytest.mark.parametrize("inverted", [True, False])
def test_p_zero_and_one(rng, inverted):
    x = rng.standard_normal((3, 4))
    x[0, 0], x[0, 1] = np.inf, np.nan
    out, cache = dropout_forward(x, p=0.0, inverted=inverted)  # no rng needed: nothing to draw
    np.testing.assert_array_equal(out, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            out, cache = dropout_forward(x, p=1.0, rng=rng, inverted=inverted)
            dx = dropout_backward(np.ones_like(x), cache)
            ev, _ = dropout_forward(x[1:], p=1, training=False, inverted=inverted)
    np.testing.assert_array_equal(out, np.zeros_like(x))  # dropped inf and NaN are exact zeros
    np.testing.assert_array_equal(dx, np.zeros_like(x))
    np.testing.assert_array_equal(ev, x[1:] if inverted else np.zeros_like(x[1:]))


def test_rejects_bad_input(rng):
    x = rng.standard_normal((2, 3))
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"probability of DROPPING a unit and must be in"):
            dropout_forward(x, p=p, rng=rng)
    with pytest.raises(TypeError, match="must be a number"):
        dropout_forward(x, p="0.5", rng=rng)
    with pytest.raises(ValueError, match="pass rng=numpy.random.default_rng"):
        dropout_forward(x, p=0.5)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        dropout_forward(x, p=0.5, rng=np.random.RandomState(0))
    with pytest.raises(TypeError, match="float32 or float64"):
        dropout_forward(np.ones((2, 3), dtype=np.int32), p=0.5, rng=rng)
    dropout_forward(x, p=0.5, training=False)  # evaluation needs no generator

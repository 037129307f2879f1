import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, check_backward, n, t
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy.functional.activation import (
    SCALED_TANH_A,
    SCALED_TANH_S,
    elu_backward,
    elu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    log_softmax_backward,
    log_softmax_forward,
    noisy_relu_backward,
    noisy_relu_forward,
    prelu_backward,
    prelu_forward,
    relu_backward,
    relu_forward,
    scaled_tanh_backward,
    scaled_tanh_forward,
    sigmoid_backward,
    sigmoid_forward,
    softmax_backward,
    softmax_forward,
    tanh_backward,
    tanh_forward,
)

# name -> (forward, backward, our keyword arguments, the same function in PyTorch)
ELEMENTWISE = {
    "relu": (relu_forward, relu_backward, {}, F.relu),
    "leaky_relu": (
        leaky_relu_forward,
        leaky_relu_backward,
        {"negative_slope": 0.2},
        lambda x: F.leaky_relu(x, negative_slope=0.2),
    ),
    "elu": (elu_forward, elu_backward, {"alpha": 1.3}, lambda x: F.elu(x, alpha=1.3)),
    "sigmoid": (sigmoid_forward, sigmoid_backward, {}, torch.sigmoid),
    "tanh": (tanh_forward, tanh_backward, {}, torch.tanh),
    "scaled_tanh": (
        scaled_tanh_forward,
        scaled_tanh_backward,
        {},
        lambda x: 1.7159 * torch.tanh(2 / 3 * x),
    ),
}
SHAPES = [(3, 4), (1,), (2, 3, 3, 5), (1, 1, 1, 1), (5, 1, 3)]


def tol(dtype) -> dict:
    return {"rtol": 1e-4} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


def grad_tol(dtype, dout) -> dict:
    """``tol`` plus, in float32, an absolute floor of a few eps32 times the size of dout.

    Sigmoid, tanh and softmax gradients contain ``1 - y`` or ``dout - sum(dout * y)`` with a
    rounded y (in PyTorch too): where y saturates these cancel and are only accurate to about
    eps32 * |dout| absolute, so when every entry saturates a purely relative bound would compare
    two rounding errors with each other.
    """
    out = tol(dtype)
    if dtype == np.float32:
        out["atol"] = 1e-6 * float(np.max(np.abs(dout)))
    return out


def away_from_zero(rng, shape, low=0.1, high=2.0):
    """Random values with |x| in [low, high]: clear of the kink at 0 by much more than the
    numerical gradient's step."""
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_gradcheck(rng, name, shape):
    forward, backward, kwargs, _ = ELEMENTWISE[name]
    check_backward(forward, backward, [away_from_zero(rng, shape)], rng, **kwargs)


@pytest.mark.parametrize("negative_slope", [0.0, 0.01, -0.5, 3.0])
def test_leaky_relu_gradcheck_slopes(rng, negative_slope):
    x = away_from_zero(rng, (4, 5))
    check_backward(leaky_relu_forward, leaky_relu_backward, [x], rng, negative_slope=negative_slope)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 2.0])
def test_elu_gradcheck_alphas(rng, alpha):
    check_backward(elu_forward, elu_backward, [away_from_zero(rng, (4, 5))], rng, alpha=alpha)


@pytest.mark.parametrize(
    "x_shape, n_slopes",
    [((7,), 1), ((2, 3, 4, 5), 1), ((2, 3), 3), ((2, 3, 4), 3), ((1, 3, 2, 5), 3), ((3, 1, 2), 1)],
)
def test_prelu_gradcheck(rng, x_shape, n_slopes):
    x = away_from_zero(rng, x_shape)
    weight = rng.uniform(-0.5, 1.5, n_slopes)
    check_backward(prelu_forward, prelu_backward, [x, weight], rng)


@pytest.mark.parametrize(
    "shape, dim", [((3, 5), 1), ((3, 5), 0), ((2, 3, 4), -1), ((1, 4, 2, 3), 1)]
)
@pytest.mark.parametrize(
    "forward, backward",
    [(softmax_forward, softmax_backward), (log_softmax_forward, log_softmax_backward)],
)
def test_softmax_gradcheck(rng, forward, backward, shape, dim):
    check_backward(forward, backward, [rng.standard_normal(shape) * 2], rng, dim=dim)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(list(ELEMENTWISE)),
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    scale=st.sampled_from([1.0, 10.0]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_elementwise_matches_torch(name, shape, scale, dtype, seed):
    forward, backward, kwargs, torch_fn = ELEMENTWISE[name]
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    out, cache = forward(x, **kwargs)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = backward(dout, cache)
    assert out.dtype == dtype and dx.dtype == dtype

    tx = t(x)
    tout = torch_fn(tx)
    tout.backward(torch.tensor(dout))
    assert_close(out, n(tout), name="out", **tol(dtype))
    assert_close(dx, n(tx.grad), name="dx", **grad_tol(dtype, dout))


@settings(max_examples=30, deadline=None)
@given(
    n_=st.integers(1, 3),
    c=st.integers(1, 4),
    spatial=st.lists(st.integers(1, 4), max_size=2),
    per_channel=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_prelu_matches_torch(n_, c, spatial, per_channel, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_, c, *spatial)).astype(dtype)
    weight = rng.uniform(-0.5, 1.0, c if per_channel else 1).astype(dtype)
    out, cache = prelu_forward(x, weight)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dweight = prelu_backward(dout, cache)
    assert out.dtype == dx.dtype == dweight.dtype == dtype
    assert dweight.shape == weight.shape

    tx, tw = t(x), t(weight)
    tout = F.prelu(tx, tw)
    tout.backward(torch.tensor(dout))
    assert_close(out, n(tout), name="out", **tol(dtype))
    assert_close(dx, n(tx.grad), name="dx", **tol(dtype))
    assert_close(dweight, n(tw.grad), name="dweight", **tol(dtype))


def test_prelu_single_slope_on_1d_input_matches_torch(rng):
    x, w = rng.standard_normal(9), np.array([0.3])
    out, cache = prelu_forward(x, w)
    dout = rng.standard_normal(9)
    dx, dw = prelu_backward(dout, cache)
    tx, tw = t(x), t(w)
    F.prelu(tx, tw).backward(torch.tensor(dout))
    assert_close(dx, n(tx.grad), name="dx", **tol(np.float64))
    assert_close(dw, n(tw.grad), name="dweight", **tol(np.float64))


@settings(max_examples=40, deadline=None)
@given(
    log=st.booleans(),
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    scale=st.sampled_from([1.0, 30.0]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
    data=st.data(),
)
def test_softmax_matches_torch(log, shape, scale, dtype, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    forward, backward = (
        (log_softmax_forward, log_softmax_backward) if log else (softmax_forward, softmax_backward)
    )
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    out, cache = forward(x, dim=dim)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = backward(dout, cache)
    assert out.dtype == dx.dtype == dtype

    tx = t(x)
    tout = (F.log_softmax if log else F.softmax)(tx, dim=dim)
    tout.backward(torch.tensor(dout))
    assert_close(out, n(tout), name="out", **tol(dtype))
    assert_close(dx, n(tx.grad), name="dx", **grad_tol(dtype, dout))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_are_exact_and_silent(dtype):
    x = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            s, cache = sigmoid_forward(x)
            ds = sigmoid_backward(np.ones_like(x), cache)
            e, _ = elu_forward(x)
            sm, _ = softmax_forward(x)
            lsm, _ = log_softmax_forward(x)
            st_, _ = scaled_tanh_forward(x)
    assert s[0, 0] == 0.0 and s[0, -1] == 1.0 and s[0, 2] == 0.5
    assert np.all(np.isfinite(ds)) and ds[0, 0] == 0.0 and ds[0, -1] == 0.0
    assert e[0, 0] == -1.0 and e[0, -1] == 1000.0
    assert sm[0, -1] == 1.0 and sm[0, 0] == 0.0
    # log_softmax stays finite where the softmax underflows to 0
    assert lsm[0, -1] == 0.0 and lsm[0, 0] == -2000.0
    assert st_[0, 0] == np.array(-SCALED_TANH_A, dtype=dtype)


def test_scaled_tanh_constants():
    # f(+-1) = +-1 ...
    f1, _ = scaled_tanh_forward(np.array([-1.0, 1.0]))
    assert_close(f1, [-1.0, 1.0], rtol=1e-5, name="f(+-1)")
    # ... and |f''| = 2 A S^2 |tanh(Sx)| (1 - tanh^2(Sx)) is largest near x = +-1.
    grid = np.linspace(0.0, 3.0, 30001)
    inner = np.tanh(SCALED_TANH_S * grid)
    second = 2 * SCALED_TANH_A * SCALED_TANH_S**2 * inner * (1 - inner**2)
    assert abs(grid[np.argmax(second)] - 1.0) < 0.02


def noisy_relu_seeded(seed):
    """The training-mode forward with a fresh generator each call: the same noise every time."""

    def forward(x):
        return noisy_relu_forward(x, training=True, rng=np.random.default_rng(seed))

    return forward


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2, 2), (1,)])
def test_noisy_relu_gradcheck_with_fixed_noise(rng, shape):
    seed = 7
    # Redraw x until x + sqrt(sigmoid(x)) e is clear of the kink at 0 for the seed's noise e.
    e = np.random.default_rng(seed).standard_normal(shape)
    for _ in range(1000):
        x = rng.uniform(-2.0, 2.0, shape)
        z = x + np.sqrt(1 / (1 + np.exp(-x))) * e
        if np.min(np.abs(z)) > 0.05:
            break
    forward = noisy_relu_seeded(seed)
    out, _ = forward(x)
    assert_close(out, np.maximum(z, 0), rtol=1e-14, name="out with the seed's noise")
    if x.size >= 6:
        assert np.any(out > 0) and np.any(out == 0)  # both branches are exercised
    check_backward(forward, noisy_relu_backward, [x], rng)


def test_noisy_relu_gradcheck_eval(rng):
    check_backward(
        noisy_relu_forward, noisy_relu_backward, [away_from_zero(rng, (3, 5))], rng, training=False
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noisy_relu_seed_and_eval(rng, dtype):
    x = rng.standard_normal((4, 6)).astype(dtype)
    a, _ = noisy_relu_forward(x, rng=np.random.default_rng(3))
    b, _ = noisy_relu_forward(x, rng=np.random.default_rng(3))
    c, _ = noisy_relu_forward(x, rng=np.random.default_rng(4))
    assert a.dtype == dtype
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, np.maximum(x, 0))  # training does add noise
    ev, cache = noisy_relu_forward(x, training=False)
    assert ev.dtype == dtype
    np.testing.assert_array_equal(ev, np.maximum(x, 0))
    dout = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(noisy_relu_backward(dout, cache), np.where(x > 0, dout, 0))


def rectified_normal_moments(mu, var):
    """Mean and variance of max(0, Z) for Z ~ N(mu, var)."""
    sd = math.sqrt(var)
    a = mu / sd
    cdf = 0.5 * (1 + math.erf(a / math.sqrt(2)))
    pdf = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    mean = mu * cdf + sd * pdf
    second = (mu * mu + var) * cdf + mu * sd * pdf
    return mean, second - mean * mean


@pytest.mark.parametrize("v", [-1.0, -0.5, 0.0, 1.0, 3.0])
def test_noisy_relu_noise_variance_is_sigmoid(v):
    """max(0, v + noise) has the moments of a rectified N(v, sigmoid(v)), within 5 standard
    errors over 200k draws; the bound excludes unit-variance noise at every v tested."""
    num = 200_000
    out, _ = noisy_relu_forward(np.full(num, v), rng=np.random.default_rng(11))
    sig = 1 / (1 + math.exp(-v))
    mean, var = rectified_normal_moments(v, sig)
    emp_mean, emp_var = out.mean(), out.var()
    se_mean = math.sqrt(emp_var / num)
    se_var = math.sqrt(np.mean((out - emp_mean) ** 4) - emp_var**2) / math.sqrt(num)
    assert abs(emp_mean - mean) < 5 * se_mean
    assert abs(emp_var - var) < 5 * se_var
    wrong_mean, wrong_var = rectified_normal_moments(v, 1.0)
    assert abs(wrong_mean - mean) > 10 * se_mean or abs(wrong_var - var) > 10 * se_var


def test_rejects_bad_input(rng):
    x = rng.standard_normal((2, 3, 4))
    with pytest.raises(TypeError, match="float32 or float64"):
        relu_forward(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        sigmoid_forward([1.0, 2.0])
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        leaky_relu_forward(x, negative_slope="0.1")
    with pytest.raises(ValueError, match="alpha must be finite"):
        elu_forward(x, alpha=float("inf"))
    with pytest.raises(ValueError, match=r"1 element or one per channel \(3 for x of shape"):
        prelu_forward(x, np.ones(4))
    with pytest.raises(ValueError, match="channel axis 1"):
        prelu_forward(rng.standard_normal(3), np.ones(3))
    with pytest.raises(ValueError, match="weight must have 1 dimensions"):
        prelu_forward(x, np.ones((3, 1)))
    with pytest.raises(TypeError, match="weight has dtype float32"):
        prelu_forward(x, np.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match=r"dim must be in \[-3, 3\) for x of shape \(2, 3, 4\)"):
        softmax_forward(x, dim=3)
    with pytest.raises(ValueError, match="dim must be in"):
        log_softmax_forward(rng.standard_normal(5))  # the default dim=1 needs 2 dimensions
    with pytest.raises(TypeError, match="dim must be an int"):
        softmax_forward(x, dim=1.0)
    with pytest.raises(ValueError, match="pass rng=numpy.random.default_rng"):
        noisy_relu_forward(x)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        noisy_relu_forward(x, rng=np.random.RandomState(0))


def test_relu_non_finite_values_match_torch():
    x = np.array([np.nan, -np.inf, np.inf, -1.0, 0.0, 2.0])
    out, cache = relu_forward(x)
    np.testing.assert_array_equal(out, torch.relu(torch.tensor(x)).numpy())
    np.testing.assert_array_equal(relu_backward(np.ones_like(x), cache), [0, 0, 1, 0, 0, 1])

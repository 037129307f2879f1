import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, check_backward, n, t
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy.functional.loss import multi_margin_loss, softmax_cross_entropy_loss, svm_loss
from cnnumpy.functional.rbf import (
    map_loss,
    rbf_backward,
    rbf_backward_naive,
    rbf_forward,
    rbf_forward_naive,
)
from cnnumpy.inspect import numerical_gradient, relative_error

GRAD_TOL = 1e-7
DTYPES = st.sampled_from([np.float32, np.float64])


def rtol_for(dtype) -> float:
    return 1e-4 if dtype == np.float32 else 1e-12


def atol_for(dtype) -> float:
    """Absolute floor for loss gradients: entries like ``p - 1`` with ``p`` near 1 carry the
    rounding error of numbers of size 1 (a few ulps), however small the gradient itself is."""
    return 1e-6 if dtype == np.float32 else 1e-15


def check_loss_grad(loss_fn, scores, y, **kwargs) -> None:
    """Numerical gradient of the scalar loss vs the dscores the loss returns (float64)."""
    scores = np.ascontiguousarray(scores, dtype=np.float64)
    _, dscores = loss_fn(scores, y, **kwargs)
    num = numerical_gradient(lambda: loss_fn(scores, y, **kwargs)[0], scores)
    if max(np.abs(dscores).max(), np.abs(num).max()) < 1e-14:
        return  # a constant loss (a single class): both gradients are zero up to rounding
    err = relative_error(dscores, num)
    assert err < GRAD_TOL, f"dscores: relative error {err:.3g}"


def tie_free_scores(rng, shape, step=0.3):
    """Distinct scores on a 0.3 grid: with margins that are not multiples of 0.3, no hinge sits
    within the finite-difference step of its kink."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * step + 0.01


SHAPES = [(4, 5), (1, 3), (3, 1), (7, 2)]


# ---------------------------------------------------------------- numerical gradient checks


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2, 1.0])
def test_cross_entropy_gradcheck(rng, shape, label_smoothing):
    scores = rng.standard_normal(shape) * 3
    y = rng.integers(0, shape[1], shape[0])
    check_loss_grad(softmax_cross_entropy_loss, scores, y, label_smoothing=label_smoothing)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("margin", [1.0, 0.5, 2.05])
def test_svm_gradcheck(rng, shape, margin):
    scores = tie_free_scores(rng, shape)
    y = rng.integers(0, shape[1], shape[0])
    check_loss_grad(svm_loss, scores, y, margin=margin)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("margin", [1.0, 0.5, 2.05])
@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_gradcheck(rng, shape, margin, p):
    scores = tie_free_scores(rng, shape)
    y = rng.integers(0, shape[1], shape[0])
    check_loss_grad(multi_margin_loss, scores, y, margin=margin, p=p)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("j", [0.5, 3.0, 84.0])
def test_map_loss_gradcheck(rng, shape, j):
    penalties = rng.uniform(0, 6, shape)  # j = 0.5 and 3 sit inside this range, so exp(-j) acts
    y = rng.integers(0, shape[1], shape[0])
    check_loss_grad(map_loss, penalties, y, j=j)


@pytest.mark.parametrize("n_, k, d", [(3, 4, 5), (1, 1, 1), (2, 10, 84), (5, 3, 2)])
@pytest.mark.parametrize("naive", [False, True])
def test_rbf_gradcheck(rng, n_, k, d, naive):
    x = rng.standard_normal((n_, d))
    w = rng.choice([-1.0, 1.0], size=(k, d))
    if naive:
        check_backward(rbf_forward_naive, rbf_backward_naive, [x, w], rng)
    else:
        check_backward(rbf_forward, rbf_backward, [x, w], rng)


# ---------------------------------------------------------------- PyTorch parity


@settings(max_examples=30, deadline=None)
@given(
    n_=st.integers(1, 6),
    c=st.integers(1, 8),
    scale=st.sampled_from([0.1, 1.0, 30.0]),
    smoothing=st.one_of(st.just(0.0), st.floats(0.0, 1.0)),
    dtype=DTYPES,
    seed=st.integers(0, 2**31),
)
def test_cross_entropy_matches_torch(n_, c, scale, smoothing, dtype, seed):
    rng = np.random.default_rng(seed)
    scores = (rng.standard_normal((n_, c)) * scale).astype(dtype)
    y = rng.integers(0, c, n_)
    loss, dscores = softmax_cross_entropy_loss(scores, y, label_smoothing=smoothing)
    assert isinstance(loss, float)
    assert dscores.dtype == dtype

    ts = t(scores)
    tl = F.cross_entropy(ts, torch.tensor(y), label_smoothing=smoothing)
    tl.backward()
    rtol = rtol_for(dtype)
    assert_close(loss, tl.item(), rtol=rtol, atol=atol_for(dtype), name="loss")
    assert_close(dscores, n(ts.grad), rtol=rtol, atol=atol_for(dtype), name="dscores")


@settings(max_examples=40, deadline=None)
@given(
    n_=st.integers(1, 6),
    c=st.integers(1, 8),
    margin=st.floats(-1.0, 3.0),
    p=st.sampled_from([1, 2]),
    dtype=DTYPES,
    seed=st.integers(0, 2**31),
)
def test_multi_margin_matches_torch(n_, c, margin, p, dtype, seed):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((n_, c)).astype(dtype)
    y = rng.integers(0, c, n_)
    loss, dscores = multi_margin_loss(scores, y, margin=margin, p=p)
    assert isinstance(loss, float)
    assert dscores.dtype == dtype

    ts = t(scores)
    tl = F.multi_margin_loss(ts, torch.tensor(y), p=p, margin=margin)
    tl.backward()
    rtol = rtol_for(dtype)
    assert_close(loss, tl.item(), rtol=rtol, atol=atol_for(dtype), name="loss")
    assert_close(dscores, n(ts.grad), rtol=rtol, atol=atol_for(dtype), name="dscores")

    # CS231n's SVM is the same sum without PyTorch's division by C.
    if p == 1:
        s_loss, s_dscores = svm_loss(scores, y, margin=margin)
        assert_close(s_loss, c * loss, rtol=rtol, atol=atol_for(dtype), name="svm loss vs C * mm")
        assert_close(
            s_dscores, c * dscores, rtol=rtol, atol=atol_for(dtype), name="svm dscores vs C * mm"
        )


def torch_rbf(tx, tw):
    return ((tx[:, None, :] - tw[None, :, :]) ** 2).sum(dim=2)


@settings(max_examples=30, deadline=None)
@given(
    n_=st.integers(1, 5),
    k=st.integers(1, 10),
    d=st.integers(1, 20),
    dtype=DTYPES,
    seed=st.integers(0, 2**31),
)
def test_rbf_matches_torch_and_naive(n_, k, d, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_, d)).astype(dtype)
    w = rng.standard_normal((k, d)).astype(dtype)
    out, cache = rbf_forward(x, w)
    assert out.dtype == dtype
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw = rbf_backward(dout, cache)
    assert dx.dtype == dtype and dw.dtype == dtype

    tx, tw = t(x), t(w)
    tout = torch_rbf(tx, tw)
    tout.backward(torch.tensor(dout))
    rtol = rtol_for(dtype)
    assert_close(out, n(tout), rtol=rtol, name="out")
    assert_close(dx, n(tx.grad), rtol=rtol, name="dx")
    assert_close(dw, n(tw.grad), rtol=rtol, name="dweight")

    out_naive, cache_naive = rbf_forward_naive(x, w)
    dx_naive, dw_naive = rbf_backward_naive(dout, cache_naive)
    assert out_naive.dtype == dtype and dx_naive.dtype == dtype and dw_naive.dtype == dtype
    assert_close(out, out_naive, rtol=rtol, name="out fast vs naive")
    assert_close(dx, dx_naive, rtol=rtol, name="dx fast vs naive")
    assert_close(dw, dw_naive, rtol=rtol, name="dweight fast vs naive")


def torch_map_loss(tp, y, j):
    rubbish = torch.full((tp.shape[0], 1), -j, dtype=tp.dtype)
    log_z = torch.logsumexp(torch.cat([-tp, rubbish], dim=1), dim=1)
    return (tp[torch.arange(tp.shape[0]), torch.tensor(y)] + log_z).mean()


@settings(max_examples=30, deadline=None)
@given(
    n_=st.integers(1, 6),
    k=st.integers(1, 10),
    scale=st.sampled_from([1.0, 10.0, 300.0]),
    j=st.floats(0.01, 200.0),
    dtype=DTYPES,
    seed=st.integers(0, 2**31),
)
def test_map_loss_matches_torch(n_, k, scale, j, dtype, seed):
    rng = np.random.default_rng(seed)
    penalties = rng.uniform(0, scale, (n_, k)).astype(dtype)
    y = rng.integers(0, k, n_)
    loss, dpen = map_loss(penalties, y, j=j)
    assert isinstance(loss, float)
    assert dpen.dtype == dtype

    tp = t(penalties)
    tl = torch_map_loss(tp, y, j)
    tl.backward()
    rtol = rtol_for(dtype)
    assert_close(loss, tl.item(), rtol=rtol, atol=atol_for(dtype), name="loss")
    assert_close(dpen, n(tp.grad), rtol=rtol, atol=atol_for(dtype), name="dpenalties")


def test_rbf_then_map_loss_matches_torch(rng):
    """LeNet-5's output stage end to end: F6 features -> RBF penalties -> MAP loss."""
    x = np.tanh(rng.standard_normal((6, 84))) * 1.7159
    w = rng.choice([-1.0, 1.0], size=(10, 84))
    y = rng.integers(0, 10, 6)
    pen, cache = rbf_forward(x, w)
    loss, dpen = map_loss(pen, y)
    dx, dw = rbf_backward(dpen, cache)

    tx, tw = t(x), t(w)
    tl = torch_map_loss(torch_rbf(tx, tw), y, 84.0)
    tl.backward()
    assert_close(loss, tl.item(), rtol=1e-12, name="loss")
    assert_close(dx, n(tx.grad), rtol=1e-12, atol=1e-15, name="dx")
    assert_close(dw, n(tw.grad), rtol=1e-12, atol=1e-15, name="dweight")


# ---------------------------------------------------------------- specific behaviour


def test_hinge_subgradient_is_zero_at_the_kink():
    # Class 0's hinge is 0 - 1 + 1 == 0 exactly; class 2's is 2 > 0.
    scores = np.array([[0.0, 1.0, 2.0]])
    y = np.array([1])
    loss, dscores = svm_loss(scores, y)
    assert loss == 2.0
    np.testing.assert_array_equal(dscores, [[0.0, -1.0, 1.0]])
    loss, dscores = multi_margin_loss(scores, y)
    ts = t(scores)
    F.multi_margin_loss(ts, torch.tensor(y)).backward()
    np.testing.assert_allclose(dscores, n(ts.grad), rtol=1e-15)


def test_rbf_has_no_cancellation_near_a_prototype():
    # ||x||^2 + ||w||^2 ~ 2e7 while the true penalty is 5e-14: the expansion
    # ||x||^2 - 2 x.w + ||w||^2 would return rounding noise of order 1e-9, possibly negative.
    w = np.full((2, 5), 2e3)
    w[1] = -2e3
    x = w[:1] + 1e-7
    d = x[0, 0] - w[0, 0]  # exact (Sterbenz), about 1e-7
    out, cache = rbf_forward(x, w)
    assert_close(out, rbf_forward_naive(x, w)[0], rtol=1e-12, name="out")
    assert out[0, 0] == 5 * d * d
    dx, dw = rbf_backward(np.ones_like(out), cache)
    np.testing.assert_allclose(dw[0], np.full(5, -2 * d), rtol=1e-15)


def test_map_loss_default_j_and_argmin_prediction(rng):
    # With the default j = 84 a correct penalty far below 84 (and far below the others) makes
    # the sample nearly free of loss: E = 3 + log(e^-3 + e^-84 + ...) ~ e^-81.
    penalties = np.array([[3.0, 200.0, 150.0]])
    loss, dpen = map_loss(penalties, np.array([0]))
    assert 0.0 <= loss < 2 * np.exp(-81.0)
    assert np.all(np.abs(dpen) < 2 * np.exp(-81.0))
    assert np.argmin(penalties[0]) == 0  # the prediction is the smallest penalty
    # All penalties far above j: the rubbish class dominates, the correct one gets the full pull.
    _, dpen = map_loss(np.array([[500.0, 600.0]]), np.array([1]), j=84.0)
    np.testing.assert_allclose(dpen, [[0.0, 1.0]], atol=1e-100)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "loss_fn, kwargs",
    [
        (softmax_cross_entropy_loss, {}),
        (softmax_cross_entropy_loss, {"label_smoothing": 0.3}),
        (svm_loss, {}),
        (multi_margin_loss, {"p": 2}),
        (map_loss, {}),
        (map_loss, {"j": 1.0}),
    ],
)
def test_huge_scores_are_finite_without_warnings(rng, dtype, loss_fn, kwargs):
    scores = (rng.choice([-1.0, 1.0], (4, 5)) * 1e4 + rng.standard_normal((4, 5))).astype(dtype)
    if loss_fn is map_loss:
        scores = np.abs(scores)  # penalties are squared distances
    y = rng.integers(0, 5, 4)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        loss, dscores = loss_fn(scores, y, **kwargs)
    assert np.isfinite(loss)
    assert np.all(np.isfinite(dscores))
    assert dscores.dtype == dtype


# ---------------------------------------------------------------- bad inputs


LOSSES = [softmax_cross_entropy_loss, svm_loss, multi_margin_loss, map_loss]


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_rejects_bad_labels_and_scores(rng, loss_fn):
    scores = rng.uniform(0, 1, (3, 4))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\), got values from 0 to 4"):
        loss_fn(scores, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="labels must lie in"):
        loss_fn(scores, np.array([0, -1, 2]))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        loss_fn(scores, np.array([[0], [1], [2]]))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        loss_fn(scores, np.array([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        loss_fn(scores, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="2 dimensions"):
        loss_fn(scores.ravel(), np.array([0]))
    with pytest.raises(TypeError, match="float32 or float64"):
        loss_fn(np.ones((3, 4), dtype=np.int64), np.array([0, 1, 2]))
    bad = scores.copy()
    bad[1, 2] = np.inf
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite, got 2 NaN or inf"):
        loss_fn(bad, np.array([0, 1, 2]), check_finite=True)
    with pytest.raises(ValueError, match=r"at least one class \(C >= 1\)|\(K >= 1\)"):
        loss_fn(np.zeros((2, 0)), np.zeros(2, dtype=np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss_fn", LOSSES)
def test_empty_batch_gives_nan_and_an_empty_gradient(loss_fn, dtype):
    """As PyTorch's cross-entropy: the mean over no samples is NaN, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dscores = loss_fn(np.zeros((0, 4), dtype=dtype), np.zeros(0, dtype=np.int64))
    assert isinstance(loss, float) and np.isnan(loss)
    assert dscores.shape == (0, 4) and dscores.dtype == dtype
    torch_loss = F.cross_entropy(torch.zeros((0, 4), dtype=torch.float64), torch.zeros(0).long())
    assert torch.isnan(torch_loss)


def test_rejects_bad_hyper_parameters(rng):
    scores = rng.standard_normal((2, 3))
    y = np.array([0, 2])
    with pytest.raises(ValueError, match="label_smoothing must lie in"):
        softmax_cross_entropy_loss(scores, y, label_smoothing=1.5)
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        multi_margin_loss(scores, y, p=3)
    with pytest.raises(ValueError, match="margin must be finite"):
        svm_loss(scores, y, margin=float("nan"))
    with pytest.raises(TypeError, match="margin must be a real number"):
        multi_margin_loss(scores, y, margin="1")
    with pytest.raises(ValueError, match="j must be finite"):
        map_loss(np.abs(scores), y, j=float("inf"))


@pytest.mark.parametrize("forward", [rbf_forward, rbf_forward_naive])
def test_rbf_rejects_bad_input(rng, forward):
    x = rng.standard_normal((2, 84))
    with pytest.raises(ValueError, match="prototypes in weight have width 83"):
        forward(x, rng.standard_normal((10, 83)))
    with pytest.raises(ValueError, match="weight must have 2 dimensions"):
        forward(x, rng.standard_normal(84))
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        forward(rng.standard_normal((2, 1, 84)), rng.standard_normal((10, 84)))
    with pytest.raises(TypeError, match="dtype"):
        forward(x.astype(np.float32), rng.standard_normal((10, 84)))
    with pytest.raises(ValueError, match="finite"):
        forward(np.full((2, 84), np.nan), rng.standard_normal((10, 84)), check_finite=True)

"""Diagonal Gauss-Newton curvature back-propagation (``Module.curvature_backward``).

For each layer with a rule, the expected values come from its forward alone: the Jacobian by
float64 central differences, then ``h_in = (J**2)^T h_out`` and ``h_param = (J_param**2)^T h_out``
with the squares taken elementwise, for a random positive ``h_out``. The losses' curvature is
checked against numerical second derivatives along each coordinate."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from helpers import assert_close

from cnnumpy import nn
from cnnumpy.models import build_model
from cnnumpy.optim import SDLM

F64 = np.float64


def numerical_jacobian(f: Callable[[], np.ndarray], a: np.ndarray, eps: float = 1e-6):
    """``J[o, i] = d f()[o] / d a[i]`` (flattened) by central differences, ``a`` perturbed in
    place and restored."""
    flat = a.reshape(-1)
    columns = []
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f().ravel().copy()
        flat[i] = old - eps
        minus = f().ravel().copy()
        flat[i] = old
        columns.append((plus - minus) / (2 * eps))
    return np.stack(columns, axis=1)


def check_curvature(module: nn.Module, x: np.ndarray, rng: np.random.Generator) -> None:
    """``curvature_backward`` against the squared numerical Jacobians of ``module``'s forward."""
    h_out = rng.uniform(0.5, 2.0, module(x).shape)
    module.zero_curvature()
    h_in = module.curvature_backward(h_out)
    jac = numerical_jacobian(lambda: module(x), x)
    expected = ((jac**2).T @ h_out.ravel()).reshape(x.shape)
    assert_close(h_in, expected, rtol=1e-6, name=f"{type(module).__name__} h_in")
    for name, p in module.named_parameters():
        if not p.requires_grad:
            assert p.curvature is None or not p.curvature.any(), name
            continue
        jac = numerical_jacobian(lambda: module(x), p.data)
        expected = ((jac**2).T @ h_out.ravel()).reshape(p.shape)
        assert_close(p.curvature, expected, rtol=1e-6, name=f"{type(module).__name__} h_{name}")


def _lenet_tail(rng: np.random.Generator) -> nn.Module:
    """S4-like subsampling, a squash, C5-like conv, flatten, F6, squash and an RBF output."""
    return nn.Sequential(
        nn.Subsampling(2, 2, rng=rng), nn.ScaledTanh(), nn.Conv2d(2, 3, 2, rng=rng),
        nn.Flatten(), nn.Linear(3, 4, rng=rng), nn.ScaledTanh(), nn.RBFOutput(4, 3, rng=rng),
    )  # fmt: skip


LAYERS = {
    "conv": (lambda rng: nn.Conv2d(2, 3, 3, rng=rng), (2, 2, 5, 5)),
    "conv-pad-stride": (lambda rng: nn.Conv2d(2, 2, 3, stride=2, padding=1, rng=rng), (2, 2, 5, 5)),
    "table-conv": (lambda rng: nn.TableConv2d(3, ((0,), (1, 2), (0, 2)), 2, rng=rng), (2, 3, 4, 4)),
    "subsampling": (lambda rng: nn.Subsampling(2, 2, rng=rng), (2, 2, 4, 4)),
    "scaled-tanh": (lambda rng: nn.ScaledTanh(), (3, 4)),
    "tanh": (lambda rng: nn.Tanh(), (3, 4)),
    "sigmoid": (lambda rng: nn.Sigmoid(), (3, 4)),
    "flatten": (lambda rng: nn.Flatten(), (2, 2, 2, 3)),
    "linear": (lambda rng: nn.Linear(5, 4, rng=rng), (3, 5)),
    "pad": (lambda rng: nn.ConstantPad2d((1, 0, 2, 1), -0.1), (2, 2, 3, 3)),
    "rbf": (lambda rng: nn.RBFOutput(4, 3, rng=rng), (3, 4)),
    "rbf-trainable": (lambda rng: nn.RBFOutput(4, 3, trainable=True, rng=rng), (3, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_curvature_is_the_squared_jacobian_rule(name, rng):
    make, shape = LAYERS[name]
    module = make(rng).to(F64)
    x = rng.standard_normal(shape)
    check_curvature(module, x, rng)


def test_sequential_chains_the_rules_of_its_children(rng):
    """A chain applies each child's rule to its own input's Jacobian, in reverse order. (Not
    the squared Jacobian of the whole chain: the rule drops the cross terms at every layer.)"""
    chain = _lenet_tail(rng).to(F64)
    x = rng.standard_normal((2, 2, 4, 4))
    inputs = [x]
    for child in chain:
        inputs.append(child(inputs[-1]))
    h_out = rng.uniform(0.5, 2.0, inputs[-1].shape)
    chain(x)
    chain.zero_curvature()
    h_in = chain.curvature_backward(h_out)
    h = h_out
    for i, child in reversed(list(enumerate(chain))):
        x_i = inputs[i]
        for name, p in child.named_parameters():
            if p.requires_grad:
                jac = numerical_jacobian(lambda c=child, a=x_i: c(a), p.data)
                expected = ((jac**2).T @ h.ravel()).reshape(p.shape)
                assert_close(p.curvature, expected, rtol=1e-6, name=f"{i}.{name}")
        jac = numerical_jacobian(lambda c=child, a=x_i: c(a), x_i)
        h = ((jac**2).T @ h.ravel()).reshape(x_i.shape)
    assert_close(h_in, h, rtol=1e-6, name="h_in")


def test_relu_curvature_away_from_the_kink(rng):
    x = rng.uniform(0.1, 1.0, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))  # no input near 0
    check_curvature(nn.ReLU(), x, rng)


def test_curvature_accumulates_and_zero_curvature_clears(rng):
    layer = nn.Linear(3, 2, rng=rng).to(F64)
    x, h = rng.standard_normal((4, 3)), rng.uniform(0.5, 1.0, (4, 2))
    layer(x)
    layer.curvature_backward(h)
    once = layer.weight.curvature.copy()
    layer(x)
    layer.curvature_backward(h)
    assert_close(layer.weight.curvature, 2 * once, rtol=1e-14, name="accumulated")
    layer.zero_curvature()
    assert not layer.weight.curvature.any()
    assert layer.weight.grad.sum() == 0  # the curvature pass leaves the gradient alone


def test_conv_curvature_consumes_the_cache_like_backward(rng):
    conv = nn.Conv2d(1, 2, 3, rng=rng)
    conv(rng.standard_normal((1, 1, 4, 4)).astype(np.float32))
    conv.curvature_backward(np.ones((1, 2, 2, 2), np.float32))
    with pytest.raises(RuntimeError, match="needs a forward first"):
        conv.curvature_backward(np.ones((1, 2, 2, 2), np.float32))


def test_a_layer_without_a_rule_says_which(rng):
    pool = nn.MaxPool2d(2)
    pool(rng.standard_normal((1, 1, 4, 4)))
    with pytest.raises(NotImplementedError, match="MaxPool2d has no curvature rule"):
        pool.curvature_backward(np.ones((1, 1, 2, 2)))
    with pytest.raises(NotImplementedError, match="MultiMarginLoss has no curvature rule"):
        loss = nn.MultiMarginLoss()
        loss(rng.standard_normal((2, 3)), np.array([0, 1]))
        loss.curvature_backward()


def second_derivatives(loss: nn.Module, scores: np.ndarray, y: np.ndarray, eps: float = 1e-4):
    """``d^2 E / d s_i^2`` for every score by the centred second difference."""
    out = np.empty_like(scores)
    base = loss(scores, y)
    for idx in np.ndindex(scores.shape):
        old = scores[idx]
        scores[idx] = old + eps
        plus = loss(scores, y)
        scores[idx] = old - eps
        minus = loss(scores, y)
        scores[idx] = old
        out[idx] = (plus - 2 * base + minus) / eps**2
    return out


@pytest.mark.parametrize(
    "loss",
    [nn.MAPLoss(j=3.0), nn.MAPLoss(), nn.CrossEntropyLoss(), nn.CrossEntropyLoss(0.1)],
    ids=["map-j3", "map-j84", "ce", "ce-smoothed"],
)
def test_loss_curvature_is_the_hessian_diagonal(loss, rng):
    scores = rng.uniform(0.0, 5.0, (4, 5))
    if isinstance(loss, nn.MAPLoss) and loss.j is None:
        scores += 82.0  # penalties near the default j = 84, where the rubbish class matters
    y = np.array([0, 3, 4, 3])
    expected = second_derivatives(loss, scores.copy(), y)
    loss(scores, y)
    h = loss.curvature_backward()
    assert_close(h, expected, rtol=1e-5, atol=1e-7, name="loss curvature")
    assert (h > 0).all()


def _lenet5_f64(seed: int) -> nn.Module:
    return build_model("lenet5", rng=np.random.default_rng(seed), input_size=28).to(F64)


def test_estimate_over_batches_is_the_mean_of_per_sample_estimates(rng):
    model = _lenet5_f64(0)
    x, y = rng.uniform(-0.1, 1.175, (5, 1, 28, 28)), rng.integers(0, 10, 5)
    batched = SDLM(model.parameters(), batch_size=2)  # batches of 2, 2 and 1
    batched.estimate_curvature(model, model.criterion, x, y)
    single = SDLM(model.parameters())
    per_sample = [np.zeros(p.shape) for p in model.parameters()]
    for i in range(5):
        single.estimate_curvature(model, model.criterion, x[i : i + 1], y[i : i + 1])
        for acc, state in zip(per_sample, single.state, strict=True):
            acc += state["hessian_diag"] / 5
    names = [name for name, _ in model.named_parameters()]
    for name, state, expected in zip(names, batched.state, per_sample, strict=True):
        assert_close(state["hessian_diag"], expected, rtol=1e-12, name=name)


def test_fresh_lenet5_estimate_is_positive_and_finite(mnist_small):
    model = build_model("lenet5", rng=np.random.default_rng(0), input_size=28)
    images, labels = mnist_small
    x = (-0.1 + 1.275 * images[:50]).astype(np.float32)  # LeNet-5's input scaling
    opt = SDLM(model.parameters())
    opt.estimate_curvature(model, model.criterion, x, labels[:50])
    for (name, p), state in zip(model.named_parameters(), opt.state, strict=True):
        h = state["hessian_diag"]
        if p.requires_grad:
            assert np.isfinite(h).all() and (h > 0).all(), name
        else:
            assert not h.any(), name  # the fixed RBF prototypes get none

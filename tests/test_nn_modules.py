"""Modules without a torch twin, containers, and the module machinery.

Each module's backward is checked numerically in float64 for dx and every parameter; a
container must compose its children's backwards exactly.
"""

import numpy as np
import pytest
import torch
from helpers import GRAD_TOL, assert_close

import cnnumpy.nn as nn
from cnnumpy.inspect import numerical_gradient_array, relative_error


def _replay(module: nn.Module):
    """A forward that restores every noise Generator first, so repeated calls draw the same."""
    states = [(m, m.rng.bit_generator.state) for m in module.modules() if hasattr(m, "rng")]

    def forward(x):
        for m, state in states:
            m.rng.bit_generator.state = state
        return module(x)

    return forward


def check_module(module: nn.Module, x: np.ndarray, rng: np.random.Generator) -> None:
    module.to(np.float64)
    forward = _replay(module)
    out = forward(x)
    dout = rng.standard_normal(out.shape)
    module.zero_grad()
    dx = module.backward(dout)
    err = relative_error(dx, numerical_gradient_array(lambda: forward(x), x, dout))
    assert err < GRAD_TOL, f"dx: relative error {err:.2g}"
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        num = numerical_gradient_array(lambda: forward(x), p.data, dout)
        err = relative_error(p.grad, num)
        assert err < GRAD_TOL, f"d{name}: relative error {err:.2g}"


def _x(rng, *shape):
    return rng.uniform(0.2, 1.0, shape) * rng.choice([-1.0, 1.0], shape)  # away from 0: kinks


CASES = {
    "subsampling": lambda r: (nn.Subsampling(3, rng=r), _x(r, 2, 3, 6, 6)),
    "subsampling_overlap": lambda r: (nn.Subsampling(2, 3, 2, rng=r), _x(r, 2, 2, 7, 7)),
    "scaled_tanh": lambda r: (nn.ScaledTanh(), _x(r, 3, 5)),
    "noisy_relu": lambda r: (nn.NoisyReLU(rng=r), _x(r, 3, 5) + 3.0),
    "dropout": lambda r: (nn.Dropout(0.4, rng=r), _x(r, 4, 6)),
    "dropout_classic": lambda r: (nn.Dropout(0.4, inverted=False, rng=r), _x(r, 4, 6)),
    "rbf_fixed": lambda r: (nn.RBFOutput(6, 4, rng=r), _x(r, 3, 6)),
    "rbf_trainable": lambda r: (nn.RBFOutput(6, 4, trainable=True, rng=r), _x(r, 3, 6)),
    "concat": lambda r: (
        nn.Concat(nn.Conv2d(2, 3, 1, rng=r),
                  nn.Sequential(nn.Conv2d(2, 2, 1, rng=r), nn.Tanh(),
                                nn.Conv2d(2, 4, 3, padding=1, rng=r)),
                  nn.Sequential(nn.MaxPool2d(3, 1, padding=1), nn.Conv2d(2, 1, 1, rng=r))),
        r.permutation(2 * 2 * 5 * 5).reshape(2, 2, 5, 5) / 50.0,
    ),
    "residual_identity": lambda r: (
        nn.Sequential(
            nn.Residual(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, bias=False, rng=r),
                                      nn.BatchNorm2d(3),
                                      nn.Tanh(), nn.Conv2d(3, 3, 3, padding=1, rng=r))),
            nn.Tanh(),
        ),
        _x(r, 2, 3, 4, 4),
    ),
    "residual_projection": lambda r: (
        nn.Residual(nn.Conv2d(3, 5, 3, stride=2, padding=1, rng=r),
                    nn.Conv2d(3, 5, 1, stride=2, rng=r)),
        _x(r, 2, 3, 5, 5),
    ),
}  # fmt: skip


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", list(CASES))
def test_module_gradients(name, training, rng):
    module, x = CASES[name](rng)
    module.train(training)
    check_module(module, x, rng)


def test_frozen_rbf_prototypes_get_no_gradient(rng):
    layer = nn.RBFOutput(5, 3, prototypes=np.ones((3, 5)), rng=rng)
    layer(rng.standard_normal((2, 5)).astype(np.float32))
    layer.backward(np.ones((2, 3), np.float32))
    assert not layer.weight.requires_grad
    assert np.all(layer.weight.grad == 0)


def test_residual_rejects_shape_change(rng):
    block = nn.Residual(nn.Conv2d(2, 3, 1, rng=rng))
    with pytest.raises(ValueError, match="shortcut"):
        block(np.zeros((1, 2, 4, 4), np.float32))


def test_default_initialisation_matches_torch_bounds(rng):
    conv = nn.Conv2d(6, 16, 5, rng=rng)
    bound = 1 / np.sqrt(6 * 25)
    assert np.abs(conv.weight.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.9 * bound
    assert np.abs(conv.bias.data).max() <= bound
    lin = nn.Linear(300, 10, rng=rng)
    assert np.abs(lin.weight.data).max() <= 1 / np.sqrt(300)
    tconv = nn.ConvTranspose2d(4, 6, 3, rng=rng)  # fan_in from weight.shape[1:]: 6*9
    t_ref = torch.nn.ConvTranspose2d(4, 6, 3)
    assert tconv.weight.shape == tuple(t_ref.weight.shape)
    assert np.abs(tconv.weight.data).max() <= 1 / np.sqrt(6 * 9)
    assert conv.weight.dtype == np.float32


def test_cross_entropy_module_and_predict(rng):
    scores = rng.standard_normal((4, 3))
    y = np.array([0, 2, 1, 2])
    crit = nn.CrossEntropyLoss()
    loss = crit(scores, y)
    ref = torch.nn.functional.cross_entropy(torch.tensor(scores), torch.tensor(y))
    assert abs(loss - ref.item()) < 1e-12
    assert_close(crit.backward(2.0), 2.0 * crit.backward(), rtol=1e-15)
    assert np.array_equal(crit.predict(scores), scores.argmax(1))
    assert np.array_equal(nn.MAPLoss().predict(scores), scores.argmin(1))


def test_set_input_grad_skips_only_the_first_layers_dx(rng):
    """A chain's first Conv2d returns no dx after set_input_grad(False); every parameter
    gradient is unchanged, and a chain that starts with a Residual still returns dx."""
    x = rng.standard_normal((2, 3, 8, 8))

    def grads(model, enabled):
        model.zero_grad()
        model.set_input_grad(enabled)
        out = model(x)
        dx = model.backward(np.ones_like(out))
        return dx, {k: p.grad.copy() for k, p in model.named_parameters()}

    model = nn.Sequential(nn.Conv2d(3, 4, 3, rng=rng), nn.ReLU(), nn.Conv2d(4, 2, 3, rng=rng))
    model.to(np.float64)
    dx, full = grads(model, True)
    skipped_dx, skipped = grads(model, False)
    assert dx.shape == x.shape and skipped_dx is None
    assert not model[0].input_grad and model[2].input_grad
    for name, grad in full.items():
        assert np.array_equal(skipped[name], grad), name
    residual_first = nn.Sequential(nn.Residual(nn.Conv2d(3, 3, 3, padding=1, rng=rng)))
    residual_first.to(np.float64)
    assert grads(residual_first, False)[0].shape == x.shape
    # A parameterless first layer (a pad) passes the setting on to the first conv.
    padded = nn.Sequential(nn.ConstantPad2d(1, -0.1), nn.Conv2d(3, 2, 3, rng=rng), nn.ReLU())
    padded.to(np.float64)
    dx, full = grads(padded, True)
    skipped_dx, skipped = grads(padded, False)
    assert dx.shape == x.shape and skipped_dx is None
    assert not padded[0].input_grad and not padded[1].input_grad and padded[2].input_grad
    for name, grad in full.items():
        assert np.array_equal(skipped[name], grad), name
    assert grads(padded, True)[0].shape == x.shape and padded[1].input_grad


@pytest.mark.parametrize(
    "make", [lambda r: nn.Conv2d(2, 3, 3, rng=r), lambda r: nn.BatchNorm2d(2), lambda r: nn.ReLU()]
)
def test_backward_frees_the_cache_and_needs_a_new_forward(rng, make):
    """Like PyTorch's saved tensors, a layer's cache is released by its backward; a second
    backward without a forward is a clear error, not a crash deep in a kernel."""
    layer = make(rng).to(np.float64)
    out = layer(rng.standard_normal((2, 2, 5, 5)))
    layer.backward(np.ones_like(out))
    assert layer._saved is None
    with pytest.raises(RuntimeError, match="needs a forward first"):
        layer.backward(np.ones_like(out))

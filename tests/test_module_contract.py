"""The contract every module keeps: one forward allows one backward (or curvature_backward).

A backward without a forward, or a second one after a single forward, must raise RuntimeError
before any gradient (or curvature) changes: in every layer that ``cnnumpy.nn`` exports, in every
container and in the zoo's models. A test at the end fails when ``nn`` exports a Module that
none of the tables below covers, so a new layer cannot skip the contract.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from cnnumpy import nn
from cnnumpy.models import build_model

F64 = np.float64
MESSAGE = "needs a forward first"

Case = Callable[[np.random.Generator], tuple[nn.Module, tuple[int, ...]]]

# name: (factory returning (module, input shape), has a curvature rule)
LAYERS: dict[str, tuple[Case, bool]] = {
    "Conv2d": (lambda r: (nn.Conv2d(2, 3, 3, rng=r), (2, 2, 5, 5)), True),
    "ConvTranspose2d": (lambda r: (nn.ConvTranspose2d(2, 3, 3, stride=2, rng=r), (2, 2, 3, 3)),
                        False),
    "Linear": (lambda r: (nn.Linear(4, 3, rng=r), (2, 4)), True),
    "Flatten": (lambda r: (nn.Flatten(), (2, 2, 3, 3)), True),
    "ReLU": (lambda r: (nn.ReLU(), (2, 3, 4, 4)), True),
    "LeakyReLU": (lambda r: (nn.LeakyReLU(0.2), (3, 5)), False),
    "ELU": (lambda r: (nn.ELU(), (3, 5)), False),
    "Sigmoid": (lambda r: (nn.Sigmoid(), (3, 5)), True),
    "Tanh": (lambda r: (nn.Tanh(), (3, 5)), True),
    "ScaledTanh": (lambda r: (nn.ScaledTanh(), (3, 5)), True),
    "Softmax": (lambda r: (nn.Softmax(), (3, 5)), False),
    "LogSoftmax": (lambda r: (nn.LogSoftmax(), (3, 5)), False),
    "NoisyReLU": (lambda r: (nn.NoisyReLU(rng=r), (3, 5)), False),
    "PReLU": (lambda r: (nn.PReLU(2), (2, 2, 3, 3)), False),
    "Dropout": (lambda r: (nn.Dropout(0.3, rng=r), (3, 5)), False),
    "BatchNorm1d": (lambda r: (nn.BatchNorm1d(4), (5, 4)), False),
    "BatchNorm2d": (lambda r: (nn.BatchNorm2d(2), (3, 2, 3, 3)), False),
    "SyncBatchNorm": (lambda r: (nn.SyncBatchNorm(2), (3, 2, 3, 3)), False),
    "LocalResponseNorm": (lambda r: (nn.LocalResponseNorm(3), (2, 4, 3, 3)), False),
    "LayerNorm": (lambda r: (nn.LayerNorm((2, 3, 3)), (2, 2, 3, 3)), False),
    "GroupNorm": (lambda r: (nn.GroupNorm(2, 4), (2, 4, 3, 3)), False),
    "ConstantPad2d": (lambda r: (nn.ConstantPad2d(1, 0.5), (2, 2, 3, 3)), True),
    "MaxPool2d": (lambda r: (nn.MaxPool2d(2), (2, 2, 4, 4)), False),
    "AvgPool2d": (lambda r: (nn.AvgPool2d(2), (2, 2, 4, 4)), False),
    "AdaptiveAvgPool2d": (lambda r: (nn.AdaptiveAvgPool2d(1), (2, 2, 3, 3)), False),
    "Subsampling": (lambda r: (nn.Subsampling(2, rng=r), (2, 2, 4, 4)), True),
    "RBFOutput": (lambda r: (nn.RBFOutput(4, 3, trainable=True, rng=r), (2, 4)), True),
    "TableConv2d": (lambda r: (nn.TableConv2d(3, ((0,), (1, 2)), 2, rng=r), (2, 3, 4, 4)), True),
}  # fmt: skip

CONTAINERS: dict[str, tuple[Case, bool]] = {
    "Sequential": (lambda r: (nn.Sequential(nn.Conv2d(2, 3, 3, rng=r), nn.ReLU(), nn.Flatten(),
                                            nn.Linear(12, 2, rng=r)), (2, 2, 4, 4)), True),
    "Concat": (lambda r: (nn.Concat(nn.Conv2d(2, 1, 1, rng=r),
                                    nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, rng=r), nn.Tanh())),
                          (2, 2, 4, 4)), False),
    "Residual": (lambda r: (nn.Residual(nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, rng=r),
                                                      nn.BatchNorm2d(3), nn.ReLU()),
                                        nn.Conv2d(2, 3, 1, rng=r)), (2, 2, 4, 4)), False),
    "Graph": (lambda r: (nn.Graph(["x"], [("conv", nn.Conv2d(2, 3, 3, padding=1, rng=r), ["x"],
                                           "h"), ("relu", nn.ReLU(), ["h"], "y")], ["y"]),
                         (2, 2, 4, 4)), False),
    "lenet5": (lambda r: (build_model("lenet5", tiny=True, input_size=28, rng=r), (2, 1, 28, 28)),
               True),
    "resnet20": (lambda r: (build_model("resnet20", tiny=True, input_size=8, rng=r), (2, 3, 8, 8)),
                 False),
}  # fmt: skip

LOSSES: dict[str, Callable[[], nn.Loss]] = {
    "CrossEntropyLoss": nn.CrossEntropyLoss,
    "MultiMarginLoss": nn.MultiMarginLoss,
    "MAPLoss": nn.MAPLoss,
}
# Abstract bases, tested through their subclasses.
EXEMPT = {"Module", "Loss"}

CASES = {**LAYERS, **CONTAINERS}


def _build(name: str, rng: np.random.Generator) -> tuple[nn.Module, np.ndarray]:
    module, shape = CASES[name][0](rng)
    module.to(F64)
    # Away from zero, so no input sits on a kink; distinct values, so no max is tied.
    x = (rng.permutation(int(np.prod(shape))).reshape(shape) + 1.0) / np.prod(shape)
    return module, x * rng.choice([-1.0, 1.0], shape)


def _scramble_grads(module: nn.Module, rng: np.random.Generator) -> None:
    """Non-zero gradients, so an extra backward that added zeros would still count as a change."""
    for p in module.parameters():
        p.grad[...] = rng.standard_normal(p.shape)


def _grads(module: nn.Module) -> dict[str, np.ndarray]:
    return {k: p.grad.copy() for k, p in module.named_parameters()}


def _curvatures(module: nn.Module) -> dict[str, np.ndarray | None]:
    return {
        k: None if p.curvature is None else p.curvature.copy() for k, p in module.named_parameters()
    }


def _assert_unchanged(before: dict, after: dict) -> None:
    assert list(before) == list(after)
    for key, value in before.items():
        if value is None:
            assert after[key] is None, key
        else:
            assert np.array_equal(after[key], value), f"{key} changed"


@pytest.mark.parametrize("name", list(CASES))
def test_backward_without_forward_raises_and_changes_nothing(name, rng):
    probe, x = _build(name, rng)
    dout = np.ones_like(probe(x))
    module, _ = _build(name, np.random.default_rng(1))  # another one, never run
    _scramble_grads(module, rng)
    before = _grads(module)
    with pytest.raises(RuntimeError, match=f"{type(module).__name__}.backward {MESSAGE}"):
        module.backward(dout)
    _assert_unchanged(before, _grads(module))


@pytest.mark.parametrize("name", list(CASES))
def test_second_backward_raises_and_changes_nothing(name, rng):
    module, x = _build(name, rng)
    _scramble_grads(module, rng)
    out = module(x)
    dout = rng.standard_normal(out.shape)
    module.backward(dout)
    after_first = _grads(module)
    with pytest.raises(RuntimeError, match=MESSAGE):
        module.backward(dout)
    _assert_unchanged(after_first, _grads(module))
    module(x)  # a new forward allows a new backward
    module.backward(dout)


@pytest.mark.parametrize("name", [n for n, (_, curvature) in CASES.items() if curvature])
def test_second_curvature_backward_raises_and_changes_nothing(name, rng):
    module, x = _build(name, rng)
    h_out = rng.uniform(0.5, 2.0, module(x).shape)
    module.zero_curvature()
    module.curvature_backward(h_out)
    after_first = _curvatures(module)
    with pytest.raises(RuntimeError, match=f"curvature_backward {MESSAGE}"):
        module.curvature_backward(h_out)
    _assert_unchanged(after_first, _curvatures(module))
    with pytest.raises(RuntimeError, match=MESSAGE):
        module.backward(np.ones_like(h_out))  # the curvature pass used the forward up too


@pytest.mark.parametrize("name", [n for n, (_, curvature) in LAYERS.items() if not curvature])
def test_layers_marked_without_curvature_have_no_rule(name, rng):
    module, x = _build(name, rng)
    out = module(x)
    with pytest.raises(NotImplementedError, match="no curvature rule"):
        module.curvature_backward(np.ones_like(out))


@pytest.mark.parametrize("name", ["Sequential", "Residual", "lenet5", "resnet20"])
def test_a_half_run_container_raises_before_any_gradient_changes(name, rng):
    """A layer deep inside ran its own backward: the container's backward would reach it only
    after its later layers had added their gradients, so it must refuse up front."""
    module, x = _build(name, rng)
    first_conv = next(m for m in module.modules() if isinstance(m, nn.Conv2d))
    shapes = []
    first_conv.register_forward_hook(lambda m, inputs, out: shapes.append(out.shape))
    out = module(x)
    first_conv.backward(np.ones(shapes[0]))  # run on its own, outside the container
    _scramble_grads(module, rng)
    before = _grads(module)
    with pytest.raises(RuntimeError, match=r"submodule '[\w.]+' \(Conv2d\) holds nothing"):
        module.backward(np.ones_like(out))
    _assert_unchanged(before, _grads(module))


def test_an_inner_container_called_directly_checks_its_own_descendants(rng):
    """Inside a model's backward the inner containers skip the walk the outer one did; called
    on its own (here after a complete backward of the model) an inner one walks again."""
    model, x = _build("resnet20", rng)
    stage, conv = model.stage2, model.stage2[0].residual.body.conv1
    shapes = {}
    stage.register_forward_hook(lambda m, inputs, out: shapes.update(stage=out.shape))
    conv.register_forward_hook(lambda m, inputs, out: shapes.update(conv=out.shape))
    model.backward(np.ones_like(model(x)))
    model(x)
    conv.backward(np.ones(shapes["conv"]))  # run on its own, outside the stage
    _scramble_grads(model, rng)
    before = _grads(model)
    with pytest.raises(RuntimeError, match=r"'0.residual.body.conv1' \(Conv2d\) holds nothing"):
        stage.backward(np.ones(shapes["stage"]))
    _assert_unchanged(before, _grads(model))


def test_a_chain_that_stops_early_still_needs_a_forward_per_backward(rng):
    """After ``set_input_grad(False)`` a chain stops before its parameterless first layer, whose
    state is then left over; that must neither break the next step nor allow a second backward."""
    model = nn.Sequential(nn.ConstantPad2d(1, -0.1), nn.Conv2d(2, 3, 3, rng=rng), nn.ReLU())
    model.to(F64).set_input_grad(False)
    x = rng.standard_normal((2, 2, 4, 4))
    for _ in range(2):
        out = model(x)
        assert model.backward(np.ones_like(out)) is None
        after = _grads(model)
        with pytest.raises(RuntimeError, match=MESSAGE):
            model.backward(np.ones_like(out))
        _assert_unchanged(after, _grads(model))


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_backward_needs_a_forward_and_may_be_repeated(name, rng):
    loss = LOSSES[name]()
    with pytest.raises(RuntimeError, match=f"{name}.backward {MESSAGE}"):
        loss.backward()
    with pytest.raises(RuntimeError, match=f"{name}.curvature_backward {MESSAGE}"):
        loss.curvature_backward()
    scores = rng.standard_normal((4, 3))
    value = loss(scores, np.array([0, 2, 1, 2]))
    assert isinstance(value, float)
    first = loss.backward().copy()
    # A loss has no parameters, so a repeated backward returns the same gradient.
    assert np.array_equal(loss.backward(), first)
    assert np.array_equal(loss.backward(2.0), 2.0 * first)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layers_with_parameters_initialise_in_reset_parameters(name, rng):
    """Every layer with parameters re-draws them in ``reset_parameters(rng)``, in place."""
    module, _ = _build(name, rng)
    params = module.parameters()
    if not params:
        assert not hasattr(module, "reset_parameters"), "nothing to reset"
        return
    arrays = [p.data for p in params]
    module.reset_parameters(np.random.default_rng(3))
    assert all(p.data is a for p, a in zip(module.parameters(), arrays, strict=True))


def test_every_exported_module_keeps_the_contract(rng):
    """Fails when ``nn`` exports a Module subclass that no table above builds."""
    exported = {
        name
        for name in nn.__all__
        if isinstance(getattr(nn, name), type) and issubclass(getattr(nn, name), nn.Module)
    }
    built = {type(CASES[name][0](rng)[0]).__name__ for name in CASES}
    built |= {type(make()).__name__ for make in LOSSES.values()}
    missing = exported - built - EXEMPT
    assert not missing, f"add these modules to the contract tables: {sorted(missing)}"


class _Double(nn.Module):
    """A layer as a user would write it: it keeps its own state, not ``save_for_backward``."""

    def forward(self, x):
        return 2.0 * x

    def backward(self, dout):
        return 2.0 * dout


def test_a_users_own_layer_works_in_a_container_that_still_refuses_a_second_backward(rng):
    model = nn.Sequential(nn.Linear(4, 3, rng=rng).to(F64), _Double())
    x = rng.standard_normal((2, 4))
    out = model(x)
    dout = rng.standard_normal(out.shape)
    dx = model.backward(dout)
    w = model[0].weight.data
    np.testing.assert_array_equal(model[0].weight.grad, (2.0 * dout).T @ x)
    np.testing.assert_array_equal(dx, (2.0 * dout) @ w)
    grad = model[0].weight.grad.copy()
    with pytest.raises(RuntimeError, match=MESSAGE):
        model.backward(dout)
    np.testing.assert_array_equal(model[0].weight.grad, grad)

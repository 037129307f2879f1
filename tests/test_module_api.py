"""The Module interface beside the backward contract: forward hooks, ``named_modules`` against
torch's, ``reset_parameters`` (the seeded draws the zoo depends on), ``extra_repr`` and the
packages' ``__all__``."""

from __future__ import annotations

import inspect
from collections import OrderedDict

import numpy as np
import pytest
import torch

import cnnumpy.functional as F
from cnnumpy import init, models, nn
from cnnumpy.models.blocks import named_sequential

T = torch.nn

# ----------------------------------------------------------------------------- forward hooks


def test_hook_sees_the_module_its_inputs_and_its_output(rng):
    layer = nn.Linear(3, 2, rng=rng)
    calls = []
    handle = layer.register_forward_hook(lambda m, inputs, out: calls.append((m, inputs, out)))
    x = rng.standard_normal((4, 3)).astype(np.float32)
    out = layer(x)
    assert len(calls) == 1
    module, inputs, output = calls[0]
    assert module is layer and output is out
    assert isinstance(inputs, tuple) and len(inputs) == 1 and inputs[0] is x
    handle.remove()
    layer(x)
    assert len(calls) == 1, "a removed hook must not run"
    handle.remove()  # removing twice is harmless


def test_hook_can_replace_the_output_and_the_chain_uses_it(rng):
    first, second = nn.ReLU(), nn.Tanh()
    model = nn.Sequential(first, second)
    x = np.array([[-1.0, 0.5, 2.0]])
    with first.register_forward_hook(lambda m, inputs, out: out * 0.0 + 3.0):
        assert np.array_equal(model(x), np.tanh(np.full((1, 3), 3.0)))
    assert np.array_equal(model(x), np.tanh(np.maximum(x, 0.0)))  # the with block removed it


def test_hooks_run_in_registration_order_and_none_keeps_the_output(rng):
    layer = nn.ReLU()
    seen = []
    layer.register_forward_hook(lambda m, i, out: seen.append("a"))
    layer.register_forward_hook(lambda m, i, out: (seen.append("b"), out + 1.0)[1])
    layer.register_forward_hook(lambda m, i, out: seen.append(float(out[0, 0])))
    assert layer(np.array([[2.0]]))[0, 0] == 3.0
    assert seen == ["a", "b", 3.0]


def test_loss_hook_sees_scores_and_labels(rng):
    loss = nn.CrossEntropyLoss()
    seen = []
    loss.register_forward_hook(lambda m, inputs, out: seen.append((len(inputs), out)))
    value = loss(rng.standard_normal((2, 3)), np.array([0, 2]))
    assert seen == [(2, value)]


# ----------------------------------------------------------------------------- named_modules


def _nested_pair():
    """The same nested chain in cnnumpy and in torch, with one module shared by two parents."""
    shared, tshared = nn.ReLU(), T.ReLU()
    ours = nn.Sequential(
        nn.Conv2d(1, 2, 3),
        named_sequential(("act", shared), ("inner", nn.Sequential(nn.Tanh(), shared))),
        nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 1), nn.ReLU()), nn.Conv2d(2, 2, 1)),
        nn.Flatten(),
    )
    theirs = T.Sequential(
        T.Conv2d(1, 2, 3),
        T.Sequential(OrderedDict(act=tshared, inner=T.Sequential(T.Tanh(), tshared))),
        _TorchResidual(T.Sequential(T.Conv2d(2, 2, 1), T.ReLU()), T.Conv2d(2, 2, 1)),
        T.Flatten(),
    )
    return ours, theirs


class _TorchResidual(T.Module):
    def __init__(self, body, shortcut):
        super().__init__()
        self.body, self.shortcut = body, shortcut


def test_named_modules_match_torch():
    ours, theirs = _nested_pair()
    names = [name for name, _ in ours.named_modules()]
    assert names == [name for name, _ in theirs.named_modules()]
    assert names[0] == "" and names.count("1.act") == 1 and "1.inner.1" not in names
    kinds = [type(m).__name__ for _, m in ours.named_modules()]
    twin_kinds = [type(m).__name__.removeprefix("_Torch") for _, m in theirs.named_modules()]
    assert kinds == twin_kinds
    prefixed = [name for name, _ in ours.named_modules(prefix="net")]
    assert prefixed == [name for name, _ in theirs.named_modules(prefix="net")]
    assert [m for m in ours.modules()] == [m for _, m in ours.named_modules()]


# ----------------------------------------------------------------------------- reset_parameters


def _expected_draws(kind: str) -> list[np.ndarray]:
    """The values each layer's constructor drew from ``default_rng(0)`` before
    ``reset_parameters`` existed, written out with the same calls in the same order."""
    rng = np.random.default_rng(0)
    f32 = np.float32
    if kind == "linear":  # Linear(5, 3)
        return [init.default_weight((3, 5), rng, dtype=f32), init.default_bias((3,), 5, rng)]
    if kind == "conv":  # Conv2d(4, 6, 3, groups=2)
        return [init.default_weight((6, 2, 3, 3), rng, dtype=f32),
                init.default_bias((6,), 18, rng, dtype=f32)]  # fmt: skip
    if kind == "conv_transpose":  # ConvTranspose2d(4, 6, 2): fan_in from weight.shape[1:]
        return [init.default_weight((4, 6, 2, 2), rng, dtype=f32),
                init.default_bias((6,), 24, rng, dtype=f32)]  # fmt: skip
    if kind == "subsampling":  # Subsampling(3, 2)
        return [rng.uniform(-0.6, 0.6, 3).astype(f32), rng.uniform(-0.6, 0.6, 3).astype(f32)]
    if kind == "rbf":  # RBFOutput(4, 2)
        return [rng.choice([-1.0, 1.0], size=(2, 4)).astype(f32)]
    # TableConv2d(3, ((0,), (1, 2)), 2): fan-ins 4 and 8, bounds 0.6 and 0.3
    bound = np.array([0.6, 0.3, 0.3])[:, None, None]
    weight = rng.uniform(-bound, bound, (3, 2, 2)).astype(f32)
    return [weight, rng.uniform(-np.array([0.6, 0.3]), np.array([0.6, 0.3])).astype(f32)]


DRAWN = {
    "linear": lambda r: nn.Linear(5, 3, rng=r),
    "conv": lambda r: nn.Conv2d(4, 6, 3, groups=2, rng=r),
    "conv_transpose": lambda r: nn.ConvTranspose2d(4, 6, 2, rng=r),
    "subsampling": lambda r: nn.Subsampling(3, 2, rng=r),
    "rbf": lambda r: nn.RBFOutput(4, 2, rng=r),
    "table_conv": lambda r: nn.TableConv2d(3, ((0,), (1, 2)), 2, rng=r),
}


@pytest.mark.parametrize("kind", list(DRAWN))
def test_initialisation_draws_as_before(kind):
    layer = DRAWN[kind](np.random.default_rng(0))
    params = layer.parameters()
    expected = _expected_draws(kind)
    assert len(params) == len(expected)
    for p, value in zip(params, expected, strict=True):
        assert p.dtype == np.float32 and np.array_equal(p.data, value)


@pytest.mark.parametrize("kind", list(DRAWN))
def test_reset_parameters_redraws_in_place(kind):
    layer = DRAWN[kind](np.random.default_rng(5))
    params = layer.parameters()
    arrays = [p.data for p in params]
    layer.reset_parameters(np.random.default_rng(0))
    assert layer.parameters() == params and all(
        p.data is a for p, a in zip(params, arrays, strict=True)
    ), "reset_parameters must write into the existing arrays"
    for p, value in zip(params, _expected_draws(kind), strict=True):
        assert np.array_equal(p.data, value)


def test_reset_parameters_of_the_undrawn_layers(rng):
    prelu = nn.PReLU(3, init=0.1)
    prelu.weight.data[...] = 7.0
    prelu.reset_parameters()
    assert np.array_equal(prelu.weight.data, np.full(3, 0.1, np.float32))
    bn = nn.BatchNorm2d(2)
    bn(rng.standard_normal((4, 2, 3, 3)).astype(np.float32))
    bn.weight.data[...], bn.bias.data[...] = 3.0, 4.0
    bn.reset_parameters()
    assert np.array_equal(bn.weight.data, [1, 1]) and np.array_equal(bn.bias.data, [0, 0])
    assert np.array_equal(bn.running_mean, [0, 0]) and np.array_equal(bn.running_var, [1, 1])
    assert bn.num_batches_tracked == 0 and bn.running_mean.dtype == np.float32


# ----------------------------------------------------------------------------- extra_repr

REPRS = [
    (lambda: nn.Linear(3, 2), "Linear(in_features=3, out_features=2)"),
    (lambda: nn.Linear(3, 2, bias=False), "Linear(in_features=3, out_features=2, bias=False)"),
    (lambda: nn.Conv2d(1, 6, 5), "Conv2d(1, 6, kernel_size=(5, 5))"),
    (lambda: nn.Conv2d(1, 6, 5, stride=(1, 1), padding=(0, 0)), "Conv2d(1, 6, kernel_size=(5, 5))"),
    (lambda: nn.Conv2d(4, 6, (3, 1), stride=2, padding=1, dilation=2, groups=2, bias=False),
     "Conv2d(4, 6, kernel_size=(3, 1), stride=2, padding=1, dilation=2, groups=2, bias=False)"),
    (lambda: nn.Conv2d(3, 3, 3, padding="same"),
     "Conv2d(3, 3, kernel_size=(3, 3), padding='same')"),
    (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, output_padding=1),
     "ConvTranspose2d(2, 3, kernel_size=(3, 3), stride=2, output_padding=1)"),
    (lambda: nn.BatchNorm2d(16), "BatchNorm2d(16)"),
    (lambda: nn.BatchNorm1d(8, eps=1e-3, affine=False), "BatchNorm1d(8, eps=0.001, affine=False)"),
    (lambda: nn.MaxPool2d(2), "MaxPool2d(kernel_size=2)"),
    (lambda: nn.MaxPool2d(3, 2, ceil_mode=True),
     "MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)"),
    (lambda: nn.AvgPool2d(3, 1, 1, count_include_pad=False),
     "AvgPool2d(kernel_size=3, stride=1, padding=1, count_include_pad=False)"),
    (lambda: nn.AdaptiveAvgPool2d((1, 1)), "AdaptiveAvgPool2d()"),
    (lambda: nn.LocalResponseNorm(5, 5e-4, k=2.0), "LocalResponseNorm(5, alpha=0.0005, k=2.0)"),
    (lambda: nn.ConstantPad2d(1, -0.1), "ConstantPad2d(padding=(1, 1, 1, 1), value=-0.1)"),
    (lambda: nn.Dropout(), "Dropout()"),
    (lambda: nn.Dropout(0.3, inverted=False), "Dropout(p=0.3, inverted=False)"),
    (lambda: nn.ReLU(), "ReLU()"),
    (lambda: nn.LeakyReLU(), "LeakyReLU()"),
    (lambda: nn.LeakyReLU(0.2), "LeakyReLU(negative_slope=0.2)"),
    (lambda: nn.ELU(0.5), "ELU(alpha=0.5)"),
    (lambda: nn.Softmax(dim=0), "Softmax(dim=0)"),
    (lambda: nn.NoisyReLU(), "NoisyReLU()"),
    (lambda: nn.PReLU(), "PReLU()"),
    (lambda: nn.PReLU(4, init=0.1), "PReLU(num_parameters=4, init=0.1)"),
    (lambda: nn.Subsampling(6), "Subsampling(6)"),
    (lambda: nn.Subsampling(6, 3, 2, bias=False),
     "Subsampling(6, kernel_size=3, stride=2, bias=False)"),
    (lambda: nn.RBFOutput(84, 10), "RBFOutput(in_features=84, out_features=10)"),
    (lambda: nn.RBFOutput(4, 2, trainable=True),
     "RBFOutput(in_features=4, out_features=2, trainable=True)"),
    (lambda: nn.TableConv2d(3, ((0,), (1, 2)), 2),
     "TableConv2d(3, 2, connections=3, kernel_size=2)"),
    (lambda: nn.CrossEntropyLoss(), "CrossEntropyLoss()"),
    (lambda: nn.CrossEntropyLoss(0.1), "CrossEntropyLoss(label_smoothing=0.1)"),
    (lambda: nn.MultiMarginLoss(p=2), "MultiMarginLoss(p=2)"),
    (lambda: nn.MAPLoss(j=10.0), "MAPLoss(j=10.0)"),
]  # fmt: skip


@pytest.mark.parametrize("make, expected", REPRS, ids=[e for _, e in REPRS])
def test_repr_shows_only_non_default_arguments(make, expected):
    assert repr(make()) == expected


def test_container_repr_nests_its_children():
    model = named_sequential(("conv", nn.Conv2d(1, 2, 3)), ("relu", nn.ReLU()))
    assert (
        repr(model)
        == "Sequential(\n  (conv): Conv2d(1, 2, kernel_size=(3, 3))\n  (relu): ReLU()\n)"
    )


# ----------------------------------------------------------------------------- __all__


def _public_names(module, keep) -> set[str]:
    return {
        name for name, value in vars(module).items() if not name.startswith("_") and keep(value)
    }


def test_nn_all_lists_every_public_name():
    names = _public_names(nn, lambda v: not inspect.ismodule(v))
    assert set(nn.__all__) == names and len(nn.__all__) == len(names)


def test_functional_all_lists_every_kernel():
    names = _public_names(F, inspect.isfunction)
    assert set(F.__all__) == names and len(F.__all__) == len(names)
    assert {"table_conv2d_forward", "table_conv2d_backward", "table_conv2d_curvature",
            "table_conv2d_forward_naive"} <= names  # fmt: skip


def test_models_all_lists_every_builder():
    names = _public_names(
        models, lambda v: getattr(v, "__module__", "").startswith(models.__name__)
    )
    assert set(models.__all__) == names | {"MODELS"}
    assert {spec.build.__name__ for spec in models.MODELS.values()} <= set(models.__all__)


def test_load_state_dict_refuses_integer_weights_and_changes_nothing():
    from cnnumpy import nn as cnn

    layer = cnn.Linear(3, 2, rng=np.random.default_rng(0))
    before = layer.state_dict()
    state = {"weight": np.ones((2, 3), dtype=np.int32), "bias": before["bias"]}
    expected = r"another kind.*weight \(checkpoint int32, model float32\)"
    with pytest.raises(ValueError, match=expected):
        layer.load_state_dict(state)
    np.testing.assert_array_equal(layer.weight.data, before["weight"])
    # a float of another precision is converted, as PyTorch does
    layer.load_state_dict({k: v.astype(np.float64) for k, v in before.items()})
    assert layer.weight.data.dtype == np.float32

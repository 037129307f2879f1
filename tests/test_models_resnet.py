"""CIFAR ResNets and plain nets (He et al. 2015, section 4.2): the option-A shortcut, torch
twins, parameter counts, init, gradient checks and the 50-image overfit."""

import numpy as np
import pytest
import resnet_helpers as rh
from helpers import check_backward

from cnnumpy import nn
from cnnumpy.inspect import check_model_gradients
from cnnumpy.models.blocks import PadShortcut
from cnnumpy.models.resnet import (
    cifar_resnet,
    plain20,
    resnet20,
    resnet32,
    resnet44,
    resnet56,
    resnet110,
)

# ----------------------------------------------------------------------------- option A


def test_pad_shortcut_values_by_hand():
    x = np.arange(2 * 2 * 3 * 5, dtype=np.float64).reshape(2, 2, 3, 5)
    out = PadShortcut(5, stride=2)(x)
    assert out.shape == (2, 5, 2, 3)  # ceil(3/2), ceil(5/2), as a 3x3/2 conv with padding 1
    np.testing.assert_array_equal(out[1, 0], [[30, 32, 34], [40, 42, 44]])
    np.testing.assert_array_equal(out[0, 1], [[15, 17, 19], [25, 27, 29]])
    assert not out[:, 2:].any()
    np.testing.assert_array_equal(PadShortcut(2, stride=1)(x), x)


@pytest.mark.parametrize(("shape", "cout", "stride"), [((2, 3, 5, 6), 7, 2), ((1, 2, 4, 4), 2, 1),
                                                       ((2, 2, 7, 5), 4, 3)])  # fmt: skip
def test_pad_shortcut_gradient(shape, cout, stride, rng):
    def forward(x):
        layer = PadShortcut(cout, stride)
        return layer(x), layer

    check_backward(forward, lambda dout, layer: layer.backward(dout), [rng.standard_normal(shape)],
                   rng)  # fmt: skip


def test_pad_shortcut_rejects_more_channels_than_out():
    with pytest.raises(ValueError, match="C <= 2"):
        PadShortcut(2)(np.zeros((1, 3, 4, 4)))
    with pytest.raises(RuntimeError, match="PadShortcut.backward needs a forward first"):
        PadShortcut(2).backward(np.zeros((1, 2, 2, 2)))


# ----------------------------------------------------------------------------- twins

TWINS = {  # name: (our model, torch twin, input shape)
    "resnet14_A": (
        lambda: cifar_resnet(14, widths=(3, 4, 6), shortcut="A", num_classes=5),
        lambda: rh.resnet((2, 2, 2), (3, 4, 6), classes=5, kind="A"),
        (4, 3, 8, 8),
    ),
    "resnet8_B": (
        lambda: cifar_resnet(8, in_channels=1, widths=(2, 4, 5), shortcut="B"),
        lambda: rh.resnet((1, 1, 1), (2, 4, 5), cin=1, kind="B"),
        (3, 1, 9, 7),
    ),
    "plain14": (
        lambda: cifar_resnet(14, widths=(3, 4, 6), plain=True, init="pytorch"),
        lambda: rh.resnet((2, 2, 2), (3, 4, 6), plain=True),
        (4, 3, 8, 8),
    ),
}


@pytest.mark.parametrize("name", list(TWINS))
def test_matches_torch_twin(name):
    ours, theirs, shape = TWINS[name]
    torch_seed = sum(map(ord, name))
    rh.torch.manual_seed(torch_seed)
    rh.compare_with_twin(ours(), theirs(), shape, seed=torch_seed)


def test_state_dict_keys_are_readable():
    keys = list(cifar_resnet(8, widths=(2, 4, 4), shortcut="B").state_dict())
    assert keys[:2] == ["conv.weight", "bn.weight"]
    assert "stage2.0.residual.body.conv1.weight" in keys
    assert "stage2.0.residual.shortcut.conv.weight" in keys
    assert "stage1.0.residual.shortcut.conv.weight" not in keys  # identity where shapes agree
    assert keys[-2:] == ["fc.weight", "fc.bias"]
    assert "stage3.0.conv1.weight" in plain20(widths=(2, 4, 4)).state_dict()


# ----------------------------------------------------------------------------- counts


@pytest.mark.parametrize(
    ("build", "shortcut", "expected"),
    [(resnet20, "A", 269_722), (resnet56, "A", 853_018), (resnet110, "A", 1_727_962),
     (resnet110, "B", 1_730_714), (resnet32, "A", 464_154), (resnet44, "A", 658_586)],
)  # fmt: skip
def test_parameter_counts(build, shortcut, expected):
    n = (int(build.__name__[6:]) - 2) // 6
    assert rh.count(build(shortcut=shortcut)) == expected
    assert rh.count(rh.resnet((n, n, n), (16, 32, 64), kind=shortcut)) == expected


def test_plain_net_has_the_same_parameters_as_option_a():
    assert rh.count(plain20()) == rh.count(resnet20()) == 269_722


def test_msra_and_pytorch_init():
    rng = np.random.default_rng(0)
    conv = resnet20(rng=rng).stage3[1].residual.body.conv1  # 64 -> 64, fan_out = 64*9
    assert abs(conv.weight.data.std() / np.sqrt(2 / 576) - 1) < 0.03
    conv = resnet20(init="pytorch", rng=rng).stage3[1].residual.body.conv1
    assert np.abs(conv.weight.data).max() <= 1 / np.sqrt(576)
    same = [resnet20(rng=np.random.default_rng(3)).state_dict() for _ in range(2)]
    for key, value in same[0].items():
        np.testing.assert_array_equal(value, same[1][key])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"depth": 21}, "6n \\+ 2"), ({"depth": 20, "shortcut": "C"}, "'A'"),
     ({"depth": 20, "input_size": 3}, "at least 4"), ({"depth": 20, "init": "xavier"}, "init"),
     ({"depth": 8, "widths": (4, 2, 8)}, "shrink")],
)  # fmt: skip
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cifar_resnet(**kwargs)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("kw", [{"shortcut": "A"}, {"shortcut": "B"}, {"plain": True}])
def test_model_gradients(kw):
    rng = np.random.default_rng(5)
    model = cifar_resnet(8, widths=(2, 3, 4), num_classes=4, rng=rng, **kw).to(np.float64)
    x, y = rng.standard_normal((3, 3, 6, 6)), np.array([0, 3, 1])
    errors = check_model_gradients(model, nn.CrossEntropyLoss(), x, y, max_entries=3, seed=1)
    assert max(errors.values()) < 1e-6, errors


# ----------------------------------------------------------------------------- overfitting


@pytest.fixture(scope="module")
def mnist50(mnist_small):
    return rh.mnist50(mnist_small)


@pytest.mark.parametrize("build", [resnet20, plain20])
def test_overfits_50_mnist_images(build, mnist50):
    model = build(in_channels=1, widths=(4, 8, 16), rng=np.random.default_rng(0))
    accuracy, steps = rh.overfit(model, *mnist50)
    assert accuracy == 1.0, f"{build.__name__}: {accuracy:.2f} after {steps} steps"

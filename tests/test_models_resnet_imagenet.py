"""ResNet-18/34/50 adapted to 32x32, their plain twins and the pre-activation ResNet-18: torch
twins, parameter counts, gradient checks and the 50-image overfit."""

import numpy as np
import pytest
import resnet_helpers as rh

from cnnumpy import nn
from cnnumpy.inspect import check_model_gradients
from cnnumpy.models.resnet_imagenet import (
    imagenet_resnet,
    plain18,
    plain34,
    plain50,
    preact_resnet18,
    resnet18,
    resnet34,
    resnet50,
)

L18, L34 = (2, 2, 2, 2), (3, 4, 6, 3)
TINY = (2, 3, 4, 4)
# Inputs of 10x10 leave 2x2 maps in stage 4, so that train-mode BN there sees 12+ values: with
# 1x1 maps and 2 samples it would output +-1 whatever its input, and the gradients vanish.

TWINS = {  # name: (our model, torch twin, input shape)
    "resnet18": (
        lambda: resnet18(widths=TINY, num_classes=6),
        lambda: rh.resnet(L18, TINY, classes=6),
        (3, 3, 10, 10),
    ),
    "plain18": (
        lambda: plain18(in_channels=1, widths=TINY),
        lambda: rh.resnet(L18, TINY, 1, plain=True),
        (3, 1, 10, 9),
    ),
    "resnet50": (
        lambda: resnet50(widths=(2, 2, 2, 3), init="pytorch"),
        lambda: rh.resnet(L34, (2, 2, 2, 3), bottleneck=True),
        (4, 3, 10, 10),
    ),
    "plain50": (
        lambda: plain50(widths=(2, 2, 2, 3)),
        lambda: rh.resnet(L34, (2, 2, 2, 3), bottleneck=True, plain=True),
        (4, 3, 10, 10),
    ),
    "preact_resnet18": (
        lambda: preact_resnet18(widths=TINY),
        lambda: rh.resnet(L18, TINY, preact=True),
        (3, 3, 10, 10),
    ),
}


@pytest.mark.parametrize("name", list(TWINS))
def test_matches_torch_twin(name):
    ours, theirs, shape = TWINS[name]
    seed = sum(map(ord, name))
    rh.torch.manual_seed(seed)
    rh.compare_with_twin(ours(), theirs(), shape, seed=seed)


@pytest.mark.parametrize(
    ("build", "twin", "expected"),
    [(resnet18, {"blocks": L18}, 11_173_962), (resnet34, {"blocks": L34}, 21_282_122),
     (resnet50, {"blocks": L34, "bottleneck": True}, 23_520_842),
     (plain18, {"blocks": L18, "plain": True}, None),
     (preact_resnet18, {"blocks": L18, "preact": True}, None)],
    ids=["resnet18", "resnet34", "resnet50", "plain18", "preact_resnet18"],
)  # fmt: skip
def test_parameter_counts_at_full_width(build, twin, expected):
    theirs = rh.count(rh.resnet(widths=(64, 128, 256, 512), **twin))
    assert rh.count(build(rng=np.random.default_rng(0))) == theirs
    if expected is not None:  # the counts usually quoted for the CIFAR versions, 10 classes
        assert theirs == expected


def test_plain_twins_drop_only_the_projections():
    # ResNet-34 has 3 projections (1x1 conv + BN) at 64->128, 128->256, 256->512.
    projections = sum(c * 2 * c + 4 * c for c in (64, 128, 256))
    assert rh.count(resnet34(rng=np.random.default_rng(0))) - rh.count(
        plain34(rng=np.random.default_rng(0))) == projections  # fmt: skip


def test_width_multiplier_and_shapes():
    model = resnet50(width=1 / 32, num_classes=3, input_size=28)
    assert model.conv.out_channels == 2
    assert model.fc.in_features == 4 * 16  # 512 / 32 * 4
    assert model(np.zeros((2, 3, 28, 28), np.float32)).shape == (2, 3)
    with pytest.raises(ValueError, match="at least 8"):
        resnet18(input_size=4)
    with pytest.raises(ValueError, match="4 positive"):
        resnet18(widths=(4, 4, 4))


@pytest.mark.parametrize(
    "kw", [{}, {"bottleneck": True}, {"preact": True}, {"plain": True}],
    ids=["basic", "bottleneck", "preact", "plain"],
)  # fmt: skip
def test_model_gradients(kw):
    rng = np.random.default_rng(2)
    model = imagenet_resnet((1, 1, 1, 1), widths=(2, 2, 3, 3), num_classes=4, rng=rng, **kw)
    model.to(np.float64)
    x, y = rng.standard_normal((3, 3, 10, 10)), np.array([2, 1, 3])
    errors = check_model_gradients(model, nn.CrossEntropyLoss(), x, y, max_entries=2, seed=1)
    assert max(errors.values()) < 1e-6, errors


@pytest.fixture(scope="module")
def mnist50(mnist_small):
    return rh.mnist50(mnist_small)


@pytest.mark.parametrize(
    ("build", "widths", "lr"), [(resnet18, (4, 4, 8, 8), 1e-2), (resnet50, (1, 2, 2, 4), 2e-2)],
    ids=["resnet18", "resnet50"],
)  # fmt: skip
def test_overfits_50_mnist_images(build, widths, lr, mnist50):
    model = build(in_channels=1, widths=widths, rng=np.random.default_rng(0))
    accuracy, steps = rh.overfit(model, *mnist50, lr=lr)
    assert accuracy == 1.0, f"{build.__name__}: {accuracy:.2f} after {steps} steps"

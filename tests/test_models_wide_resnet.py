"""Pre-activation ResNets (He et al. 2016) and Wide ResNets (Zagoruyko & Komodakis 2016): torch
twins (dropout with shared masks), parameter counts, gradient checks and the 50-image overfit."""

import numpy as np
import pytest
import resnet_helpers as rh

from cnnumpy import nn
from cnnumpy.inspect import check_model_gradients
from cnnumpy.models.wide_resnet import (
    preact_resnet,
    preact_resnet20,
    preact_resnet56,
    preact_resnet110,
    wide_resnet,
    wrn16_4,
    wrn16_8,
    wrn28_10,
)

TWINS = {  # name: (our model, torch twin, input shape)
    "preact14_B": (
        lambda: preact_resnet(14, widths=(3, 4, 6), num_classes=5),
        lambda: rh.resnet((2, 2, 2), (3, 4, 6), classes=5, preact=True, kind="B"),
        (4, 3, 8, 8),
    ),
    "preact8_A": (
        lambda: preact_resnet(8, in_channels=2, widths=(2, 4, 5), shortcut="A", init="pytorch"),
        lambda: rh.resnet((1, 1, 1), (2, 4, 5), cin=2, preact=True, kind="A"),
        (3, 2, 7, 9),
    ),
    "wrn10_dropout": (
        lambda: wide_resnet(10, 1, 0.3, widths=(3, 4, 6), stem_width=2),
        lambda: rh.resnet((1, 1, 1), (3, 4, 6), preact=True, stem=2, dropout=0.3),
        (4, 3, 8, 8),
    ),
    "wrn16_2": (
        lambda: wide_resnet(16, 2, num_classes=3, widths=(4, 4, 6), stem_width=4),
        lambda: rh.resnet((2, 2, 2), (4, 4, 6), classes=3, preact=True, stem=4),
        (3, 3, 8, 8),
    ),
}


@pytest.mark.parametrize("name", list(TWINS))
def test_matches_torch_twin(name):
    ours, theirs, shape = TWINS[name]
    seed = sum(map(ord, name))
    rh.torch.manual_seed(seed)
    rh.compare_with_twin(ours(), theirs(), shape, seed=seed)


def test_block_layouts():
    model = wide_resnet(16, 2, 0.3, widths=(4, 4, 6), stem_width=2)
    keys = list(model.state_dict())
    assert "stage1.0.residual.shortcut.weight" in keys  # 2 -> 4: a projection, no BN
    assert "stage1.1.body.conv1.weight" in keys  # identity: pre-activation inside the body
    assert "stage2.0.bn1.weight" in keys  # projection: pre-activation shared by both paths
    assert keys[-7:-2] == ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
                           "bn.num_batches_tracked"]  # fmt: skip
    body = model.stage2[1].body
    assert [name for name, _ in body.named_children()] == [
        "bn1", "relu1", "conv1", "bn2", "relu2", "dropout", "conv2"]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "twin", "expected"),
    [(wrn16_4, {"blocks": (2, 2, 2), "widths": (64, 128, 256)}, 2_748_890),
     (wrn16_8, {"blocks": (2, 2, 2), "widths": (128, 256, 512)}, None),
     (wrn28_10, {"blocks": (4, 4, 4), "widths": (160, 320, 640)}, 36_479_194),
     (preact_resnet20, {"blocks": (3, 3, 3), "widths": (16, 32, 64)}, None),
     (preact_resnet56, {"blocks": (9, 9, 9), "widths": (16, 32, 64)}, None),
     (preact_resnet110, {"blocks": (18, 18, 18), "widths": (16, 32, 64)}, None)],
    ids=["wrn16_4", "wrn16_8", "wrn28_10", "preact_resnet20", "preact_resnet56",
         "preact_resnet110"],
)  # fmt: skip
def test_parameter_counts_at_full_width(build, twin, expected):
    stem = 16 if build.__name__.startswith("wrn") else None
    theirs = rh.count(rh.resnet(preact=True, stem=stem, **twin))
    assert rh.count(build(rng=np.random.default_rng(0))) == theirs
    if expected is not None:  # the paper's 2.7M and 36.5M
        assert theirs == expected


def test_option_a_preact_counts_like_resnet20():
    # The same convs as ResNet-20 (option A). BN: no stem BN (-16 channels), the first blocks of
    # stages 2 and 3 normalise their 16 and 32 input channels instead of 32 and 64 (-48), and
    # the final BN adds 64: the same 269,722.
    assert rh.count(preact_resnet20(shortcut="A")) == 269_722


@pytest.mark.parametrize(
    ("call", "message"),
    [(lambda: wide_resnet(depth=14), "6n \\+ 4"), (lambda: wide_resnet(widen_factor=0), "widen"),
     (lambda: wide_resnet(16, 1, dropout=1.0), "dropout"), (lambda: preact_resnet(10), "6n \\+ 2"),
     (lambda: wide_resnet(16, 1, input_size=2), "at least 4")],
)  # fmt: skip
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    "build",
    [lambda rng: preact_resnet(8, widths=(2, 3, 4), num_classes=4, rng=rng),
     lambda rng: preact_resnet(8, widths=(2, 3, 4), num_classes=4, shortcut="A", rng=rng),
     lambda rng: wide_resnet(10, 1, 0.2, num_classes=4, widths=(3, 3, 4), stem_width=2, rng=rng)],
    ids=["preact_B", "preact_A", "wrn_dropout"],
)  # fmt: skip
def test_model_gradients(build):
    rng = np.random.default_rng(4)
    model = build(rng).to(np.float64)
    x, y = rng.standard_normal((3, 3, 6, 6)), np.array([0, 3, 1])
    errors = check_model_gradients(model, nn.CrossEntropyLoss(), x, y, max_entries=3, seed=1)
    assert max(errors.values()) < 1e-6, errors


@pytest.fixture(scope="module")
def mnist50(mnist_small):
    return rh.mnist50(mnist_small)


@pytest.mark.parametrize(
    "build",
    [lambda: preact_resnet20(in_channels=1, widths=(4, 8, 16), rng=np.random.default_rng(0)),
     lambda: wrn16_4(in_channels=1, widths=(4, 8, 16), stem_width=4, rng=np.random.default_rng(0))],
    ids=["preact_resnet20", "wrn16_4"],
)  # fmt: skip
def test_overfits_50_mnist_images(build, mnist50):
    accuracy, steps = rh.overfit(build(), *mnist50)
    assert accuracy == 1.0, f"{accuracy:.2f} after {steps} steps"

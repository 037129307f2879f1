"""``cnnumpy.inspect.analysis``: feature maps recorded with hooks equal the layers' outputs
computed by hand, the right layers are picked by what they are, and no hook stays behind."""

from __future__ import annotations

import numpy as np
import pytest

from cnnumpy import nn
from cnnumpy.inspect import conv_layers, first_conv, record_feature_maps
from cnnumpy.models import build_model


def small_net() -> nn.Sequential:
    rng = np.random.default_rng(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, rng=rng),  # 0: (3, 6, 6)
        nn.BatchNorm2d(3),  # 1
        nn.ReLU(),  # 2
        nn.MaxPool2d(2),  # 3: (3, 3, 3)
        nn.Dropout(0.5, rng=rng),  # 4
        nn.Conv2d(3, 4, 2, rng=rng),  # 5: (4, 2, 2)
        nn.AdaptiveAvgPool2d(1),  # 6: (4, 1, 1)
        nn.Flatten(),  # 7
        nn.Linear(4, 2, rng=rng),  # 8
    )


def by_hand(model: nn.Sequential, image: np.ndarray) -> list[np.ndarray]:
    """Every layer's output for ``image``, one layer after the other, in eval mode."""
    model.eval()
    outputs, x = [], image[None]
    for layer in model:
        x = layer(x)
        outputs.append(x[0])
    return outputs


def test_feature_maps_equal_the_layers_run_by_hand():
    model = small_net()
    model[1].running_mean[:] = [0.5, -1.0, 2.0]  # eval mode must use these, not batch statistics
    image = np.random.default_rng(1).standard_normal((1, 6, 6)).astype(np.float32)
    model.train()
    records = record_feature_maps(model, image)
    assert [(r.name, r.kind, r.maps.shape) for r in records] == [
        ("0", "Conv2d", (3, 6, 6)),
        ("3", "MaxPool2d", (3, 3, 3)),
        ("5", "Conv2d", (4, 2, 2)),
        ("6", "AdaptiveAvgPool2d", (4, 1, 1)),
    ]
    assert model.training, "the training mode is restored"
    expected = by_hand(model, image)
    for record, index in zip(records, (0, 3, 5, 6), strict=True):
        np.testing.assert_allclose(record.maps, expected[index], rtol=1e-6, err_msg=record.name)


def test_the_layers_drawn_are_chosen_by_kind():
    model = small_net()
    image = np.ones((1, 6, 6), dtype=np.float32)
    records = record_feature_maps(model, image, kinds=(nn.ReLU, nn.Linear))
    assert [(r.name, r.kind) for r in records] == [("2", "ReLU")], "Linear's (N, 2) has no maps"
    np.testing.assert_allclose(records[0].maps, by_hand(model, image)[2], rtol=1e-6)


def test_a_table_convolution_is_a_feature_map_layer():
    """LeNet-5's maps as the paper draws them (its Fig. 2), C3 a TableConv2d."""
    model = build_model("lenet5", rng=np.random.default_rng(0))
    image = np.random.default_rng(2).standard_normal((1, 32, 32)).astype(np.float32)
    records = record_feature_maps(model, image)
    assert [(r.name, r.kind, r.maps.shape) for r in records] == [
        ("c1", "Conv2d", (6, 28, 28)),
        ("s2", "Subsampling", (6, 14, 14)),
        ("c3", "TableConv2d", (16, 10, 10)),
        ("s4", "Subsampling", (16, 5, 5)),
        ("c5", "Conv2d", (120, 1, 1)),
    ]
    assert isinstance(model.c3, nn.TableConv2d)


def test_records_are_copies():
    model = nn.Sequential(nn.Conv2d(1, 1, 1, rng=np.random.default_rng(0)))
    records = record_feature_maps(model, np.ones((1, 2, 2), dtype=np.float32))
    before = records[0].maps.copy()
    model(np.zeros((1, 1, 2, 2), dtype=np.float32))
    np.testing.assert_array_equal(records[0].maps, before)
    assert records[0].name == "0"
    assert record_feature_maps(model[0], np.ones((1, 2, 2), np.float32))[0].name == "Conv2d"


def test_no_hooks_are_left_when_the_forward_raises():
    model = small_net()
    with pytest.raises(ValueError):
        record_feature_maps(model, np.ones((2, 6, 6), dtype=np.float32))  # 2 channels, not 1
    assert all(not m._forward_hooks for m in model.modules())
    assert model.training


def test_conv_layers_in_definition_order():
    model = small_net()
    assert [name for name, _ in conv_layers(model)] == ["0", "5"]
    name, layer = first_conv(model)
    assert name == "0" and layer is model[0]
    assert first_conv(nn.Sequential(nn.Flatten(), nn.Linear(4, 2))) is None

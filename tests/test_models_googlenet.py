"""GoogLeNet and the Inception modules (v1, and v3's factorised A and B): torch twins (outputs
and every gradient in float64, train and eval, equal dropout masks), parameter counts, the
multiply-adds that motivate the 1x1 reductions and the factorisations, gradient checks, and the
50-image MNIST overfit."""

import numpy as np
import pytest
import torch
from twins import MaskedDropout, assert_matches_twin, count, torch_count

from cnnumpy import nn
from cnnumpy.inspect import check_model_gradients, summary
from cnnumpy.models.blocks import scale_width
from cnnumpy.models.googlenet import (
    GOOGLENET_MODULES,
    googlenet,
    inception_v1_module,
    inception_v3_module_a,
    inception_v3_module_b,
)
from cnnumpy.optim import Adam

T = torch.nn

GOOGLENET_TINY = {"width": 1 / 32}  # the ModelSpec tiny kwargs proposed for the registry

# Table 1 of Szegedy et al. 2014, written out again here (independent of GOOGLENET_MODULES):
# name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj, output channels.
TABLE1 = [
    ("3a", 64, 96, 128, 16, 32, 32, 256),
    ("3b", 128, 128, 192, 32, 96, 64, 480),
    ("4a", 192, 96, 208, 16, 48, 64, 512),
    ("4b", 160, 112, 224, 24, 64, 64, 512),
    ("4c", 128, 128, 256, 24, 64, 64, 512),
    ("4d", 112, 144, 288, 32, 64, 64, 528),
    ("4e", 256, 160, 320, 32, 128, 128, 832),
    ("5a", 256, 160, 320, 32, 128, 128, 832),
    ("5b", 384, 192, 384, 48, 128, 128, 1024),
]


# ----------------------------------------------------------------------------- torch twins


class TorchConcat(T.ModuleList):
    """Branches on the same input, concatenated on channels; children named "0", "1", ..."""

    def forward(self, x):
        return torch.cat([branch(x) for branch in self], dim=1)


def unit(cin, cout, kernel, padding=0, bn=False):
    conv = T.Conv2d(cin, cout, kernel, padding=padding, bias=not bn)
    return [conv, T.BatchNorm2d(cout), T.ReLU()] if bn else [conv, T.ReLU()]


def torch_pool(kind):
    if kind == "max":
        return T.MaxPool2d(3, 1, 1)
    return T.AvgPool2d(3, 1, 1, count_include_pad=False)


def torch_v1(cin, c1, c3r, c3, c5r, c5, pp, bn=False):
    return TorchConcat([
        T.Sequential(*unit(cin, c1, 1, bn=bn)),
        T.Sequential(*unit(cin, c3r, 1, bn=bn), *unit(c3r, c3, 3, 1, bn=bn)),
        T.Sequential(*unit(cin, c5r, 1, bn=bn), *unit(c5r, c5, 5, 2, bn=bn)),
        T.Sequential(T.MaxPool2d(3, 1, 1), *unit(cin, pp, 1, bn=bn)),
    ])  # fmt: skip


def torch_v3a(cin, c1, c3r, c3, cdr, cd, pp, bn=True, pool="avg"):
    return TorchConcat([
        T.Sequential(*unit(cin, c1, 1, bn=bn)),
        T.Sequential(*unit(cin, c3r, 1, bn=bn), *unit(c3r, c3, 3, 1, bn=bn)),
        T.Sequential(*unit(cin, cdr, 1, bn=bn), *unit(cdr, cd, 3, 1, bn=bn),
                     *unit(cd, cd, 3, 1, bn=bn)),
        T.Sequential(torch_pool(pool), *unit(cin, pp, 1, bn=bn)),
    ])  # fmt: skip


def torch_v3b(cin, c1, cr, cn, cdr, cd, pp, n=7, bn=True, pool="avg"):
    row, col, h = (1, n), (n, 1), n // 2
    return TorchConcat([
        T.Sequential(*unit(cin, c1, 1, bn=bn)),
        T.Sequential(*unit(cin, cr, 1, bn=bn), *unit(cr, cr, row, (0, h), bn=bn),
                     *unit(cr, cn, col, (h, 0), bn=bn)),
        T.Sequential(*unit(cin, cdr, 1, bn=bn), *unit(cdr, cdr, row, (0, h), bn=bn),
                     *unit(cdr, cdr, col, (h, 0), bn=bn), *unit(cdr, cdr, row, (0, h), bn=bn),
                     *unit(cdr, cd, col, (h, 0), bn=bn)),
        T.Sequential(torch_pool(pool), *unit(cin, pp, 1, bn=bn)),
    ])  # fmt: skip


def torch_googlenet(cin, classes, width=1.0, bn=False, p=0.4):
    def w(c):
        return max(1, int(c * width + 0.5))

    layers = [*unit(cin, w(64), 3, 1, bn), *unit(w(64), w(64), 1, 0, bn),
              *unit(w(64), w(192), 3, 1, bn)]  # fmt: skip
    channels = w(192)
    for name, *row, _ in TABLE1:
        c1, c3r, c3, c5r, c5, pp = (w(c) for c in row)
        layers.append(torch_v1(channels, c1, c3r, c3, c5r, c5, pp, bn=bn))
        channels = c1 + c3 + c5 + pp
        if name in ("3b", "4e"):
            layers.append(T.MaxPool2d(3, 2, ceil_mode=True))
    layers += [T.AdaptiveAvgPool2d(1), T.Flatten(), MaskedDropout(p), T.Linear(channels, classes)]
    return T.Sequential(*layers)


# ----------------------------------------------------------------------------- modules

MODULES = {  # name: (ours, torch twin, input shape)
    "v1": (lambda: inception_v1_module(5, 3, 2, 4, 2, 3, 2),
           lambda: torch_v1(5, 3, 2, 4, 2, 3, 2), (3, 5, 7, 6)),
    "v1_bn": (lambda: inception_v1_module(5, 3, 2, 4, 2, 3, 2, batch_norm=True),
              lambda: torch_v1(5, 3, 2, 4, 2, 3, 2, bn=True), (3, 5, 7, 6)),
    "v3a": (lambda: inception_v3_module_a(5, 3, 2, 4, 2, 3, 2),
            lambda: torch_v3a(5, 3, 2, 4, 2, 3, 2), (3, 5, 6, 7)),
    "v3a_plain_max": (lambda: inception_v3_module_a(5, 3, 2, 4, 2, 3, 2, batch_norm=False,
                                                    pool="max"),
                      lambda: torch_v3a(5, 3, 2, 4, 2, 3, 2, bn=False, pool="max"), (3, 5, 6, 7)),
    "v3b_n7": (lambda: inception_v3_module_b(5, 3, 2, 4, 2, 3, 2),
               lambda: torch_v3b(5, 3, 2, 4, 2, 3, 2), (3, 5, 8, 9)),
    "v3b_n3_plain": (lambda: inception_v3_module_b(5, 3, 2, 4, 2, 3, 2, n=3, batch_norm=False),
                     lambda: torch_v3b(5, 3, 2, 4, 2, 3, 2, n=3, bn=False), (3, 5, 5, 4)),
}  # fmt: skip


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", list(MODULES))
def test_module_matches_torch_twin(name, training):
    make_ours, make_theirs, shape = MODULES[name]
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal(shape)
    assert_matches_twin(make_ours(), make_theirs(), x, training)


@pytest.mark.parametrize("name", list(MODULES))
def test_module_gradients_numerically(name):
    rng = np.random.default_rng(2)
    model = MODULES[name][0]().to(np.float64)
    loss = nn.CrossEntropyLoss()
    head = nn.Sequential(model, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = rng.standard_normal(MODULES[name][2])
    errors = check_model_gradients(head, loss, x, np.array([0, 4, 11]), max_entries=4)
    assert max(errors.values()) < 1e-6, errors


def test_module_output_channels_and_size():
    x = np.zeros((2, 192, 28, 28), np.float32)
    assert inception_v1_module(192, 64, 96, 128, 16, 32, 32)(x).shape == (2, 256, 28, 28)
    x = np.zeros((1, 12, 17, 17), np.float32)
    assert inception_v3_module_b(12, 6, 4, 6, 4, 6, 6)(x).shape == (1, 24, 17, 17)
    assert inception_v3_module_a(12, 1, 2, 3, 4, 5, 6)(x).shape == (1, 15, 17, 17)
    with pytest.raises(ValueError, match="odd"):
        inception_v3_module_b(12, 6, 4, 6, 4, 6, 6, n=4)
    with pytest.raises(ValueError, match="pool"):
        inception_v3_module_a(12, 1, 2, 3, 4, 5, 6, pool="min")


# ----------------------------------------------------------------------------- multiply-adds


def macs(model, shape):
    return sum(row.multiply_adds for row in summary(model, shape))


def test_1x1_reduction_cuts_the_multiply_adds_tenfold():
    # A 5x5 conv from 192 to 32 maps on 28x28, directly or after a 1x1 reduction to 16 maps.
    direct = nn.Conv2d(192, 32, 5, padding=2)
    reduced = nn.Sequential(nn.Conv2d(192, 16, 1), nn.ReLU(), nn.Conv2d(16, 32, 5, padding=2))
    assert macs(direct, (192, 28, 28)) == 28 * 28 * 32 * (5 * 5 * 192) == 120_422_400
    assert macs(reduced, (192, 28, 28)) == 28 * 28 * (16 * 192 + 32 * 5 * 5 * 16) == 12_443_648


def test_inception_3a_multiply_adds():
    per_pixel = 192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 25 + 192 * 32
    module = inception_v1_module(192, *GOOGLENET_MODULES["3a"])
    assert macs(module, (192, 28, 28)) == 28 * 28 * per_pixel


def test_v3_factorisations_save_what_the_paper_says():
    c = 8
    five = nn.Conv2d(c, c, 5, padding=2)
    two_threes = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1))
    assert macs(two_threes, (c, 9, 9)) / macs(five, (c, 9, 9)) == 18 / 25  # 28% cheaper
    seven = nn.Conv2d(c, c, 7, padding=3)
    row_col = nn.Sequential(nn.Conv2d(c, c, (1, 7), padding=(0, 3)),
                            nn.Conv2d(c, c, (7, 1), padding=(3, 0)))  # fmt: skip
    assert macs(row_col, (c, 9, 9)) / macs(seven, (c, 9, 9)) == 2 / 7


# ----------------------------------------------------------------------------- GoogLeNet


def test_table_1():
    assert [(name, *row) for name, row in GOOGLENET_MODULES.items()] == [r[:7] for r in TABLE1]
    for _, c1, _, c3, _, c5, pp, out in TABLE1:
        assert c1 + c3 + c5 + pp == out


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("size", "bn"), [(32, False), (28, False), (9, True)])
def test_googlenet_matches_torch_twin(size, bn, training):
    torch.manual_seed(0)
    ours = googlenet(2, 5, size, width=1 / 16, batch_norm=bn)
    theirs = torch_googlenet(2, 5, width=1 / 16, bn=bn)
    x = np.random.default_rng(0).standard_normal((2, 2, size, size))
    assert_matches_twin(ours, theirs, x, training)


@pytest.mark.parametrize("bn", [False, True], ids=["plain", "bn"])
def test_googlenet_full_width_parameter_count(bn):
    ours = googlenet(3, 10, 32, batch_norm=bn, init="pytorch")
    with torch.device("meta"):
        assert count(ours) == torch_count(torch_googlenet(3, 10, bn=bn))


def test_googlenet_shapes_per_stage():
    model = googlenet(3, 10, 28, init="pytorch")
    rows = {row.name: row.output_shape for row in summary(model, (3, 28, 28))}
    assert rows["5"] == (192, 28, 28)  # the stem keeps 28x28
    assert rows["7.3.2"] == (64, 28, 28)  # 3b's pool projection
    assert rows["8"] == (480, 14, 14)
    assert rows["13.0.0"] == (256, 14, 14)  # 4e's 1x1 branch
    assert rows["14"] == (832, 7, 7)  # the paper's 7x7 grid at 5a
    assert rows["16.3.2"] == (128, 7, 7)
    assert rows["17"] == (1024, 1, 1)


@pytest.mark.parametrize("size", [28, 32])
def test_tiny_registry_kwargs_build_and_run(size):
    for channels in (1, 3):
        model = googlenet(in_channels=channels, num_classes=10, input_size=size, **GOOGLENET_TINY)
        x = np.random.default_rng(0).standard_normal((2, channels, size, size))
        assert model(x.astype(np.float32)).shape == (2, 10)


def test_googlenet_width_and_validation():
    assert scale_width(16, 1 / 32) == 1 and scale_width(48, 1 / 32) == 2  # 0.5 and 1.5 round up
    assert scale_width(384, 1 / 32) == 12
    assert googlenet(1, 10, 7, **GOOGLENET_TINY)(np.zeros((1, 1, 7, 7), np.float32)).shape == (
        1, 10,
    )  # fmt: skip
    with pytest.raises(ValueError, match="input_size >= 7"):
        googlenet(input_size=6)
    with pytest.raises(ValueError, match="width"):
        googlenet(width=-1)


def test_googlenet_gradients_numerically():
    rng = np.random.default_rng(3)
    model = googlenet(2, 3, 8, width=1 / 16, rng=rng).to(np.float64)
    for name, p in model.named_parameters():  # no bias exactly 0: a dead unit would sit on a kink
        if name.endswith("bias"):
            p.data[...] = rng.uniform(-0.1, 0.1, p.data.shape)
    x = rng.standard_normal((3, 2, 8, 8))
    errors = check_model_gradients(model, nn.CrossEntropyLoss(), x, np.array([0, 1, 2]),
                                   max_entries=2)  # fmt: skip
    assert max(errors.values()) < 1e-6, errors


def test_googlenet_overfits_50_mnist_images(mnist_small):
    # 28x28 MNIST needs no padding: the stem keeps the size, so 3a runs on the paper's 28x28.
    # Batch norm makes the 22-layer net fit in ~25 full-batch steps instead of ~70 (the plain
    # net's arithmetic is covered by its twin and gradient tests). With momentum 1 the running
    # statistics are those of the last (training-mode) forward, so eval mode sees the same
    # normalisation on these 50 images.
    images, labels = mnist_small
    x, y = images[:50].astype(np.float32), labels[:50]
    model = googlenet(1, 10, 28, width=1 / 32, batch_norm=True, dropout=0.0,
                      rng=np.random.default_rng(0))  # fmt: skip
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0
    loss = nn.CrossEntropyLoss()
    opt = Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        scores = model(x)
        if np.all(np.argmax(scores, axis=1) == y):
            break
        loss(scores, y)
        opt.zero_grad()
        model.backward(loss.backward())
        opt.step()
    model.eval()
    assert np.all(np.argmax(model(x), axis=1) == y)

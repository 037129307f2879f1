"""AlexNet and VGG: torch twins (outputs and every gradient in float64, train and eval, with
equal dropout masks), parameter counts against the twins and against known totals, the paper's
LRN, initialisations, gradient checks, and the 50-image MNIST overfit."""

import numpy as np
import pytest
import torch
from helpers import assert_close
from twins import MaskedDropout, assert_matches_twin, count, torch_count

from cnnumpy import nn
from cnnumpy.inspect import check_model_gradients
from cnnumpy.models.alexnet import alexnet
from cnnumpy.models.vgg import VGG_CONFIGS, vgg, vgg11, vgg13, vgg16, vgg19
from cnnumpy.optim import Adam

T = torch.nn

# The ModelSpec tiny kwargs proposed for the registry.
ALEXNET_TINY = {"widths": (4, 8, 8, 8, 8), "hidden": (16, 16)}
VGG_TINY = {"width": 1 / 16, "hidden": 16}

# Table 1 of Simonyan & Zisserman, written out again here (independent of VGG_CONFIGS).
TABLE1 = {
    "A": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "B": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "C": [[64, 64], [128, 128], [256, 256, "1x1-256"], [512, 512, "1x1-512"],
          [512, 512, "1x1-512"]],
    "D": [[64, 64], [128, 128], [256] * 3, [512] * 3, [512] * 3],
    "E": [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}  # fmt: skip


# ----------------------------------------------------------------------------- torch twins


def torch_alexnet(cin, classes, size, widths, hidden, conv1=(5, 1, 2), groups=False, lrn=True,
                  p=0.5):  # fmt: skip
    g = 2 if groups else 1
    k, s, pad = conv1

    def norm():  # section 3.3's alpha = 1e-4 is torch's alpha / size
        return [T.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)] if lrn else []

    layers = [
        T.Conv2d(cin, widths[0], k, s, pad), T.ReLU(), *norm(), T.MaxPool2d(3, 2),
        T.Conv2d(widths[0], widths[1], 5, padding=2, groups=g), T.ReLU(), *norm(),
        T.MaxPool2d(3, 2),
        T.Conv2d(widths[1], widths[2], 3, padding=1), T.ReLU(),
        T.Conv2d(widths[2], widths[3], 3, padding=1, groups=g), T.ReLU(),
        T.Conv2d(widths[3], widths[4], 3, padding=1, groups=g), T.ReLU(), T.MaxPool2d(3, 2),
        T.Flatten(),
    ]  # fmt: skip
    features = T.Sequential(*layers)(torch.zeros(1, cin, size, size)).shape[1]
    for h in hidden:
        layers += [T.Linear(features, h), T.ReLU(), MaskedDropout(p)]
        features = h
    return T.Sequential(*layers, T.Linear(features, classes))


def torch_vgg(column, cin, classes, size, width=1.0, hidden=512, bn=False, p=0.5):
    layers = []
    for block in TABLE1[column]:
        for entry in block:
            kernel, cout = (1, int(entry[4:])) if isinstance(entry, str) else (3, entry)
            cout = max(1, int(cout * width + 0.5))
            layers.append(T.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=not bn))
            layers += [T.BatchNorm2d(cout), T.ReLU()] if bn else [T.ReLU()]
            cin = cout
        layers.append(T.MaxPool2d(2, 2, ceil_mode=True))
    layers.append(T.Flatten())
    features = T.Sequential(*layers)(torch.zeros(1, layers[0].in_channels, size, size)).shape[1]
    return T.Sequential(
        *layers, T.Linear(features, hidden), T.ReLU(), MaskedDropout(p),
        T.Linear(hidden, hidden), T.ReLU(), MaskedDropout(p), T.Linear(hidden, classes),
    )  # fmt: skip


# ----------------------------------------------------------------------------- AlexNet

ALEX_CASES = {
    "32": ({}, 32),
    "28": ({}, 28),
    "groups": ({"groups": True}, 32),
    "no_lrn": ({"lrn": False}, 28),
    "small_conv1": ({"conv1": (3, 2, 1)}, 32),
}


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", list(ALEX_CASES))
def test_alexnet_matches_torch_twin(case, training):
    options, size = ALEX_CASES[case]
    widths, hidden = (4, 6, 8, 6, 4), (12, 10)
    ours = alexnet(2, 5, size, widths=widths, hidden=hidden, **options)
    theirs = torch_alexnet(2, 5, size, widths, hidden, **options)
    x = np.random.default_rng(0).standard_normal((3, 2, size, size))
    assert_matches_twin(ours, theirs, x, training)


@pytest.mark.parametrize(("options", "size"), list(ALEX_CASES.values()), ids=list(ALEX_CASES))
def test_alexnet_full_width_parameter_count(options, size):
    ours = alexnet(3, 10, size, init="pytorch", **options)
    with torch.device("meta"):  # shapes only: nothing allocated or initialised
        theirs = torch_alexnet(3, 10, size, (96, 256, 384, 384, 256), (4096, 4096), **options)
    assert count(ours) == torch_count(theirs)


def test_alexnet_imagenet_geometry_has_torchvisions_parameter_count():
    # torchvision's AlexNet (the "one weird trick" widths, no LRN, no groups) has 61,100,840.
    model = alexnet(3, 1000, 224, widths=(64, 192, 384, 256, 256), conv1=(11, 4, 2), lrn=False,
                    init="pytorch")  # fmt: skip
    assert count(model) == 61_100_840


def test_alexnet_lrn_is_the_papers_formula():
    lrns = [m for m in alexnet(widths=(8, 8, 8, 8, 8)).modules()
            if isinstance(m, nn.LocalResponseNorm)]  # fmt: skip
    assert len(lrns) == 2
    x = np.random.default_rng(1).standard_normal((2, 8, 3, 3))
    expected = np.empty_like(x)
    for i in range(8):  # section 3.3: k=2, n=5, alpha=1e-4, beta=0.75, no division by n
        window = x[:, max(0, i - 2) : min(7, i + 2) + 1]
        expected[:, i] = x[:, i] / (2 + 1e-4 * (window**2).sum(axis=1)) ** 0.75
    for lrn in lrns:
        assert_close(lrn(x), expected, rtol=1e-13, name="LRN")


def test_alexnet_paper_init():
    model = alexnet(widths=(32, 64, 64, 64, 64), hidden=(128, 128), init="paper",
                    rng=np.random.default_rng(0))  # fmt: skip
    weighted = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    ones = [np.all(m.bias.data == 1) for m in weighted]
    zeros = [np.all(m.bias.data == 0) for m in weighted]
    assert ones == [False, True, False, True, True, True, True, False]
    assert zeros == [not o for o in ones]
    for m in weighted:
        assert abs(m.weight.data.std() - 0.01) < 0.001


def test_alexnet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="too small"):
        alexnet(input_size=14)
    alexnet(input_size=15, widths=(2, 2, 2, 2, 2), hidden=(2,))  # the smallest that fits
    with pytest.raises(ValueError, match="even"):
        alexnet(widths=(4, 6, 8, 7, 4), groups=True)
    with pytest.raises(ValueError, match="5 conv widths"):
        alexnet(widths=(4, 4, 4, 4))
    with pytest.raises(ValueError, match="init"):
        alexnet(init="xavier")


# ----------------------------------------------------------------------------- VGG

VGG_BUILDERS = {"A": vgg11, "B": vgg13, "D": vgg16, "E": vgg19}


def test_vgg_configs_are_table_1():
    for column, blocks in TABLE1.items():
        flat = []
        for block in blocks:
            flat += [(int(e[4:]), 1) if isinstance(e, str) else e for e in block] + ["M"]
        assert list(VGG_CONFIGS[column]) == flat, column


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("bn", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize(("column", "size"), [("A", 32), ("B", 28), ("C", 32), ("D", 28),
                                              ("E", 32)])  # fmt: skip
def test_vgg_matches_torch_twin(column, size, bn, training):
    ours = vgg(column, 2, 5, size, width=1 / 16, hidden=12, batch_norm=bn)
    theirs = torch_vgg(column, 2, 5, size, width=1 / 16, hidden=12, bn=bn)
    x = np.random.default_rng(0).standard_normal((3, 2, size, size))
    assert_matches_twin(ours, theirs, x, training)


@pytest.mark.parametrize("bn", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize("column", list(VGG_BUILDERS))
def test_vgg_full_width_parameter_count(column, bn):
    ours = VGG_BUILDERS[column](in_channels=3, num_classes=10, batch_norm=bn, init="pytorch")
    with torch.device("meta"):
        assert count(ours) == torch_count(torch_vgg(column, 3, 10, 32, bn=bn))
        # 28x28 also ends in a 1x1 map (ceil mode), so the count is the same.
        assert count(ours) == torch_count(torch_vgg(column, 3, 10, 28, bn=bn))


def test_vgg16_convs_have_the_known_parameter_count():
    # Configuration D's 13 convs with biases: 14,714,688 parameters (torchvision's vgg16
    # features). Summed here from table 1: (3*3*C_in + 1) * C_out per conv.
    chain = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    by_hand = sum((9 * cin + 1) * cout for cin, cout in zip(chain[:-1], chain[1:], strict=True))
    assert by_hand == 14_714_688
    convs = [m for m in vgg16(init="pytorch").modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13
    assert sum(count(m) for m in convs) == 14_714_688


def test_vgg_depths_and_shapes():
    for builder, depth in [(vgg11, 11), (vgg13, 13), (vgg16, 16), (vgg19, 19)]:
        model = builder(in_channels=1, input_size=28, **VGG_TINY)
        weighted = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
        assert len(weighted) == depth
        assert model(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)


def test_vgg_msra_init():
    model = vgg11(rng=np.random.default_rng(0))
    conv = [m for m in model.modules() if isinstance(m, nn.Conv2d)][4]  # 256 -> 512
    assert abs(conv.weight.data.std() / np.sqrt(2 / (512 * 9)) - 1) < 0.01
    plain = vgg11(init="pytorch", rng=np.random.default_rng(0))
    conv = [m for m in plain.modules() if isinstance(m, nn.Conv2d)][4]
    assert abs(conv.weight.data.std() / np.sqrt(1 / (3 * 256 * 9)) - 1) < 0.01


def test_vgg_rejects_bad_arguments():
    with pytest.raises(ValueError, match="input_size >= 17"):
        vgg11(input_size=16)
    assert vgg11(input_size=17, **VGG_TINY)(np.zeros((1, 3, 17, 17), np.float32)).shape == (1, 10)
    with pytest.raises(ValueError, match="unknown VGG config"):
        vgg("F")
    with pytest.raises(ValueError, match="width"):
        vgg11(width=0)


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize(
    ("build", "tiny"),
    [(alexnet, ALEXNET_TINY), (vgg11, VGG_TINY), (vgg13, VGG_TINY), (vgg16, VGG_TINY),
     (vgg19, VGG_TINY)],
    ids=["alexnet", "vgg11", "vgg13", "vgg16", "vgg19"],
)  # fmt: skip
def test_tiny_registry_kwargs_build_and_run(build, tiny, size):
    for channels in (1, 3):
        model = build(in_channels=channels, num_classes=10, input_size=size, **tiny)
        x = np.random.default_rng(0).standard_normal((2, channels, size, size))
        assert model(x.astype(np.float32)).shape == (2, 10)


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize(
    ("build", "kwargs"),
    [(alexnet, {"widths": (4, 6, 8, 8, 6), "hidden": (12, 12), "groups": True}),
     (vgg11, {"width": 1 / 16, "hidden": 12, "batch_norm": True})],
    ids=["alexnet", "vgg11"],
)  # fmt: skip
def test_gradients_numerically(build, kwargs):
    rng = np.random.default_rng(3)
    model = build(in_channels=2, num_classes=4, input_size=17, rng=rng, **kwargs).to(np.float64)
    for name, p in model.named_parameters():  # no bias exactly 0: a dead unit would sit on a kink
        if name.endswith("bias"):
            p.data[...] = rng.uniform(-0.1, 0.1, p.data.shape)
    x = rng.standard_normal((4, 2, 17, 17))
    errors = check_model_gradients(model, nn.CrossEntropyLoss(), x, np.array([0, 1, 2, 3]),
                                   max_entries=4)  # fmt: skip
    assert max(errors.values()) < 1e-6, errors


def overfit(model, x, y, lr, iterations):
    """Full-batch Adam until every training image is classified right (the model has no dropout
    or batch norm, so the training forward's scores are the eval scores); returns the train
    accuracy, measured again in eval mode."""
    loss = nn.CrossEntropyLoss()
    opt = Adam(model.parameters(), lr=lr)
    for _ in range(iterations):
        scores = model(x)
        if np.all(np.argmax(scores, axis=1) == y):
            break
        loss(scores, y)
        opt.zero_grad()
        model.backward(loss.backward())
        opt.step()
    model.eval()
    return float(np.mean(np.argmax(model(x), axis=1) == y))


@pytest.mark.parametrize(
    ("build", "kwargs", "lr"),
    [(alexnet, {"widths": (8, 16, 16, 16, 16), "hidden": (32, 32)}, 1e-3),
     (vgg11, {"width": 1 / 16, "hidden": 32}, 3e-3)],
    ids=["alexnet", "vgg11"],
)  # fmt: skip
def test_overfits_50_mnist_images(mnist_small, build, kwargs, lr):
    images, labels = mnist_small
    x = np.pad(images[:50], ((0, 0), (0, 0), (2, 2), (2, 2))).astype(np.float32)  # 32x32
    model = build(in_channels=1, num_classes=10, input_size=32, dropout=0.0,
                  rng=np.random.default_rng(0), **kwargs)  # fmt: skip
    assert overfit(model, x, labels[:50], lr, 300) == 1.0

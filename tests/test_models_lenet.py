"""The LeNet family: LeNet-5's paper counts, its C3 layer, torch twins, gradients, overfitting."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as tf
from helpers import assert_close

import cnnumpy.nn as nn
from cnnumpy import optim
from cnnumpy.inspect import check_model_gradients, summary
from cnnumpy.models.lenet import (
    LENET5_BACKGROUND,
    LENET5_C3_TABLE,
    lenet5,
    lenet5_modern,
    lenet5_preprocess,
    lenet_theano,
)
from cnnumpy.models.lenet_bitmaps import digit_prototypes

TOL = 1e-8

# The C3 connection table as the paper's Table I reads (C3 map: the S2 maps it sees).
PAPER_C3 = (
    "0:012 1:123 2:234 3:345 4:450 5:501 6:0123 7:1234 8:2345 9:3450 10:4501 11:5012 "
    "12:0134 13:1245 14:0235 15:012345"
)
C3_PAIRS = [
    (int(j), int(c)) for j, cs in (item.split(":") for item in PAPER_C3.split()) for c in cs
]
C3_OUT = torch.tensor([j for j, _ in C3_PAIRS])
C3_IN = torch.tensor([c for _, c in C3_PAIRS])


def _masked_c3(weight):
    """C3's 60 kernels placed into a full (16, 6, 5, 5) weight, zero where Table I has no link."""
    return torch.zeros(16, 6, 5, 5, dtype=torch.float64).index_put((C3_OUT, C3_IN), weight)


def _tie_free(rng, shape, scale=1.0):
    size = math.prod(shape)
    return (rng.permutation(size).reshape(shape) / size - 0.5) * scale


def _torch_params(model):
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
            for k, v in model.state_dict().items()}  # fmt: skip


# ------------------------------------------------------------------ LeNet-5: the paper's counts


def test_lenet5_summary_reports_the_papers_counts():
    rows = {r.name: r for r in summary(lenet5(rng=np.random.default_rng(0)), (1, 32, 32))}
    paper = {  # section II.B: (trainable parameters, connections, output shape)
        "c1": (156, 122_304, (6, 28, 28)),
        "s2": (12, 5_880, (6, 14, 14)),
        "c3": (1_516, 151_600, (16, 10, 10)),
        "s4": (32, 2_000, (16, 5, 5)),
        "c5": (48_120, 48_120, (120, 1, 1)),
        "f6": (10_164, 10_164, (84,)),
    }
    for name, (params, connections, shape) in paper.items():
        row = rows[name]
        assert (row.parameters, row.connections, row.output_shape) == (params, connections, shape)
    assert rows["c3"].multiply_adds == 150_000
    assert (rows["output"].parameters, rows["output"].output_shape) == (840, (10,))


def test_lenet5_has_60000_trainable_parameters_and_840_fixed():
    model = lenet5(rng=np.random.default_rng(0))
    trainable = sum(p.data.size for p in model.parameters() if p.requires_grad)
    fixed = sum(p.data.size for p in model.parameters() if not p.requires_grad)
    assert (trainable, fixed) == (60_000, 840)
    assert model.c3.weight.shape == (60, 5, 5) and model.c3.bias.shape == (16,)


def test_lenet5_structure_criterion_and_sizes():
    model = lenet5(input_size=28, rng=np.random.default_rng(0))
    assert isinstance(model.criterion, nn.MAPLoss)
    assert "criterion" not in dict(model.named_children())
    assert len(model) == 15 and model.c1.padding == 0
    assert model.pad.padding == (2, 2, 2, 2) and model.pad.value == LENET5_BACKGROUND
    assert model(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)
    assert len(lenet5(input_size=32, rng=np.random.default_rng(0))) == 14  # no pad stage
    for bad in (8, 30):
        with pytest.raises(ValueError, match="input_size"):
            lenet5(input_size=bad)
    with pytest.raises(ValueError, match="input_size"):
        lenet5_modern(input_size=8)
    with pytest.raises(ValueError, match="input_size"):
        lenet_theano(input_size=15)


def test_lenet5_initialisation_bounds():
    model = lenet5(rng=np.random.default_rng(0))  # Appendix C: uniform in +-2.4 / fan-in
    for name, fan_in in [("c1", 25), ("s2", 4), ("s4", 4), ("c5", 400), ("f6", 120)]:
        layer = getattr(model, name)
        for param in (layer.weight.data, layer.bias.data):
            assert np.abs(param).max() <= 2.4 / fan_in, name
        if layer.weight.data.size >= 100:  # large enough to reach near the bound
            assert np.abs(layer.weight.data).max() > 0.9 * 2.4 / fan_in, name
    for j, inputs in enumerate(LENET5_C3_TABLE):
        kernels = model.c3.weight.data[model.c3.out_index == j]
        bound = 2.4 / (25 * len(inputs))
        assert bound * 0.9 < np.abs(kernels).max() <= bound
        assert abs(model.c3.bias.data[j]) <= bound


def test_c3_table_is_the_papers():
    assert [(j, c) for j, row in enumerate(LENET5_C3_TABLE) for c in row] == C3_PAIRS


def test_digit_prototypes_are_distinct_bitmaps():
    protos = digit_prototypes()
    assert protos.shape == (10, 84) and set(np.unique(protos)) == {-1.0, 1.0}
    hamming = (protos[:, None, :] != protos[None, :, :]).sum(-1)
    assert hamming[~np.eye(10, dtype=bool)].min() >= 6
    more = digit_prototypes(12, rng=np.random.default_rng(0))
    assert more.shape == (12, 84) and np.array_equal(more[:10], protos)
    # An F6 state equal to a prototype has penalty 0 there: the criterion predicts that class.
    model = lenet5(rng=np.random.default_rng(0))
    penalties = model.output(protos.astype(np.float32))
    assert np.array_equal(model.criterion.predict(penalties), np.arange(10))


def test_lenet5_preprocess():
    images = np.zeros((2, 28, 28), np.uint8)
    images[0, 5, 7] = 255
    images[1, 10:12, 3] = 51
    x = lenet5_preprocess(images)
    assert x.shape == (2, 1, 32, 32) and x.dtype == np.float32
    assert np.isclose(x[0, 0, 7, 9], 1.175) and np.isclose(x[1, 0, 12, 5], -0.1 + 1.275 * 0.2)
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert np.allclose(x[:, 0][:, border], -0.1)
    as_float = lenet5_preprocess(images[:, None] / 255.0, dtype=np.float64)
    assert_close(as_float, x, rtol=1e-6, name="float input")
    with pytest.raises(ValueError, match="0, 1"):
        lenet5_preprocess(images.astype(np.float64))


# ------------------------------------------------------------------ C3: torch twin


def test_c3_matches_torch_masked_conv(rng):
    c3 = nn.TableConv2d(6, LENET5_C3_TABLE, 5, rng=rng).to(np.float64)
    x = rng.standard_normal((3, 6, 14, 14))
    w = torch.tensor(c3.weight.data, requires_grad=True)
    b = torch.tensor(c3.bias.data, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    tout = tf.conv2d(tx, _masked_c3(w), b)
    out = c3(x)
    assert_close(out, tout.detach().numpy(), rtol=TOL, name="C3 output")
    dout = rng.standard_normal(out.shape)
    dx = c3.backward(dout)
    tout.backward(torch.tensor(dout))
    assert_close(dx, tx.grad.numpy(), rtol=TOL, name="C3 dx")
    assert_close(c3.weight.grad, w.grad.numpy(), rtol=TOL, name="C3 dweight")
    assert_close(c3.bias.grad, b.grad.numpy(), rtol=TOL, name="C3 dbias")


# ------------------------------------------------------------------ LeNet-5: full torch twin


def _torch_lenet5(x, p, y, padding, j=84.0):
    """LeNet-5 written directly in torch from the paper's formulas."""

    def squash(a):
        return 1.7159 * torch.tanh(2.0 / 3.0 * a)

    def subsample(h, name):  # sum of each 2x2 window, times a coefficient, plus a bias
        coeff, bias = p[f"{name}.weight"], p[f"{name}.bias"]
        return tf.avg_pool2d(h, 2) * 4 * coeff[None, :, None, None] + bias[None, :, None, None]

    x = tf.pad(x, (padding,) * 4, value=-0.1)  # the background, not zeros
    h = squash(tf.conv2d(x, p["c1.weight"], p["c1.bias"]))
    h = squash(subsample(h, "s2"))
    h = squash(tf.conv2d(h, _masked_c3(p["c3.weight"]), p["c3.bias"]))
    h = squash(subsample(h, "s4"))
    h = squash(tf.conv2d(h, p["c5.weight"], p["c5.bias"])).flatten(1)
    h = squash(tf.linear(h, p["f6.weight"], p["f6.bias"]))
    penalties = ((h[:, None, :] - p["output.weight"][None]) ** 2).sum(-1)
    rubbish = torch.full((len(y), 1), -j, dtype=torch.float64)
    log_z = torch.logsumexp(torch.cat([-penalties, rubbish], 1), 1)
    loss = (penalties[torch.arange(len(y)), y] + log_z).mean()
    return penalties, loss


@pytest.mark.parametrize("input_size", [32, 28])
def test_lenet5_matches_torch_twin(input_size):
    rng = np.random.default_rng(3)
    model = lenet5(input_size=input_size, rng=rng).to(np.float64)
    x = lenet5_preprocess(rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), dtype=np.float64)
    if input_size == 28:
        x = x[:, :, 2:30, 2:30]
    y = np.array([3, 0, 9, 3])
    p = _torch_params(model)
    tx = torch.tensor(x, requires_grad=True)
    tout, tloss = _torch_lenet5(tx, p, torch.tensor(y), padding=(32 - input_size) // 2)
    tloss.backward()

    model.zero_grad()
    out = model(x)
    loss = model.criterion(out, y)
    dx = model.backward(model.criterion.backward())
    assert_close(out, tout.detach().numpy(), rtol=TOL, name="penalties")
    assert abs(loss - tloss.item()) <= TOL * abs(tloss.item())
    assert_close(dx, tx.grad.numpy(), rtol=TOL, name="dx")
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert_close(param.grad, p[name].grad.numpy(), rtol=TOL, name=f"d{name}")
        else:  # the prototypes are fixed: no gradient accumulated
            assert not param.grad.any(), name


# ------------------------------------------------------------------ lenet5_modern, lenet_theano


def _torch_modern(in_channels, num_classes, padding, widths, batch_norm, dropout):
    tnn = torch.nn
    c1, c3, c5, f6 = widths
    layers = []

    def block(layer, width, norm):
        layers.append(layer)
        if batch_norm:
            layers.append(norm(width))
        layers.append(tnn.ReLU())

    bias = not batch_norm
    block(tnn.Conv2d(in_channels, c1, 5, padding=padding, bias=bias), c1, tnn.BatchNorm2d)
    layers.append(tnn.MaxPool2d(2))
    block(tnn.Conv2d(c1, c3, 5, bias=bias), c3, tnn.BatchNorm2d)
    layers.append(tnn.MaxPool2d(2))
    block(tnn.Conv2d(c3, c5, 5, bias=bias), c5, tnn.BatchNorm2d)
    layers.append(tnn.Flatten())
    layers += [tnn.Dropout(dropout)] if dropout else []
    block(tnn.Linear(c5, f6, bias=bias), f6, tnn.BatchNorm1d)
    layers += [tnn.Dropout(dropout)] if dropout else []
    layers.append(tnn.Linear(f6, num_classes))
    return tnn.Sequential(*layers)


def _torch_theano(in_channels, num_classes, side, nkerns, hidden):
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Conv2d(in_channels, nkerns[0], 5), tnn.MaxPool2d(2), tnn.Tanh(),
        tnn.Conv2d(nkerns[0], nkerns[1], 5), tnn.MaxPool2d(2), tnn.Tanh(),
        tnn.Flatten(), tnn.Linear(nkerns[1] * side * side, hidden), tnn.Tanh(),
        tnn.Linear(hidden, num_classes),
    )  # fmt: skip


def _compare_with_twin(ours, theirs, x, y, training):
    """Copy torch's weights into ours, then compare scores, loss, dx and every gradient."""
    theirs.double()
    ours.to(np.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    ours.train(training)
    theirs.train(training)
    tx = torch.tensor(x, requires_grad=True)
    tout = theirs(tx)
    tloss = tf.cross_entropy(tout, torch.tensor(y))
    tloss.backward()
    criterion = nn.CrossEntropyLoss()
    ours.zero_grad()
    out = ours(x)
    loss = criterion(out, y)
    dx = ours.backward(criterion.backward())
    assert_close(out, tout.detach().numpy(), rtol=TOL, name="scores")
    assert abs(loss - tloss.item()) <= TOL * abs(tloss.item())
    assert_close(dx, tx.grad.numpy(), rtol=TOL, atol=1e-14, name="dx")
    for name, param in theirs.named_parameters():
        grad = dict(ours.named_parameters())[name].grad
        assert_close(grad, param.grad.numpy(), rtol=TOL, atol=1e-14, name=f"d{name}")


MODERN_CASES = [  # (input_size, batch_norm, dropout, training)
    (32, False, 0.0, True), (32, False, 0.0, False), (28, True, 0.0, True),
    (28, True, 0.0, False), (28, True, 0.4, False),
]  # fmt: skip


@pytest.mark.parametrize(("input_size", "batch_norm", "dropout", "training"), MODERN_CASES)
def test_lenet5_modern_matches_torch_twin(input_size, batch_norm, dropout, training):
    widths = (4, 6, 10, 8)
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    ours = lenet5_modern(2, 5, input_size, widths=widths, batch_norm=batch_norm,
                         dropout=dropout, rng=rng)  # fmt: skip
    theirs = _torch_modern(2, 5, (32 - input_size) // 2, widths, batch_norm, dropout)
    x = _tie_free(rng, (4, 2, input_size, input_size), scale=4.0)
    _compare_with_twin(ours, theirs, x, rng.integers(0, 5, 4), training)


@pytest.mark.parametrize(("input_size", "side"), [(28, 4), (32, 5)])
def test_lenet_theano_matches_torch_twin(input_size, side):
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    ours = lenet_theano(1, 10, input_size, nkerns=(3, 4), hidden=12, rng=rng)
    theirs = _torch_theano(1, 10, side, (3, 4), 12)
    x = _tie_free(rng, (3, 1, input_size, input_size), scale=4.0)
    _compare_with_twin(ours, theirs, x, np.array([1, 7, 7]), training=True)


def test_full_width_parameter_counts_equal_the_twins():
    def count(module):
        return sum(p.numel() for p in module.parameters())

    modern = lenet5_modern(rng=np.random.default_rng(0))
    assert sum(p.data.size for p in modern.parameters()) == 61_706
    assert count(_torch_modern(1, 10, 0, (6, 16, 120, 84), False, 0.0)) == 61_706
    bn = lenet5_modern(input_size=28, batch_norm=True, dropout=0.5)
    twin = _torch_modern(1, 10, 2, (6, 16, 120, 84), True, 0.5)
    assert sum(p.data.size for p in bn.parameters()) == count(twin)
    theano = lenet_theano(rng=np.random.default_rng(0))
    assert sum(p.data.size for p in theano.parameters()) == 431_080
    assert count(_torch_theano(1, 10, 4, (20, 50), 500)) == 431_080


def test_lenet_theano_initialisation():
    model = lenet_theano(rng=np.random.default_rng(0))
    conv0, conv1, fc, logistic = model[0], model[3], model[7], model[9]
    for conv, fan_in, fan_out in [(conv0, 25, 20 * 25 // 4), (conv1, 20 * 25, 50 * 25 // 4)]:
        bound = math.sqrt(6 / (fan_in + fan_out))
        w = conv.weight.data
        assert bound * 0.95 < np.abs(w).max() <= bound and not conv.bias.data.any()
    assert np.abs(fc.weight.data).max() <= math.sqrt(6 / (800 + 500))
    assert not fc.bias.data.any()
    assert not logistic.weight.data.any() and not logistic.bias.data.any()


# ------------------------------------------------------------------ gradient checks


GRADCHECK_MODELS = {  # name: (builder, input size, tolerance)
    # LeNet-5's loss is the difference of RBF penalties near 84 (y_correct - log-sum-exp), so
    # a central difference with the checker's h = 1e-6 carries ~eps * 84 / h ~ 1e-8 of rounding
    # against gradients of ~1e-3 (the checker's floor): relative errors of a few 1e-6 are that
    # noise (they scale as 1/h), not the backward, which the torch twin above pins to 1e-8.
    "lenet5": (lambda rng: lenet5(rng=rng), 32, 1e-5),
    "lenet5_modern": (
        lambda rng: lenet5_modern(
            input_size=28, widths=(2, 3, 4, 5), batch_norm=True, dropout=0.3, rng=rng
        ),
        28,
        1e-6,
    ),
    "lenet_theano": (lambda rng: lenet_theano(nkerns=(2, 3), hidden=5, rng=rng), 28, 1e-6),
}


@pytest.mark.parametrize("name", list(GRADCHECK_MODELS))
def test_check_model_gradients(name):
    make, size, tol = GRADCHECK_MODELS[name]
    rng = np.random.default_rng(4)
    model = make(rng).to(np.float64)
    loss = getattr(model, "criterion", nn.CrossEntropyLoss())
    x = _tie_free(rng, (4, 1, size, size), scale=4.0)
    errors = check_model_gradients(model, loss, x, np.array([0, 4, 9, 4]), max_entries=6)
    assert max(errors.values()) < tol, errors


# ------------------------------------------------------------------ overfitting 50 digits


def _overfit(model, criterion, x, y, optimizer, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        criterion(model(x), y)
        model.backward(criterion.backward())
        optimizer.step()
    model.eval()
    return float(np.mean(criterion.predict(model(x)) == y))


def test_lenet5_overfits_50_digits(mnist_small):
    images, labels = mnist_small
    x, y = lenet5_preprocess(images[:50]), labels[:50]
    model = lenet5(rng=np.random.default_rng(0))
    opt = optim.Adam(model.parameters(), lr=2e-3)
    assert _overfit(model, model.criterion, x, y, opt, 80) == 1.0  # 100% after ~40 steps


def test_lenet5_modern_overfits_50_digits(mnist_small):
    images, labels = mnist_small
    model = lenet5_modern(input_size=28, rng=np.random.default_rng(0))
    opt = optim.Adam(model.parameters(), lr=2e-3)
    x = images[:50].astype(np.float32)
    assert _overfit(model, nn.CrossEntropyLoss(), x, labels[:50], opt, 80) == 1.0  # ~40 needed


def test_lenet_theano_overfits_50_digits(mnist_small):
    images, labels = mnist_small
    model = lenet_theano(nkerns=(8, 12), hidden=50, rng=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.2)  # plain SGD as in the tutorial (its lr: 0.1)
    x = images[:50].astype(np.float32)
    assert _overfit(model, nn.CrossEntropyLoss(), x, labels[:50], opt, 100) == 1.0  # ~50 needed


def test_lenet5_registered_input_scaling_is_the_papers():
    from cnnumpy.data import Normalization, digits, normalize
    from cnnumpy.models import MODELS

    mean, std = MODELS["lenet5"].input_scaling
    assert (0 - mean) / std == pytest.approx(-0.1)  # background
    assert (255 - mean) / std == pytest.approx(1.175)  # ink
    data = normalize(digits(), stats=Normalization((mean,), (std,)))
    assert data.normalization == Normalization((mean,), (std,))
    assert data.train[0].min() == pytest.approx(-0.1)

"""PyTorch twins of the ResNet family, built from torch.nn with the same structure and child
names as cnnumpy's, so ``state_dict`` keys match; the routine that compares a pair; and the
50-image overfitting check.

Shared by ``test_models_resnet.py``, ``test_models_resnet_imagenet.py`` and
``test_models_wide_resnet.py``. Nothing here imports cnnumpy's model code.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as TF
from helpers import assert_close

from cnnumpy import nn, optim

TOL = 1e-8
T = torch.nn


def seq(*pairs: tuple[str, T.Module]) -> T.Sequential:
    return T.Sequential(OrderedDict(pairs))


class Residual(T.Module):
    """``body(x) + shortcut(x)``, the identity when ``shortcut`` is None."""

    def __init__(self, body: T.Module, shortcut: T.Module | None = None) -> None:
        super().__init__()
        self.body = body
        if shortcut is not None:
            self.shortcut = shortcut

    def forward(self, x):
        skip = self.shortcut(x) if hasattr(self, "shortcut") else x
        return self.body(x) + skip


class PadShortcut(T.Module):
    """Option A: every ``stride``-th pixel, zero channels appended up to ``out_channels``."""

    def __init__(self, out_channels: int, stride: int) -> None:
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x):
        kept = x[:, :, :: self.stride, :: self.stride]
        return TF.pad(kept, (0, 0, 0, 0, 0, self.out_channels - x.shape[1]))


class MaskDropout(T.Module):
    """Inverted dropout whose mask the test sets (``self.mask``), to share cnnumpy's draws."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.mask: torch.Tensor | None = None

    def forward(self, x):
        if not self.training:
            return x
        return x * self.mask / (1 - self.p)


def conv3(cin, cout, stride=1):
    return T.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1(cin, cout, stride=1):
    return T.Conv2d(cin, cout, 1, stride=stride, bias=False)


def shortcut(cin, cout, stride, kind, bn=True):
    if cin == cout and stride == 1:
        return None
    if kind == "A":
        return PadShortcut(cout, stride)
    return (
        seq(("conv", conv1(cin, cout, stride)), ("bn", T.BatchNorm2d(cout)))
        if bn
        else conv1(cin, cout, stride)
    )


def post_block(cin, cout, stride, kind, plain, bottleneck=False):
    if bottleneck:
        mid, cout = cout, 4 * cout
        body = [
            ("conv1", conv1(cin, mid)), ("bn1", T.BatchNorm2d(mid)), ("relu1", T.ReLU()),
            ("conv2", conv3(mid, mid, stride)), ("bn2", T.BatchNorm2d(mid)), ("relu2", T.ReLU()),
            ("conv3", conv1(mid, cout)), ("bn3", T.BatchNorm2d(cout)),
        ]  # fmt: skip
        last = "relu3"
    else:
        body = [
            ("conv1", conv3(cin, cout, stride)), ("bn1", T.BatchNorm2d(cout)), ("relu1", T.ReLU()),
            ("conv2", conv3(cout, cout)), ("bn2", T.BatchNorm2d(cout)),
        ]  # fmt: skip
        last = "relu2"
    if plain:
        return seq(*body, (last, T.ReLU())), cout
    res = Residual(seq(*body), shortcut(cin, cout, stride, kind))
    return seq(("residual", res), ("relu", T.ReLU())), cout


def pre_block(cin, cout, stride, kind, dropout=0.0):
    skip = shortcut(cin, cout, stride, kind, bn=False)
    pre = [("bn1", T.BatchNorm2d(cin)), ("relu1", T.ReLU())]
    tail = [("conv1", conv3(cin, cout, stride)), ("bn2", T.BatchNorm2d(cout)), ("relu2", T.ReLU())]
    if dropout > 0:
        tail.append(("dropout", MaskDropout(dropout)))
    tail.append(("conv2", conv3(cout, cout)))
    if isinstance(skip, T.Conv2d):
        return seq(*pre, ("residual", Residual(seq(*tail), skip)))
    return Residual(seq(*pre, *tail), skip)


def head(c, classes):
    return [
        ("pool", T.AdaptiveAvgPool2d(1)),
        ("flatten", T.Flatten()),
        ("fc", T.Linear(c, classes)),
    ]


def resnet(blocks, widths, cin=3, classes=10, *, kind="B", plain=False, preact=False,
           bottleneck=False, stem=None, dropout=0.0):  # fmt: skip
    """The torch twin of every cnnumpy ResNet: ``blocks`` per stage, stride 2 after stage 1."""
    stem = widths[0] if stem is None else stem
    layers = [("conv", conv3(cin, stem))]
    if not preact:
        layers += [("bn", T.BatchNorm2d(stem)), ("relu", T.ReLU())]
    c = stem
    for s, (count, width) in enumerate(zip(blocks, widths, strict=True)):
        stage = []
        for b in range(count):
            stride = 2 if s > 0 and b == 0 else 1
            if preact:
                stage.append(pre_block(c, width, stride, kind, dropout))
                c = width
            else:
                block, c = post_block(c, width, stride, kind, plain, bottleneck)
                stage.append(block)
        layers.append((f"stage{s + 1}", T.Sequential(*stage)))
    if preact:
        layers += [("bn", T.BatchNorm2d(c)), ("relu", T.ReLU())]
    return seq(*layers, *head(c, classes))


def count(model) -> int:
    """Trainable parameters of a cnnumpy or a torch model."""
    if isinstance(model, T.Module):
        return sum(p.numel() for p in model.parameters())
    return sum(p.data.size for p in model.parameters())


def _randomize_batch_norms(model: T.Module, gen: torch.Generator) -> None:
    """Non-trivial BN weights, biases and running statistics, so the twins test all of them."""
    for m in model.modules():
        if isinstance(m, T.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(c, generator=gen, dtype=torch.float64))
                m.bias.copy_(0.2 * torch.randn(c, generator=gen, dtype=torch.float64))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=gen, dtype=torch.float64))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen, dtype=torch.float64))


def compare_with_twin(ours: nn.Module, theirs: T.Module, x_shape, seed: int = 0) -> None:
    """Copy the twin's weights into ``ours`` and compare outputs, dx, every parameter gradient
    and the BN buffers in float64: a training step, then the same in eval mode."""
    theirs.double()
    _randomize_batch_norms(theirs, torch.Generator().manual_seed(seed))
    ours.to(np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict()), "state_dict keys differ"
    dropouts = {
        name: m for name, m in ours.named_modules() if isinstance(m, nn.Dropout) and m.p > 0
    }
    twins = dict(theirs.named_modules())
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    for training in (True, False):
        mode = "train" if training else "eval"
        ours.train(training)
        theirs.train(training)
        ours.zero_grad()
        theirs.zero_grad()
        tx = torch.tensor(x, requires_grad=True)
        out = ours(x)
        for name, m in dropouts.items():
            if training:
                twins[name].mask = torch.tensor(m._saved.mask, dtype=torch.float64)
        tout = theirs(tx)
        assert_close(out, tout.detach().numpy(), rtol=TOL, name=f"{mode} output")
        dout = rng.standard_normal(out.shape)
        dx = ours.backward(dout)
        tout.backward(torch.tensor(dout))
        assert_close(dx, tx.grad.numpy(), rtol=TOL, name=f"{mode} dx")
        grads = dict(ours.named_parameters())
        assert list(grads) == [k for k, _ in theirs.named_parameters()]
        for key, p in theirs.named_parameters():
            assert_close(grads[key].grad, p.grad.numpy(), rtol=TOL, name=f"{mode} d{key}")
        state = ours.state_dict()
        for key, value in theirs.state_dict().items():
            assert_close(state[key], value.numpy(), rtol=TOL, name=f"{mode} {key}")


def overfit(model, images, labels, lr=1e-2, max_iterations=100):
    """Full-batch Adam until the training forward has classified every image 3 times in a row.

    Then one more training-mode forward with BN momentum 1 sets the running statistics to the
    final batch's (a recalibration: Adam moves the weights faster than momentum 0.1 follows),
    and the accuracy is measured in eval mode. Returns (accuracy, steps).
    """
    loss = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=lr)
    model.train()
    streak = step = 0
    while streak < 3 and step < max_iterations:
        step += 1
        scores = model(images)
        loss(scores, labels)
        model.zero_grad()
        model.backward(loss.backward())
        opt.step()
        streak = streak + 1 if (scores.argmax(1) == labels).all() else 0
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0
    model(images)
    model.eval()
    return float((model(images).argmax(1) == labels).mean()), step


def mnist50(mnist_small) -> tuple[np.ndarray, np.ndarray]:
    """The first 50 MNIST images padded to 32x32, standardised, in float32, and their labels."""
    x, y = mnist_small
    x = np.pad(x[:50], ((0, 0), (0, 0), (2, 2), (2, 2)))
    return ((x - x.mean()) / x.std()).astype(np.float32), y[:50]

"""The LeNet family: LeNet-5 as published, a modern re-reading of it, and the Theano tutorial's.

- ``lenet5``: LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document
  recognition", Proc. IEEE 86(11), 1998, section II.B (architecture), II.C (loss), Appendix A
  (squashing function) and C (initialisation).
- ``lenet5_modern``: the same stages with ReLU, max pooling, a full C3 and a softmax classifier.
- ``lenet_theano``: the deeplearning.net Theano tutorial "Convolutional Neural Networks (LeNet)"
  (``convolutional_mlp.py``: ``LeNetConvPoolLayer`` x 2, ``HiddenLayer``, ``LogisticRegression``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .. import init, nn
from .lenet_bitmaps import digit_prototypes

# Section II.B: "the background level (white) corresponds to a value of -0.1 and the foreground
# (black) corresponds to 1.175", which makes the mean input roughly 0 and the variance roughly 1.
LENET5_BACKGROUND, LENET5_INK = -0.1, 1.175

# Table I of the paper: the S2 maps read by each C3 map (``nn.TableConv2d``'s table). The first
# six read three contiguous maps, the next six four contiguous maps, the next three four
# non-contiguous maps, the last all six: 60 connections, 1,516 parameters with the biases
# instead of a full 6 -> 16 convolution's 2,416, and maps forced to differ from each other.
LENET5_C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip


class LeNet5(nn.Sequential):
    """A chain of named stages (``c1``, ``s2``, ...) that also carries its loss as ``criterion``.

    The criterion is kept out of the children, so it takes no part in ``forward``, ``backward``,
    ``state_dict`` or ``summary``; the CLI and the gradient check read ``model.criterion``.
    """

    def __init__(self, stages: dict[str, nn.Module], criterion: nn.Loss) -> None:
        nn.Module.__init__(self)
        for name, layer in stages.items():
            setattr(self, name, layer)
        self.criterion = criterion

    def named_children(self) -> Iterator[tuple[str, nn.Module]]:
        for name, child in super().named_children():
            if child is not self.criterion:
                yield name, child


def _c1_padding(input_size: int, model: str) -> int:
    if input_size not in (28, 32):
        raise ValueError(
            f"{model} takes 32x32 inputs (the paper's) or 28x28 ones (padded by 2 in C1), "
            f"got input_size={input_size}"
        )
    return (32 - input_size) // 2


def lenet5_preprocess(images: np.ndarray, *, dtype: type = np.float32) -> np.ndarray:
    """MNIST digits as LeNet-5 saw them: ``(N, [1,] 28, 28)`` -> ``(N, 1, 32, 32)``.

    Pixels are mapped linearly so that the background (0) becomes -0.1 and full ink (255) 1.175,
    and each image is centred in a 32x32 field by 2 background pixels on every side (section
    II.B: the largest characters then stay clear of C3's receptive-field centres). uint8 images
    are read on the 0..255 scale, floating images on 0..1.
    """
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"expected (N, H, W) or (N, 1, H, W) images, got shape {x.shape}")
    if x.dtype == np.uint8:
        ink = x.astype(np.float64) / 255.0
    elif x.dtype.kind == "f":
        if x.size and (x.min() < 0.0 or x.max() > 1.0):
            raise ValueError("floating images must lie in [0, 1] (uint8 ones in 0..255)")
        ink = x.astype(np.float64)
    else:
        raise TypeError(f"images must be uint8 or floating, got {x.dtype}")
    ink = np.pad(ink, ((0, 0), (2, 2), (2, 2)))
    out = LENET5_BACKGROUND + (LENET5_INK - LENET5_BACKGROUND) * ink
    return out[:, None].astype(dtype)


def _lecun_(layer: nn.Module, rng: np.random.Generator) -> nn.Module:
    """Appendix C: weights and biases uniform in ``+-2.4 / F_i``, ``F_i`` the unit's fan-in."""
    layer.weight.data[...] = init.lecun_uniform(layer.weight.shape, rng, dtype=layer.weight.dtype)
    fan_in = int(np.prod(layer.weight.shape[1:]))
    bound = 2.4 / fan_in
    layer.bias.data[...] = rng.uniform(-bound, bound, layer.bias.shape)
    return layer


def lenet5(
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 32,
    *,
    rng: np.random.Generator | None = None,
) -> LeNet5:
    """LeNet-5 as in LeCun et al. 1998, section II.B (Fig. 2), with its RBF output and MAP loss.

    Stages (paper's counts per sample, all reproduced by ``cnnumpy.inspect.summary``)::

        input  1x32x32   (MNIST padded by 2 and scaled: see ``lenet5_preprocess``)
        c1     6x28x28   5x5 conv                 156 params   122,304 connections
        s2     6x14x14   2x2 sum * coeff + bias    12 params     5,880 connections
        c3    16x10x10   5x5 conv, Table I maps  1,516 params   151,600 connections
        s4     16x5x5    2x2 sum * coeff + bias    32 params     2,000 connections
        c5    120x1x1    5x5 conv              48,120 params    48,120 connections
        f6     84        fully connected       10,164 params    10,164 connections
        output 10        Euclidean RBF penalties to fixed +1/-1 digit bitmaps (840 values)

    60,000 trainable parameters, plus the 840 fixed prototype components (a non-trainable
    ``Parameter``: in ``state_dict`` and summary's parameter column, skipped by optimisers).

    Squashing: every stage up to F6 is followed by ``nn.ScaledTanh`` (``1.7159 tanh(2a/3)``,
    eq. 6 and Appendix A), C1 included. The paper says S2's result "is passed through a
    sigmoidal function" and, in general, that "units in layers up to F6" compute a weighted sum
    plus bias that "is then passed through a sigmoid squashing function" (eq. 5); C1, C3 and C5
    are such units, so each gets one. The output layer has none: its penalties feed the loss.

    Loss: ``model.criterion = nn.MAPLoss()`` (eq. 9, with j = 84); the prediction is the class
    with the *smallest* penalty (``criterion.predict``). Initialisation: Appendix C, weights and
    biases uniform in ``+-2.4 / F_i`` (``F_i`` = 25, 4, 75/100/150, 4, 400, 120).

    ``input_size=28`` is accepted: an extra first stage ``pad`` (``nn.ConstantPad2d``) centres the
    digit in 32x32 with the background value -0.1, as the paper's field is (zero padding would
    draw a frame 0.1 brighter than the background around every digit).

    Departures: ``num_classes`` above 10 get random +1/-1 prototypes (the
    paper's suggested alternative to drawings); ``in_channels`` > 1 widens C1's kernels. The
    paper trains with a stochastic diagonal Levenberg-Marquardt method (``optim.SDLM``: every
    stage here has a curvature rule); any optimiser here works.
    """
    rng = rng if rng is not None else np.random.default_rng()
    padding = _c1_padding(input_size, "lenet5")
    stages: dict[str, nn.Module] = {}
    if padding:  # a 28x28 digit is centred in the paper's 32x32 field of background, not zeros
        stages["pad"] = nn.ConstantPad2d(padding, LENET5_BACKGROUND)
    stages |= {
        "c1": _lecun_(nn.Conv2d(in_channels, 6, 5, rng=rng), rng),
        "c1_squash": nn.ScaledTanh(),
        "s2": nn.Subsampling(6, 2, rng=rng),
        "s2_squash": nn.ScaledTanh(),
        "c3": nn.TableConv2d(6, LENET5_C3_TABLE, 5, rng=rng),
        "c3_squash": nn.ScaledTanh(),
        "s4": nn.Subsampling(16, 2, rng=rng),
        "s4_squash": nn.ScaledTanh(),
        "c5": _lecun_(nn.Conv2d(16, 120, 5, rng=rng), rng),
        "c5_squash": nn.ScaledTanh(),
        "flatten": nn.Flatten(),
        "f6": _lecun_(nn.Linear(120, 84, rng=rng), rng),
        "f6_squash": nn.ScaledTanh(),
        "output": nn.RBFOutput(84, num_classes, digit_prototypes(num_classes, rng=rng)),
    }
    return LeNet5(stages, nn.MAPLoss())


def lenet5_modern(
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 32,
    *,
    widths: tuple[int, int, int, int] = (6, 16, 120, 84),
    batch_norm: bool = False,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
) -> nn.Sequential:
    """LeNet-5's stages as commonly re-implemented today: ReLU, 2x2 max pooling, a full C3.

    ``widths = (C1, C3, C5, F6)`` maps/units, by default the paper's (6, 16, 120, 84)::

        conv 5x5 C1 [bn] relu, maxpool 2   -> C1 x 14 x 14
        conv 5x5 C3 [bn] relu, maxpool 2   -> C3 x 5 x 5
        conv 5x5 C5 [bn] relu, flatten     -> C5 (the 5x5 maps fully reduced)
        [dropout] linear F6 [bn] relu      -> F6
        [dropout] linear num_classes       -> scores for softmax cross-entropy

    ``input_size=28`` pads C1 by 2 so every later shape is as at 32. With ``batch_norm`` the
    convs and F6 lose their biases (the norm's shift replaces them). ``dropout`` is PyTorch's
    drop probability, before each of the two fully connected layers. PyTorch's default
    initialisation. Shape: ``(N, in_channels, input_size, input_size) -> (N, num_classes)``.
    """
    rng = rng if rng is not None else np.random.default_rng()
    padding = _c1_padding(input_size, "lenet5_modern")
    c1, c3, c5, f6 = widths
    bias = not batch_norm
    layers: list[nn.Module] = []

    def block(layer: nn.Module, width: int, norm: type) -> None:
        layers.append(layer)
        if batch_norm:
            layers.append(norm(width))
        layers.append(nn.ReLU())

    block(nn.Conv2d(in_channels, c1, 5, padding=padding, bias=bias, rng=rng), c1, nn.BatchNorm2d)
    layers.append(nn.MaxPool2d(2))
    block(nn.Conv2d(c1, c3, 5, bias=bias, rng=rng), c3, nn.BatchNorm2d)
    layers.append(nn.MaxPool2d(2))
    block(nn.Conv2d(c3, c5, 5, bias=bias, rng=rng), c5, nn.BatchNorm2d)
    layers.append(nn.Flatten())
    if dropout > 0:
        layers.append(nn.Dropout(dropout, rng=rng))
    block(nn.Linear(c5, f6, bias=bias, rng=rng), f6, nn.BatchNorm1d)
    if dropout > 0:
        layers.append(nn.Dropout(dropout, rng=rng))
    layers.append(nn.Linear(f6, num_classes, rng=rng))
    return nn.Sequential(*layers)


def lenet_theano(
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 28,
    *,
    nkerns: tuple[int, int] = (20, 50),
    hidden: int = 500,
    rng: np.random.Generator | None = None,
) -> nn.Sequential:
    """The deeplearning.net Theano tutorial's LeNet (``convolutional_mlp.py``)::

        conv 5x5 nkerns[0] -> maxpool 2 -> tanh    (LeNetConvPoolLayer: tanh(pool(conv) + b))
        conv 5x5 nkerns[1] -> maxpool 2 -> tanh    -> nkerns[1] x 4 x 4 at 28x28
        flatten, linear hidden, tanh               (HiddenLayer)
        linear num_classes                         (LogisticRegression; softmax cross-entropy)

    As in the tutorial, tanh comes after the pooling. Its layer adds the bias after pooling
    too; here the bias sits in the conv, which is the same function, since adding a
    per-map constant commutes with the max. (Theano's conv2d also flips its kernels: a
    relabelling of the learnt weights only.) Pooling drops odd borders (``ignore_border``).

    Initialisation (the tutorial's): conv weights uniform in ``+-sqrt(6 / (fan_in + fan_out))``
    with ``fan_in = C_in*5*5`` and ``fan_out = C_out*5*5 // 4`` (divided by the pool area), the
    hidden layer's in ``+-sqrt(6 / (n_in + n_out))`` (Glorot), biases zero, and the logistic
    regression layer all zeros. Any ``input_size`` from 16 up is accepted (28 is the tutorial's).
    Shape: ``(N, in_channels, input_size, input_size) -> (N, num_classes)``.
    """
    rng = rng if rng is not None else np.random.default_rng()
    side = ((input_size - 4) // 2 - 4) // 2
    if side < 1:
        raise ValueError(f"lenet_theano needs input_size >= 16, got {input_size}")
    k0, k1 = nkerns
    conv0 = nn.Conv2d(in_channels, k0, 5, rng=rng)
    conv1 = nn.Conv2d(k0, k1, 5, rng=rng)
    for conv in (conv0, conv1):
        out_c, in_c, kh, kw = conv.weight.shape
        bound = math.sqrt(6.0 / (in_c * kh * kw + out_c * kh * kw // 4))
        conv.weight.data[...] = rng.uniform(-bound, bound, conv.weight.shape)
        conv.bias.data[...] = 0.0
    fc = nn.Linear(k1 * side * side, hidden, rng=rng)
    fc.weight.data[...] = init.glorot_uniform(fc.weight.shape, rng)
    fc.bias.data[...] = 0.0
    logistic = nn.Linear(hidden, num_classes, rng=rng)
    logistic.weight.data[...] = 0.0
    logistic.bias.data[...] = 0.0
    return nn.Sequential(
        conv0, nn.MaxPool2d(2), nn.Tanh(),
        conv1, nn.MaxPool2d(2), nn.Tanh(),
        nn.Flatten(), fc, nn.Tanh(),
        logistic,
    )  # fmt: skip

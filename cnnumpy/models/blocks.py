"""What the zoo's builders share: the width multiplier, named chains, the ``init`` argument,
conv units, and the residual blocks and shortcuts of the ResNet families.

Every builder file imports from here (and from ``nn``, ``init``, ``functional``) and never
from another builder's file.

Residual blocks (He, Zhang, Ren, Sun 2015 and 2016) are named chains, so ``state_dict`` keys
read like torchvision's: a post-activation block is ``named_sequential(residual=Residual(body,
shortcut), relu=ReLU())`` (``stage2.0.residual.body.conv1.weight``); a pre-activation block is
described at :func:`preact_block`. Where the shape changes, the shortcut is option A (the
identity on every other pixel with zero channels appended, :class:`PadShortcut`) or option B
(a 1x1 projection with the block's stride, then BN).
"""

from __future__ import annotations

import numpy as np

from .. import init as fillers
from .. import nn
from ..nn.module import format_args

INITS = ("msra", "pytorch")


def initialize(model: nn.Module, init: str, rng: np.random.Generator) -> nn.Module:
    """Re-draw the conv weights of ``model`` by ``init``; returns ``model``.

    ``"msra"``: He et al. 2015's ``N(0, 2 / fan_out)`` (``kaiming_normal(mode="fan_out",
    nonlinearity="relu")``, as torchvision initialises VGG and ResNet) for every conv weight.
    It keeps the mean square of the signal through deep stacks of conv-ReLU layers, where
    PyTorch's default (weight variance ``1 / (3 fan_in)``) shrinks it about sixfold per layer.
    Conv biases keep their default draw (small, but not zero: with zero biases a unit whose
    inputs are all dead sits exactly on the ReLU's kink, which numerical gradient checks trip on).
    ``"pytorch"`` keeps the default draw. Linear layers keep PyTorch's default either way.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if init == "msra":
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                w = m.weight.data
                m.weight.data = fillers.kaiming_normal(
                    w.shape, rng, mode="fan_out", nonlinearity="relu", dtype=w.dtype
                )
    return model


def scale_width(channels: int, width: float) -> int:
    """``channels * width`` rounded half up, and at least 1: the width multiplier of the zoo."""
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    return max(1, int(np.floor(channels * width + 0.5)))


def named_sequential(*layers: tuple[str, nn.Module]) -> nn.Sequential:
    """``nn.Sequential`` whose children have the given names instead of ``"0"``, ``"1"``, ...

    The twin of ``torch.nn.Sequential(OrderedDict(layers))``: children run in the given order
    (a module walks its attributes in assignment order), and ``state_dict`` keys use the names.
    """
    seq = nn.Sequential()
    for name, layer in layers:
        if not isinstance(layer, nn.Module) or hasattr(seq, name):
            raise ValueError(f"bad or repeated layer {name!r}: {type(layer).__name__}")
        setattr(seq, name, layer)
    return seq


def conv_unit(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    padding: int | tuple[int, int] = 0,
    *,
    batch_norm: bool = False,
    rng: np.random.Generator | None = None,
) -> list[nn.Module]:
    """``[Conv2d, (BatchNorm2d,) ReLU]``, stride 1, as a list to splice into a Sequential.

    With batch norm the convolution has no bias: the norm's ``bias`` (beta) replaces it, and a
    conv bias would only be subtracted again with the batch mean.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=not batch_norm,
                  rng=rng)
    ]  # fmt: skip
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU())
    return layers


def conv3x3(cin: int, cout: int, stride: int, rng: np.random.Generator) -> nn.Conv2d:
    """3x3 conv with padding 1 and no bias (a BN follows): ``H' = ceil(H / stride)``."""
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, rng=rng)


def conv1x1(cin: int, cout: int, stride: int, rng: np.random.Generator) -> nn.Conv2d:
    """1x1 conv without bias: ``H' = ceil(H / stride)``."""
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False, rng=rng)


def check_args(
    in_channels: int, num_classes: int, input_size: int, downsamplings: int, shortcut: str = "B"
) -> None:
    """Validate the common builder arguments; the map must keep at least 1 pixel per stride."""
    if in_channels < 1 or num_classes < 1:
        raise ValueError(f"need in_channels, num_classes >= 1, got {in_channels}, {num_classes}")
    if input_size < 2**downsamplings:
        raise ValueError(
            f"input_size must be at least {2**downsamplings} for {downsamplings} stride-2 "
            f"stages, got {input_size}"
        )
    if shortcut not in ("A", "B"):
        raise ValueError(f"shortcut must be 'A' (zero padding) or 'B' (projection): {shortcut!r}")


def classifier_head(
    channels: int, num_classes: int, rng: np.random.Generator
) -> list[tuple[str, nn.Module]]:
    """``pool`` (global average), ``flatten`` and ``fc``: ``(N, C, H, W) -> (N, num_classes)``."""
    return [
        ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
        ("fc", nn.Linear(channels, num_classes, rng=rng)),
    ]  # fmt: skip


class PadShortcut(nn.Module):
    """Option A shortcut: subsample by ``stride`` and append zero channels up to ``out_channels``.

    ``out[:, :C] = x[:, :, ::stride, ::stride]`` and ``out[:, C:] = 0``.
    Shape: ``(N, C, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride))``, which
    matches a 3x3 conv with padding 1 and the same stride. Backward: the kept pixels get the
    gradient of the first ``C`` output channels, every other pixel gets zero.
    """

    def __init__(self, out_channels: int, stride: int = 2) -> None:
        super().__init__()
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] > self.out_channels:
            raise ValueError(
                f"PadShortcut expects (N, C, H, W) with C <= {self.out_channels}, got {x.shape}"
            )
        s = self.stride
        kept = x[:, :, ::s, ::s]
        out = np.zeros((x.shape[0], self.out_channels, *kept.shape[2:]), dtype=x.dtype)
        out[:, : x.shape[1]] = kept
        self.save_for_backward(x.shape)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        in_shape = self.take_saved("backward")
        s = self.stride
        dx = np.zeros(in_shape, dtype=dout.dtype)
        dx[:, :, ::s, ::s] = dout[:, : in_shape[1]]
        return dx

    def extra_repr(self) -> str:
        return format_args(f"out_channels={self.out_channels}", stride=(self.stride, 2))


def make_shortcut(
    cin: int, cout: int, stride: int, kind: str, rng: np.random.Generator, bn: bool = True
) -> nn.Module | None:
    """None (the identity) when the shape is kept; else option ``"A"`` (zero padding) or
    ``"B"`` (1x1 conv, then BN when ``bn``)."""
    if cin == cout and stride == 1:
        return None
    if kind == "A":
        if cout < cin:
            raise ValueError(f"option A cannot shrink channels ({cin} -> {cout}); use 'B'")
        return PadShortcut(cout, stride)
    conv = conv1x1(cin, cout, stride, rng)
    return named_sequential(("conv", conv), ("bn", nn.BatchNorm2d(cout))) if bn else conv


def basic_block(
    cin: int, cout: int, stride: int, *, shortcut: str, plain: bool, rng: np.random.Generator
) -> nn.Sequential:
    """Post-activation basic block: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    ``conv1`` carries the stride. Shape: ``(N, cin, H, W) -> (N, cout, H/stride, W/stride)``.
    ``plain=True`` drops the shortcut (the paper's plain baseline).
    """
    body = [
        ("conv1", conv3x3(cin, cout, stride, rng)), ("bn1", nn.BatchNorm2d(cout)),
        ("relu1", nn.ReLU()),
        ("conv2", conv3x3(cout, cout, 1, rng)), ("bn2", nn.BatchNorm2d(cout)),
    ]  # fmt: skip
    if plain:
        return named_sequential(*body, ("relu2", nn.ReLU()))
    residual = nn.Residual(named_sequential(*body), make_shortcut(cin, cout, stride, shortcut, rng))
    return named_sequential(("residual", residual), ("relu", nn.ReLU()))


def preact_block(
    cin: int,
    cout: int,
    stride: int,
    *,
    shortcut: str = "B",
    dropout: float = 0.0,
    rng: np.random.Generator,
) -> nn.Module:
    """Pre-activation basic block (He et al. 2016, Fig. 4(e)); ``dropout`` between the convs
    (Wide ResNets): ``x + conv2(relu(bn2(conv1(relu(bn1(x))))))``.

    Where the shape changes, the shortcut is (``"B"``) a 1x1 conv without BN applied to the
    *pre-activated* input ``relu(bn1(x))``, which both paths then share, as in the authors'
    code and in WRN; ``"A"`` zero-pads the raw input instead. Layouts and ``state_dict`` keys::

        identity/A:  Residual(body=[bn1, relu1, conv1, bn2, relu2, (dropout), conv2], shortcut)
                     -> "body.conv1.weight"
        projection:  [bn1, relu1, residual=Residual(body=[conv1, bn2, relu2, (dropout), conv2],
                     shortcut=1x1 conv)]  -> "bn1.weight", "residual.shortcut.weight"

    Shape: ``(N, cin, H, W) -> (N, cout, H/stride, W/stride)``; ``conv1`` carries the stride.
    """
    skip = make_shortcut(cin, cout, stride, shortcut, rng, bn=False)
    pre = [("bn1", nn.BatchNorm2d(cin)), ("relu1", nn.ReLU())]
    tail: list[tuple[str, nn.Module]] = [
        ("conv1", conv3x3(cin, cout, stride, rng)), ("bn2", nn.BatchNorm2d(cout)),
        ("relu2", nn.ReLU()),
    ]  # fmt: skip
    if dropout > 0:
        tail.append(("dropout", nn.Dropout(dropout, rng=rng)))
    tail.append(("conv2", conv3x3(cout, cout, 1, rng)))
    if isinstance(skip, nn.Conv2d):  # the projection reads the shared pre-activation
        return named_sequential(*pre, ("residual", nn.Residual(named_sequential(*tail), skip)))
    return nn.Residual(named_sequential(*pre, *tail), skip)

"""ResNets for CIFAR (He, Zhang, Ren, Sun 2015, "Deep Residual Learning for Image Recognition",
section 4.2) and their plain twins, with the building blocks the other ResNet files share.

The CIFAR design: a 3x3 conv with 16 filters, then three stages of ``n`` basic blocks on maps
of 32x32, 16x16 and 8x8 with 16, 32 and 64 filters (``depth = 6n + 2`` weighted layers), global
average pooling and a 10-way linear layer. A basic block is conv-BN-ReLU-conv-BN, plus the
shortcut, then ReLU (post-activation). The first block of stages 2 and 3 halves the map with
stride 2 in its first conv and doubles the channels; its shortcut is then

* option A: the identity on every other pixel, with zero channels appended
  (:class:`PadShortcut`, no parameters; what the paper uses on CIFAR), or
* option B: a 1x1 conv with stride 2 followed by BN (a projection).

Blocks are ``nn.Sequential(residual=nn.Residual(body, shortcut), relu=nn.ReLU())`` with named
children, so ``state_dict`` keys read ``stage2.0.residual.body.conv1.weight``,
``stage2.0.residual.shortcut.conv.weight`` (option B) and so on; a plain block is the body
without the shortcut, ``stage2.0.conv1.weight``.

Initialisation: ``init="msra"`` (the default) draws every conv weight from He et al.'s
``N(0, 2 / fan_out)`` (``kaiming_normal(mode="fan_out", nonlinearity="relu")``, as
torchvision does); BN starts at weight 1, bias 0; the linear layer keeps PyTorch's default.
``init="pytorch"`` keeps PyTorch's default for the convs too. Convs followed by BN have no bias.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import nn
from ._init import initialize


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
        self._in_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] > self.out_channels:
            raise ValueError(
                f"PadShortcut expects (N, C, H, W) with C <= {self.out_channels}, got {x.shape}"
            )
        s = self.stride
        kept = x[:, :, ::s, ::s]
        out = np.zeros((x.shape[0], self.out_channels, *kept.shape[2:]), dtype=x.dtype)
        out[:, : x.shape[1]] = kept
        self._in_shape = x.shape
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._in_shape is None:
            raise RuntimeError("PadShortcut.backward called before forward")
        s = self.stride
        dx = np.zeros(self._in_shape, dtype=dout.dtype)
        dx[:, :, ::s, ::s] = dout[:, : self._in_shape[1]]
        return dx

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}, stride={self.stride}"


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


def conv3x3(cin: int, cout: int, stride: int, rng: np.random.Generator) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, rng=rng)


def conv1x1(cin: int, cout: int, stride: int, rng: np.random.Generator) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False, rng=rng)


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


def classifier_head(channels: int, num_classes: int, rng: np.random.Generator):
    """``pool`` (global average), ``flatten`` and ``fc``: ``(N, C, H, W) -> (N, num_classes)``."""
    return [
        ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
        ("fc", nn.Linear(channels, num_classes, rng=rng)),
    ]  # fmt: skip


def cifar_resnet(
    depth: int,
    in_channels: int = 3,
    num_classes: int = 10,
    input_size: int = 32,
    *,
    shortcut: str = "A",
    widths: tuple[int, int, int] = (16, 32, 64),
    plain: bool = False,
    init: str = "msra",
    rng: np.random.Generator | None = None,
) -> nn.Sequential:
    """The CIFAR ResNet of depth ``6n + 2`` (He et al. 2015, section 4.2), or its plain twin.

    Shapes for a 32x32 input, with ``widths = (16, 32, 64)``::

        conv, bn, relu     3x3, 16           -> (N, 16, 32, 32)
        stage1             n blocks, 16      -> (N, 16, 32, 32)
        stage2             n blocks, 32, /2  -> (N, 32, 16, 16)
        stage3             n blocks, 64, /2  -> (N, 64, 8, 8)
        pool, flatten, fc                    -> (N, num_classes)

    ``shortcut`` is ``"A"`` (zero padding, the paper's CIFAR choice) or ``"B"`` (projection);
    ``plain=True`` removes every shortcut. ``widths`` shrinks the network for tests; the stem has
    ``widths[0]`` filters. 28x28 inputs give maps of 28, 14 and 7.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n + 2 with n >= 1, got {depth}")
    check_args(in_channels, num_classes, input_size, 2, shortcut)
    rng = rng if rng is not None else np.random.default_rng()
    n = (depth - 2) // 6
    layers = [
        ("conv", conv3x3(in_channels, widths[0], 1, rng)), ("bn", nn.BatchNorm2d(widths[0])),
        ("relu", nn.ReLU()),
    ]  # fmt: skip
    cin = widths[0]
    for s, cout in enumerate(widths):
        blocks = []
        for b in range(n):
            stride = 2 if s > 0 and b == 0 else 1
            blocks.append(basic_block(cin, cout, stride, shortcut=shortcut, plain=plain, rng=rng))
            cin = cout
        layers.append((f"stage{s + 1}", nn.Sequential(*blocks)))
    model = named_sequential(*layers, *classifier_head(cin, num_classes, rng))
    return initialize(model, init, rng)


def _fixed_depth(depth: int, plain: bool) -> Callable[..., nn.Sequential]:
    def build(
        in_channels: int = 3,
        num_classes: int = 10,
        input_size: int = 32,
        *,
        shortcut: str = "A",
        widths: tuple[int, int, int] = (16, 32, 64),
        init: str = "msra",
        rng: np.random.Generator | None = None,
    ) -> nn.Sequential:
        return cifar_resnet(
            depth, in_channels, num_classes, input_size,
            shortcut=shortcut, widths=widths, plain=plain, init=init, rng=rng,
        )  # fmt: skip

    kind = "plain" if plain else "resnet"
    build.__name__ = build.__qualname__ = f"{kind}{depth}"
    build.__doc__ = (
        f"{'Plain' if plain else 'Residual'} CIFAR network with {depth} weighted layers "
        f"(n = {(depth - 2) // 6}); see :func:`cifar_resnet`."
        + (" ``shortcut`` has no effect (there are none)." if plain else "")
    )
    return build


resnet20 = _fixed_depth(20, plain=False)
resnet32 = _fixed_depth(32, plain=False)
resnet44 = _fixed_depth(44, plain=False)
resnet56 = _fixed_depth(56, plain=False)
resnet110 = _fixed_depth(110, plain=False)
plain20 = _fixed_depth(20, plain=True)
plain32 = _fixed_depth(32, plain=True)
plain44 = _fixed_depth(44, plain=True)
plain56 = _fixed_depth(56, plain=True)
plain110 = _fixed_depth(110, plain=True)

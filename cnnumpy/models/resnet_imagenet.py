"""The ImageNet ResNets of He et al. 2015 (Table 1: ResNet-18, -34, -50), adapted to 32x32
inputs, their plain twins, and a pre-activation ResNet-18 (He et al. 2016).

Departure from the paper: the ImageNet stem (7x7 conv with stride 2, then 3x3 max pooling with
stride 2, which takes 224 pixels to 56) would leave a 32x32 image at 8x8 before the first stage.
Here the stem is a 3x3 conv with stride 1 and 64 filters, then BN-ReLU, with no max pooling, as
is usual for CIFAR. The four stages then see maps of 32, 16, 8 and 4 pixels (28, 14, 7 and 4 for
28x28 inputs)::

    conv, bn, relu   3x3, 64                    -> (N, 64, 32, 32)
    stage1           64   (x4 for bottlenecks)  -> (N, 64 or 256, 32, 32)
    stage2           128, /2                    -> (N, 128 or 512, 16, 16)
    stage3           256, /2                    -> (N, 256 or 1024, 8, 8)
    stage4           512, /2                    -> (N, 512 or 2048, 4, 4)
    pool, flatten, fc                           -> (N, num_classes)

Shortcuts are projections (option B: 1x1 conv with the block's stride, then BN) where the shape
changes, identities elsewhere. Bottleneck blocks (ResNet-50) are 1x1 reduce, 3x3, 1x1 expand
(x4); the stride is on the 3x3 conv (as in torchvision; the paper's Caffe model strides the
first 1x1). Initialisation as in :mod:`cnnumpy.models.resnet` (``init="msra"`` by default).
The basic and pre-activation blocks are :mod:`cnnumpy.models.blocks`'.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from .blocks import (
    basic_block,
    check_args,
    classifier_head,
    conv1x1,
    conv3x3,
    initialize,
    make_shortcut,
    named_sequential,
    preact_block,
)

EXPANSION = 4
BASE_WIDTHS = (64, 128, 256, 512)


def bottleneck_block(
    cin: int, mid: int, stride: int, *, plain: bool, rng: np.random.Generator
) -> nn.Sequential:
    """Post-activation bottleneck: 1x1 ``cin -> mid``, 3x3 ``mid -> mid`` (stride), 1x1
    ``mid -> 4 mid``, each followed by BN, ReLU between; then shortcut, addition and ReLU.

    Shape: ``(N, cin, H, W) -> (N, 4 mid, H/stride, W/stride)``.
    """
    cout = EXPANSION * mid
    body = [
        ("conv1", conv1x1(cin, mid, 1, rng)), ("bn1", nn.BatchNorm2d(mid)), ("relu1", nn.ReLU()),
        ("conv2", conv3x3(mid, mid, stride, rng)), ("bn2", nn.BatchNorm2d(mid)),
        ("relu2", nn.ReLU()),
        ("conv3", conv1x1(mid, cout, 1, rng)), ("bn3", nn.BatchNorm2d(cout)),
    ]  # fmt: skip
    if plain:
        return named_sequential(*body, ("relu3", nn.ReLU()))
    residual = nn.Residual(named_sequential(*body), make_shortcut(cin, cout, stride, "B", rng))
    return named_sequential(("residual", residual), ("relu", nn.ReLU()))


def _widths(width: float, widths: tuple[int, ...] | None) -> tuple[int, ...]:
    if widths is None:
        widths = tuple(max(1, round(width * w)) for w in BASE_WIDTHS)
    if len(widths) != 4 or min(widths) < 1:
        raise ValueError(f"widths must be 4 positive stage widths, got {widths}")
    return tuple(widths)


def imagenet_resnet(
    blocks: tuple[int, int, int, int],
    in_channels: int = 3,
    num_classes: int = 10,
    input_size: int = 32,
    *,
    bottleneck: bool = False,
    plain: bool = False,
    preact: bool = False,
    width: float = 1.0,
    widths: tuple[int, int, int, int] | None = None,
    init: str = "msra",
    rng: np.random.Generator | None = None,
) -> nn.Sequential:
    """A ResNet with ``blocks[i]`` blocks in stage ``i + 1`` on 32x32 inputs (module docstring).

    ``width`` multiplies the stage widths 64/128/256/512 (``widths`` gives them directly; the
    stem has ``widths[0]`` filters); bottleneck stages output 4 times their width.
    ``plain=True`` drops every shortcut; ``preact=True`` uses pre-activation basic blocks
    (:func:`cnnumpy.models.blocks.preact_block`, 1x1 projections without BN), a stem conv
    without BN-ReLU, and BN-ReLU before the pooling.
    """
    check_args(in_channels, num_classes, input_size, 3)
    if preact and (plain or bottleneck):
        raise ValueError("preact=True is only built with basic residual blocks")
    rng = rng if rng is not None else np.random.default_rng()
    widths = _widths(width, widths)
    layers: list[tuple[str, nn.Module]] = [("conv", conv3x3(in_channels, widths[0], 1, rng))]
    if not preact:
        layers += [("bn", nn.BatchNorm2d(widths[0])), ("relu", nn.ReLU())]
    cin = widths[0]
    for s, (count, mid) in enumerate(zip(blocks, widths, strict=True)):
        stage = []
        for b in range(count):
            stride = 2 if s > 0 and b == 0 else 1
            if bottleneck:
                stage.append(bottleneck_block(cin, mid, stride, plain=plain, rng=rng))
                cin = EXPANSION * mid
            elif preact:
                stage.append(preact_block(cin, mid, stride, shortcut="B", rng=rng))
                cin = mid
            else:
                stage.append(basic_block(cin, mid, stride, shortcut="B", plain=plain, rng=rng))
                cin = mid
        layers.append((f"stage{s + 1}", nn.Sequential(*stage)))
    if preact:
        layers += [("bn", nn.BatchNorm2d(cin)), ("relu", nn.ReLU())]
    model = named_sequential(*layers, *classifier_head(cin, num_classes, rng))
    return initialize(model, init, rng)


def _builder(name: str, blocks, bottleneck: bool = False, plain: bool = False, preact=False):
    def build(
        in_channels: int = 3,
        num_classes: int = 10,
        input_size: int = 32,
        *,
        width: float = 1.0,
        widths: tuple[int, int, int, int] | None = None,
        init: str = "msra",
        rng: np.random.Generator | None = None,
    ) -> nn.Sequential:
        return imagenet_resnet(
            blocks, in_channels, num_classes, input_size, bottleneck=bottleneck, plain=plain,
            preact=preact, width=width, widths=widths, init=init, rng=rng,
        )  # fmt: skip

    kind = "pre-activation " if preact else ("plain " if plain else "")
    unit = "bottleneck" if bottleneck else "basic"
    build.__name__ = build.__qualname__ = name
    build.__doc__ = (
        f"{name}: {kind}{unit}-block network with stages of {list(blocks)} blocks, adapted to "
        "32x32 (3x3 stem, no max pooling); see :func:`imagenet_resnet`."
    )
    return build


resnet18 = _builder("resnet18", (2, 2, 2, 2))
resnet34 = _builder("resnet34", (3, 4, 6, 3))
resnet50 = _builder("resnet50", (3, 4, 6, 3), bottleneck=True)
plain18 = _builder("plain18", (2, 2, 2, 2), plain=True)
plain34 = _builder("plain34", (3, 4, 6, 3), plain=True)
plain50 = _builder("plain50", (3, 4, 6, 3), bottleneck=True, plain=True)
preact_resnet18 = _builder("preact_resnet18", (2, 2, 2, 2), preact=True)

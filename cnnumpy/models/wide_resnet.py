"""Pre-activation ResNets (He, Zhang, Ren, Sun 2016, "Identity Mappings in Deep Residual
Networks", Fig. 4(e)) and Wide ResNets (Zagoruyko & Komodakis 2016, "Wide Residual Networks",
Table 1), for CIFAR-sized inputs.

A pre-activation block (:func:`cnnumpy.models.blocks.preact_block`) is
``x + conv2(relu(bn2(conv1(relu(bn1(x))))))``: BN and ReLU come before each conv and nothing
follows the addition, so the identity path runs clean from block to block. The network's last
block is followed by BN-ReLU before the pooling. Where the shape changes, the shortcut is
(default ``"B"``) a 1x1 conv without BN applied to the *pre-activated* input, as in the
authors' code and in WRN; option ``"A"`` zero-pads the raw input instead
(:class:`cnnumpy.models.blocks.PadShortcut`). ``state_dict`` keys read
``stage1.0.body.conv1.weight`` (identity or A) and ``stage2.0.bn1.weight``,
``stage2.0.residual.shortcut.weight`` (projection).

Departure from He et al.'s code: their stem conv is followed by BN-ReLU and their first block
skips its own pre-activation; here, as in WRN, the stem is a bare conv and every block
pre-activates. Convs have no bias; ``init="msra"`` as in :mod:`cnnumpy.models.resnet`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import nn
from .blocks import (
    check_args,
    classifier_head,
    conv3x3,
    initialize,
    named_sequential,
    preact_block,
)


def _preact_cifar(
    n: int,
    widths: tuple[int, int, int],
    stem_width: int,
    in_channels: int,
    num_classes: int,
    input_size: int,
    shortcut: str,
    dropout: float,
    init: str,
    rng: np.random.Generator | None,
) -> nn.Sequential:
    check_args(in_channels, num_classes, input_size, 2, shortcut)
    if len(widths) != 3 or min(widths) < 1 or stem_width < 1:
        raise ValueError(f"need 3 positive stage widths and stem_width, got {widths}, {stem_width}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    rng = rng if rng is not None else np.random.default_rng()
    layers: list[tuple[str, nn.Module]] = [("conv", conv3x3(in_channels, stem_width, 1, rng))]
    cin = stem_width
    for s, cout in enumerate(widths):
        blocks = []
        for b in range(n):
            stride = 2 if s > 0 and b == 0 else 1
            blocks.append(
                preact_block(cin, cout, stride, shortcut=shortcut, dropout=dropout, rng=rng)
            )
            cin = cout
        layers.append((f"stage{s + 1}", nn.Sequential(*blocks)))
    layers += [("bn", nn.BatchNorm2d(cin)), ("relu", nn.ReLU())]
    model = named_sequential(*layers, *classifier_head(cin, num_classes, rng))
    return initialize(model, init, rng)


def preact_resnet(
    depth: int,
    in_channels: int = 3,
    num_classes: int = 10,
    input_size: int = 32,
    *,
    shortcut: str = "B",
    widths: tuple[int, int, int] = (16, 32, 64),
    init: str = "msra",
    rng: np.random.Generator | None = None,
) -> nn.Sequential:
    """Pre-activation CIFAR ResNet of depth ``6n + 2`` with basic blocks (He et al. 2016).

    Shapes for 32x32: ``conv`` 3x3 -> ``(N, 16, 32, 32)``; ``stage1`` -> ``(N, 16, 32, 32)``;
    ``stage2`` -> ``(N, 32, 16, 16)``; ``stage3`` -> ``(N, 64, 8, 8)``; ``bn, relu, pool,
    flatten, fc`` -> ``(N, num_classes)``. The paper's deepest CIFAR models (164, 1001 layers)
    use bottleneck blocks, which are not built here.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"pre-activation ResNet depth must be 6n + 2 with n >= 1, got {depth}")
    return _preact_cifar(
        (depth - 2) // 6, widths, widths[0], in_channels, num_classes, input_size,
        shortcut, 0.0, init, rng,
    )  # fmt: skip


def wide_resnet(
    depth: int = 28,
    widen_factor: int = 10,
    dropout: float = 0.0,
    in_channels: int = 3,
    num_classes: int = 10,
    input_size: int = 32,
    *,
    widths: tuple[int, int, int] | None = None,
    stem_width: int = 16,
    init: str = "msra",
    rng: np.random.Generator | None = None,
) -> nn.Sequential:
    """WRN-``depth``-``widen_factor`` (Zagoruyko & Komodakis 2016, Table 1).

    A 3x3 stem conv with 16 filters, then three stages of ``(depth - 4) / 6`` pre-activation
    blocks with ``16k``, ``32k`` and ``64k`` filters (``k = widen_factor``) on maps of 32, 16 and
    8 pixels, BN-ReLU, global average pooling and a linear layer. ``dropout`` (the paper uses
    0.3) sits between the two convs of every block. Shortcuts are 1x1 projections on the
    pre-activated input where the shape changes (including the first block when ``k > 1``).
    ``widths`` replaces ``(16k, 32k, 64k)`` and ``stem_width`` the 16, to shrink it for tests.
    """
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"WRN depth must be 6n + 4 with n >= 1, got {depth}")
    if widen_factor < 1:
        raise ValueError(f"widen_factor must be >= 1, got {widen_factor}")
    if widths is None:
        widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
    return _preact_cifar(
        (depth - 4) // 6, widths, stem_width, in_channels, num_classes, input_size,
        "B", dropout, init, rng,
    )  # fmt: skip


def _preact_depth(depth: int) -> Callable[..., nn.Sequential]:
    def build(
        in_channels: int = 3,
        num_classes: int = 10,
        input_size: int = 32,
        *,
        shortcut: str = "B",
        widths: tuple[int, int, int] = (16, 32, 64),
        init: str = "msra",
        rng: np.random.Generator | None = None,
    ) -> nn.Sequential:
        return preact_resnet(
            depth, in_channels, num_classes, input_size,
            shortcut=shortcut, widths=widths, init=init, rng=rng,
        )  # fmt: skip

    build.__name__ = build.__qualname__ = f"preact_resnet{depth}"
    build.__doc__ = f"Pre-activation CIFAR ResNet-{depth}; see :func:`preact_resnet`."
    return build


def _wrn(depth: int, k: int) -> Callable[..., nn.Sequential]:
    def build(
        in_channels: int = 3,
        num_classes: int = 10,
        input_size: int = 32,
        *,
        dropout: float = 0.0,
        widths: tuple[int, int, int] | None = None,
        stem_width: int = 16,
        init: str = "msra",
        rng: np.random.Generator | None = None,
    ) -> nn.Sequential:
        return wide_resnet(
            depth, k, dropout, in_channels, num_classes, input_size,
            widths=widths, stem_width=stem_width, init=init, rng=rng,
        )  # fmt: skip

    build.__name__ = build.__qualname__ = f"wrn{depth}_{k}"
    build.__doc__ = f"WRN-{depth}-{k}; see :func:`wide_resnet`."
    return build


preact_resnet20 = _preact_depth(20)
preact_resnet56 = _preact_depth(56)
preact_resnet110 = _preact_depth(110)
wrn16_4 = _wrn(16, 4)
wrn16_8 = _wrn(16, 8)
wrn28_10 = _wrn(28, 10)

"""ResNets for CIFAR (He, Zhang, Ren, Sun 2015, "Deep Residual Learning for Image Recognition",
section 4.2) and their plain twins.

The CIFAR design: a 3x3 conv with 16 filters, then three stages of ``n`` basic blocks on maps
of 32x32, 16x16 and 8x8 with 16, 32 and 64 filters (``depth = 6n + 2`` weighted layers), global
average pooling and a 10-way linear layer. A basic block is conv-BN-ReLU-conv-BN, plus the
shortcut, then ReLU (post-activation). The first block of stages 2 and 3 halves the map with
stride 2 in its first conv and doubles the channels; its shortcut is then

* option A: the identity on every other pixel, with zero channels appended
  (:class:`~cnnumpy.models.blocks.PadShortcut`, no parameters; what the paper uses on CIFAR), or
* option B: a 1x1 conv with stride 2 followed by BN (a projection).

Blocks are ``nn.Sequential(residual=nn.Residual(body, shortcut), relu=nn.ReLU())`` with named
children (:func:`~cnnumpy.models.blocks.basic_block`), so ``state_dict`` keys read
``stage2.0.residual.body.conv1.weight``, ``stage2.0.residual.shortcut.conv.weight`` (option B)
and so on; a plain block is the body without the shortcut, ``stage2.0.conv1.weight``.

Initialisation: ``init="msra"`` (the default) draws every conv weight from He et al.'s
``N(0, 2 / fan_out)`` (``kaiming_normal(mode="fan_out", nonlinearity="relu")``, as
torchvision does); BN starts at weight 1, bias 0; the linear layer keeps PyTorch's default.
``init="pytorch"`` keeps PyTorch's default for the convs too. Convs followed by BN have no bias.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import nn
from .blocks import basic_block, check_args, classifier_head, conv3x3, initialize, named_sequential


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

"""GoogLeNet (Inception v1; Szegedy et al. 2014, "Going deeper with convolutions"), with its
stem adapted to 28x28 and 32x32 images, and the Inception modules it is built from: v1, and the
factorised v3 modules (Szegedy et al. 2015, "Rethinking the Inception Architecture for Computer
Vision", figures 5 and 6, section 3).

Each module runs four branches on the same input and joins their outputs on the channel axis
(``nn.Concat``), in the order ``[1x1, 3x3 (or n x n), 5x5 (or double), pool]`` (torchvision's).
Every branch is a flat ``nn.Sequential`` of conv units, ``conv - [batch norm] - ReLU``, so the
``state_dict`` keys read ``"<branch>.<layer>.weight"`` (``"1.2.weight"`` is the second conv of
the 3x3 branch). All convolutions have stride 1 and "same" padding: every branch keeps the
``H x W`` of the input, which is what lets ``Concat`` join them.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from .blocks import conv_unit, initialize, scale_width

# Table 1 of the paper: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
GOOGLENET_MODULES: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
_POOL_AFTER = ("3b", "4e")  # the 3x3 stride-2 max pools between the stages


def _pool(kind: str) -> nn.Module:
    """The pooling branch's 3x3, stride 1, padding 1 pool (it keeps the size)."""
    if kind == "max":
        return nn.MaxPool2d(3, stride=1, padding=1)
    if kind == "avg":
        # Padding does not count in the mean, so border pixels are not pulled towards zero.
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"pool must be 'max' or 'avg', got {kind!r}")


def inception_v1_module(
    in_channels: int,
    ch1x1: int,
    ch3x3red: int,
    ch3x3: int,
    ch5x5red: int,
    ch5x5: int,
    pool_proj: int,
    *,
    batch_norm: bool = False,
    rng: np.random.Generator | None = None,
) -> nn.Concat:
    """The Inception module with dimension reductions (Szegedy et al. 2014, figure 2(b)).

    Branches, each conv followed by ReLU (section 5: "All the convolutions ... use rectified
    linear activation"):

    0. 1x1 conv to ``ch1x1``;
    1. 1x1 conv to ``ch3x3red`` ("#3x3 reduce"), then 3x3 conv (padding 1) to ``ch3x3``;
    2. 1x1 conv to ``ch5x5red``, then 5x5 conv (padding 2) to ``ch5x5``;
    3. 3x3 max pool (stride 1, padding 1), then 1x1 conv to ``pool_proj`` ("pool proj").

    The arguments are the six columns of table 1 in order. The 1x1 reductions are the paper's
    point (section 4): they cut the multiply-adds of the 3x3 and 5x5 convolutions by reading
    fewer channels. ``batch_norm=True`` (not in the paper, which predates batch norm) puts a
    BatchNorm2d between each conv and its ReLU.

    Shape: ``(N, in_channels, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``.
    """
    bn = {"batch_norm": batch_norm, "rng": rng}
    return nn.Concat(
        nn.Sequential(*conv_unit(in_channels, ch1x1, 1, **bn)),
        nn.Sequential(*conv_unit(in_channels, ch3x3red, 1, **bn),
                      *conv_unit(ch3x3red, ch3x3, 3, 1, **bn)),
        nn.Sequential(*conv_unit(in_channels, ch5x5red, 1, **bn),
                      *conv_unit(ch5x5red, ch5x5, 5, 2, **bn)),
        nn.Sequential(_pool("max"), *conv_unit(in_channels, pool_proj, 1, **bn)),
    )  # fmt: skip


def inception_v3_module_a(
    in_channels: int,
    ch1x1: int,
    ch3x3red: int,
    ch3x3: int,
    ch3x3dbl_red: int,
    ch3x3dbl: int,
    pool_proj: int,
    *,
    batch_norm: bool = True,
    pool: str = "avg",
    rng: np.random.Generator | None = None,
) -> nn.Concat:
    """Inception module with the 5x5 factorised into two 3x3s (Szegedy et al. 2015, figure 5).

    Section 3.1: a 5x5 convolution costs 25/9 of a 3x3 one with as many filters; two stacked
    3x3s see the same 5x5 window for 18/25 of the cost (28% less) and add a non-linearity.
    Branches (each conv followed by [batch norm and] ReLU):

    0. 1x1 conv to ``ch1x1``;
    1. 1x1 conv to ``ch3x3red``, then 3x3 conv to ``ch3x3``;
    2. 1x1 conv to ``ch3x3dbl_red``, then 3x3 conv to ``ch3x3dbl``, then 3x3 conv to ``ch3x3dbl``
       (where the v1 module had its 5x5);
    3. 3x3 pool (stride 1, padding 1; ``pool="avg"`` as in the released Inception-v3
       models, the padding left out of the mean, or ``"max"`` as in v1), then 1x1 conv to
       ``pool_proj``.

    ``batch_norm`` defaults to True: Inception-v3 normalises every convolution (it builds on
    BN-Inception, Ioffe & Szegedy 2015). Figure 5 gives no channel numbers; they are arguments.

    Shape: ``(N, in_channels, H, W) -> (N, ch1x1 + ch3x3 + ch3x3dbl + pool_proj, H, W)``.
    """
    bn = {"batch_norm": batch_norm, "rng": rng}
    return nn.Concat(
        nn.Sequential(*conv_unit(in_channels, ch1x1, 1, **bn)),
        nn.Sequential(*conv_unit(in_channels, ch3x3red, 1, **bn),
                      *conv_unit(ch3x3red, ch3x3, 3, 1, **bn)),
        nn.Sequential(*conv_unit(in_channels, ch3x3dbl_red, 1, **bn),
                      *conv_unit(ch3x3dbl_red, ch3x3dbl, 3, 1, **bn),
                      *conv_unit(ch3x3dbl, ch3x3dbl, 3, 1, **bn)),
        nn.Sequential(_pool(pool), *conv_unit(in_channels, pool_proj, 1, **bn)),
    )  # fmt: skip


def inception_v3_module_b(
    in_channels: int,
    ch1x1: int,
    ch_red: int,
    ch_nxn: int,
    ch_dbl_red: int,
    ch_dbl: int,
    pool_proj: int,
    *,
    n: int = 7,
    batch_norm: bool = True,
    pool: str = "avg",
    rng: np.random.Generator | None = None,
) -> nn.Concat:
    """Inception module with n x n convolutions factorised into 1 x n then n x 1 (Szegedy et
    al. 2015, figure 6; the paper uses n = 7 on the 17 x 17 grid).

    Section 3.2: a 1 x n conv followed by an n x 1 conv covers an n x n window for 2/n of the
    cost (a 3x3 becomes 1x3 + 3x1: 33% cheaper). Branches (each conv followed by [batch norm
    and] ReLU; ``1 x n`` has padding ``(0, n//2)`` and ``n x 1`` padding ``(n//2, 0)``):

    0. 1x1 conv to ``ch1x1``;
    1. 1x1 conv to ``ch_red``, 1 x n conv to ``ch_red``, n x 1 conv to ``ch_nxn``
       (one factorised n x n);
    2. 1x1 conv to ``ch_dbl_red``, then 1 x n, n x 1, 1 x n convs to ``ch_dbl_red`` and an n x 1
       conv to ``ch_dbl`` (two factorised n x n: figure 6's left branch);
    3. 3x3 pool (stride 1, padding 1; ``"avg"`` or ``"max"``), then 1x1 conv to ``pool_proj``.

    Shape: ``(N, in_channels, H, W) -> (N, ch1x1 + ch_nxn + ch_dbl + pool_proj, H, W)``.
    """
    if n < 1 or n % 2 == 0:
        raise ValueError(f"n must be odd (so that padding n//2 keeps the size), got {n}")
    bn = {"batch_norm": batch_norm, "rng": rng}
    row, col, p = (1, n), (n, 1), n // 2
    return nn.Concat(
        nn.Sequential(*conv_unit(in_channels, ch1x1, 1, **bn)),
        nn.Sequential(*conv_unit(in_channels, ch_red, 1, **bn),
                      *conv_unit(ch_red, ch_red, row, (0, p), **bn),
                      *conv_unit(ch_red, ch_nxn, col, (p, 0), **bn)),
        nn.Sequential(*conv_unit(in_channels, ch_dbl_red, 1, **bn),
                      *conv_unit(ch_dbl_red, ch_dbl_red, row, (0, p), **bn),
                      *conv_unit(ch_dbl_red, ch_dbl_red, col, (p, 0), **bn),
                      *conv_unit(ch_dbl_red, ch_dbl_red, row, (0, p), **bn),
                      *conv_unit(ch_dbl_red, ch_dbl, col, (p, 0), **bn)),
        nn.Sequential(_pool(pool), *conv_unit(in_channels, pool_proj, 1, **bn)),
    )  # fmt: skip


def googlenet(
    in_channels: int = 3,
    num_classes: int = 10,
    input_size: int = 32,
    *,
    width: float = 1.0,
    batch_norm: bool = False,
    dropout: float = 0.4,
    init: str = "msra",
    rng: np.random.Generator | None = None,
) -> nn.Sequential:
    """GoogLeNet: a stem, nine Inception modules, global average pooling, dropout, a classifier.

    The nine modules have table 1's channel numbers (times ``width``, rounded half up, at least
    1), and every convolution is followed by ReLU. Stages, with ``S = input_size``
    (``S = 32``: 32, 16, 8; ``S = 28``: 28, 14, 7, the paper's grid sizes from 3a on):

    ====================  ================================================  ==================
    indices               layers                                            output
    ====================  ================================================  ==================
    0-5                   stem: conv 3x3 (64), conv 1x1 (64), conv 3x3      192 x S x S
                          (192), padding keeps the size, each with ReLU
    6, 7                  inception 3a, 3b                                  480 x S x S
    8                     max pool 3x3 stride 2 (ceil mode)                 480 x S/2 x S/2
    9-13                  inception 4a, 4b, 4c, 4d, 4e                      832 x S/2 x S/2
    14                    max pool 3x3 stride 2 (ceil mode)                 832 x S/4 x S/4
    15, 16                inception 5a, 5b                                  1024 x S/4 x S/4
    17-20                 global average pool, flatten, dropout 0.4,        num_classes
                          linear
    ====================  ================================================  ==================

    (With ``batch_norm=True`` each stem conv gains a BatchNorm2d, so the indices from 2 on
    shift; sizes are rounded up: ``ceil((S - 3) / 2) + 1``.)

    Departures from the paper:

    - Stem. At 224x224 the paper reaches the 28x28 grid of inception 3a with conv 7x7/2, max
      pool 3x3/2, conv 1x1 (64), conv 3x3 (192), max pool 3x3/2, with local response norm after
      the first pool and after the 3x3 conv (figure 3). A 28 or 32 pixel image is already at
      that grid, so the stem keeps the three convolutions' channel numbers but drops their
      downsampling: the 7x7/2 becomes a 3x3 stride-1 conv, and the two pools and the two LRN
      layers are left out. Inputs of 28x28 then see exactly the paper's grids from 3a on.
    - No auxiliary classifiers (section 5 adds two, on 4a and 4d, weighted 0.3 in training and
      dropped at test time; they were meant to help a 22-layer net train, and here the net
      outputs one array of scores).
    - ``batch_norm=True`` (off by default; not in the paper) puts BatchNorm2d between every
      conv and its ReLU, as later CIFAR versions do.
    - Initialisation: ``init="msra"`` (He et al. 2015, see ``blocks.initialize``) for the
      convs; the paper does not give its initialisation. ``init="pytorch"`` keeps the default.
    - The stride-2 pools round their output size up (ceil mode), as Caffe's pooling does in the
      BVLC reproduction of GoogLeNet and as torchvision's GoogLeNet does.

    Shape: ``(N, in_channels, input_size, input_size) -> (N, num_classes)``.
    """
    if input_size < 7:
        raise ValueError(
            f"GoogLeNet needs input_size >= 7 (two 3x3 stride-2 max pools), got {input_size}"
        )
    rng = rng if rng is not None else np.random.default_rng()
    c1, c2, c3 = (scale_width(c, width) for c in (64, 64, 192))
    layers: list[nn.Module] = [
        *conv_unit(in_channels, c1, 3, 1, batch_norm=batch_norm, rng=rng),
        *conv_unit(c1, c2, 1, batch_norm=batch_norm, rng=rng),
        *conv_unit(c2, c3, 3, 1, batch_norm=batch_norm, rng=rng),
    ]
    channels = c3
    for name, table_row in GOOGLENET_MODULES.items():
        ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj = (
            scale_width(c, width) for c in table_row
        )
        layers.append(
            inception_v1_module(channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                                batch_norm=batch_norm, rng=rng)
        )  # fmt: skip
        channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        if name in _POOL_AFTER:
            layers.append(nn.MaxPool2d(3, stride=2, ceil_mode=True))
    layers += [
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout, rng=rng),
        nn.Linear(channels, num_classes, rng=rng),
    ]
    return initialize(nn.Sequential(*layers), init, rng)

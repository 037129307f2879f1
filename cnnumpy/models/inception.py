"""Inception modules: v1 (GoogLeNet) and the factorised v3 modules, as ``nn.Concat`` blocks.

Each module runs four branches on the same input and joins their outputs on the channel axis,
in the order ``[1x1, 3x3 (or n x n), 5x5 (or double), pool]`` (PyTorch's torchvision order).
Every branch is a flat ``nn.Sequential`` of conv units, ``conv - [batch norm] - ReLU``, so the
``state_dict`` keys read ``"<branch>.<layer>.weight"`` (``"1.2.weight"`` is the second conv of
the 3x3 branch). All convolutions have stride 1 and "same" padding: every branch keeps the
``H x W`` of the input, which is what lets ``Concat`` join them.

The file also holds the small helpers the AlexNet, VGG and GoogLeNet builders share:
``scale_width`` (the ``width`` multiplier) and ``conv_unit``.

References: Szegedy et al. 2014, "Going deeper with convolutions" (figure 2(b), table 1);
Szegedy et al. 2015, "Rethinking the Inception Architecture for Computer Vision" (figures 5
and 6, section 3).
"""

from __future__ import annotations

import numpy as np

from .. import nn


def scale_width(channels: int, width: float) -> int:
    """``channels * width`` rounded half up, and at least 1: the width multiplier of the zoo."""
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    return max(1, int(np.floor(channels * width + 0.5)))


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

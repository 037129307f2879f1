"""GoogLeNet (Inception v1; Szegedy et al. 2014, "Going deeper with convolutions"), with its
stem adapted to 28x28 and 32x32 images."""

from __future__ import annotations

import numpy as np

from .. import nn
from ._init import initialize
from .inception import conv_unit, inception_v1_module, scale_width

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
    - Initialisation: ``init="msra"`` (He et al. 2015, see ``_init.initialize``) for the
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

"""VGG nets (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale Image
Recognition"), with the classifier adapted to 28x28 and 32x32 images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import nn
from .blocks import initialize, scale_width

# Table 1 of the paper: an int is a 3x3 conv (padding 1) with that many filters, "M" a 2x2
# max pool with stride 2, and a (filters, kernel) pair the 1x1 convs of configuration C.
VGG_CONFIGS: dict[str, tuple[int | str | tuple[int, int], ...]] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "C": (64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M",
          512, 512, (512, 1), "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"),
}  # fmt: skip


def vgg(
    config: str | Sequence[int | str | tuple[int, int]],
    in_channels: int = 3,
    num_classes: int = 10,
    input_size: int = 32,
    *,
    width: float = 1.0,
    hidden: int = 512,
    batch_norm: bool = False,
    dropout: float = 0.5,
    init: str = "msra",
    rng: np.random.Generator | None = None,
) -> nn.Sequential:
    """A VGG net from a column of table 1 (``"A"``, ``"B"``, ``"C"``, ``"D"``, ``"E"``) or from
    an explicit list in the same notation (see ``VGG_CONFIGS``).

    Features (section 2.1): stacks of 3x3 convolutions with stride 1 and padding 1, each followed
    by ReLU (with ``batch_norm=True``: conv without bias, BatchNorm2d, ReLU, which is not in the
    paper), and a 2x2 stride-2 max pool after each stack. Filter numbers are multiplied by
    ``width`` (rounded half up, at least 1) so tests can shrink the net.

    Classifier: flatten, linear to ``hidden``, ReLU, dropout, linear to ``hidden``, ReLU,
    dropout, linear to ``num_classes`` (dropout ``0.5`` in the first two, section 3.1).

    Departures from the paper, which takes 224x224 crops:

    - After the five pools a 32x32 image is a ``512 x 1 x 1`` map (the paper's is ``512 x 7 x 7``),
      so the hidden layers are ``hidden = 512`` wide by default instead of 4096: a 4096-wide layer
      on 512 inputs would be eight times wider than what it reads.
    - The pools round their output size up (ceil mode). For even sizes this changes nothing
      (32 -> 16 -> 8 -> 4 -> 2 -> 1, as the paper's 224 -> ... -> 7); a 28x28 image goes
      28 -> 14 -> 7 -> 4 -> 2 -> 1, the pool on the 7x7 map taking a last window of one row and
      one column. (With floor rounding 28x28 would end at 0x0.) Any ``input_size >= 17`` works
      with five pools; the classifier reads ``C x s x s`` values for the final size ``s``.
    - Initialisation: ``init="msra"`` (He et al. 2015, see ``blocks.initialize``) for the
      convs. The paper trained A from N(0, 0.01) and started the deeper nets from A's trained
      layers, noting after submission that Glorot & Bengio's random initialisation also works
      (section 3.1); ``init="pytorch"`` keeps PyTorch's default draw.
    - No LRN variant (configuration A-LRN).

    Shape: ``(N, in_channels, input_size, input_size) -> (N, num_classes)``.
    """
    if isinstance(config, str):
        if config not in VGG_CONFIGS:
            raise ValueError(f"unknown VGG config {config!r}; choose one of {sorted(VGG_CONFIGS)}")
        config = VGG_CONFIGS[config]
    pools = sum(1 for entry in config if entry == "M")
    smallest = 2 ** (pools - 1) + 1 if pools else 1
    if input_size < smallest:
        raise ValueError(
            f"this VGG config has {pools} 2x2 max pools and needs input_size >= {smallest}, "
            f"got {input_size}"
        )
    rng = rng if rng is not None else np.random.default_rng()
    layers: list[nn.Module] = []
    channels, size = in_channels, input_size
    for entry in config:
        if entry == "M":
            layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
            size = -(-size // 2)
            continue
        filters, kernel = entry if isinstance(entry, tuple) else (entry, 3)
        filters = scale_width(filters, width)
        layers.append(nn.Conv2d(channels, filters, kernel, padding=kernel // 2,
                                bias=not batch_norm, rng=rng))  # fmt: skip
        if batch_norm:
            layers.append(nn.BatchNorm2d(filters))
        layers.append(nn.ReLU())
        channels = filters
    layers += [
        nn.Flatten(),
        nn.Linear(channels * size * size, hidden, rng=rng), nn.ReLU(), nn.Dropout(dropout, rng=rng),
        nn.Linear(hidden, hidden, rng=rng), nn.ReLU(), nn.Dropout(dropout, rng=rng),
        nn.Linear(hidden, num_classes, rng=rng),
    ]  # fmt: skip
    return initialize(nn.Sequential(*layers), init, rng)


def vgg11(
    in_channels: int = 3, num_classes: int = 10, input_size: int = 32, **kwargs: Any
) -> nn.Sequential:
    """VGG-11, configuration A of table 1 (8 conv + 3 linear layers); ``kwargs`` (``width``,
    ``hidden``, ``batch_norm``, ``dropout``, ``init``, ``rng``) as in ``vgg``."""
    return vgg("A", in_channels, num_classes, input_size, **kwargs)


def vgg13(
    in_channels: int = 3, num_classes: int = 10, input_size: int = 32, **kwargs: Any
) -> nn.Sequential:
    """VGG-13, configuration B of table 1 (10 conv + 3 linear layers); ``kwargs`` (``width``,
    ``hidden``, ``batch_norm``, ``dropout``, ``init``, ``rng``) as in ``vgg``."""
    return vgg("B", in_channels, num_classes, input_size, **kwargs)


def vgg16(
    in_channels: int = 3, num_classes: int = 10, input_size: int = 32, **kwargs: Any
) -> nn.Sequential:
    """VGG-16, configuration D of table 1 (13 conv + 3 linear layers); ``kwargs`` (``width``,
    ``hidden``, ``batch_norm``, ``dropout``, ``init``, ``rng``) as in ``vgg``."""
    return vgg("D", in_channels, num_classes, input_size, **kwargs)


def vgg19(
    in_channels: int = 3, num_classes: int = 10, input_size: int = 32, **kwargs: Any
) -> nn.Sequential:
    """VGG-19, configuration E of table 1 (16 conv + 3 linear layers); ``kwargs`` (``width``,
    ``hidden``, ``batch_norm``, ``dropout``, ``init``, ``rng``) as in ``vgg``."""
    return vgg("E", in_channels, num_classes, input_size, **kwargs)

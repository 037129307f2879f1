"""AlexNet (Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with Deep
Convolutional Neural Networks"), scaled to 28x28 and 32x32 images."""

from __future__ import annotations

import numpy as np

from .. import nn
from .blocks import INITS, initialize

# Section 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75 in
#   b_c = a_c / (k + alpha * sum_{c' = c - n/2}^{c + n/2} a_c'^2) ** beta.
# nn.LocalResponseNorm (like PyTorch's) divides its alpha by the size, so the paper's
# normalisation is LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2).
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0


def _pooled(size: int) -> int:
    """Output length of the overlapping 3x3 stride-2 max pool (section 3.4)."""
    return (size - 3) // 2 + 1


def alexnet(
    in_channels: int = 3,
    num_classes: int = 10,
    input_size: int = 32,
    *,
    widths: tuple[int, int, int, int, int] = (96, 256, 384, 384, 256),
    hidden: tuple[int, ...] = (4096, 4096),
    conv1: tuple[int, int, int] = (5, 1, 2),
    groups: bool = False,
    lrn: bool = True,
    dropout: float = 0.5,
    init: str = "msra",
    rng: np.random.Generator | None = None,
) -> nn.Sequential:
    """AlexNet: five convolutions and three fully connected layers (section 3.5, figure 2).

    Layers, each conv and hidden linear layer followed by ReLU (section 3.1):

    - conv1 (``widths[0]`` filters, ``conv1 = (kernel, stride, padding)``), ReLU, LRN, max pool;
    - conv2 (``widths[1]``, 5x5, padding 2), ReLU, LRN, max pool;
    - conv3, conv4 (``widths[2]``, ``widths[3]``, 3x3, padding 1), ReLU each;
    - conv5 (``widths[4]``, 3x3, padding 1), ReLU, max pool;
    - flatten, then for each width in ``hidden``: linear, ReLU, dropout(``dropout``); then a
      linear layer to ``num_classes``.

    The response normalisation follows the ReLU of conv1 and conv2 and precedes their pools, with
    the paper's constants (section 3.3; see ``LRN_ALPHA`` for how alpha is passed). The pools
    overlap: 3x3 windows with stride 2 (section 3.4). Dropout is in the two hidden layers
    (section 4.2), in the inverted form (scale by 1/(1-p) in training) rather than the paper's
    "multiply the outputs by 0.5 at test time", which is the same network in expectation.

    ``groups=True`` reproduces the two-GPU split (section 3.2, figure 2): conv2, conv4 and conv5
    only read the maps on their own GPU, i.e. are grouped convolutions with ``groups=2``, while
    conv3 and the linear layers read both halves. (The response normalisation here runs over all
    channels, also across the boundary between the halves.) ``lrn=False`` drops the
    normalisation (section 3.3 credits it with 1.4% top-1 and 1.2% top-5 error).

    Departures from the paper, which takes 224x224 images (figure 2):

    - conv1 is 5x5 with stride 1 and padding 2 by default instead of 11x11 with stride 4. At
      224 pixels the stride-4 filter gives a 55x55 map; on a 32 pixel image it would give 7x7,
      too small for the three 3x3/2 pools (7 -> 3 -> 1 -> none), so the first layer keeps the
      full resolution. ``conv1=(11, 4, 2)`` with ``input_size=224`` gives the ImageNet geometry.
    - The hidden widths default to the paper's 4096, even though the conv part ends with only
      ``256 x 3 x 3 = 2304`` values at 32x32; pass e.g. ``hidden=(1024, 512)`` for a net
      proportioned to CIFAR-10.
    - Initialisation: ``init="msra"`` (He et al. 2015, see ``blocks.initialize``) for the
      convs by default. ``init="paper"`` is section 5's: every weight from N(0, 0.01), biases 1
      in conv2, conv4, conv5 and the hidden linear layers (positive inputs for their ReLUs,
      to speed up early learning) and 0 elsewhere.
      ``init="pytorch"`` keeps PyTorch's default draw.

    Shapes per stage with the defaults (``input_size`` 32 / 28):
    conv1 ``96x32x32 / 96x28x28`` -> pool ``96x15x15 / 96x13x13`` -> conv2 ``256x15x15 /
    256x13x13`` -> pool ``256x7x7 / 256x6x6`` -> conv3, conv4 ``384x7x7 / 384x6x6`` -> conv5
    ``256x7x7 / 256x6x6`` -> pool ``256x3x3 / 256x2x2`` -> flatten ``2304 / 1024`` -> 4096 ->
    4096 -> ``num_classes``. Overall:
    ``(N, in_channels, input_size, input_size) -> (N, num_classes)``.
    """
    if len(widths) != 5:
        raise ValueError(f"widths must give the 5 conv widths, got {widths!r}")
    k1, s1, p1 = conv1
    size = (input_size + 2 * p1 - k1) // s1 + 1
    sizes = [size, _pooled(size), _pooled(_pooled(size))]
    if min(sizes) < 3:
        raise ValueError(
            f"input_size={input_size} is too small for AlexNet with conv1={conv1}: the maps "
            f"before its three 3x3 max pools would be {sizes} pixels wide (each must be >= 3)"
        )
    g = 2 if groups else 1
    if groups and any(w % 2 for w in widths):
        raise ValueError(
            f"groups=True splits the convs into two halves (the paper's two GPUs), so every "
            f"width must be even, got {widths!r}"
        )
    if init not in (*INITS, "paper"):
        raise ValueError(f"init must be one of {(*INITS, 'paper')}, got {init!r}")
    rng = rng if rng is not None else np.random.default_rng()
    w1, w2, w3, w4, w5 = widths

    def norm() -> list[nn.Module]:
        return (
            [nn.LocalResponseNorm(LRN_SIZE, LRN_SIZE * LRN_ALPHA, LRN_BETA, LRN_K)] if lrn else []
        )

    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, w1, k1, stride=s1, padding=p1, rng=rng), nn.ReLU(), *norm(),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(w1, w2, 5, padding=2, groups=g, rng=rng), nn.ReLU(), *norm(),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(w2, w3, 3, padding=1, rng=rng), nn.ReLU(),
        nn.Conv2d(w3, w4, 3, padding=1, groups=g, rng=rng), nn.ReLU(),
        nn.Conv2d(w4, w5, 3, padding=1, groups=g, rng=rng), nn.ReLU(),
        nn.MaxPool2d(3, stride=2),
        nn.Flatten(),
    ]  # fmt: skip
    features = w5 * _pooled(sizes[2]) ** 2
    for h in hidden:
        layers += [nn.Linear(features, h, rng=rng), nn.ReLU(), nn.Dropout(dropout, rng=rng)]
        features = h
    layers.append(nn.Linear(features, num_classes, rng=rng))
    model = nn.Sequential(*layers)
    return _paper_init(model, rng) if init == "paper" else initialize(model, init, rng)


def _paper_init(model: nn.Sequential, rng: np.random.Generator) -> nn.Sequential:
    """Section 5: weights ~ N(0, 0.01^2); biases 1 in conv2, conv4, conv5 and the hidden linear
    layers, 0 in conv1, conv3 and the output layer."""
    weighted = [m for m in model.children() if isinstance(m, nn.Conv2d | nn.Linear)]
    ones = {1, 3, 4, *range(5, len(weighted) - 1)}  # conv2, conv4, conv5, hidden linears
    for i, m in enumerate(weighted):
        m.weight.data = rng.normal(0.0, 0.01, m.weight.shape).astype(m.weight.dtype)
        m.bias.data[...] = 1.0 if i in ones else 0.0
    return model

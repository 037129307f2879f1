"""The CS231n assignment networks: a fully connected net and the three-layer convnet."""

from __future__ import annotations

import numpy as np

from .. import nn


def three_layer_convnet(
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 28,
    num_filters: int = 32,
    filter_size: int | None = None,
    hidden_dim: int = 100,
    *,
    rng: np.random.Generator | None = None,
) -> nn.Sequential:
    """CS231n's ``ThreeLayerConvNet``: conv - relu - 2x2 max pool - affine - relu - affine.

    The conv keeps the spatial size (stride 1, padding ``(filter_size - 1) // 2``), so the
    pooled map is ``num_filters x input_size/2 x input_size/2``. ``filter_size`` defaults to
    CS231n's 7 for inputs of 16 pixels or more, and to 3 for smaller ones (the 8x8 digits),
    where a 7x7 filter would see almost the whole image. Shape:
    ``(N, in_channels, input_size, input_size) -> (N, num_classes)`` scores for softmax.
    """
    if filter_size is None:
        filter_size = 7 if input_size >= 16 else 3
    if filter_size % 2 == 0:
        raise ValueError(f"filter_size must be odd to keep the size, got {filter_size}")
    rng = rng if rng is not None else np.random.default_rng()
    pooled = input_size // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, num_filters, filter_size, padding=filter_size // 2, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(num_filters * pooled * pooled, hidden_dim, rng=rng),
        nn.ReLU(),
        nn.Linear(hidden_dim, num_classes, rng=rng),
    )


def fully_connected_net(
    hidden_dims: tuple[int, ...] = (100, 100),
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 28,
    normalization: str | None = None,
    dropout: float = 0.0,
    *,
    rng: np.random.Generator | None = None,
) -> nn.Sequential:
    """CS231n's ``FullyConnectedNet``: {affine - [batchnorm] - relu - [dropout]} x L - affine.

    ``dropout`` is the probability of dropping a unit (PyTorch's meaning). Shape:
    ``(N, in_channels, input_size, input_size)`` (or ``(N, D)``) ``-> (N, num_classes)``.
    """
    if normalization not in (None, "batchnorm"):
        raise ValueError(f"normalization must be None or 'batchnorm', got {normalization!r}")
    rng = rng if rng is not None else np.random.default_rng()
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_channels * input_size * input_size
    for hidden in hidden_dims:
        layers.append(nn.Linear(width, hidden, rng=rng))
        if normalization == "batchnorm":
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout, rng=rng))
        width = hidden
    layers.append(nn.Linear(width, num_classes, rng=rng))
    return nn.Sequential(*layers)

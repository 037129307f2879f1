"""The model zoo: functions that build an ``nn.Module`` for a given input and class count.

Every builder takes ``in_channels``, ``num_classes``, ``input_size`` and ``rng`` keywords, so
the command line can build any of them by name. Each registry entry also names ``tiny``
keyword arguments: a reduced width that keeps gradient checks and smoke tests fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import nn
from .cs231n import fully_connected_net, three_layer_convnet
from .lenet import lenet5, lenet5_modern, lenet5_preprocess, lenet_theano


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., nn.Module]
    description: str
    tiny: dict[str, Any] = field(default_factory=dict)
    input_size: int = 28  # the image size it is designed for: the command line's default


MODELS: dict[str, ModelSpec] = {
    "convnet": ModelSpec(
        three_layer_convnet,
        "CS231n three-layer convnet: conv-relu-pool-affine-relu-affine",
        {"num_filters": 3, "filter_size": 3, "hidden_dim": 7},
    ),
    "fc": ModelSpec(
        fully_connected_net,
        "CS231n fully connected net: {affine-[bn]-relu-[dropout]} x L - affine",
        {"hidden_dims": (6, 5), "normalization": "batchnorm", "dropout": 0.2},
    ),
    "lenet5": ModelSpec(
        lenet5,
        "LeNet-5 (LeCun et al. 1998): C3 table, scaled tanh, trainable subsampling, RBF + MAP",
        input_size=32,
    ),
    "lenet5_modern": ModelSpec(
        lenet5_modern,
        "LeNet-5's shape with ReLU, max pooling, full C3, softmax; optional BN/dropout",
        {"widths": (2, 3, 4, 5)},
        input_size=32,
    ),
    "lenet_theano": ModelSpec(
        lenet_theano,
        "Theano tutorial LeNet: conv-pool-tanh x2, 500 tanh units, logistic regression",
        {"nkerns": (2, 3), "hidden": 5},
    ),
}


def build_model(name: str, *, tiny: bool = False, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name``; ``tiny=True`` applies its reduced widths."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    spec = MODELS[name]
    return spec.build(**({**spec.tiny, **kwargs} if tiny else kwargs))


__all__ = [
    "MODELS",
    "ModelSpec",
    "build_model",
    "fully_connected_net",
    "lenet5",
    "lenet5_modern",
    "lenet5_preprocess",
    "lenet_theano",
    "three_layer_convnet",
]

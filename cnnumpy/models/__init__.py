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


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., nn.Module]
    description: str
    tiny: dict[str, Any] = field(default_factory=dict)


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
}


def build_model(name: str, *, tiny: bool = False, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name``; ``tiny=True`` applies its reduced widths."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    spec = MODELS[name]
    return spec.build(**({**spec.tiny, **kwargs} if tiny else kwargs))


__all__ = ["MODELS", "ModelSpec", "build_model", "fully_connected_net", "three_layer_convnet"]

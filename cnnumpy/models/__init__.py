"""The model zoo: functions that build an ``nn.Module`` for a given input and class count.

Every builder takes ``in_channels``, ``num_classes``, ``input_size`` and ``rng`` keywords, so
the command line can build any of them by name.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import nn
from .cs231n import fully_connected_net, three_layer_convnet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "convnet": three_layer_convnet,
    "fc": fully_connected_net,
}


def build_model(name: str, **kwargs) -> nn.Module:
    """Build the model registered as ``name`` (see ``MODELS``)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)


__all__ = ["MODELS", "build_model", "fully_connected_net", "three_layer_convnet"]

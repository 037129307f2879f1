"""Recording what layers compute, with forward hooks: the one mechanism behind the summary
table and the feature-map figures.

Hooks are registered for one forward pass and removed in a ``finally``, so an exception inside
the model leaves it exactly as it was: no hooks, same training mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import numpy as np

from .. import nn

T = TypeVar("T")


def is_leaf(module: nn.Module) -> bool:
    """Whether ``module`` has no children (a layer rather than a container)."""
    return next(module.children(), None) is None


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(dotted name, layer)`` of every module without children, in definition order."""
    return [(name, m) for name, m in model.named_modules() if is_leaf(m)]


def record_calls(
    model: nn.Module,
    x: np.ndarray,
    modules: Iterable[tuple[str, nn.Module]],
    record: Callable[[str, nn.Module, tuple[np.ndarray, ...], np.ndarray], T | None],
) -> list[T]:
    """Run ``x: (N, ...)`` through ``model`` in eval mode and return ``record(name, module,
    inputs, output)`` for every call of one of ``modules``, in the order the calls finished
    (a module called twice is recorded twice); calls for which ``record`` returns None are
    left out.

    Every module's training mode is restored (a mix, such as frozen batch norm in a model
    that trains, stays a mix) and every hook removed afterwards, also when the forward raises.
    """
    records: list[T] = []
    handles = []
    modes = [(m, m.training) for m in model.modules()]
    try:
        for name, module in modules:

            def hook(m: nn.Module, inputs: tuple, output: np.ndarray, name: str = name) -> None:
                kept = record(name, m, inputs, output)
                if kept is not None:
                    records.append(kept)

            handles.append(module.register_forward_hook(hook))
        model.eval()
        model(x)
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes:
            m.training = training
    return records

"""Experiments that measure what the literature says about CNNs, each writing ``NAME.json``
(its numbers) and ``NAME.png`` (a figure) into an output directory.

Every experiment is a function ``run(data, out, *, seed, smoke_test, **sizes) -> dict`` taking
a normalised :class:`~cnnumpy.data.Dataset` (or None where it needs no data) and explicit sizes
whose defaults are the full runs reported in ``docs/experiments/index.md``;
:data:`EXPERIMENTS` names them with a one-line description, the ``quick`` sizes (seconds: a
smoke test whose numbers mean nothing) and a ``headline`` function that turns the numbers into
a few labelled lines. The command line is ``cnnumpy experiment NAME``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import activations, batchnorm, depth, dilation, dropout, inception, initialization
from ._common import SMOKE_TEST


@dataclass(frozen=True)
class Experiment:
    """One experiment: its ``run`` function, what it measures, the sizes of a smoke test, and
    ``headline(numbers) -> [(label, text), ...]`` summarising a run."""

    run: Callable[..., dict[str, Any]]
    description: str
    headline: Callable[[dict[str, Any]], list[tuple[str, str]]]
    quick: dict[str, Any] = field(default_factory=dict)
    needs_data: bool = True


EXPERIMENTS: dict[str, Experiment] = {
    "activations": Experiment(
        activations.run,
        "sigmoid/tanh/ReLU/leaky ReLU/PReLU in a 20-layer MLP: gradient norms per layer at "
        "init, training curves",
        activations.headline,
        {"depth": 6, "width": 16, "n_train": 200, "n_val": 50, "n_test": 50,
         "grad_batch": 32, "epochs": 1, "inits": ("xavier", "msra")},
    ),
    "init": Experiment(
        initialization.run,
        "Xavier vs MSRA vs gaussian(0.01) in a 20-layer ReLU MLP: activation variance per layer",
        initialization.headline,
        {"depth": 8, "width": 32, "batch": 64, "n_train": 300, "n_val": 100, "n_test": 100,
         "epochs": 1},
    ),
    "dropout": Experiment(
        dropout.run,
        "train/test gap with and without dropout on 1,000 images; inverted vs classic dropout",
        dropout.headline,
        {"hidden": (32, 32), "n_train": 200, "n_val": 100, "n_test": 100, "epochs": 2,
         "mc_samples": 5},
    ),
    "batchnorm": Experiment(
        batchnorm.run,
        "convergence of an 8-hidden-layer MLP with and without batch norm at 4 learning rates",
        batchnorm.headline,
        {"depth": 3, "width": 16, "lrs": (0.01, 1.0), "n_train": 300, "n_val": 100,
         "n_test": 100, "epochs": 2},
    ),
    "depth": Experiment(
        depth.run,
        "plain vs residual CIFAR nets at 20 and 56 layers (reduced widths): training error",
        depth.headline,
        {"depths": (8, 14), "widths": (2, 2, 4), "n_train": 64, "n_val": 32, "n_test": 32,
         "epochs": 1, "batch_size": 32},
    ),
    "inception-1x1": Experiment(
        inception.run,
        "weights and multiply-adds of a 5x5 conv with and without a 1x1 reduction; accuracy",
        inception.headline,
        {"n_train": 100, "n_val": 50, "n_test": 50, "epochs": 1},
    ),
    "dilation": Experiment(
        dilation.run,
        "receptive field of stacked plain and dilated 3x3 convs: analytic and measured",
        dilation.headline,
        {"layers": 4},
        needs_data=False,
    ),
}  # fmt: skip

__all__ = [
    "EXPERIMENTS",
    "SMOKE_TEST",
    "Experiment",
    "activations",
    "batchnorm",
    "depth",
    "dilation",
    "dropout",
    "inception",
    "initialization",
]

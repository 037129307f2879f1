"""Every random Generator a training run draws from, registered by name in one place.

A run is repeatable, and a resumed run bit-identical, only if each Generator is back where it
was: the mini-batch order and the augmentation (the training loader's two), the sample SDLM
estimates its curvature on, and the ``rng`` of each noisy layer (dropout, noisy ReLU). The
:class:`Generators` registry lists them; a checkpoint saves :meth:`Generators.state_dict` and
resuming loads it back.

The names below are the ones the ``Solver`` has always written, so that older checkpoints
resume.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from ..checkpoint import rng_state, set_rng_state
from ..nn.module import Module

SHUFFLE_RNG = "solver.shuffle"
"""The training loader's order (``default_rng(seed)``)."""
AUGMENT_RNG = "solver.augment"
"""The training loader's transform (``default_rng([seed, 2])``), when it has one."""
CURVATURE_RNG = "solver.prepare"
"""SDLM's curvature sample (``default_rng([seed, 3])``), when the optimiser is SDLM."""


def named_rngs(model: Module, prefix: str = "model") -> Iterator[tuple[str, np.random.Generator]]:
    """``("model.<path>.rng", generator)`` for every module holding a Generator in ``rng``."""
    rng = getattr(model, "rng", None)
    if isinstance(rng, np.random.Generator):
        yield f"{prefix}.rng", rng
    for name, child in model.named_children():
        yield from named_rngs(child, f"{prefix}.{name}")


class Generators:
    """The registry: Generators added by name, plus the model's noisy layers' ``rng``.

    The model's are looked up on each call (so a layer given a new Generator is still found);
    the others are added once with :meth:`register`.
    """

    def __init__(self, model: Module | None = None) -> None:
        self.model = model
        self._registered: dict[str, np.random.Generator] = {}

    def register(self, name: str, rng: np.random.Generator) -> np.random.Generator:
        """Add ``rng`` under ``name`` (a name is taken once); return it."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"{name}: expected a numpy Generator, got {type(rng).__name__}")
        if self._registered.get(name, rng) is not rng:
            raise ValueError(f"a different Generator is registered as {name!r} already")
        self._registered[name] = rng
        return rng

    def generators(self) -> dict[str, np.random.Generator]:
        """Every Generator by name: the registered ones, then the model's."""
        found = dict(named_rngs(self.model)) if self.model is not None else {}
        clash = sorted(set(found) & set(self._registered))
        if clash:
            raise ValueError(f"Generator names registered twice: {clash}")
        return {**self._registered, **found}

    def state_dict(self) -> dict[str, dict]:
        """JSON-ready ``bit_generator.state`` of each Generator, by name."""
        return {name: rng_state(rng) for name, rng in self.generators().items()}

    def load_state_dict(self, states: Mapping[str, Mapping], source: str = "the state") -> None:
        """Put every Generator back into its saved state; ValueError naming ``source`` when one
        has none there (nothing is changed then). Saved states nobody asks for are ignored."""
        wanted = self.generators()
        missing = sorted(set(wanted) - set(states))
        if missing:
            raise ValueError(f"{source} has no state for the generators {missing}")
        for name, rng in wanted.items():
            set_rng_state(rng, states[name], name)

    def __repr__(self) -> str:
        return f"Generators({', '.join(self.generators())})"

"""``CurvatureRefresh``: SDLM's curvature estimate, redone before every epoch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...optim.sdlm import SDLM
from ..rngs import CURVATURE_RNG
from .base import PRIORITY_EDITOR, Callback

if TYPE_CHECKING:
    from ..trainer import Trainer


class CurvatureRefresh(Callback):
    """At ``on_epoch_begin`` (the model in train mode, as the gradient passes will run): the
    :class:`~cnnumpy.optim.SDLM` optimiser re-estimates its diagonal curvature on
    ``optimizer.samples`` training patterns (all when fewer), drawn without replacement and
    held fixed for the epoch, as LeCun et al. (1998) redo it before each pass.

    The sample is drawn from a Generator of its own, ``default_rng([seed, 3])``, registered as
    ``solver.prepare``: the draws are reproducible and a resumed run stays bit-identical.
    """

    priority = PRIORITY_EDITOR

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng([seed, 3])

    def set_trainer(self, trainer: Trainer) -> None:
        if not isinstance(trainer.optimizer, SDLM):
            raise TypeError(
                f"CurvatureRefresh needs the SDLM optimizer, got {type(trainer.optimizer).__name__}"
            )
        super().set_trainer(trainer)
        trainer.rngs.register(CURVATURE_RNG, self.rng)

    def on_epoch_begin(self, epoch: int) -> None:
        t = self.trainer
        n = t.train_loader.labels.shape[0]
        pick = np.sort(self.rng.choice(n, size=min(t.optimizer.samples, n), replace=False))
        x, y = t.train_loader.gather(pick)
        t.optimizer.estimate_curvature(t.model, t.loss, x, y)

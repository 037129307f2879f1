"""``Divergence``: stop a run whose loss has blown up, before anything keeps or saves it."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DivergenceError
from .base import PRIORITY_WRITER, Callback

DEFAULT_FACTOR = 10.0
"""How many times its starting loss an epoch's mean loss may reach; a run that is learning
stays far below its starting loss, one whose steps are too large passes it within an epoch."""


class Divergence(Callback):
    """At ``on_epoch_end``, first of all (so a diverged epoch is not evaluated, marked best,
    logged or saved): raises :class:`~cnnumpy.train.DivergenceError` when

    * a parameter holds NaN or infinity, or
    * the epoch's mean training loss is more than ``factor`` times the run's starting loss:
      that of its first mini-batch, measured on the untrained model (``history["loss"][0]``,
      which a resumed run keeps).

    ``factor=None`` (or 0) checks the parameters only; the growth rule is skipped, too, when
    the starting loss is not positive. A NaN or infinite loss is caught earlier, at its
    mini-batch, by the Trainer. The message names the epoch, both losses and the last good
    checkpoint, which the error leaves untouched.
    """

    priority = PRIORITY_WRITER + 50

    def __init__(self, factor: float | None = DEFAULT_FACTOR) -> None:
        if factor is not None and not factor >= 0:
            raise ValueError(f"factor must be None or >= 0, got {factor!r}")
        self.factor = factor or None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        t = self.trainer
        broken = [name for name, p in t.model.named_parameters() if not np.isfinite(p.data).all()]
        if broken:
            shown = ", ".join(broken[:3]) + (
                f" and {len(broken) - 3} more" if len(broken) > 3 else ""
            )
            raise DivergenceError(
                f"training diverged in epoch {epoch}: the parameters {shown} hold NaN or "
                f"infinite values; {t.checkpoint_note()}"
            )
        losses = t.history["loss"]
        start, mean = (losses[0] if losses else None), logs["loss"]
        if self.factor is not None and start is not None and start > 0:
            if mean > self.factor * start:
                raise DivergenceError(
                    f"training diverged in epoch {epoch}: its mean loss {mean:.4g} is more than "
                    f"{self.factor:g} times the starting loss {start:.4g} (the first "
                    f"mini-batch's, before any step); {t.checkpoint_note()}"
                )

    def __repr__(self) -> str:
        return f"Divergence(factor={self.factor})"

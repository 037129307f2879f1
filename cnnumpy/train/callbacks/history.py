"""``History``: the record of a run that ``history.json`` holds and the plots draw."""

from __future__ import annotations

import math
from typing import Any

from .base import Callback

EPOCH_KEYS = ("train_acc", "val_loss", "val_acc", "lr")
"""Recorded once per epoch; ``loss`` is recorded once per mini-batch."""


class History(Callback):
    """Records each mini-batch's ``loss`` (at ``on_train_batch_end``) and each epoch's
    ``train_acc``, ``val_loss``, ``val_acc`` and ``lr`` (at ``on_epoch_end``, NaN for one no
    callback measured) in :attr:`history`.

    The Trainer makes one itself, first among the readers, and its ``history`` is this dict;
    checkpoints save it whole (as ``history``, not as a callback state).
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {key: [] for key in ("loss", *EPOCH_KEYS)}

    def on_train_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        self.history["loss"].append(logs["loss"])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        for key in EPOCH_KEYS:
            self.history[key].append(logs.get(key, math.nan))

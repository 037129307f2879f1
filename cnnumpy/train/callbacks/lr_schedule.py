"""``LRSchedule``: step a learning-rate scheduler once per epoch."""

from __future__ import annotations

from typing import Any

from .base import PRIORITY_EDITOR, Callback


class LRSchedule(Callback):
    """At ``on_epoch_end`` (an editor, after :class:`Evaluate`): ``scheduler.step()``, or
    ``scheduler.step(logs[monitor])`` when a ``monitor`` is named, as
    :class:`~cnnumpy.optim.ReduceLROnPlateau` needs (``monitor="val_acc"`` with
    ``mode="max"``). The next epoch trains with the rate it sets; the logs keep the rate this
    epoch trained with. The scheduler's state is saved with the checkpoints.
    """

    priority = PRIORITY_EDITOR

    def __init__(self, scheduler: Any, monitor: str | None = None) -> None:
        self.scheduler, self.monitor = scheduler, monitor

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.monitor is None:
            self.scheduler.step()
        elif self.monitor not in logs:
            raise KeyError(f"LRSchedule monitors {self.monitor!r}, which no callback wrote")
        else:
            self.scheduler.step(logs[self.monitor])

    def state_dict(self) -> dict[str, Any]:
        return dict(self.scheduler.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)

    def __repr__(self) -> str:
        monitor = "" if self.monitor is None else f", monitor={self.monitor!r}"
        return f"LRSchedule({type(self.scheduler).__name__}{monitor})"

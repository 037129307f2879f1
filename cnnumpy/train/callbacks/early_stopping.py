"""``EarlyStopping``: stop once a validation score has not improved for ``patience`` epochs."""

from __future__ import annotations

from typing import Any

from .base import PRIORITY_EDITOR, Callback


class EarlyStopping(Callback):
    """At ``on_epoch_end`` (an editor, after :class:`Evaluate`): when ``logs[monitor]`` has
    not beaten its best (strictly: higher for ``mode="max"``, lower for ``"min"``) for
    ``patience`` epochs in a row, sets ``trainer.stop_training``, so the epoch just ended is
    the last. With the default ``val_acc`` that is ``patience`` epochs after the best one.
    """

    priority = PRIORITY_EDITOR
    optional_state = True  # a patience given when a run is resumed starts counting there

    def __init__(self, patience: int, monitor: str = "val_acc", mode: str = "max") -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an int >= 1, got {patience!r}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.patience, self.monitor, self.mode = patience, monitor, mode
        self.best: float | None = None
        self.wait = 0  # epochs since the best

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, which no callback wrote")
        score = logs[self.monitor]
        if self.best is None or (score > self.best if self.mode == "max" else score < self.best):
            self.best, self.wait = score, 0
        else:
            self.wait += 1
        if self.should_stop():
            self.trainer.stop_training = True

    def should_stop(self) -> bool:
        """Whether ``patience`` epochs have passed without progress."""
        return self.wait >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        best, wait = state["best"], state["wait"]
        if isinstance(best, bool) or not isinstance(best, (int, float, type(None))):
            raise ValueError(f"EarlyStopping: best must be a number or None, got {best!r}")
        if isinstance(wait, bool) or not isinstance(wait, int) or wait < 0:
            raise ValueError(f"EarlyStopping: wait must be an int >= 0, got {wait!r}")
        self.best, self.wait = best, wait

    def __repr__(self) -> str:
        return f"EarlyStopping(patience={self.patience}, monitor={self.monitor!r})"

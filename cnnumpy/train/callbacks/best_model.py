"""``BestModel``: keep the weights of the best epoch and leave them in the model at the end."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...checkpoint._arrays import BEST_PREFIX as STATE_PREFIX
from .base import PRIORITY_EDITOR, Callback

"""Of the kept weights' entries in the callback's state (``state.0.weight``, ...)."""


class BestModel(Callback):
    """At ``on_epoch_end`` (an editor, after :class:`Evaluate`): when ``logs[monitor]`` beats
    the best so far (strictly: higher for ``mode="max"``, lower for ``"min"``), copies the
    model's state into :attr:`best_state` and marks the epoch ``logs["best"] = True``. At
    ``on_train_end`` loads :attr:`best_state` back into the model, as the CS231n Solver does.

    ``monitor=None`` selects nothing (training without a validation set, as LeNet-5's paper
    did): every epoch is the kept one, so training ends with the last epoch's weights.
    """

    priority = PRIORITY_EDITOR

    def __init__(self, monitor: str | None = "val_acc", mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.best_score: float | None = None
        self.best_epoch = 0
        self.best_state: dict[str, np.ndarray] | None = None

    def _improves(self, score: float) -> bool:
        if self.best_score is None:
            return True
        return score > self.best_score if self.mode == "max" else score < self.best_score

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        score = None
        if self.monitor is not None:
            if self.monitor not in logs:
                raise KeyError(f"BestModel monitors {self.monitor!r}, which no callback wrote")
            score = logs[self.monitor]
        improved = score is None or self._improves(score)
        if improved:
            self.best_epoch, self.best_state = epoch, self.trainer.model.state_dict()
            self.best_score = score
        logs["best"] = improved

    def on_train_end(self) -> None:
        if self.best_state is not None:
            self.trainer.model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"best_score": self.best_score, "best_epoch": self.best_epoch}
        for key, value in (self.best_state or {}).items():
            state[STATE_PREFIX + key] = value
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the best score, epoch and weights; ValueError (nothing changed) when the
        weights do not fit the trainer's model, so that a bad file fails before training and
        not when the weights are loaded back at the end."""
        score, epoch = state["best_score"], state["best_epoch"]
        if isinstance(score, bool) or not isinstance(score, (int, float, type(None))):
            raise ValueError(f"BestModel: best_score must be a number or None, got {score!r}")
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"BestModel: best_epoch must be an int >= 0, got {epoch!r}")
        kept = {k[len(STATE_PREFIX) :]: v for k, v in state.items() if k.startswith(STATE_PREFIX)}
        if epoch > 0 and not kept:
            raise ValueError(f"BestModel: the weights of the best epoch ({epoch}) are missing")
        if kept and hasattr(self, "trainer"):
            _check_fits(kept, self.trainer.model.state_dict())
        self.best_score, self.best_epoch, self.best_state = score, int(epoch), kept or None

    def __repr__(self) -> str:
        return f"BestModel(monitor={self.monitor!r}, mode={self.mode!r})"


def _check_fits(kept: dict[str, np.ndarray], model_state: dict[str, np.ndarray]) -> None:
    """ValueError naming each key the kept weights lack, add, or hold with another shape or
    dtype than the model."""
    problems = [f"missing {k}" for k in sorted(set(model_state) - set(kept))]
    problems += [f"unexpected {k}" for k in sorted(set(kept) - set(model_state))]
    for key in sorted(set(kept) & set(model_state)):
        got, want = np.asarray(kept[key]), model_state[key]
        if got.shape != want.shape or got.dtype != want.dtype:
            problems.append(
                f"{key} is {got.dtype} {got.shape}, the model's {want.dtype} {want.shape}"
            )
    if problems:
        raise ValueError("BestModel: the best weights do not fit the model: " + "; ".join(problems))

"""``Evaluate``: accuracy and loss on the validation set and on part of the training set, after
every epoch; and the prediction helpers it and the ``Solver`` share."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ...data.loader import DataLoader
from ...nn.module import Module
from .base import PRIORITY_WRITER, Callback


def predict_labels(loss: Any, scores: np.ndarray) -> np.ndarray:
    """Labels ``(B,)`` from a model's outputs ``(B, K)``: the loss's own ``predict`` (LeNet-5's
    MAP loss picks the smallest penalty), else the highest score."""
    pick = getattr(loss, "predict", None)
    return pick(scores) if pick is not None else scores.argmax(axis=1)


def predict(model: Module, loss: Any, batches: Iterable[np.ndarray]) -> np.ndarray:
    """Predicted labels ``(N,)`` for the input ``batches``, in eval mode; the model's mode is
    put back afterwards."""
    was_training = model.training
    model.eval()
    try:
        preds = [predict_labels(loss, model(x)) for x in batches]
    finally:
        model.train(was_training)
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def evaluate(
    model: Module, loss: Any, loader: DataLoader, bar: Any = None, comm: Any = None
) -> tuple[float, float]:
    """``(mean loss, accuracy)`` over ``loader``'s batches, in eval mode (the mode is put back).

    The loss is each batch's weighted by its size, so it is the mean over all samples. ``bar``
    (anything with ``update(n)``, e.g. a tqdm bar) is advanced by each batch's size. With a
    communicator ``comm`` of K ranks, each evaluating its shard of ``loader``
    (``shard=(rank, K)``), the sums of loss, correct answers and images are all-reduced: every
    rank returns the values over the whole set."""
    was_training = model.training
    model.eval()
    total, correct, count = 0.0, 0, 0
    try:
        for x, y in loader:
            scores = model(x)
            total += float(loss(scores, y)) * y.shape[0]
            correct += int(np.sum(predict_labels(loss, scores) == y))
            count += y.shape[0]
            if bar is not None:
                bar.update(y.shape[0])
    finally:
        model.train(was_training)
    if comm is not None and comm.size > 1:
        sums = comm.allreduce_(np.array([total, correct, count], np.float64))
        total, correct, count = float(sums[0]), int(sums[1]), int(sums[2])
    if count == 0:
        return math.nan, math.nan
    return total / count, correct / count


class Evaluate(Callback):
    """At ``on_epoch_end``, first of all (a writer): measures the model in eval mode and adds
    to the logs ``val_loss`` and ``val_acc`` on ``val_loader`` and ``train_acc`` on
    ``train_loader`` (a fixed part of the training set, measured the same way, not the running
    accuracy of the mini-batches). A loader that is None gives NaN.

    Give loaders without shuffling or transforms: evaluation sees the images as they are.
    While it runs, the trainer's :attr:`~cnnumpy.train.Trainer.evaluation_bar` (set by the
    ``Progress`` callback) shows how far it is.
    """

    priority = PRIORITY_WRITER

    def __init__(
        self, val_loader: DataLoader | None, train_loader: DataLoader | None = None
    ) -> None:
        self.val_loader, self.train_loader = val_loader, train_loader

    def set_trainer(self, trainer: Any) -> None:
        super().set_trainer(trainer)
        comm = getattr(trainer, "comm", None)
        wanted = (0, 1) if comm is None else (comm.rank, comm.size)
        for name, loader in (("val_loader", self.val_loader), ("train_loader", self.train_loader)):
            shard = getattr(loader, "shard", (0, 1))
            if loader is not None and shard != wanted:
                raise ValueError(
                    f"Evaluate's {name} must be sharded as the trainer's ranks: "
                    f"shard={wanted}, got {shard}"
                )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        logs["train_acc"] = math.nan
        if self.train_loader is not None:
            logs["train_acc"] = self._measure(self.train_loader, "training subset")[1]
        logs["val_loss"] = logs["val_acc"] = math.nan
        if self.val_loader is not None:
            logs["val_loss"], logs["val_acc"] = self._measure(self.val_loader, "validation")

    def _measure(self, loader: DataLoader, what: str) -> tuple[float, float]:
        t = self.trainer
        make_bar = getattr(t, "evaluation_bar", None)
        images = getattr(loader, "shard_samples", len(loader.labels))
        bar = None if make_bar is None else make_bar(images, what)
        try:
            return evaluate(t.model, t.loss, loader, bar, getattr(t, "comm", None))
        finally:
            if bar is not None:
                bar.close()

    def __repr__(self) -> str:
        return f"Evaluate(val_loader={self.val_loader}, train_loader={self.train_loader})"

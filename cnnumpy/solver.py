"""``Solver``: the CS231n-style front door to :class:`~cnnumpy.train.Trainer`.

It takes the data as arrays and the usual options as arguments, and assembles the Trainer with
the standard callbacks: evaluation on the validation set and on up to ``train_acc_samples``
training images, keeping the best weights, early stopping (``patience``), the learning-rate
schedule, SDLM's curvature refresh (when the optimiser is SDLM), the divergence check (with
``divergence_factor``), progress, and with ``checkpoint_dir`` the checkpoints and
``metrics.jsonl``.

Its arithmetic is the one the Solver always had, so a seed gives the same weights: the
mini-batch order is ``default_rng(seed).permutation(N)`` each epoch, augmentation draws from
``default_rng([seed, 2])``, SDLM's sample from ``default_rng([seed, 3])``, and the training
accuracy is measured on the sorted first ``train_acc_samples`` of
``default_rng([seed, 1]).permutation(N)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data.loader import DataLoader
from .nn.module import Module
from .optim.lr_scheduler import ReduceLROnPlateau
from .optim.sdlm import SDLM
from .train.callbacks import (
    BestModel,
    Callback,
    Checkpoint,
    CurvatureRefresh,
    Divergence,
    EarlyStopping,
    Evaluate,
    LRSchedule,
    MetricsLog,
    Progress,
    predict,
)
from .train.errors import DivergenceError, NonFiniteLossError
from .train.resume import apply_changes
from .train.rngs import CURVATURE_RNG
from .train.trainer import Trainer

__all__ = ["DivergenceError", "NonFiniteLossError", "Solver"]


def _check_data(data: tuple[np.ndarray, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = data
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"{name} images must be a float array (normalised), got {x.dtype}")
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu" or y.shape != (x.shape[0],):
        raise ValueError(
            f"{name} labels must be integers of shape ({x.shape[0]},), got {y.dtype} {y.shape}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} data is empty")
    return x, y


def _check_options(
    batch_size: int, epochs: int, patience: int | None, validated: bool, scheduler: Any
) -> None:
    if batch_size < 1 or epochs < 0 or (patience is not None and patience < 1):
        raise ValueError(
            f"need batch_size >= 1, epochs >= 0, patience None or >= 1; got {batch_size}, "
            f"{epochs}, {patience}"
        )
    if not validated and (patience is not None or isinstance(scheduler, ReduceLROnPlateau)):
        raise ValueError(
            "early stopping (patience) and ReduceLROnPlateau need validation data; got "
            "val_data=None"
        )


def _editors(
    scheduler: Any, early: EarlyStopping | None, optimizer: Any, seed: int
) -> list[Callback]:
    """The schedule, early stopping and SDLM's curvature refresh, those that apply."""
    editors: list[Callback] = []
    if scheduler is not None:
        plateau = isinstance(scheduler, ReduceLROnPlateau)  # it steps on the score
        editors.append(LRSchedule(scheduler, monitor="val_acc" if plateau else None))
    if early is not None:
        editors.append(early)
    if isinstance(optimizer, SDLM):
        editors.append(CurvatureRefresh(seed))
    return editors


class Solver:
    """Train ``model`` on ``train_data = (X, y)`` and select it on ``val_data``.

    ``val_data=None`` trains without a validation set (as LeNet-5's paper trains on all 60,000
    MNIST images): every epoch's model is then the kept one, so training ends with the last
    epoch's weights, ``val_acc`` is recorded as NaN, and ``patience`` and
    ``ReduceLROnPlateau``, which need a validation score, are refused.

    Shapes: ``X: (N, *input_shape)`` float (already normalised), ``y: (N,)`` integer labels.
    ``loss`` is a loss module. ``scheduler`` is stepped after each epoch
    (``ReduceLROnPlateau`` with the validation accuracy: give it ``mode="max"``). ``progress``
    shows a bar for the run, ``verbose`` prints one line per epoch. ``normalization`` and
    ``config`` (JSON-able: the model's builder arguments, the data set) are stored in every
    checkpoint so that ``cnnumpy eval`` can rebuild the model. ``resume=True`` continues from
    ``checkpoint_dir/last.npz``, which must exist. ``augment(x, rng) -> x`` distorts each
    training mini-batch. ``clip_grad_norm`` caps each step's joint gradient 2-norm.
    ``comm`` (a communicator, see :mod:`cnnumpy.distributed`) trains on its K ranks: every
    loader is sharded for this rank, ``batch_size`` is the global batch, and rank 0 alone
    shows progress and writes the files.
    ``divergence_factor`` adds the :class:`~cnnumpy.train.callbacks.Divergence` check (stop
    when an epoch's mean loss exceeds that many times the starting loss, or a parameter is not
    finite); None leaves it out. ``callbacks`` are added to the standard ones.
    """

    def __init__(
        self,
        model: Module,
        loss: Module,
        optimizer: Any,
        train_data: tuple[np.ndarray, np.ndarray],
        val_data: tuple[np.ndarray, np.ndarray] | None,
        *,
        batch_size: int = 64,
        epochs: int = 10,
        seed: int = 0,
        patience: int | None = None,
        checkpoint_dir: str | Path | None = None,
        scheduler: Any = None,
        progress: bool = True,
        verbose: bool = True,
        model_name: str | None = None,
        normalization: dict | None = None,
        train_acc_samples: int = 1000,
        resume: bool = False,
        config: dict | None = None,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        clip_grad_norm: float | None = None,
        divergence_factor: float | None = None,
        callbacks: Sequence[Callback] = (),
        comm: Any = None,
    ) -> None:
        x, y = _check_data(train_data, "train")
        self._shard = (0, 1) if comm is None else (comm.rank, comm.size)
        if self._shard[1] > 1 and isinstance(optimizer, SDLM):
            raise ValueError(
                f"SDLM estimates its curvature on each process's own images, so {self._shard[1]} "
                "processes would step differently: train with sgd, adam or rmsprop on several "
                "processes, or SDLM on one"
            )
        val_data = None if val_data is None else _check_data(val_data, "val")
        _check_options(batch_size, epochs, patience, val_data is not None, scheduler)
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs a checkpoint_dir")
        self.batch_size, self._scheduler = batch_size, scheduler
        self._best = BestModel(monitor=None if val_data is None else "val_acc")
        self._early = None if patience is None else EarlyStopping(patience)
        standard = [self._evaluation(x, y, val_data, seed, train_acc_samples), self._best]
        standard += _editors(scheduler, self._early, optimizer, seed)
        if divergence_factor is not None:
            standard.append(Divergence(divergence_factor))
        standard.append(Progress(bar=None if progress else False, lines=verbose))
        self._checkpoint = None
        if checkpoint_dir is not None:
            self._checkpoint = Checkpoint(
                checkpoint_dir, model_name=model_name or type(model).__name__,
                normalization=normalization,
                extra={"config": config or {}, "seed": seed, "batch_size": batch_size},
            )  # fmt: skip
            standard += [MetricsLog(Path(checkpoint_dir) / "metrics.jsonl"), self._checkpoint]
        loader = DataLoader(x, y, batch_size, shuffle=True, seed=seed, transform=augment,
                            normalized=True, shard=self._shard)  # fmt: skip
        self.trainer = Trainer(
            model, loss, optimizer, loader, epochs=epochs, callbacks=[*standard, *callbacks],
            clip_grad_norm=clip_grad_norm, comm=comm,
        )  # fmt: skip
        if resume:
            self._checkpoint.resume()

    def _evaluation(
        self,
        x: np.ndarray,
        y: np.ndarray,
        val_data: tuple[np.ndarray, np.ndarray] | None,
        seed: int,
        train_acc_samples: int,
    ) -> Evaluate:
        """On the validation set, and on a fixed random subset of the training set."""
        sub = np.random.default_rng([seed, 1]).permutation(y.shape[0])[:train_acc_samples]
        sub = np.sort(sub)
        val_loader = None if val_data is None else self._in_order(*val_data)
        return Evaluate(val_loader, self._in_order(x[sub], y[sub]))

    def _in_order(self, x: np.ndarray, y: np.ndarray) -> DataLoader:
        return DataLoader(x, y, self.batch_size, normalized=True, shard=self._shard)

    def train(self) -> dict[str, list[float]]:
        """Run the remaining epochs; load the best state into the model; return the history."""
        return self.trainer.fit()

    def record_changes(self, changes: Sequence[tuple[str, Any, Any]]) -> list[dict[str, Any]]:
        """Apply and record the settings a resumed run changes, ``(name, old, new)``; see
        :func:`~cnnumpy.train.resume.apply_changes`. Returns the records added."""
        return apply_changes(self.trainer, changes, self._scheduler, self._early)

    # -- what the CS231n Solver exposes --------------------------------------------------------
    model = property(lambda self: self.trainer.model)
    loss = property(lambda self: self.trainer.loss)
    optimizer = property(lambda self: self.trainer.optimizer)
    epochs = property(lambda self: self.trainer.epochs, doc="Epochs to train in all.")
    epoch = property(lambda self: self.trainer.epoch, doc="Epochs completed.")
    history = property(lambda self: self.trainer.history)
    stopped_early = property(lambda self: self.trainer.stop_training)
    last_checkpoint = property(lambda self: self.trainer.last_checkpoint)
    best_epoch = property(lambda self: self._best.best_epoch)
    best_val_acc = property(lambda self: self._best.best_score, doc="None without validation.")
    best_state = property(lambda self: self._best.best_state)
    rng = property(lambda self: self.trainer.train_loader.rng, doc="The mini-batch order's.")
    augment_rng = property(lambda self: self.trainer.train_loader.transform_rng)
    prepare_rng = property(
        lambda self: self.rngs().get(CURVATURE_RNG), doc="SDLM's curvature sample's, or None."
    )

    def rngs(self) -> dict[str, np.random.Generator]:
        """Every Generator whose state a checkpoint carries, by name."""
        return self.trainer.rngs.generators()

    def predict(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:  # noqa: N803
        """Predicted labels ``(N,)`` in eval mode (the loss's ``predict``, else the argmax)."""
        bs = batch_size or self.batch_size
        batches = (X[i : i + bs] for i in range(0, X.shape[0], bs))
        return predict(self.model, self.loss, batches)

    def check_accuracy(
        self,
        X: np.ndarray,  # noqa: N803
        y: np.ndarray,
        batch_size: int | None = None,
    ) -> float:
        """Fraction of ``X: (N, ...)`` classified as ``y: (N,)``, in eval mode."""
        return float(np.mean(self.predict(X, batch_size) == y))

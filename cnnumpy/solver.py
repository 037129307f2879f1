"""``Solver``: mini-batch training with evaluation, best-model tracking, early stopping and
checkpoints from which a killed run resumes to bit-identical weights.

One epoch: a permutation of the training indices is drawn from the Solver's seeded Generator,
and each mini-batch runs forward, loss, backward, ``optimizer.step()``, ``optimizer.zero_grad()``.
After the epoch the model is evaluated (eval mode) on a fixed subset of the training images and
on the validation set; the state with the best validation accuracy is kept and loaded back into
the model when training ends (as the CS231n Solver does). With ``patience`` set, training stops
once validation accuracy has not improved for ``patience`` epochs.

With ``checkpoint_dir`` set, every epoch ends by writing (atomically) ``best.npz`` when the
validation accuracy improved, then ``last.npz`` (weights, optimiser and scheduler state, every
RNG state, epoch, history, best state) and ``history.json``. Everything that influences the
next epoch is in ``last.npz``: the shuffle Generator's state, the ``rng`` Generators of noisy
layers (dropout, noisy ReLU), and the optimiser's buffers. So a run killed at any moment and
resumed from ``last.npz`` repeats exactly the arithmetic of an uninterrupted run.

With ``augment`` set (a callable ``augment(x, rng) -> x``, see :mod:`cnnumpy.data.augment`),
each training mini-batch is distorted before the forward pass, drawing from a Generator of its
own (seeded from ``seed``, saved in checkpoints as ``solver.augment``), so the mini-batch order
does not depend on whether augmentation is on, and a resumed run is still bit-identical.
Evaluation always sees the images as they are.

An optimiser with a ``prepare_epoch(model, loss, X, y, rng)`` method (``optim.SDLM``, which
re-estimates its curvature there) has it called before each epoch with the whole training set
and a Generator of the Solver's own (seeded from ``seed``, saved as ``solver.prepare``), so
what it draws is reproducible and a resumed run still bit-identical.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .checkpoint import (
    atomic_write,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
    set_rng_state,
)
from .nn.module import Module
from .nn.utils import clip_grad_norm_
from .optim.lr_scheduler import ReduceLROnPlateau

SHUFFLE_RNG = "solver.shuffle"
AUGMENT_RNG = "solver.augment"
PREPARE_RNG = "solver.prepare"
HISTORY_KEYS = ("loss", "train_acc", "val_acc", "lr")  # loss per iteration, the rest per epoch


class NonFiniteLossError(ValueError):
    """The training loss became NaN or infinite; the message names where and the last checkpoint."""


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


def named_rngs(model: Module, prefix: str = "model") -> Iterator[tuple[str, np.random.Generator]]:
    """``("model.<path>.rng", generator)`` for every module holding a Generator in ``rng``."""
    rng = getattr(model, "rng", None)
    if isinstance(rng, np.random.Generator):
        yield f"{prefix}.rng", rng
    for name, child in model.named_children():
        yield from named_rngs(child, f"{prefix}.{name}")


class Solver:
    """Train ``model`` on ``train_data = (X, y)`` and select it on ``val_data``.

    ``val_data=None`` trains without a validation set (as LeNet-5's paper trains on all 60,000
    MNIST images): every epoch's model is then the kept one, so training ends with the last
    epoch's weights, ``val_acc`` is recorded as NaN, and ``patience`` and
    ``ReduceLROnPlateau``, which need a validation score, are refused.

    Shapes: ``X: (N, *input_shape)`` float (already normalised), ``y: (N,)`` integer labels.
    ``loss`` is a loss module (``loss(scores, y) -> float``, ``loss.backward() -> dscores``).
    ``scheduler.step()`` runs after each epoch (``ReduceLROnPlateau.step(val_acc)``: give it
    ``mode="max"``). ``progress`` shows a tqdm bar during each epoch, ``verbose`` prints one
    summary line after it. ``normalization`` (a JSON-able dict) is stored in the checkpoints.
    ``resume=True`` continues from ``checkpoint_dir/last.npz``, which must exist. ``config``
    (JSON-able: the model's builder arguments, the data set) is stored in every checkpoint so
    that ``cnnumpy eval`` can rebuild the model. ``augment(x, rng) -> x`` distorts each training
    mini-batch ``x: (B, *input_shape)`` (same shape and dtype back) with :attr:`augment_rng`.
    ``clip_grad_norm`` scales each step's gradients to that joint 2-norm at most
    (``nn.clip_grad_norm_``).
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
    ) -> None:
        if batch_size < 1 or epochs < 0 or (patience is not None and patience < 1):
            raise ValueError(
                f"need batch_size >= 1, epochs >= 0, patience None or >= 1; got {batch_size}, "
                f"{epochs}, {patience}"
            )
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be None or > 0, got {clip_grad_norm!r}")
        self.clip_grad_norm = clip_grad_norm
        self.model, self.loss, self.optimizer, self.scheduler = model, loss, optimizer, scheduler
        self.X_train, self.y_train = _check_data(train_data, "train")
        self.X_val = self.y_val = None
        if val_data is not None:
            self.X_val, self.y_val = _check_data(val_data, "val")
        elif patience is not None or isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                "early stopping (patience) and ReduceLROnPlateau need validation data; got "
                "val_data=None"
            )
        self.batch_size, self.epochs, self.seed, self.patience = batch_size, epochs, seed, patience
        self.progress, self.verbose = progress, verbose  # the bar; one summary line per epoch
        self.model_name = model_name or type(model).__name__
        self.normalization = normalization
        self.config = config or {}  # how the run was set up (model builder arguments, data set)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        if self.checkpoint_dir is not None:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)

        self.rng = np.random.default_rng(seed)  # the mini-batch order, and nothing else
        self.augment = augment
        self.augment_rng = np.random.default_rng([seed, 2])  # the augmentation's draws
        self.prepare_rng = np.random.default_rng([seed, 3])  # the optimiser's epoch set-up
        n = self.y_train.shape[0]
        subset = np.random.default_rng([seed, 1]).permutation(n)[:train_acc_samples]
        self._train_subset = np.sort(subset)

        self.epoch = 0  # epochs completed
        self.history: dict[str, list[float]] = {key: [] for key in HISTORY_KEYS}
        self.best_val_acc: float | None = None
        self.best_epoch = 0
        self.best_state: dict[str, np.ndarray] | None = None
        self.stopped_early = False
        self.last_checkpoint: Path | None = None
        if resume:
            if self.checkpoint_dir is None:
                raise ValueError("resume=True needs a checkpoint_dir")
            self.resume(self.checkpoint_dir / "last.npz")

    # -- training -------------------------------------------------------------------------------
    def train(self) -> dict[str, list[float]]:
        """Run the remaining epochs; load the best state into the model; return the history."""
        self.optimizer.zero_grad()
        self.model.set_input_grad(False)  # the data's gradient is never used
        try:
            while self.epoch < self.epochs and not self.stopped_early:
                lr = float(self.optimizer.lr)
                self._train_epoch()
                self._end_epoch(lr)
        finally:
            self.model.set_input_grad(True)
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.history

    def _train_epoch(self) -> None:
        x_all, y_all, bs = self.X_train, self.y_train, self.batch_size
        n = y_all.shape[0]
        epoch, num_batches = self.epoch + 1, math.ceil(n / bs)
        order = self.rng.permutation(n)
        self.model.train()
        prepare = getattr(self.optimizer, "prepare_epoch", None)
        if prepare is not None:  # in train mode, as the gradient passes will run
            prepare(self.model, self.loss, x_all, y_all, self.prepare_rng)
        bar = tqdm(
            total=n, unit="img", unit_scale=True, leave=False,
            desc=f"epoch {epoch}/{self.epochs}", disable=None if self.progress else True,
        )  # fmt: skip
        with bar:
            for it in range(num_batches):
                idx = order[it * bs : (it + 1) * bs]
                x = x_all[idx]
                if self.augment is not None:
                    x = self.augment(x, self.augment_rng)
                scores = self.model(x)
                loss = float(self.loss(scores, y_all[idx]))
                if not math.isfinite(loss):
                    raise NonFiniteLossError(self._nonfinite_message(loss, epoch, it + 1))
                self.model.backward(self.loss.backward())
                if self.clip_grad_norm is not None:
                    clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad()
                self.history["loss"].append(loss)
                bar.update(idx.shape[0])
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def _end_epoch(self, lr: float) -> None:
        self.epoch += 1
        sub = self._train_subset
        train_acc = self.check_accuracy(self.X_train[sub], self.y_train[sub])
        val_acc = math.nan
        if self.X_val is not None:
            val_acc = self.check_accuracy(self.X_val, self.y_val)
        for key, value in (("train_acc", train_acc), ("val_acc", val_acc), ("lr", lr)):
            self.history[key].append(value)
        # without validation there is nothing to select on: the latest epoch is the kept one
        improved = self.X_val is None or self.best_val_acc is None or val_acc > self.best_val_acc
        if improved:
            self.best_epoch, self.best_state = self.epoch, self.model.state_dict()
            if self.X_val is not None:
                self.best_val_acc = val_acc
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(val_acc)
        elif self.scheduler is not None:
            self.scheduler.step()
        if self.patience is not None and self.epoch - self.best_epoch >= self.patience:
            self.stopped_early = True
        if self.verbose:
            batches = math.ceil(self.y_train.shape[0] / self.batch_size)
            epoch_loss = float(np.mean(self.history["loss"][-batches:]))
            tqdm.write(
                f"epoch {self.epoch}/{self.epochs}: mean loss {epoch_loss:.4f}, "
                f"train acc {train_acc:.4f}, val acc {val_acc:.4f}, lr {lr:.3g}"
                + (" (best)" if improved and self.X_val is not None else "")
                + (" - early stop" if self.stopped_early else "")
            )
            sys.stdout.flush()  # so a log file shows each epoch as it ends
        if self.checkpoint_dir is not None:
            if improved:
                self.save(self.checkpoint_dir / "best.npz")
            self.save(self.checkpoint_dir / "last.npz")
            self.last_checkpoint = self.checkpoint_dir / "last.npz"
            text = json.dumps(self.history, indent=1).encode()
            atomic_write(self.checkpoint_dir / "history.json", lambda f: f.write(text))

    def _nonfinite_message(self, loss: float, epoch: int, it: int) -> str:
        where = (
            f"loss is {loss} at epoch {epoch}, iteration {it} of "
            f"{math.ceil(self.y_train.shape[0] / self.batch_size)} "
            f"(global iteration {len(self.history['loss']) + 1})"
        )
        if self.last_checkpoint is None:
            return where + "; no checkpoint has been written yet"
        return (
            where + f"; the last good checkpoint is {self.last_checkpoint} "
            f"(after epoch {self.epoch}), left untouched"
        )

    # -- evaluation -----------------------------------------------------------------------------
    def predict(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:  # noqa: N803
        """Predicted labels ``(N,)`` in eval mode (the loss's ``predict``, else the argmax)."""
        bs = batch_size or self.batch_size
        was_training = self.model.training
        self.model.eval()
        try:
            preds = []
            for start in range(0, X.shape[0], bs):
                scores = self.model(X[start : start + bs])
                pick = getattr(self.loss, "predict", None)
                preds.append(pick(scores) if pick is not None else scores.argmax(axis=1))
        finally:
            self.model.train(was_training)
        return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)

    def check_accuracy(
        self,
        X: np.ndarray,  # noqa: N803
        y: np.ndarray,
        batch_size: int | None = None,
    ) -> float:
        """Fraction of ``X: (N, ...)`` classified as ``y: (N,)``, in eval mode."""
        return float(np.mean(self.predict(X, batch_size) == y))

    # -- checkpoints ----------------------------------------------------------------------------
    def rngs(self) -> dict[str, np.random.Generator]:
        """Every Generator whose state a checkpoint carries: the shuffle, the augmentation's
        (only when ``augment`` is set), the optimiser's set-up (only when it has
        ``prepare_epoch``) and the model's noise."""
        rngs = {SHUFFLE_RNG: self.rng}
        if self.augment is not None:
            rngs[AUGMENT_RNG] = self.augment_rng
        if hasattr(self.optimizer, "prepare_epoch"):
            rngs[PREPARE_RNG] = self.prepare_rng
        return {**rngs, **dict(named_rngs(self.model))}

    def save(self, path: str | Path) -> None:
        """Write the full training state to ``path`` (atomic; see :mod:`cnnumpy.checkpoint`)."""
        save_checkpoint(
            path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
            epoch=self.epoch, history=self.history, rng_states=self.rngs(),
            model_name=self.model_name, normalization=self.normalization,
            best_state=self.best_state,
            extra={"config": self.config,
                   "best_val_acc": self.best_val_acc, "best_epoch": self.best_epoch,
                   "stopped_early": self.stopped_early, "seed": self.seed,
                   "batch_size": self.batch_size},
        )  # fmt: skip

    def resume(self, path: str | Path) -> dict[str, Any]:
        """Restore everything from a checkpoint written by :meth:`save`; return its contents.

        ``train()`` then continues with the epoch after the saved one.
        """
        path = Path(path)
        contents = load_checkpoint(path, self.model, self.optimizer, scheduler=self.scheduler)
        saved, wanted = contents["rng_states"], self.rngs()
        missing = sorted(set(wanted) - set(saved))
        if missing:
            raise ValueError(f"checkpoint {path} has no state for the generators {missing}")
        for name, gen in wanted.items():
            set_rng_state(gen, saved[name], name)
        extra = contents["extra"]
        self.epoch = int(contents["epoch"])
        self.history = {key: list(values) for key, values in contents["history"].items()}
        self.best_state = contents["best_state"]
        self.best_val_acc, self.best_epoch = extra["best_val_acc"], int(extra["best_epoch"])
        self.stopped_early = bool(extra["stopped_early"])
        self.last_checkpoint = path
        if self.checkpoint_dir is not None:
            for name in ("best.npz", "last.npz", "history.json"):
                remove_stale_temporaries(self.checkpoint_dir / name)
        return contents

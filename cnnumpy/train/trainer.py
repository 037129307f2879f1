"""``Trainer``: the training loop, and the named moments at which it calls its callbacks.

One epoch::

    on_epoch_begin(epoch)                   the model in train mode
    for each mini-batch (x, y) of the training loader:
        forward, loss, backward, [clip the gradients], optimizer.step(), optimizer.zero_grad()
        on_train_batch_end(batch, {"loss", "size"})
    on_epoch_end(epoch, {"loss": mean over the epoch, "lr": the rate it trained with})

wrapped in ``on_train_begin()`` / ``on_train_end()``; an exception (a diverged loss, a failed
write, Ctrl-C) calls ``on_exception(error)`` instead of ``on_train_end()`` and propagates.

On K processes (``comm`` of size K, e.g. :func:`cnnumpy.distributed.world` under ``mpirun``)
every rank runs this loop on its share of each global mini-batch, and the losses and gradients
are averaged before each step (:mod:`cnnumpy.train.data_parallel`); callbacks marked
``rank_zero_only`` (progress, logs) run on rank 0 alone.
Everything else (evaluation, keeping the
best weights, early stopping, learning-rate schedules, SDLM's curvature, checkpoints,
progress, logs) is a callback in :mod:`cnnumpy.train.callbacks`; see
:class:`~cnnumpy.train.callbacks.Callback` for the order in which they run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.loader import DataLoader
from ..distributed import SingleProcess
from ..nn.module import Module
from ..nn.utils import clip_grad_norm_
from .callbacks.base import Callback
from .callbacks.history import History
from .data_parallel import DataParallel
from .errors import NonFiniteLossError
from .rngs import AUGMENT_RNG, SHUFFLE_RNG, Generators

__all__ = ["NonFiniteLossError", "Trainer"]


class Trainer:
    """Train ``model`` with ``loss`` and ``optimizer`` on ``train_loader`` for ``epochs``.

    ``train_loader`` is a :class:`~cnnumpy.data.DataLoader` (usually ``shuffle=True``); its
    order and transform Generators are registered in :attr:`rngs`, with the model's noisy
    layers' and any a callback registers, so a checkpoint holds every random state.
    ``loss`` is a loss module (``loss(scores, y) -> float``, ``loss.backward() -> dscores``).
    ``clip_grad_norm`` scales each step's gradients to that joint 2-norm at most
    (``nn.clip_grad_norm_``). A NaN or infinite loss raises :class:`NonFiniteLossError`.
    ``comm`` (default: one process) is the communicator of a data-parallel run; the loader
    must then be sharded for this rank (``DataLoader(..., shard=(comm.rank, comm.size))``),
    and its ``batch_size`` is each global batch's.

    State the callbacks read and write: :attr:`epoch` (epochs completed), :attr:`batch` (the
    mini-batch in progress, 0 between epochs), :attr:`history` (kept by the
    :class:`~cnnumpy.train.callbacks.History` callback the trainer adds itself),
    :attr:`stop_training` (set it to stop), :attr:`last_checkpoint` and
    :attr:`last_checkpoint_epoch` (the complete ``last.npz`` and the epoch it holds),
    :attr:`changes` (settings changed when the run was resumed: ``{"epoch", "option", "from",
    "to"}`` records, saved with the checkpoints), :attr:`epoch_started` (``time.perf_counter()``
    at the start of the epoch), :attr:`evaluation_bar` (None, or a function ``(total, what) ->
    bar`` that an evaluating callback calls for a progress bar with ``update(n)`` and ``close()``;
    the :class:`~cnnumpy.train.callbacks.Progress` callback sets it).
    """

    def __init__(
        self,
        model: Module,
        loss: Module,
        optimizer: Any,
        train_loader: DataLoader,
        *,
        epochs: int,
        callbacks: Sequence[Callback] = (),
        clip_grad_norm: float | None = None,
        comm: Any = None,
    ) -> None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"epochs must be an int >= 0, got {epochs!r}")
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be None or > 0, got {clip_grad_norm!r}")
        bad = [cb for cb in callbacks if not isinstance(cb, Callback)]
        if bad:
            raise TypeError(f"callbacks must be Callback instances, got {bad!r:.100}")
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.train_loader, self.epochs, self.clip_grad_norm = train_loader, epochs, clip_grad_norm
        self.rngs = Generators(model)
        self.rngs.register(SHUFFLE_RNG, train_loader.rng)
        if train_loader.transform is not None:
            self.rngs.register(AUGMENT_RNG, train_loader.transform_rng)
        self.epoch = self.batch = 0
        self.stop_training = False
        self.last_checkpoint: Path | None = None
        self.last_checkpoint_epoch = 0
        self.changes: list[dict[str, Any]] = []
        self.epoch_started = math.nan
        self.evaluation_bar: Callable[[int, str], Any] | None = None
        self._history = History()
        self.comm = SingleProcess() if comm is None else comm
        self.parallel = None
        if self.comm.size > 1:
            self.parallel = DataParallel(self.comm, model, train_loader, self.rngs)
            callbacks = [cb for cb in callbacks if self.comm.rank == 0 or not cb.rank_zero_only]
        # stable: among equal priorities the given order holds, History first of the readers
        self.callbacks = sorted([self._history, *callbacks], key=lambda cb: -cb.priority)
        for cb in self.callbacks:
            cb.set_trainer(self)

    @property
    def history(self) -> dict[str, list[float]]:
        """``loss`` per mini-batch; ``train_acc``, ``val_acc``, ``lr`` per epoch."""
        return self._history.history

    @history.setter
    def history(self, value: dict[str, list[float]]) -> None:
        self._history.history = value

    def fit(self) -> dict[str, list[float]]:
        """Run the epochs left (none after ``stop_training``); return :attr:`history`."""
        self.optimizer.zero_grad()
        self.model.set_input_grad(False)  # the data's gradient is never used
        try:
            if self.parallel is not None:
                self.parallel.broadcast_model()
            self._call("on_train_begin")
            while self.epoch < self.epochs and not self.stop_training:
                self._run_epoch()
        except BaseException as error:  # Ctrl-C included: the bar must not garble the message
            self._call("on_exception", error)
            raise
        finally:
            self.model.set_input_grad(True)
        self._call("on_train_end")
        return self.history

    def _run_epoch(self) -> None:
        epoch, lr = self.epoch + 1, float(self.optimizer.lr)
        self.epoch_started = time.perf_counter()
        self.model.train()
        self._call("on_epoch_begin", epoch)
        losses = []
        for batch, (x, y) in enumerate(self.train_loader, start=1):
            self.batch = batch
            loss, size = self._step(x, y, epoch, batch)
            losses.append(loss)
            self._call("on_train_batch_end", batch, {"loss": loss, "size": size})
            if self.stop_training:
                break
        self.epoch, self.batch = epoch, 0
        mean = float(np.mean(losses)) if losses else math.nan
        if self.parallel is not None:  # every rank evaluates and saves the same model
            self.parallel.broadcast_buffers()
        self._call("on_epoch_end", epoch, {"loss": mean, "lr": lr})

    def _step(self, x: np.ndarray, y: np.ndarray, epoch: int, batch: int) -> tuple[float, int]:
        """One optimiser step; ``(the mini-batch's loss, its images)``."""
        if self.parallel is not None:
            return self._parallel_step(x, y, epoch, batch)
        scores = self.model(x)
        loss = float(self.loss(scores, y))
        if not math.isfinite(loss):
            raise NonFiniteLossError(self._nonfinite_message(loss, epoch, batch))
        self.model.backward(self.loss.backward())
        self._update()
        return loss, y.shape[0]

    def _parallel_step(
        self, x: np.ndarray, y: np.ndarray, epoch: int, batch: int
    ) -> tuple[float, int]:
        """One step on this rank's share: the forward and backward run even on an empty share,
        since a SyncBatchNorm layer's all-reduces need every rank."""
        scores, count = self.model(x), y.shape[0]
        local = float(self.loss(scores, y)) if count else 0.0
        loss, total = self.parallel.global_loss(local, count)
        if not math.isfinite(loss):
            raise NonFiniteLossError(self._nonfinite_message(loss, epoch, batch))
        self.model.backward(self.loss.backward() if count else np.zeros_like(scores))
        self.parallel.average_gradients(count, total)
        self._update()
        return loss, total  # the global batch's: what the progress bar counts

    def _update(self) -> None:
        if self.clip_grad_norm is not None:
            clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad()

    def _call(self, moment: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, moment)(*args)

    def checkpoint_note(self) -> str:
        """What an error message adds about the files: the last complete checkpoint, or that
        there is none yet."""
        if self.last_checkpoint is None:
            return "no checkpoint has been written yet"
        return (
            f"the last good checkpoint is {self.last_checkpoint} "
            f"(after epoch {self.last_checkpoint_epoch}), left untouched"
        )

    def _nonfinite_message(self, loss: float, epoch: int, batch: int) -> str:
        where = (
            f"loss is {loss} at epoch {epoch}, iteration {batch} of {len(self.train_loader)} "
            f"(global iteration {len(self.history['loss']) + 1})"
        )
        return f"{where}; {self.checkpoint_note()}"

    def __repr__(self) -> str:
        names = ", ".join(type(cb).__name__ for cb in self.callbacks)
        return f"Trainer({type(self.model).__name__}, epochs={self.epochs}, callbacks=[{names}])"

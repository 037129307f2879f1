"""``Callback``: what the training loop calls at its named moments.

The :class:`~cnnumpy.train.Trainer` calls, on every callback it was given::

    on_train_begin()
        on_epoch_begin(epoch)                     # the model is in train mode
            on_train_batch_end(batch, logs)       # after each optimiser step
        on_epoch_end(epoch, logs)                 # after the last step of the epoch
    on_train_end()                                # only when training ended without an error
    on_exception(error)                           # instead, when an exception ended it

``epoch`` and ``batch`` count from 1, as the printed lines do; at ``on_epoch_end``
``trainer.epoch`` already counts the epoch just finished. A batch's ``logs`` hold ``loss``
(that mini-batch's) and ``size`` (its images); an epoch's hold ``loss`` (the mean over its
mini-batches) and ``lr`` (the learning rate it trained with), to which callbacks add what they
measure or decide: ``train_acc``, ``val_acc``, ``val_loss`` (:class:`Evaluate`), ``best``
(:class:`BestModel`).

At each moment the callbacks run in order of ``priority``, highest first, and in the order
given among equals (Chainer's extension priorities): writers measure and fill the logs,
editors decide from them (keep the best weights, change the learning rate, stop), readers
report, and the checkpoint saves what all of them left. Setting ``trainer.stop_training``
ends training after the current batch (then ``on_epoch_end`` still runs) or epoch.

A callback that keeps state a resumed run needs returns it from :meth:`Callback.state_dict`
(arrays and JSON-able values, saved in the checkpoint under :attr:`Callback.state_key`).
Resuming requires the checkpoint to hold the state of every such callback (a fresh one would
silently restart its count or its best score), unless the callback sets
:attr:`Callback.optional_state`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..trainer import Trainer

PRIORITY_WRITER = 300
"""Measures something and writes it into the logs (evaluation)."""
PRIORITY_EDITOR = 200
"""Changes the run from what the logs say (best weights, learning rate, stopping)."""
PRIORITY_READER = 100
"""Reads the logs and the state (history, progress, metrics file); the default."""
PRIORITY_CHECKPOINT = 0
"""Saves the state, after every other callback has changed it."""


class Callback:
    """Base class: every moment does nothing. Subclass it and override the moments you need.

    :attr:`trainer` is set by the Trainer the callback is given to (:meth:`set_trainer`); the
    model, optimiser, loss and loader are its attributes.
    """

    priority: ClassVar[int] = PRIORITY_READER
    optional_state: ClassVar[bool] = False
    """True when a resumed run may add or drop this callback: its state then starts fresh, or
    the checkpoint's is ignored."""
    rank_zero_only: ClassVar[bool] = False
    """True for a callback that only reports (prints, draws, writes a log): on K processes
    the Trainer runs it on rank 0 alone. The others run on every rank, with the same logs."""
    trainer: Trainer

    def set_trainer(self, trainer: Trainer) -> None:
        """Called once, when the Trainer is built; a callback owning a Generator registers it
        here (``trainer.rngs.register``) so that checkpoints carry its state."""
        self.trainer = trainer

    def on_train_begin(self) -> None:
        """Before the first epoch that runs (also when a resumed run has none left)."""

    def on_train_end(self) -> None:
        """After the last epoch, when training ends normally (not on an exception)."""

    def on_exception(self, error: BaseException) -> None:
        """When ``error`` (an exception, or KeyboardInterrupt) ends training, before it
        propagates; release what the run holds open. Must not raise."""

    def on_epoch_begin(self, epoch: int) -> None:
        """Before the epoch's first mini-batch; the model is in train mode."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        """After mini-batch ``batch``'s optimiser step; ``logs``: ``loss``, ``size``."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """After the epoch's last mini-batch; ``logs`` is shared by all callbacks."""

    @property
    def state_key(self) -> str:
        """The name of this callback's state in a checkpoint: by default its class name."""
        return type(self).__name__

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue exactly: arrays and JSON-able values.
        Empty (the default) for a callback without such state."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

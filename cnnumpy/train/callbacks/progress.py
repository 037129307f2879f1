"""``Progress``: one progress bar for the whole run, and one printed line per epoch."""

from __future__ import annotations

import math
import sys
from typing import IO, Any

from tqdm import tqdm

from .base import PRIORITY_READER, Callback
from .evaluation import Evaluate


def train_acc_images(trainer: Any) -> int | None:
    """How many training images the train accuracy is measured on: those of the
    :class:`Evaluate` callback's ``train_loader``; None when no callback measures it."""
    for callback in getattr(trainer, "callbacks", ()):
        loader = getattr(callback, "train_loader", None)
        if isinstance(callback, Evaluate) and loader is not None:
            return int(loader.labels.shape[0])
    return None


def epoch_line(
    epoch: int, epochs: int, logs: dict[str, Any], stopping: bool, subset: int | None = None
) -> str:
    """``epoch 3/20: mean loss 0.1234, train acc 0.9700 (1000-image subset), val loss 0.1100,
    val acc 0.9650, lr 0.001 (best)``, where ``subset`` is the number of training images the train
    accuracy is measured on (left out when None); without validation the val entries are nan
    and ``(best)`` is left out."""
    nan = math.nan
    validated = not math.isnan(logs.get("val_acc", nan))
    on = f" ({subset}-image subset)" if subset is not None else ""
    return (
        f"epoch {epoch}/{epochs}: mean loss {logs['loss']:.4f}, "
        f"train acc {logs.get('train_acc', nan):.4f}{on}, "
        f"val loss {logs.get('val_loss', nan):.4f}, "
        f"val acc {logs.get('val_acc', nan):.4f}, lr {logs['lr']:.3g}"
        + (" (best)" if validated and logs.get("best") else "")
        + (" - early stop" if stopping else "")
    )


class Progress(Callback):
    """A tqdm bar over every training image of the run (``epochs x`` the images of an epoch,
    so its rate and ETA are the whole run's; a resumed run starts it where it was), updated at
    ``on_train_batch_end`` with the mini-batch's loss; and at ``on_epoch_end`` (a reader, after
    evaluation and the editors) one line per epoch, see :func:`epoch_line`.

    While a callback evaluates, a second bar below it counts the images evaluated (it sets the
    trainer's ``evaluation_bar``).

    ``bar``: True always, False never, None only when ``file`` is a terminal (tqdm's rule).
    ``lines``: print the epoch lines (to stdout, flushed at once, so a log file shows each
    epoch as it ends). ``file``: where the bar goes (default stderr).
    """

    priority = PRIORITY_READER
    rank_zero_only = True

    def __init__(self, bar: bool | None = None, lines: bool = True, file: IO | None = None) -> None:
        self.show_bar, self.lines, self.file = bar, lines, file
        self.bar: tqdm | None = None

    def on_train_begin(self) -> None:
        t = self.trainer
        per_epoch = t.train_loader.samples_per_epoch
        self.bar = tqdm(
            total=t.epochs * per_epoch, initial=min(t.epoch, t.epochs) * per_epoch,
            unit="img", unit_scale=True, leave=False, file=self.file, dynamic_ncols=True,
            disable=None if self.show_bar is None else not self.show_bar,
        )  # fmt: skip
        if not self.bar.disable:
            t.evaluation_bar = self._evaluation_bar

    def _evaluation_bar(self, total: int, what: str) -> tqdm:
        """A bar under the run's one for an evaluation of ``total`` images, gone when closed."""
        return tqdm(total=total, desc=f"  evaluating: {what}", unit="img", unit_scale=True,
                    leave=False, position=1, file=self.file, dynamic_ncols=True)  # fmt: skip

    def on_epoch_begin(self, epoch: int) -> None:
        self.bar.set_description(f"epoch {epoch}/{self.trainer.epochs}", refresh=False)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        self.bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)
        self.bar.update(logs["size"])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.lines:
            t = self.trainer
            line = epoch_line(epoch, t.epochs, logs, t.stop_training, train_acc_images(t))
            tqdm.write(line, file=sys.stdout)
            sys.stdout.flush()

    def on_train_end(self) -> None:
        self.bar.close()
        self.trainer.evaluation_bar = None

    def on_exception(self, error: BaseException) -> None:
        if self.bar is not None:  # cleared now, before the error's message is printed
            self.bar.close()

    def __repr__(self) -> str:
        return f"Progress(bar={self.show_bar}, lines={self.lines})"

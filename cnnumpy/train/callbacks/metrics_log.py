"""``MetricsLog``: ``metrics.jsonl``, one JSON record per epoch."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ...checkpoint import atomic_write
from .. import strict_json
from ..errors import RunWriteError
from .base import PRIORITY_READER, Callback

FIELDS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")
"""After ``epoch`` and before ``seconds``, in each record."""


class MetricsLog(Callback):
    """At ``on_epoch_end`` (a reader, after evaluation and the editors) appends to ``path`` a
    line ``{"epoch": 3, "train_loss": ..., "train_acc": ..., "val_loss": ..., "val_acc": ...,
    "lr": ..., "seconds": ...}``: the mean loss of the epoch's mini-batches, the accuracy on
    the training subset, loss and accuracy on the validation set, the learning rate the epoch
    trained with, and the seconds from the epoch's start to now (evaluation included). A value
    nobody measured, or NaN, is ``null`` (every line is strict JSON). The first epoch of a
    resumed run that changed a setting adds ``"changes": [{"epoch", "option", "from", "to"}]``.
    Each line is flushed and fsync'ed; a failed write raises
    :class:`~cnnumpy.train.RunWriteError` (the checkpoints are untouched, and a resumed run
    rewrites the file from its records).

    At ``on_train_begin`` the file keeps only the records of the epochs the trainer has done
    (a run resumed from a checkpoint repeats the epochs after it) and drops a line cut short
    by a crash; a fresh run starts an empty file.
    """

    priority = PRIORITY_READER
    rank_zero_only = True

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def on_train_begin(self) -> None:
        done = self.trainer.epoch
        kept = [r for r in read_metrics(self.path) if r["epoch"] <= done] if done else []
        text = "".join(strict_json.dumps(r) + "\n" for r in kept).encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, lambda f: f.write(text))
        except OSError as err:
            raise RunWriteError(f"could not write {self.path} ({err.strerror or err})") from err

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        values = {**logs, "train_loss": logs.get("loss")}
        # strict_json writes a value not measured (NaN) as null
        record = {"epoch": epoch, **{k: values.get(k) for k in FIELDS}}
        record["seconds"] = round(time.perf_counter() - self.trainer.epoch_started, 3)
        changes = [c for c in getattr(self.trainer, "changes", ()) if c["epoch"] == epoch]
        if changes:
            record["changes"] = changes
        try:
            with open(self.path, "a") as f:
                f.write(strict_json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:
            raise RunWriteError(
                f"could not append to {self.path} ({err.strerror or err}); "
                f"{self.trainer.checkpoint_note()}"
            ) from err

    def __repr__(self) -> str:
        return f"MetricsLog({str(self.path)!r})"


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file, in order, skipping lines that are not whole
    JSON records (a write cut short); ``[]`` when there is no file."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("epoch"), int):
            records.append(record)
    return records

"""Callbacks of the :class:`~cnnumpy.train.Trainer`: each does one job at named moments.

========================  =================  ================================================
callback                  moment             job
========================  =================  ================================================
:class:`Divergence`       epoch end (first)  stop a run whose loss or weights blew up
:class:`Evaluate`         epoch end (write)  ``train_acc``, ``val_acc``, ``val_loss``
:class:`BestModel`        epoch end, end     keep the best epoch's weights, restore them
:class:`EarlyStopping`    epoch end          stop after ``patience`` epochs without progress
:class:`LRSchedule`       epoch end          step a learning-rate scheduler
:class:`CurvatureRefresh` epoch begin        SDLM's curvature estimate
:class:`History`          batch, epoch end   ``trainer.history`` (added by the Trainer)
:class:`Progress`         all                one bar for the run, a line per epoch
:class:`MetricsLog`       epoch end          ``metrics.jsonl``
:class:`Checkpoint`       epoch end (last)   ``best.npz``, ``last.npz``, ``history.json``
========================  =================  ================================================
"""

from .base import (
    PRIORITY_CHECKPOINT,
    PRIORITY_EDITOR,
    PRIORITY_READER,
    PRIORITY_WRITER,
    Callback,
)
from .best_model import BestModel
from .checkpoint import Checkpoint
from .curvature import CurvatureRefresh
from .divergence import Divergence
from .early_stopping import EarlyStopping
from .evaluation import Evaluate, evaluate, predict
from .history import History
from .lr_schedule import LRSchedule
from .metrics_log import MetricsLog, read_metrics
from .progress import Progress

__all__ = [
    "PRIORITY_CHECKPOINT",
    "PRIORITY_EDITOR",
    "PRIORITY_READER",
    "PRIORITY_WRITER",
    "BestModel",
    "Callback",
    "Checkpoint",
    "CurvatureRefresh",
    "Divergence",
    "EarlyStopping",
    "Evaluate",
    "History",
    "LRSchedule",
    "MetricsLog",
    "Progress",
    "evaluate",
    "predict",
    "read_metrics",
]

"""The errors a training run stops with, each a message for the user (the command line prints
it without a traceback): which moment, which file, and what is still intact."""

from __future__ import annotations


class DivergenceError(ValueError):
    """Training diverged: a loss or a parameter became NaN or infinite, or the loss grew far
    past its starting value. The message names the epoch and the last good checkpoint."""


class NonFiniteLossError(DivergenceError):
    """The training loss became NaN or infinite; the message names where and the last checkpoint."""


class RunWriteError(OSError):
    """A file of the run (a checkpoint, the history, the metrics) could not be written; the
    message names it, the system's reason, and the files left intact."""


class ResumeError(ValueError):
    """A run cannot be resumed as asked: no checkpoint, a checkpoint that does not fit the run
    being set up, or options that would make it another run."""


class RunDirectoryError(ValueError):
    """The run directory cannot be used: it holds another run, or it cannot be written."""

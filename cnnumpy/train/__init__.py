"""Training: the loop, its callbacks, and what is built by name for it."""

from .factory import (
    DEFAULT_LR,
    OPTIMIZERS,
    SCHEDULES,
    criterion_for,
    default_lr,
    make_optimizer,
    make_scheduler,
)

__all__ = [
    "DEFAULT_LR",
    "OPTIMIZERS",
    "SCHEDULES",
    "criterion_for",
    "default_lr",
    "make_optimizer",
    "make_scheduler",
]

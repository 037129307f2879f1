"""Learning-rate schedulers that set ``optimizer.lr``, with ``torch.optim.lr_scheduler``'s rules.

Epoch-based schedulers (:class:`StepLR`, :class:`MultiStepLR`, :class:`CosineAnnealingLR`,
:class:`PiecewiseConstantLR`) set
the learning rate for epoch 0 when constructed and move one epoch per ``step()``; call
``optimizer.step()`` during the epoch and ``scheduler.step()`` after it. Like PyTorch's
``step()`` without an epoch argument they update *recursively* from the optimiser's current
``lr`` (so they compose with other changes to ``lr``); the closed forms in the docstrings are
what they give when nothing else touches ``lr``. :class:`PiecewiseConstantLR` is the exception:
like PyTorch's ``LambdaLR`` it sets ``base_lr * factor`` outright.

:class:`ReduceLROnPlateau` instead takes the monitored metric: ``scheduler.step(val_loss)``.

``state_dict()`` is flat (every value a NumPy array, see :mod:`cnnumpy.optim.optimizer`);
``load_state_dict`` restores the scheduler only: restore the optimiser's own state dict too,
it holds the current ``lr``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .optimizer import Optimizer, Scalar, check_state_dict, from_array, to_array


def _check_int(owner: str, name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got {value!r}")


class _Scheduler:
    """State-dict plumbing: ``_saved`` lists the attributes saved (key: name without ``_``)."""

    _saved: tuple[str, ...] = ()
    _last_lr: float

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs an Optimizer, got {optimizer!r:.60}")
        self.optimizer = optimizer

    def _check_hyper(self, v: dict[str, Scalar]) -> None:
        """Validate hyper-parameters (a dict keyed by attribute name); raise ValueError."""

    def get_last_lr(self) -> list[float]:
        """The learning rate set by the last ``step`` (a one-element list, as PyTorch)."""
        return [self._last_lr]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Hyper-parameters and counters as a flat dict of arrays."""
        return {name.lstrip("_"): to_array(getattr(self, name)) for name in self._saved}

    def load_state_dict(self, state_dict: dict[str, np.ndarray]) -> None:
        """Restore a ``state_dict()``; ValueError (and no change) on a mismatch."""
        d = check_state_dict(type(self).__name__, state_dict, self.state_dict())
        values = {
            name: from_array(d[name.lstrip("_")], getattr(self, name)) for name in self._saved
        }
        self._check_hyper(values)
        for name, value in values.items():
            setattr(self, name, value)


class LRScheduler(_Scheduler):
    """Base of the epoch-based schedulers: ``lr_t = _get_lr()`` at epoch ``t = last_epoch``.

    ``base_lr`` is the optimiser's ``lr`` at construction.
    """

    _saved = ("base_lr", "last_epoch", "_step_count", "_last_lr")

    def __init__(self, optimizer: Optimizer) -> None:
        super().__init__(optimizer)
        self._check_hyper(vars(self))  # the subclass has set its hyper-parameters
        self.base_lr = float(optimizer.lr)
        self.last_epoch = -1
        self._step_count = 0
        self._last_lr = self.base_lr
        self.step()

    def _get_lr(self) -> float:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set ``optimizer.lr`` for it."""
        self._step_count += 1
        self.last_epoch += 1
        self.optimizer.lr = float(self._get_lr())
        self._last_lr = self.optimizer.lr


class StepLR(LRScheduler):
    """Decay by ``gamma`` every ``step_size`` epochs: ``lr_t = base_lr * gamma^(t // step_size)``.

    Recursively: ``lr_t = lr_{t-1} * gamma`` when ``t > 0`` and ``t % step_size == 0``.
    """

    _saved = (*LRScheduler._saved, "step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = step_size
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def _check_hyper(self, v: dict[str, Scalar]) -> None:
        _check_int("StepLR", "step_size", v["step_size"], 1)

    def _get_lr(self) -> float:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self.optimizer.lr
        return self.optimizer.lr * self.gamma


class MultiStepLR(LRScheduler):
    """Decay by ``gamma`` at each milestone: ``lr_t = base_lr * gamma^(#milestones <= t)``.

    A milestone listed twice decays twice (PyTorch counts them).
    """

    _saved = (*LRScheduler._saved, "milestones", "gamma")

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1) -> None:
        self.milestones = tuple(sorted(milestones))
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def _check_hyper(self, v: dict[str, Scalar]) -> None:
        for m in v["milestones"]:
            _check_int("MultiStepLR", "each milestone", m, 0)

    def _get_lr(self) -> float:
        hits = self.milestones.count(self.last_epoch)
        if hits == 0:
            return self.optimizer.lr
        return self.optimizer.lr * self.gamma**hits


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing (SGDR without restarts, Loshchilov & Hutter 2017)::

        lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2

    computed recursively as PyTorch does, from ``lr_{t-1}``::

        lr_t = eta_min + (lr_{t-1} - eta_min) * (1 + cos(pi t / T)) / (1 + cos(pi (t-1) / T))

    with ``T = T_max``, except where the denominator vanishes (``(t - 1 - T) % (2 T) == 0``):
    ``lr_t = lr_{t-1} + (base_lr - eta_min) * (1 - cos(pi / T)) / 2``. Past ``T_max`` the
    rate climbs back up (the cosine continues), as in PyTorch.
    """

    _saved = (*LRScheduler._saved, "T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803
        self.T_max = T_max
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def _check_hyper(self, v: dict[str, Scalar]) -> None:
        _check_int("CosineAnnealingLR", "T_max", v["T_max"], 1)

    def _get_lr(self) -> float:
        t, t_max, lr = self.last_epoch, self.T_max, self.optimizer.lr
        if t == 0:
            return lr
        if (t - 1 - t_max) % (2 * t_max) == 0:
            return lr + (self.base_lr - self.eta_min) * (1 - math.cos(math.pi / t_max)) / 2
        ratio = (1 + math.cos(math.pi * t / t_max)) / (1 + math.cos(math.pi * (t - 1) / t_max))
        return ratio * (lr - self.eta_min) + self.eta_min


class PiecewiseConstantLR(LRScheduler):
    """Fixed multiples of the initial rate between epoch boundaries::

        lr_t = base_lr * factors[k]   for boundaries[k-1] <= t < boundaries[k]

    with ``t`` the 0-based epoch, ``boundaries[-1] = 0`` and ``boundaries[K] = infinity``: so
    ``factors`` has one entry more than ``boundaries``, which must increase strictly. Set
    outright from ``base_lr``, not recursively, so a factor of 0 is allowed. LeNet-5's epsilon
    schedule is ``boundaries=(2, 5, 8, 12)``, ``factors=(1, 0.4, 0.2, 0.1, 0.02)``
    (``cnnumpy.optim.sdlm.LENET5_SCHEDULE``).
    """

    _saved = (*LRScheduler._saved, "boundaries", "factors")

    def __init__(
        self, optimizer: Optimizer, boundaries: Iterable[int], factors: Iterable[float]
    ) -> None:
        self.boundaries = tuple(boundaries)
        self.factors = tuple(float(f) for f in factors)
        super().__init__(optimizer)

    def _check_hyper(self, v: dict[str, Scalar]) -> None:
        owner = "PiecewiseConstantLR"
        boundaries, factors = v["boundaries"], v["factors"]
        for b in boundaries:
            _check_int(owner, "each boundary", b, 1)
        if list(boundaries) != sorted(set(boundaries)):
            raise ValueError(f"{owner}: boundaries must increase strictly, got {boundaries}")
        if len(factors) != len(boundaries) + 1:
            raise ValueError(
                f"{owner}: need one factor more than boundaries, got {len(factors)} factors "
                f"for {len(boundaries)} boundaries"
            )
        if not all(f >= 0.0 for f in factors):
            raise ValueError(f"{owner}: factors must be >= 0, got {factors}")

    def _get_lr(self) -> float:
        return self.base_lr * self.factors[bisect.bisect_right(self.boundaries, self.last_epoch)]


class ReduceLROnPlateau(_Scheduler):
    """Multiply ``lr`` by ``factor`` when the metric stops improving, as PyTorch's.

    ``step(metric)``: the metric improves when (mode ``"min"``) ``metric < best * (1 - threshold)``
    (``threshold_mode="rel"``) or ``metric < best - threshold`` (``"abs"``); for ``"max"``,
    ``metric > best * (1 + threshold)`` or ``metric > best + threshold``. After more than
    ``patience`` epochs without improvement, ``lr <- max(lr * factor, min_lr)`` (skipped if the
    change is ``<= eps``), then ``cooldown`` epochs pass in which bad epochs are not counted.
    """

    _saved = (
        "mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps",
        "best", "num_bad_epochs", "cooldown_counter", "last_epoch", "_last_lr",
    )  # fmt: skip

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(optimizer)
        self.mode = mode
        self.factor = float(factor)
        self.patience = patience
        self.threshold = float(threshold)
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.min_lr = float(min_lr)
        self.eps = float(eps)
        self._check_hyper(vars(self))
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = float(optimizer.lr)

    def _check_hyper(self, v: dict[str, Scalar]) -> None:
        owner = "ReduceLROnPlateau"
        if v["mode"] not in ("min", "max"):
            raise ValueError(f"{owner}: mode must be 'min' or 'max', got {v['mode']!r}")
        if v["threshold_mode"] not in ("rel", "abs"):
            raise ValueError(
                f"{owner}: threshold_mode must be 'rel' or 'abs', got {v['threshold_mode']!r}"
            )
        if not 0.0 <= v["factor"] < 1.0:
            raise ValueError(f"{owner}: factor must be in [0, 1), got {v['factor']!r}")
        _check_int(owner, "patience", v["patience"], 0)
        _check_int(owner, "cooldown", v["cooldown"], 0)
        for name in ("min_lr", "eps"):
            if not v[name] >= 0.0:
                raise ValueError(f"{owner}: {name} must be >= 0, got {v[name]!r}")

    def _is_better(self, a: float) -> bool:
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return a < self.best * (1.0 - self.threshold)
            return a < self.best - self.threshold
        if self.threshold_mode == "rel":
            return a > self.best * (self.threshold + 1.0)
        return a > self.best + self.threshold

    def step(self, metric: float) -> None:
        """Record one epoch's ``metric`` and reduce ``optimizer.lr`` if it has plateaued."""
        current = float(metric)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old_lr = float(self.optimizer.lr)
            new_lr = max(old_lr * self.factor, self.min_lr)
            if old_lr - new_lr > self.eps:
                self.optimizer.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self.optimizer.lr

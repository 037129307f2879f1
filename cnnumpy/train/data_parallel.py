"""What the Trainer does differently on K processes: one model, K shares of every batch.

Every rank holds the whole model and optimiser and runs the same loop. Per step, rank ``r``
computes the loss and gradient of its ``n_r`` images of the global batch of ``n``; then

- the global loss ``sum_r n_r * loss_r / n`` is all-reduced first (two numbers), so every rank
  reports the same loss and stops on a non-finite one at the same step;
- the gradients are averaged with :class:`~cnnumpy.distributed.GradientBuckets` (weights
  ``n_r / n``): the gradient of the mean loss over the global batch;
- each rank takes the same optimiser step on the same gradient, so the replicas stay equal.

At the start the parameters and buffers are broadcast from rank 0. The training order is the
same on every rank (the shuffle Generator is seeded alike); every other Generator (the
augmentation's, dropout's) is moved on rank ``r > 0`` to a stream of its own
(``bit_generator.jumped(r)``), so the ranks draw independent noise, and rank 0 draws what one
process would. Batch norm's running statistics are per rank (each rank's own shares) unless
the model uses ``nn.SyncBatchNorm``; they are made rank 0's on every rank before each epoch's
evaluation, so every rank evaluates and saves the same model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.loader import DataLoader
from ..distributed import GradientBuckets, broadcast_state
from ..nn.module import Module
from .rngs import SHUFFLE_RNG, Generators


class DataParallel:
    """The collective steps of a Trainer on ``comm`` (``comm.size > 1``)."""

    def __init__(self, comm: Any, model: Module, loader: DataLoader, rngs: Generators) -> None:
        if getattr(loader, "shard", (0, 1)) != (comm.rank, comm.size):
            raise ValueError(
                f"on {comm.size} processes the training loader must be sharded for this rank: "
                f"DataLoader(..., shard=({comm.rank}, {comm.size})), got "
                f"shard={getattr(loader, 'shard', None)}"
            )
        self.comm, self.model = comm, model
        self.buckets = GradientBuckets(model.parameters())
        if comm.rank > 0:
            for name, rng in rngs.generators().items():
                if name != SHUFFLE_RNG:
                    _own_stream(rng, comm.rank, name)

    def broadcast_model(self) -> None:
        """Every rank's parameters and buffers become rank 0's."""
        state = {k: np.array(v, order="C") for k, v in self.model.state_dict().items()}
        broadcast_state(self.comm, list(state.values()))
        self.model.load_state_dict(state)

    def broadcast_buffers(self) -> None:
        """Every rank's buffers (batch norm's running statistics) become rank 0's."""
        names = [name for name, _ in self.model.named_buffers()]
        if not names:
            return
        state = self.model.state_dict()
        state.update({n: np.array(state[n], order="C") for n in names})
        broadcast_state(self.comm, [state[n] for n in names])
        self.model.load_state_dict(state)

    def global_loss(self, loss: float, count: int) -> tuple[float, int]:
        """``(mean loss over the global batch, its size)`` from this rank's mean ``loss``
        over its ``count`` images (``loss`` is ignored when ``count`` is 0)."""
        both = np.array([loss * count if count else 0.0, count], np.float64)
        self.comm.allreduce_(both)
        total = int(round(both[1]))
        return (float(both[0] / total) if total else float("nan")), total

    def average_gradients(self, count: int, total: int) -> None:
        """Every ``grad`` becomes the gradient of the mean loss over the global batch."""
        self.buckets.allreduce_mean(self.comm, count / total)

    def allreduce_counts(self, values: list[float]) -> list[float]:
        """The sum over the ranks of each of ``values`` (float64)."""
        return self.comm.allreduce_(np.array(values, np.float64)).tolist()


def _own_stream(rng: np.random.Generator, rank: int, name: str) -> None:
    """Move ``rng`` to the ``rank``-th jump of its stream: a stream no other rank draws from."""
    bit_generator = rng.bit_generator
    if not hasattr(bit_generator, "jumped"):
        raise TypeError(
            f"{name}: a {type(bit_generator).__name__} cannot be split between processes "
            "(it has no jumped()); use numpy's default PCG64"
        )
    bit_generator.state = bit_generator.jumped(rank).state

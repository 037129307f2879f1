"""``DataLoader``: float mini-batches from an image array, reproducibly shuffled.

The loader never copies or converts the whole data set: each epoch draws a permutation of the
indices, and each batch gathers its images, converts them to floats with the per-channel
:class:`~cnnumpy.data.Normalization` (unless they are already normalised floats), and applies
the optional ``transform`` (an augmentation).

Two seeded Generators drive it: :attr:`DataLoader.rng` (``default_rng(seed)``) draws the order
and :attr:`DataLoader.transform_rng` (``default_rng([seed, 2])``) the transform's distortions,
so the order does not depend on whether a transform is on. Their ``bit_generator.state`` is all
a checkpoint needs to repeat a run (the Trainer registers both).

Sharding, for data-parallel training on K processes: ``shard=(rank, K)`` makes each batch the
rank's share of the global batch of ``batch_size`` images, the order being the same on every
rank (same seed), so K ranks together see exactly the batches one process sees.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .augment import Augment
from .dataset import Normalization


class DataLoader:
    """Iterate over ``(x, y)`` mini-batches of ``images: (N, C, H, W)``, ``labels: (N,)``.

    Each batch: ``x: (B, C, H, W)`` in ``dtype`` (float32), normalised per channel, then
    transformed; ``y: (B,)`` int64. ``B = batch_size`` except for a smaller last batch, which
    ``drop_last`` skips. ``shuffle`` draws a new order each epoch from :attr:`rng`
    (``default_rng(seed)``); otherwise the order is ``0..N-1``.

    ``normalization`` defaults to statistics fitted on ``images`` (so give the *training*
    images, and pass ``train_loader.normalization`` to the validation and test loaders; store
    ``normalization.to_dict()`` with the model). ``normalized=True`` says the images are floats
    normalised already (``images: (N, ...)``): batches are gathered as they are, in their own
    dtype, and :attr:`normalization` is None. ``transform(x, rng)`` is applied after
    normalising, with :attr:`transform_rng` (see :mod:`cnnumpy.data.augment`).

    ``shard=(rank, K)``: each batch is images ``[n * rank // K, n * (rank + 1) // K)`` of the
    global batch of ``n`` (``batch_size``, or fewer for the last), so shares differ by one
    image at most and a rank's may be empty when ``n < K``; ``len()`` still counts the global
    batches. ``(0, 1)``, the default, is the whole batch.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int = 64,
        shuffle: bool = False,
        seed: int | None = 0,
        drop_last: bool = False,
        transform: Augment | None = None,
        *,
        normalization: Normalization | None = None,
        dtype: type | np.dtype = np.float32,
        normalized: bool = False,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        _check_images(images, normalized, normalization)
        labels = np.asarray(labels)
        if labels.shape != (images.shape[0],) or labels.dtype.kind not in "iu":
            raise ValueError(
                f"labels must be integers of shape ({images.shape[0]},), "
                f"got {labels.dtype} {labels.shape}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if np.dtype(dtype).kind != "f":
            raise ValueError(f"dtype must be a float type, got {np.dtype(dtype)}")
        rank, size = shard
        if not (isinstance(rank, int) and isinstance(size, int) and 0 <= rank < size):
            raise ValueError(f"shard must be (rank, K) with 0 <= rank < K, got {shard!r}")
        self.shard = (rank, size)
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.transform, self.dtype = transform, np.dtype(dtype)
        self.normalization = None
        if not normalized:
            self.normalization = normalization or Normalization.fit(images)
            if len(self.normalization.mean) != images.shape[1]:
                raise ValueError(
                    f"normalization has {len(self.normalization.mean)} channels, "
                    f"images have {images.shape[1]}"
                )
        self.rng = np.random.default_rng(seed)
        """The Generator behind the order; save ``rng.bit_generator.state``."""
        self.transform_rng = np.random.default_rng(None if seed is None else [seed, 2])
        """The Generator the transform draws from; save its state too."""

    def __len__(self) -> int:
        """Batches per epoch."""
        n = self.labels.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def samples_per_epoch(self) -> int:
        """Images one epoch yields (fewer than ``N`` when ``drop_last`` skips some)."""
        return min(len(self) * self.batch_size, self.labels.shape[0])

    @property
    def shard_samples(self) -> int:
        """Images one epoch yields on this rank (its shares of :attr:`samples_per_epoch`)."""
        rank, size = self.shard
        n, bs, total = self.samples_per_epoch, self.batch_size, 0
        for start in range(0, n, bs):
            count = min(bs, n - start)
            total += count * (rank + 1) // size - count * rank // size
        return total

    def gather(self, idx: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        """The images ``idx`` as float batch, normalised but not transformed, and their labels."""
        x = self.images[idx]
        if self.normalization is not None:
            x = self.normalization(x, self.dtype)
        return x, self.labels[idx].astype(np.int64, copy=False)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n, bs = self.labels.shape[0], self.batch_size
        order = self.rng.permutation(n) if self.shuffle else None
        rank, size = self.shard
        for b in range(len(self)):
            start, stop = b * bs, min((b + 1) * bs, n)
            if size > 1:
                count = stop - start
                start, stop = start + count * rank // size, start + count * (rank + 1) // size
            window = slice(start, stop)  # in order: a view, not a gathered copy
            x, y = self.gather(window if order is None else order[window])
            if self.transform is not None:
                x = self.transform(x, self.transform_rng)
            yield x, y

    def __repr__(self) -> str:
        return (
            f"DataLoader(N={self.labels.shape[0]}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, transform={self.transform}"
            + (f", shard={self.shard}" if self.shard[1] > 1 else "") + ")"
        )


def _check_images(
    images: np.ndarray, normalized: bool, normalization: Normalization | None
) -> None:
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a NumPy array, got {type(images).__name__}")
    if not normalized:
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
        return
    if images.dtype.kind != "f" or images.ndim < 2:
        raise TypeError(
            f"normalized=True takes float images (N, ...), got {images.dtype} {images.shape}"
        )
    if normalization is not None:
        raise ValueError("normalized=True images need no normalization; got one")

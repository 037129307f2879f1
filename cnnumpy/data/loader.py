"""``DataLoader``: float mini-batches from a (raw) image array, reproducibly shuffled.

The loader never copies or converts the whole data set: each epoch draws a permutation of the
indices, and each batch gathers its images, converts them to floats with the per-channel
:class:`~cnnumpy.data.Normalization`, and applies the optional ``transform`` (an augmentation).
One seeded ``numpy.random.Generator``, :attr:`DataLoader.rng`, drives both the order and the
augmentation, so its ``bit_generator.state`` is all a checkpoint needs to repeat a run.
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
    ``normalization.to_dict()`` with the model). ``transform(x, rng)`` is applied after
    normalising, with :attr:`rng` (see :mod:`cnnumpy.data.augment`).
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
    ) -> None:
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
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
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.transform, self.dtype = transform, np.dtype(dtype)
        self.normalization = normalization or Normalization.fit(images)
        if len(self.normalization.mean) != images.shape[1]:
            raise ValueError(
                f"normalization has {len(self.normalization.mean)} channels, "
                f"images have {images.shape[1]}"
            )
        self.rng = np.random.default_rng(seed)
        """The Generator behind the order and the transform; save ``rng.bit_generator.state``."""

    def __len__(self) -> int:
        """Batches per epoch."""
        n = self.labels.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n, bs = self.labels.shape[0], self.batch_size
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            idx = order[b * bs : (b + 1) * bs]
            x = self.normalization(self.images[idx], self.dtype)
            if self.transform is not None:
                x = self.transform(x, self.rng)
            yield x, self.labels[idx].astype(np.int64, copy=False)

    def __repr__(self) -> str:
        return (
            f"DataLoader(N={self.labels.shape[0]}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, transform={self.transform})"
        )

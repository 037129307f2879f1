"""scikit-learn's 8x8 handwritten digits (UCI optdigits test set), split once and for all.

1797 grey images of 8x8 pixels with values 0-16 (each pixel counts the set pixels of a 4x4 block
of a 32x32 bitmap), ten classes of about 180 images each. The data ship with scikit-learn, so
nothing is downloaded. The split is stratified and fixed: 1257 train, 270 val, 270 test.
"""

from __future__ import annotations

import functools

import numpy as np

from .dataset import Dataset

SPLIT_SEED = 20240531
"""Seed of the permutation behind the fixed split; changing it changes every reported number."""

N_VAL = 270
N_TEST = 270
CLASSES = tuple(str(d) for d in range(10))


@functools.cache
def _load() -> tuple[np.ndarray, np.ndarray]:
    """``images: (1797, 1, 8, 8)`` uint8 in [0, 16] and ``labels: (1797,)`` int64, read-only."""
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    bunch = load_digits()
    raw = np.asarray(bunch.images)
    if raw.shape != (1797, 8, 8) or raw.min() < 0 or raw.max() > 16 or np.any(raw != np.round(raw)):
        values = f" with values from {raw.min()} to {raw.max()}" if raw.size else ""
        raise ValueError(
            f"unexpected digits data from scikit-learn: expected 1797 8x8 images of whole "
            f"numbers 0-16, got shape {raw.shape}{values}"
        )
    images = raw.astype(np.uint8).reshape(-1, 1, 8, 8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def split_indices(labels: np.ndarray, n_val: int, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    """Stratified ``(train, val, test)`` index arrays, each sorted ascending.

    A seeded permutation shuffles the samples; each sample then gets the key
    ``(rank within its class + 1/2) / class size``, and a stable sort on that key interleaves the
    classes evenly. Cutting the sorted order into ``n_test``, ``n_val`` and the rest gives every
    part each class's share up to one sample.
    """
    n = labels.shape[0]
    if n_val < 0 or n_test < 0 or n_val + n_test > n:
        raise ValueError(f"cannot take {n_val} val and {n_test} test samples out of {n}")
    perm = np.random.default_rng(seed).permutation(n)
    shuffled = labels[perm]
    key = np.empty(n, dtype=np.float64)
    for c in np.unique(labels):
        where = np.flatnonzero(shuffled == c)
        key[where] = (np.arange(where.size) + 0.5) / where.size
    order = perm[np.argsort(key, kind="stable")]
    test, val, train = np.split(order, [n_test, n_test + n_val])
    return np.sort(train), np.sort(val), np.sort(test)


def digits() -> Dataset:
    """The 8x8 digits as a :class:`Dataset` with the fixed 1257 / 270 / 270 split.

    Images are ``uint8 (N, 1, 8, 8)`` with values 0-16 and labels ``int64 (N,)``; use
    :func:`cnnumpy.data.normalize` for float inputs. Every call returns fresh copies.
    """
    images, labels = _load()
    parts = split_indices(labels, N_VAL, N_TEST, SPLIT_SEED)
    train, val, test = ((images[i], labels[i]) for i in parts)
    return Dataset("digits", train, val, test, CLASSES)

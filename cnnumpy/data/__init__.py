"""Data sets as plain arrays: ``uint8`` images ``(N, C, H, W)``, ``int64`` labels, class names.

Every loader returns a :class:`Dataset` with fixed ``train`` / ``val`` / ``test`` parts, each an
``(images, labels)`` pair. :func:`normalize` turns the images into floats with per-channel
statistics measured on the training part only; the :class:`Normalization` it records travels
with a checkpoint (``to_dict`` / ``from_dict``) so that new images can be prepared the same way.

Loaders: :func:`digits` (built in), and from their official files in a directory
:func:`mnist`, :func:`fashion_mnist` (IDX) and :func:`cifar10` (binary version), each checked
before use (:class:`DataFileError`). :class:`DataLoader` makes float mini-batches, and
:mod:`cnnumpy.data.augment` distorts them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .augment import (
    Compose,
    RandomAffine,
    RandomCrop,
    RandomHorizontalFlip,
    build_augment,
    compose,
    hflip,
)
from .cifar import cifar10
from .dataset import Dataset, Normalization, Split, normalize
from .digits import digits
from .elastic import ElasticDistortion
from .files import DataFileError
from .idx import read_idx
from .loader import DataLoader
from .mnist import fashion_mnist, mnist

DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": digits,
    "mnist": mnist,
    "fashion-mnist": fashion_mnist,
    "cifar10": cifar10,
}
"""Loaders by name; all but ``digits`` take the directory holding the files."""


def load_dataset(
    name: str, root: str | Path | None = None, *, verify: bool = True, n_val: int | None = None
) -> Dataset:
    """The data set ``name`` (a key of :data:`DATASETS`), read from ``root`` if it needs files.

    ``n_val`` overrides how many of the last training images are held out for validation
    (5,000 by default; 0 trains on all of them). The digits have a fixed split and refuse it.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}")
    if name == "digits":
        if n_val is not None:
            raise ValueError(f"digits has a fixed train/val/test split; got n_val={n_val}")
        return digits()
    if root is None:
        raise ValueError(f"{name} is read from its official files: give the directory holding them")
    split = {} if n_val is None else {"n_val": n_val}  # None: the loader's own default
    return DATASETS[name](root, verify=verify, **split)


__all__ = [
    "DATASETS",
    "Compose",
    "DataFileError",
    "DataLoader",
    "Dataset",
    "ElasticDistortion",
    "Normalization",
    "RandomAffine",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Split",
    "build_augment",
    "cifar10",
    "compose",
    "digits",
    "fashion_mnist",
    "hflip",
    "load_dataset",
    "mnist",
    "normalize",
    "read_idx",
]

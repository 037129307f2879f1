"""Data sets as plain arrays: ``uint8`` images ``(N, C, H, W)``, ``int64`` labels, class names.

Every loader returns a :class:`Dataset` with fixed ``train`` / ``val`` / ``test`` parts, each an
``(images, labels)`` pair. :func:`normalize` turns the images into floats with per-channel
statistics measured on the training part only; the :class:`Normalization` it records travels
with a checkpoint (``to_dict`` / ``from_dict``) so that new images can be prepared the same way.

Loaders: :func:`digits` (built in), and from their official files in a directory
:func:`mnist`, :func:`fashion_mnist` (IDX) and :func:`cifar10` (binary version), each checked
before use (:class:`DataFileError`), and :func:`image_folder` (``folder:PATH``: a folder of
image files, one sub-folder per class, decoded with Pillow). :class:`DataLoader` makes float
mini-batches, and :mod:`cnnumpy.data.augment` distorts them.
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
from .folder import PREFIX as _FOLDER_PREFIX
from .folder import folder_spec, image_folder, parse_folder_spec
from .idx import read_idx
from .loader import DataLoader
from .mnist import fashion_mnist, mnist

DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": digits,
    "mnist": mnist,
    "fashion-mnist": fashion_mnist,
    "cifar10": cifar10,
    "folder": lambda root, *, verify=True, n_val=None: image_folder(root, n_val=n_val),
}
"""Loaders by name; all but ``digits`` take the directory holding the files (``folder``: the
folder of images, at its default size and channels; ``folder:PATH?size=S&channels=C`` names
them, see :func:`folder_spec`)."""


def is_dataset(name: str) -> bool:
    """Whether :func:`load_dataset` knows ``name``: a key of :data:`DATASETS` or a
    ``folder:PATH`` name."""
    return isinstance(name, str) and (name in DATASETS or name.startswith(_FOLDER_PREFIX))


def load_dataset(
    name: str, root: str | Path | None = None, *, verify: bool = True, n_val: int | None = None
) -> Dataset:
    """The data set ``name`` (a key of :data:`DATASETS`, or ``folder:PATH``: see
    :func:`folder_spec`), read from ``root`` if it needs files.

    ``n_val`` overrides how many of the last training images are held out for validation
    (5,000 by default; 0 trains on all of them). The digits have a fixed split and refuse it.
    """
    if isinstance(name, str) and name.startswith(_FOLDER_PREFIX):
        path, options = parse_folder_spec(name)
        return image_folder(path, n_val=n_val, **options)  # verify: no official hash to check
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
    "folder_spec",
    "hflip",
    "image_folder",
    "is_dataset",
    "load_dataset",
    "mnist",
    "normalize",
    "parse_folder_spec",
    "read_idx",
]

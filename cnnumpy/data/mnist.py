"""MNIST and Fashion-MNIST from their four official IDX files, checked before use.

Both data sets ship as the same four files (gzip-compressed as downloaded, or not)::

    train-images-idx3-ubyte   60000 x 28 x 28 uint8, magic 0x00000803
    train-labels-idx1-ubyte   60000 uint8 labels 0-9, magic 0x00000801
    t10k-images-idx3-ubyte    10000 x 28 x 28
    t10k-labels-idx1-ubyte    10000 labels

The split follows the shared convention for reported numbers: the last 5,000 training images
are held out for validation, the 10,000 test images are the test set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .files import DataFileError, find_file, split_last
from .idx import read_idx

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""The official file names, without the ``.gz`` of the compressed downloads."""

MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
"""sha256 of the *uncompressed* official MNIST files, so any gzip of them verifies. Checked
against the official files (tests/test_data_files.py recomputes them)."""

FASHION_MNIST_SHA256: dict[str, str] = {}
"""Empty on purpose: the Fashion-MNIST files could not be obtained to compute these hashes, and
a hash that was not computed from the files is not entered. Without an entry the files get the
structural checks only (magic number, sizes, label range), plus a check that they are not
MNIST's files under the same names."""

MNIST_URL = "https://yann.lecun.com/exdb/mnist/"
FASHION_MNIST_URL = "https://github.com/zalandoresearch/fashion-mnist"

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

N_VAL = 5000
IMAGE_SHAPE = (28, 28)


def _known(table: Mapping[str, str], dataset: str) -> dict[str, str]:
    return {digest: f"{dataset} {name}" for name, digest in table.items()}


def read_idx_pair(
    images_path: str | Path,
    labels_path: str | Path,
    num_classes: int,
    *,
    sha256: Mapping[str, str | None] | None = None,
    known: Mapping[str, str] | None = None,
    image_shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``images: (N, 1, H, W)`` uint8 and ``labels: (N,)`` int64 from an image and a label file.

    ``sha256`` maps ``"images"`` / ``"labels"`` to the expected hash of each file's
    uncompressed content (None or absent: not checked). Raises :class:`DataFileError` when the
    images are not ``image_shape`` (if given), the files disagree on ``N``, or a label is not
    in ``[0, num_classes)``.
    """
    sha256 = sha256 or {}
    known = dict(known or {})
    images = read_idx(images_path, dtype=np.uint8, ndim=3, sha256=sha256.get("images"), known=known)
    labels = read_idx(labels_path, dtype=np.uint8, ndim=1, sha256=sha256.get("labels"), known=known)
    if image_shape is not None and images.shape[1:] != image_shape:
        raise DataFileError(
            f"{images_path}: its header declares images of {images.shape[1]}x{images.shape[2]} "
            f"pixels, expected {image_shape[0]}x{image_shape[1]}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataFileError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels"
        )
    if labels.size and labels.max() >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataFileError(
            f"{labels_path}: label {labels[bad]} at index {bad} is outside [0, {num_classes})"
        )
    return images[:, None], labels.astype(np.int64)


def _load(
    name: str,
    root: str | Path,
    subdir: str,
    url: str,
    table: Mapping[str, str],
    classes: tuple[str, ...],
    *,
    verify: bool,
    n_val: int,
) -> Dataset:
    root = Path(root)
    directories = [root, root / subdir]
    paths = {
        key: find_file(file, directories, dataset=name, url=url) for key, file in FILES.items()
    }
    known = _known(MNIST_SHA256, "MNIST") if verify else {}
    parts = {}
    for part in ("train", "test"):
        images_path, labels_path = paths[f"{part}_images"], paths[f"{part}_labels"]
        hashes = {}
        if verify:
            hashes = {
                "images": table.get(FILES[f"{part}_images"]),
                "labels": table.get(FILES[f"{part}_labels"]),
            }
        parts[part] = read_idx_pair(
            images_path, labels_path, len(classes), sha256=hashes, known=known,
            image_shape=IMAGE_SHAPE,
        )  # fmt: skip
    train, val = split_last(*parts["train"], n_val, name)
    return Dataset(name, train, val, parts["test"], classes)


def mnist(
    root: str | Path,
    *,
    verify: bool = True,
    n_val: int = N_VAL,
    checksums: Mapping[str, str] | None = None,
) -> Dataset:
    """MNIST from the four IDX files in ``root`` (or ``root/mnist``), ``.gz`` or not.

    Returns a :class:`Dataset` of read-only ``uint8 (N, 1, 28, 28)`` images with values
    0-255 and ``int64`` labels: 55,000 train, the last 5,000 training images as ``val``
    (``n_val``), 10,000 test. With ``verify`` (the default) each file's uncompressed content
    must have the official sha256 (``checksums`` replaces the table :data:`MNIST_SHA256`,
    keyed by file name without ``.gz``). Raises ``FileNotFoundError`` for a missing file and
    :class:`DataFileError` for a file that is not right. Nothing is downloaded.
    """
    table = MNIST_SHA256 if checksums is None else checksums
    return _load(
        "mnist", root, "mnist", MNIST_URL, table, MNIST_CLASSES, verify=verify, n_val=n_val
    )


def fashion_mnist(
    root: str | Path,
    *,
    verify: bool = True,
    n_val: int = N_VAL,
    checksums: Mapping[str, str] | None = None,
) -> Dataset:
    """Fashion-MNIST (Zalando) from its four IDX files in ``root`` or ``root/fashion-mnist``.

    Same file names, shapes and split as :func:`mnist`; the ten classes are clothing articles.
    :data:`FASHION_MNIST_SHA256` is empty (see there), so by default the content is checked
    only for being well-formed and for not being MNIST; pass ``checksums`` to check hashes.
    """
    table = FASHION_MNIST_SHA256 if checksums is None else checksums
    return _load(
        "fashion-mnist", root, "fashion-mnist", FASHION_MNIST_URL, table, FASHION_MNIST_CLASSES,
        verify=verify, n_val=n_val,
    )  # fmt: skip

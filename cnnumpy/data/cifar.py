"""CIFAR-10 from the official *binary* version (never the Python version, which is a pickle).

``cifar-10-binary.tar.gz`` unpacks to ``cifar-10-batches-bin/`` holding ``data_batch_1.bin``
... ``data_batch_5.bin`` (training) and ``test_batch.bin``, 10,000 records each. A record is
3073 bytes: one label byte (0-9), then the 32x32 red plane, the green plane and the blue plane,
each row-major: 3072 pixel bytes, which reshape to ``(3, 32, 32)``.

The split: the first 45,000 training images train, the last 5,000 (the second half of
``data_batch_5.bin``) validate, ``test_batch.bin`` tests. All arrays are read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .files import DataFileError, find_file, read_bytes, split_last, verify_sha256

TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
SUBDIR = "cifar-10-batches-bin"
URL = "https://www.cs.toronto.edu/~kriz/cifar.html (the CIFAR-10 binary version)"
IMAGE_SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + 3 * 32 * 32
RECORDS_PER_FILE = 10_000
CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
N_VAL = 5000

CIFAR10_SHA256: dict[str, str] = {}
"""Empty on purpose: the official files could not be obtained to compute their hashes, and a
hash that was not computed from the files is not entered. Without entries the files get the
structural checks only: whole records, labels 0-9, and all six files of equal length (which
catches a file cut at a record boundary)."""


def read_cifar_batch(
    path: str | Path, *, sha256: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``images: (N, 3, 32, 32)`` uint8 and ``labels: (N,)`` int64 from one ``.bin`` file.

    The file (gzip-compressed or not) must be a non-empty whole number of 3073-byte records
    with labels in 0-9; ``sha256``, if given, is the expected hash of its content. Raises
    :class:`DataFileError` naming the file otherwise.
    """
    raw = read_bytes(path)
    if len(raw) == 0 or len(raw) % RECORD_BYTES:
        raise DataFileError(
            f"{path}: {len(raw)} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 "
            f"records (1 label byte + 3072 pixel bytes; an official file has "
            f"{RECORDS_PER_FILE * RECORD_BYTES} bytes): truncated or not a CIFAR-10 batch"
        )
    verify_sha256(raw, path, sha256)
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0]
    if labels.max() >= len(CLASSES):
        bad = int(np.argmax(labels >= len(CLASSES)))
        raise DataFileError(
            f"{path}: record {bad} has label byte {labels[bad]}, outside 0-9 (corrupt, or not "
            "the binary version of CIFAR-10; CIFAR-100's binary records have two label bytes)"
        )
    images = records[:, 1:].reshape(-1, *IMAGE_SHAPE)
    return images, labels.astype(np.int64)


def cifar10(
    root: str | Path,
    *,
    verify: bool = True,
    n_val: int = N_VAL,
    checksums: Mapping[str, str] | None = None,
) -> Dataset:
    """CIFAR-10 from the binary batches in ``root/cifar-10-batches-bin`` or ``root`` itself.

    Returns a :class:`Dataset` of ``uint8 (N, 3, 32, 32)`` RGB images and ``int64`` labels:
    45,000 train, the last 5,000 training images as ``val`` (``n_val``), 10,000 test.
    ``checksums`` (file name -> sha256) replaces :data:`CIFAR10_SHA256`; ``verify=False`` skips
    the hash comparison but never the structural checks. Raises ``FileNotFoundError`` for a
    missing file and :class:`DataFileError` for a malformed one. Nothing is downloaded.
    """
    root = Path(root)
    directories = [root / SUBDIR, root]
    table = (CIFAR10_SHA256 if checksums is None else checksums) if verify else {}
    batches = {}
    for name in (*TRAIN_FILES, TEST_FILE):
        path = find_file(name, directories, dataset="CIFAR-10", url=URL, gz=False)
        batches[path] = read_cifar_batch(path, sha256=table.get(name))
    sizes = {path: labels.shape[0] for path, (_, labels) in batches.items()}
    if len(set(sizes.values())) != 1:
        listing = ", ".join(f"{path.name}: {n}" for path, n in sizes.items())
        raise DataFileError(
            f"the CIFAR-10 files in {root} hold different numbers of records ({listing}); "
            f"each official file holds {RECORDS_PER_FILE}: one of them is truncated"
        )
    *train_parts, test = batches.values()
    train_images = np.concatenate([images for images, _ in train_parts])
    train_labels = np.concatenate([labels for _, labels in train_parts])
    train_images.setflags(write=False)
    train, val = split_last(train_images, train_labels, n_val, "cifar10")
    return Dataset("cifar10", train, val, test, CLASSES)

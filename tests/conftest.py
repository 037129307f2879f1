import gzip
from pathlib import Path

import numpy as np
import pytest

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _read_idx(path: Path, count: int, item_shape: tuple[int, ...]) -> np.ndarray:
    """The first ``count`` items of a gzipped IDX file (a test-only reader; the library has its
    own validating loader)."""
    header = 8 + 4 * len(item_shape)
    size = int(np.prod(item_shape, dtype=np.int64))
    with gzip.open(path, "rb") as f:
        raw = f.read(header + count * size)
    return np.frombuffer(raw[header:], dtype=np.uint8).reshape(count, *item_shape)


@pytest.fixture(scope="session")
def mnist_small() -> tuple[np.ndarray, np.ndarray]:
    """The first 500 MNIST training images, ``float64 (500, 1, 28, 28)`` scaled to [0, 1], and
    their ``int64`` labels, from ``../shared/data/mnist`` beside the project."""
    images = _read_idx(SHARED_MNIST / "train-images-idx3-ubyte.gz", 500, (28, 28))
    labels = _read_idx(SHARED_MNIST / "train-labels-idx1-ubyte.gz", 500, ())
    return images[:, None].astype(np.float64) / 255.0, labels.astype(np.int64)

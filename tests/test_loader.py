"""DataLoader: every sample once per epoch with its own label, float32 normalised batches,
seeded and resumable order, transforms, and no copy of the whole data set."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from cnnumpy.data import (
    DataLoader,
    Normalization,
    RandomHorizontalFlip,
    hflip,
    read_idx,
)

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def indexed(n: int, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images whose first two pixels spell their index (hi, lo); label = index % 7."""
    images = np.zeros((n, channels, 4, 4), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n) // 256
    images[:, 0, 0, 1] = np.arange(n) % 256
    return images, (np.arange(n) % 7).astype(np.int64)


IDENTITY = Normalization((0.0,), (1.0,))


def index_of(x: np.ndarray) -> np.ndarray:
    return (x[:, 0, 0, 0] * 256 + x[:, 0, 0, 1]).round().astype(np.int64)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_each_sample_once_per_epoch_with_its_label(shuffle, drop_last):
    images, labels = indexed(103)
    loader = DataLoader(images, labels, 10, shuffle=shuffle, drop_last=drop_last,
                        normalization=IDENTITY)  # fmt: skip
    assert len(loader) == (10 if drop_last else 11)
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == len(loader)
        assert [len(y) for _, y in batches] == [10] * 10 + ([] if drop_last else [3])
        seen = np.concatenate([index_of(x) for x, _ in batches])
        for x, y in batches:
            assert x.dtype == np.float32 and x.shape[1:] == (1, 4, 4) and y.dtype == np.int64
            assert np.array_equal(y, index_of(x) % 7), "labels travel with their images"
        if drop_last:
            assert len(set(seen)) == 100
        else:
            assert np.array_equal(np.sort(seen), np.arange(103))
        assert np.array_equal(seen, np.arange(len(seen))) != shuffle


def test_the_order_is_seeded_and_the_generator_state_resumes_it():
    images, labels = indexed(50)

    def epoch(loader):
        return np.concatenate([index_of(x) for x, _ in loader])

    a = DataLoader(images, labels, 8, shuffle=True, seed=3, normalization=IDENTITY)
    b = DataLoader(images, labels, 8, shuffle=True, seed=3, normalization=IDENTITY)
    c = DataLoader(images, labels, 8, shuffle=True, seed=4, normalization=IDENTITY)
    first = epoch(a)
    assert np.array_equal(first, epoch(b)) and not np.array_equal(first, epoch(c))
    saved = a.rng.bit_generator.state  # as a checkpoint would keep it
    second = epoch(a)
    assert not np.array_equal(first, second), "a new order each epoch"
    fresh = DataLoader(images, labels, 8, shuffle=True, seed=99, normalization=IDENTITY)
    fresh.rng.bit_generator.state = saved
    assert np.array_equal(epoch(fresh), second)


def test_batches_are_normalised_per_channel_with_training_statistics():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (300, 3, 5, 5), dtype=np.uint8)
    images[:, 1] //= 4  # channels with different statistics
    images[:, 2] = 9  # and a constant channel
    labels = np.zeros(300, dtype=np.int64)
    loader = DataLoader(images, labels, 64)
    expected = Normalization.fit(images)
    as_float = images.astype(np.float64)
    np.testing.assert_allclose(loader.normalization.mean, as_float.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(
        loader.normalization.std,
        np.where(np.arange(3) == 2, 1.0, as_float.std(axis=(0, 2, 3))),
        rtol=1e-12,
    )
    assert loader.normalization.std[2] == 1.0
    x = np.concatenate([x for x, _ in loader])
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), [0, 0, 0], atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), [1, 1, 0], atol=1e-5)
    # a validation loader takes the training statistics instead of fitting its own
    val = DataLoader(images[:10] // 2, labels[:10], 5, normalization=loader.normalization)
    first, _ = next(iter(val))
    np.testing.assert_allclose(first, expected(images[:5] // 2), rtol=1e-6)


def test_the_order_does_not_depend_on_the_transform():
    """Order from default_rng(seed), the transform's draws from default_rng([seed, 2])."""
    images, labels = indexed(40)

    def noise(x, rng):
        return x + rng.standard_normal(x.shape).astype(x.dtype)

    plain = DataLoader(images, labels, 16, shuffle=True, seed=7, normalization=IDENTITY)
    noisy = DataLoader(images, labels, 16, shuffle=True, seed=7, normalization=IDENTITY,
                       transform=noise)  # fmt: skip
    expected_order = np.random.default_rng(7).permutation(40)
    draws = np.random.default_rng([7, 2])
    start = 0
    for (x, y), (xn, yn) in zip(plain, noisy, strict=True):
        idx = expected_order[start : start + len(y)]
        start += len(y)
        assert np.array_equal(index_of(x), idx) and np.array_equal(y, yn)
        expected = x + draws.standard_normal(x.shape).astype(np.float32)
        assert np.array_equal(xn, expected)


def test_already_normalised_floats_are_gathered_as_they_are():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 3, 2, 2))  # float64 stays float64
    y = np.arange(10) % 3
    loader = DataLoader(x, y, 4, normalized=True)
    assert loader.normalization is None and len(loader) == 3 and loader.samples_per_epoch == 10
    batches = list(loader)
    assert [b.dtype for b, _ in batches] == [np.float64] * 3
    assert np.array_equal(np.concatenate([b for b, _ in batches]), x)
    flat = DataLoader(x.reshape(10, 12), y, 4, shuffle=True, seed=1, drop_last=True,
                      normalized=True)  # fmt: skip
    assert flat.samples_per_epoch == 8
    got, labels = flat.gather(np.array([3, 1]))
    assert np.array_equal(got, x.reshape(10, 12)[[3, 1]]) and labels.tolist() == [0, 1]
    with pytest.raises(TypeError, match="normalized=True takes float images"):
        DataLoader(np.zeros((4, 1, 2, 2), dtype=np.uint8), y[:4], 2, normalized=True)
    with pytest.raises(ValueError, match="need no normalization"):
        DataLoader(x, y, 2, normalized=True, normalization=IDENTITY)


def test_fit_normalization_on_floats_and_large_offsets():
    rng = np.random.default_rng(1)
    images = 1e4 + rng.standard_normal((500, 2, 6, 6)) * np.array([1.0, 3.0]).reshape(1, 2, 1, 1)
    got = Normalization.fit(images, chunk=64)
    np.testing.assert_allclose(got.mean, images.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(got.std, images.std(axis=(0, 2, 3)), rtol=1e-9)


def test_transform_gets_the_normalised_batch_and_the_loader_generator():
    images, labels = indexed(20)
    calls = []

    def spy(x, rng):
        calls.append((x.dtype, rng))
        return RandomHorizontalFlip(1.0)(x, rng)

    loader = DataLoader(images, labels, 8, transform=spy, normalization=IDENTITY)
    batches = list(loader)
    assert [d for d, _ in calls] == [np.float32] * 3
    assert all(r is loader.transform_rng for _, r in calls)
    assert np.array_equal(batches[0][0], hflip(images[:8].astype(np.float32)))
    assert np.array_equal(batches[0][1], labels[:8])


def test_an_epoch_never_copies_the_whole_data_set():
    images = np.random.default_rng(0).integers(0, 256, (20000, 1, 28, 28), dtype=np.uint8)
    labels = np.zeros(20000, dtype=np.int64)
    images.setflags(write=False)  # and never writes to it
    norm = Normalization((33.0,), (78.0,))
    loader = DataLoader(images, labels, 64, shuffle=True, normalization=norm)
    tracemalloc.start()
    try:
        for _ in loader:
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    as_float32 = images.size * 4
    assert peak < as_float32 / 20, f"peak {peak} bytes during an epoch"


def test_real_mnist_batches():
    images = read_idx(SHARED_MNIST / "t10k-images-idx3-ubyte.gz", dtype=np.uint8, ndim=3)
    labels = read_idx(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz", dtype=np.uint8, ndim=1)
    loader = DataLoader(images[:, None], labels, 256, shuffle=True, seed=0)
    assert 30 < loader.normalization.mean[0] < 36 and 75 < loader.normalization.std[0] < 82
    count = np.zeros(10, dtype=np.int64)
    for x, y in loader:
        assert x.dtype == np.float32 and x.shape[1:] == (1, 28, 28)
        count += np.bincount(y, minlength=10)
    assert count.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_bad_arguments():
    images, labels = indexed(10)
    with pytest.raises(ValueError, match=r"images must be \(N, C, H, W\)"):
        DataLoader(images[0], labels, 2)
    with pytest.raises(ValueError, match=r"labels must be integers of shape \(10,\)"):
        DataLoader(images, labels[:9], 2)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        DataLoader(images, labels, 0)
    with pytest.raises(ValueError, match="normalization has 3 channels, images have 1"):
        DataLoader(images, labels, 2, normalization=Normalization((0,) * 3, (1,) * 3))
    assert "batch_size=2" in repr(DataLoader(images, labels, 2))

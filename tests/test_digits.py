"""The digits loader: shapes, dtypes, the fixed stratified split, and train-only normalisation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.datasets import load_digits

from cnnumpy.data import Dataset, Normalization, digits, normalize
from cnnumpy.data.digits import N_TEST, N_VAL, SPLIT_SEED, split_indices


@pytest.fixture(scope="module")
def data() -> Dataset:
    return digits()


def test_shapes_dtypes_and_classes(data):
    sizes = {part: len(getattr(data, part)[1]) for part in ("train", "val", "test")}
    assert sizes == {"train": 1257, "val": 270, "test": 270}
    for part in ("train", "val", "test"):
        images, labels = getattr(data, part)
        assert images.dtype == np.uint8 and images.shape[1:] == (1, 8, 8), part
        assert labels.dtype == np.int64 and labels.shape == (images.shape[0],), part
        assert images.min() == 0 and images.max() == 16, part
    assert data.classes == tuple("0123456789")
    assert data.image_shape == (1, 8, 8)
    assert data.normalization is None
    assert "train=1257" in repr(data)


def test_split_is_a_stratified_partition_of_sklearns_images(data):
    bunch = load_digits()
    parts = split_indices(bunch.target, N_VAL, N_TEST, SPLIT_SEED)
    every = np.concatenate(parts)
    assert np.array_equal(np.sort(every), np.arange(1797)), "the parts must partition the set"
    class_share = np.bincount(bunch.target, minlength=10) / 1797
    for (images, labels), index, size in zip(
        (data.train, data.val, data.test), parts, (1257, N_VAL, N_TEST), strict=True
    ):
        assert np.array_equal(images[:, 0], bunch.images[index].astype(np.uint8))
        assert np.array_equal(labels, bunch.target[index])
        counts = np.bincount(labels, minlength=10)
        assert np.all(np.abs(counts - class_share * size) <= 1.0), counts


def test_split_is_fixed(data):
    again = digits()
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(data, part)[0], getattr(again, part)[0]), part
    # Pinned totals: if these change (a new numpy permutation stream), reported numbers change.
    label_sums = [int(getattr(data, p)[1].sum()) for p in ("train", "val", "test")]
    pixel_sums = [int(getattr(data, p)[0].sum()) for p in ("train", "val", "test")]
    assert label_sums == [5649, 1211, 1210]
    assert pixel_sums == [393204, 84059, 84455]


def test_split_indices_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="cannot take 8 val and 5 test samples out of 10"):
        split_indices(np.arange(10) % 2, 8, 5, 0)


def test_normalize_uses_training_statistics_only(data):
    norm = normalize(data)
    train = data.train[0].astype(np.float64)
    mean, std = train.mean(), train.std()
    assert norm.normalization == Normalization((mean,), (std,))
    for part in ("train", "val", "test"):
        images, labels = getattr(norm, part)
        assert images.dtype == np.float32, part
        expected = (getattr(data, part)[0].astype(np.float64) - mean) / std
        np.testing.assert_allclose(images, expected, rtol=1e-6, atol=1e-6, err_msg=part)
        assert labels is getattr(data, part)[1]
    assert abs(norm.train[0].mean()) < 1e-6 and abs(norm.train[0].std() - 1) < 1e-6
    assert abs(norm.val[0].mean()) > 1e-4, "val must not be normalised with its own statistics"
    assert normalize(data, np.float64).train[0].dtype == np.float64
    with pytest.raises(ValueError, match="already normalised"):
        normalize(norm)


def test_normalization_per_channel_and_round_trip(rng):
    images = rng.integers(0, 256, size=(20, 3, 4, 4)).astype(np.uint8)
    images[:, 2] = 7  # a constant channel maps to zeros, not NaN
    stats = Normalization.fit(images)
    x = images.astype(np.float64)
    assert np.allclose(stats.mean, x.mean(axis=(0, 2, 3)))
    assert np.allclose(stats.std[:2], x[:, :2].std(axis=(0, 2, 3))) and stats.std[2] == 1.0
    out = stats(images, np.float64)
    assert np.allclose(out[:, :2].mean(axis=(0, 2, 3)), 0) and np.all(out[:, 2] == 0)
    assert Normalization.from_dict(stats.to_dict()) == stats
    with pytest.raises(ValueError, match=r"expected \(N, 3, H, W\)"):
        stats(images[:, :1])


def test_dataset_validates_its_parts(data):
    bad_labels = (data.train[0], data.train[1].astype(np.int32))
    with pytest.raises(ValueError, match="train labels must be int64"):
        dataclasses.replace(data, train=bad_labels)
    with pytest.raises(ValueError, match="outside"):
        dataclasses.replace(data, val=(data.val[0], data.val[1] + 5))
    with pytest.raises(ValueError, match="disagree on the image shape"):
        dataclasses.replace(data, test=(data.test[0][:, :, :4], data.test[1]))

"""Augmentations: resampling against PyTorch and naive loops, what each must preserve (shape,
dtype, range, labels; flip twice and zero strength are the identity), and the Solver wiring
(a dedicated Generator, saved in checkpoints, so a resumed run stays bit-identical)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cnnumpy import nn, optim
from cnnumpy.data import (
    DataLoader,
    ElasticDistortion,
    RandomAffine,
    RandomCrop,
    RandomHorizontalFlip,
    build_augment,
    compose,
    digits,
    hflip,
    normalize,
    read_idx,
)
from cnnumpy.data.augment import affine_warp
from cnnumpy.data.elastic import elastic_warp
from cnnumpy.data.resample import bilinear_sample, gaussian_blur
from cnnumpy.solver import Solver

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def mnist_test_images() -> np.ndarray:
    """The first 64 MNIST test images, float32 (64, 1, 28, 28) in [0, 1]."""
    images = read_idx(SHARED_MNIST / "t10k-images-idx3-ubyte.gz", dtype=np.uint8, ndim=3)
    return (images[:64, None] / 255.0).astype(np.float32)


def batch(seed=0, shape=(5, 3, 7, 9), dtype=np.float64) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# -- references (naive loops, written independently of the library) ----------------------------
def bilinear_naive(images, ys, xs, fill):
    """Per-pixel bilinear read with explicit out-of-image handling: the padded-frame rule."""
    n, c, h, w = images.shape
    out = np.zeros((n, c, *ys.shape[1:]))

    def pixel(k, ch, i, j):
        if 0 <= i < h and 0 <= j < w:
            return images[k, ch, i, j]
        if fill is None:
            return images[k, ch, min(max(i, 0), h - 1), min(max(j, 0), w - 1)]
        return np.broadcast_to(np.asarray(fill, float), (c,))[ch]

    for k in range(n):
        for a in range(ys.shape[1]):
            for b in range(ys.shape[2]):
                y = min(max(ys[k, a, b], -1.0), float(h))
                x = min(max(xs[k, a, b], -1.0), float(w))
                i, j = int(np.floor(y)), int(np.floor(x))
                fy, fx = y - i, x - j
                for ch in range(c):
                    out[k, ch, a, b] = (
                        (1 - fy) * (1 - fx) * pixel(k, ch, i, j)
                        + (1 - fy) * fx * pixel(k, ch, i, j + 1)
                        + fy * (1 - fx) * pixel(k, ch, i + 1, j)
                        + fy * fx * pixel(k, ch, i + 1, j + 1)
                    )
    return out


def torch_sample(images, ys, xs, padding_mode):
    n, c, h, w = images.shape
    grid = np.stack([2 * xs / (w - 1) - 1, 2 * ys / (h - 1) - 1], axis=-1)
    out = torch.nn.functional.grid_sample(
        torch.from_numpy(images), torch.from_numpy(grid), mode="bilinear",
        padding_mode=padding_mode, align_corners=True,
    )  # fmt: skip
    return out.numpy()


# -- resampling -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fill, padding_mode", [(None, "border"), (0.0, "zeros")])
def test_bilinear_sample_matches_torch_grid_sample(fill, padding_mode):
    rng = np.random.default_rng(1)
    x = batch(shape=(3, 2, 6, 8))
    ys = rng.uniform(-0.99, 5.99, size=(3, 5, 4))  # inside, and within a pixel of the border
    xs = rng.uniform(-0.99, 7.99, size=(3, 5, 4))
    ours = bilinear_sample(x, ys, xs, fill)
    assert ours.shape == (3, 2, 5, 4)
    np.testing.assert_allclose(ours, torch_sample(x, ys, xs, padding_mode), atol=1e-12)
    if fill is None:  # border replication holds however far out the point is
        far_y, far_x = ys * 5 - 10, xs * 5 - 10
        np.testing.assert_allclose(bilinear_sample(x, far_y, far_x),
                                   torch_sample(x, far_y, far_x, "border"), atol=1e-12)  # fmt: skip


def test_bilinear_sample_matches_a_naive_loop_with_a_fill_per_channel():
    rng = np.random.default_rng(2)
    x = batch(shape=(2, 3, 5, 4))
    ys, xs = rng.uniform(-3, 8, size=(2, 2, 6, 5))
    for fill in ([0.5, -1.0, 2.0], None, 0.25):
        expected = bilinear_naive(x, ys, xs, fill)
        np.testing.assert_allclose(bilinear_sample(x, ys, xs, fill), expected, atol=1e-12,
                                   err_msg=str(fill))  # fmt: skip


def test_gaussian_blur_matches_a_direct_2d_convolution():
    rng = np.random.default_rng(3)
    fields = rng.uniform(-1, 1, size=(2, 9, 11))
    sigma, r = 1.3, 6  # truncate 4: r = ceil(4 * 1.3)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k2 = np.outer(k, k) / np.outer(k, k).sum()
    padded = np.pad(fields, ((0, 0), (r, r), (r, r)), mode="reflect")
    expected = np.zeros_like(fields)
    for i in range(2 * r + 1):
        for j in range(2 * r + 1):
            expected += k2[i, j] * padded[:, i : i + 9, j : j + 11]
    np.testing.assert_allclose(gaussian_blur(fields, sigma), expected, atol=1e-12)
    np.testing.assert_allclose(gaussian_blur(np.full((1, 5, 5), 3.0), 4.0), 3.0, atol=1e-12)


# -- what each augmentation preserves -------------------------------------------------------------
AUGMENTS = {
    "crop": RandomCrop(2),
    "flip": RandomHorizontalFlip(0.5),
    "affine": RandomAffine(translate=2, scale=0.2, squeeze=0.2, shear=0.3, rotate=15),
    "elastic": ElasticDistortion(alpha=8.0, sigma=2.0),
    "composed": compose(RandomCrop(1), RandomAffine(), ElasticDistortion(4.0, 2.0)),
}


@pytest.mark.parametrize("name", sorted(AUGMENTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_dtype_and_range_are_preserved(name, dtype):
    x = batch(shape=(6, 3, 10, 12), dtype=dtype)
    out = AUGMENTS[name](x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == dtype and out is not x
    # edge fill: every value is a convex combination of the image's own values
    lo, hi = x.min(axis=(1, 2, 3)), x.max(axis=(1, 2, 3))
    tol = 1e-6 if dtype == np.float32 else 1e-12
    assert np.all(out.min(axis=(1, 2, 3)) >= lo - tol)
    assert np.all(out.max(axis=(1, 2, 3)) <= hi + tol)
    assert np.array_equal(out, AUGMENTS[name](x, np.random.default_rng(0))), "reproducible"
    assert not np.shares_memory(out, x)


@pytest.mark.parametrize("name", ["crop", "affine", "elastic"])
def test_constant_fill_stays_in_range_and_pixel_range_is_kept(name, mnist_test_images):
    aug = build_augment(name, 28, fill=0.0)
    x = mnist_test_images
    out = aug(x, np.random.default_rng(1))
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6
    ink_ratio = out.sum(axis=(1, 2, 3)) / x.sum(axis=(1, 2, 3))
    assert 0.6 < ink_ratio.min() and ink_ratio.max() < 1.6, "distorted, not destroyed"
    assert not np.array_equal(out, x)


def test_labels_are_untouched_through_the_loader(mnist_test_images):
    raw = (mnist_test_images * 255).round().astype(np.uint8)
    labels = np.arange(64) % 10
    plain = DataLoader(raw, labels, 16, shuffle=True, seed=4)
    distorted = DataLoader(raw, labels, 16, shuffle=True, seed=4,
                           transform=build_augment("affine+elastic", 28))  # fmt: skip
    plain_batches, distorted_batches = list(plain), list(distorted)
    for (xa, ya), (xb, yb) in zip(plain_batches[:1], distorted_batches[:1], strict=True):
        assert np.array_equal(ya, yb) and not np.array_equal(xa, xb)


@pytest.mark.parametrize(
    "aug",
    [
        RandomCrop(0, fill=3.0),
        RandomHorizontalFlip(0.0),
        RandomAffine(0, 0, 0, 0, 0, fill=7.0),
        ElasticDistortion(alpha=0.0, sigma=4.0, fill=7.0),
        compose(),
    ],
    ids=["crop", "flip", "affine", "elastic", "compose"],
)
def test_zero_strength_is_the_identity(aug):
    x = batch(shape=(4, 2, 9, 9))
    assert np.array_equal(aug(x, np.random.default_rng(0)), x)


def test_flip_twice_is_the_identity():
    x = batch()
    assert np.array_equal(hflip(hflip(x)), x)
    assert np.array_equal(hflip(x), torch.flip(torch.from_numpy(x), dims=[-1]).numpy())
    always = RandomHorizontalFlip(1.0)
    rng = np.random.default_rng(0)
    assert np.array_equal(always(x, rng), hflip(x))
    assert np.array_equal(always(always(x, rng), rng), x)


def test_random_flip_mirrors_a_random_subset():
    x = batch(shape=(400, 1, 3, 4))
    out = RandomHorizontalFlip(0.5)(x, np.random.default_rng(0))
    flipped = np.all(out == hflip(x), axis=(1, 2, 3))
    kept = np.all(out == x, axis=(1, 2, 3))
    assert np.all(flipped ^ kept) and 150 < flipped.sum() < 250


def test_random_crop_cuts_windows_of_the_padded_image_at_random_offsets():
    x = batch(shape=(50, 2, 5, 6))
    out = RandomCrop(2, fill=0.0)(x, np.random.default_rng(0))
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = set()
    for k in range(50):
        found = [(i, j) for i in range(5) for j in range(5)
                 if np.array_equal(out[k], padded[k, :, i : i + 5, j : j + 6])]  # fmt: skip
        assert found, f"image {k} is not a window of its padded image"
        offsets.add(found[0])
    assert len(offsets) > 10, "offsets differ between images"


# -- affine -------------------------------------------------------------------------------------
def test_affine_translation_by_whole_pixels_is_a_shift():
    x = batch(shape=(2, 1, 6, 7))
    shifts = np.array([[1.0, 0.0], [0.0, -2.0]])
    out = affine_warp(x, np.tile(np.eye(2), (2, 1, 1)), shifts, fill=0.0)
    assert np.array_equal(out[0, :, 1:], x[0, :, :-1]) and np.all(out[0, :, 0] == 0)
    assert np.array_equal(out[1, :, :, :-2], x[1, :, :, 2:]) and np.all(out[1, :, :, -2:] == 0)


def test_affine_quarter_turn_is_rot90_and_matches_a_naive_inverse_map():
    x = batch(shape=(1, 2, 5, 5))
    quarter = np.array([[[0.0, -1.0], [1.0, 0.0]]])  # (y, x) -> (-x, y) about the centre
    out = affine_warp(x, quarter, np.zeros((1, 2)))
    np.testing.assert_allclose(out[0], np.rot90(x[0], k=1, axes=(1, 2)), atol=1e-12)
    rng = np.random.default_rng(5)
    a = np.eye(2) + rng.uniform(-0.3, 0.3, size=(3, 2, 2))
    t = rng.uniform(-2, 2, size=(3, 2))
    x = batch(shape=(3, 2, 6, 5))
    inv = np.linalg.inv(a)
    c = np.array([2.5, 2.0])
    ys, xs = np.empty((3, 6, 5)), np.empty((3, 6, 5))
    for n in range(3):
        for i in range(6):
            for j in range(5):
                ys[n, i, j], xs[n, i, j] = inv[n] @ (np.array([i, j]) - c - t[n]) + c
    np.testing.assert_allclose(affine_warp(x, a, t, 0.5), bilinear_naive(x, ys, xs, 0.5),
                               atol=1e-12)  # fmt: skip


def test_affine_draws_stay_within_their_bounds():
    aug = RandomAffine(translate=3, scale=0.1, squeeze=0.2, shear=0.3, rotate=10)
    a, t = aug.sample(2000, np.random.default_rng(0))
    assert np.abs(t).max() <= 3 and np.abs(t).max() > 2.9
    det = np.linalg.det(a)  # squeeze, shear and rotation keep area: det = s^2
    assert det.min() >= 0.9**2 - 1e-12 and det.max() <= 1.1**2 + 1e-12
    with pytest.raises(ValueError, match="must be < 1"):
        RandomAffine(scale=1.0)
    with pytest.raises(ValueError, match=">= 0"):
        RandomAffine(shear=-0.1)


# -- elastic --------------------------------------------------------------------------------------
def test_elastic_warp_by_a_constant_field_is_a_shift_and_fields_are_smooth():
    x = batch(shape=(2, 1, 6, 6))
    dy, dx = np.ones((2, 6, 6)), np.zeros((2, 6, 6))
    out = elastic_warp(x, dy, dx, fill=0.0)
    assert np.array_equal(out[:, :, :-1], x[:, :, 1:]) and np.all(out[:, :, -1] == 0)
    from cnnumpy.data.elastic import elastic_fields

    dy, dx = elastic_fields(50, 28, 28, alpha=34.0, sigma=4.0, rng=np.random.default_rng(0))
    assert 0.5 < dy.std() < 3.0 and 0.5 < dx.std() < 3.0, "Simard's setting moves ~1-2 pixels"
    assert np.abs(np.diff(dy, axis=1)).mean() < 0.3 * np.abs(dy).mean(), "smooth, not noise"
    with pytest.raises(ValueError, match="sigma > 0"):
        ElasticDistortion(sigma=0.0)


def test_inputs_are_checked():
    with pytest.raises(TypeError, match=r"float \(N, C, H, W\) images, got uint8"):
        RandomCrop(1)(np.zeros((1, 1, 4, 4), np.uint8), np.random.default_rng())
    with pytest.raises(TypeError, match="got float64 \\(4, 4\\)"):
        ElasticDistortion()(np.zeros((4, 4)), np.random.default_rng())
    with pytest.raises(ValueError, match="padding must be a whole number >= 0, got -1"):
        RandomCrop(-1)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        RandomHorizontalFlip(1.5)


def test_build_augment_names_sizes_and_refusals():
    assert build_augment("none", 28) is None
    crop = build_augment("crop", 32)
    assert isinstance(crop, RandomCrop) and crop.padding == 4
    assert build_augment("crop", 8).padding == 1
    both = build_augment("crop+flip", 32, fill=(0.1, 0.2, 0.3))
    assert [type(a).__name__ for a in both.augments] == ["RandomCrop", "RandomHorizontalFlip"]
    elastic = build_augment("elastic", 28)
    assert (elastic.alpha, elastic.sigma) == (34.0, 4.0)
    with pytest.raises(ValueError, match="mirrored digit"):
        build_augment("crop+flip", 28, allow_flip=False)
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        build_augment("rotate", 28)


def test_compose_applies_in_order_with_one_generator():
    x = batch()
    a, b = RandomCrop(1), RandomAffine()
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    assert np.array_equal(compose(a, b)(x, r1), b(a(x, r2), r2))


# -- in the Solver --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    return normalize(digits(), np.float64)


def make_solver(data, augment, **kwargs):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32, rng=rng), nn.ReLU(),
                          nn.Linear(32, 10, rng=rng)).to(np.float64)  # fmt: skip
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return Solver(model, nn.CrossEntropyLoss(), opt, data.train, data.val, progress=False,
                  augment=augment, **kwargs)  # fmt: skip


def test_solver_distorts_training_batches_only_with_its_own_generator(data):
    seen = []

    def spy(x, rng):
        seen.append((x.shape, rng))
        return x

    solver = make_solver(data, spy, epochs=1, batch_size=100)
    solver.train()
    assert [s for s, _ in seen] == [(100, 1, 8, 8)] * 12 + [(57, 1, 8, 8)], "train batches only"
    assert all(rng is solver.augment_rng for _, rng in seen)
    assert set(solver.rngs()) == {"solver.shuffle", "solver.augment"}
    plain = make_solver(data, None, epochs=1, batch_size=100)
    plain.train()
    assert plain.history == solver.history, "an identity augment changes nothing"


def test_solver_with_augmentation_resumes_bit_identically(data, tmp_path):
    norm = data.normalization
    black = [-m / s for m, s in zip(norm.mean, norm.std, strict=True)]
    aug = build_augment("affine+elastic", 8, fill=black)
    whole = make_solver(data, aug, epochs=3)
    whole.train()
    first = make_solver(data, aug, epochs=1, checkpoint_dir=tmp_path)
    first.train()
    resumed = make_solver(data, aug, epochs=3, checkpoint_dir=tmp_path, resume=True)
    state = resumed.augment_rng.bit_generator.state
    assert state == first.augment_rng.bit_generator.state, "restored from the checkpoint"
    assert state != np.random.default_rng([0, 2]).bit_generator.state, "not the initial state"
    resumed.train()
    assert resumed.history == whole.history
    for key, value in whole.model.state_dict().items():
        assert np.array_equal(resumed.model.state_dict()[key], value), key

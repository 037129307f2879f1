"""Data augmentation on float batches, vectorised over the batch (no loop over images).

Every augmentation is a callable ``aug(images, rng) -> images`` taking ``images: (N, C, H, W)``
float (usually already normalised) and a ``numpy.random.Generator``, and returning a new
``(N, C, H, W)`` array of the same dtype; each image gets its own random draw. Labels are never
touched: all of these keep the class of a natural image (``flip`` excepted for digits and
letters, whose mirror image is another symbol or none). :func:`compose` chains them.

* :class:`RandomCrop` - pad by ``padding`` pixels and cut an ``H x W`` window at a random
  offset (the CIFAR recipe: pad 4, crop 32);
* :class:`RandomHorizontalFlip` - mirror left-right with probability ``p``;
* :class:`RandomAffine` - the planar affine distortions LeCun et al. (1998) trained LeNet-5
  on: translations, scaling, squeezing and horizontal shearing (rotation optional), one
  matrix per image, bilinear resampling;
* :class:`~cnnumpy.data.elastic.ElasticDistortion` - Simard et al. (2003): a random
  displacement field smoothed by a Gaussian, bilinear resampling.

:func:`build_augment` turns a name such as ``"crop+flip"`` into a composed augmentation with
settings scaled to the image size; the command line uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .elastic import ElasticDistortion
from .resample import Fill, bilinear_sample, check_images, pad_images, pixel_grid

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]
"""``aug(images: (N, C, H, W) float, rng) -> (N, C, H, W)`` array of the same dtype."""

AUGMENTATIONS = ("crop", "flip", "affine", "elastic")
"""Names :func:`build_augment` knows; join them with ``+`` to compose (``"crop+flip"``)."""


@dataclass(frozen=True)
class Compose:
    """Apply ``augments`` in order, all with the same Generator; no augments: the identity."""

    augments: tuple[Augment, ...]

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for aug in self.augments:
            images = aug(images, rng)
        return images


def compose(*augments: Augment) -> Compose:
    """``compose(a, b)(x, rng) == b(a(x, rng), rng)``."""
    return Compose(tuple(augments))


@dataclass(frozen=True)
class RandomCrop:
    """Pad each image by ``padding`` pixels of ``fill`` on every side, then cut the original
    ``H x W`` size at an offset drawn uniformly from ``{0, ..., 2*padding}`` per axis and image.

    ``padding=0`` is the identity. The crops are gathered from a sliding-window view of the
    padded batch, so the only copies are the padded batch and the output.
    """

    padding: int
    fill: Fill = None

    def __post_init__(self) -> None:
        if int(self.padding) != self.padding or self.padding < 0:
            raise ValueError(f"padding must be a whole number >= 0, got {self.padding}")

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        check_images(images)
        n, _, h, w = images.shape
        p = int(self.padding)
        oy = rng.integers(0, 2 * p + 1, size=n)
        ox = rng.integers(0, 2 * p + 1, size=n)
        windows = sliding_window_view(pad_images(images, p, self.fill), (h, w), axis=(2, 3))
        # windows: (N, C, 2p+1, 2p+1, H, W); the advanced indices pick one window per image
        return windows[np.arange(n), :, oy, ox]


def hflip(images: np.ndarray) -> np.ndarray:
    """``images: (..., W)`` mirrored left-right (a copy): ``out[..., j] = images[..., W-1-j]``."""
    return images[..., ::-1].copy()


@dataclass(frozen=True)
class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p`` (``p=0``: identity, ``p=1``: all)."""

    p: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p}")

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        check_images(images)
        flip = rng.random(images.shape[0]) < self.p
        return np.where(flip[:, None, None, None], images[..., ::-1], images)


def affine_warp(
    images: np.ndarray, matrices: np.ndarray, shifts: np.ndarray, fill: Fill = None
) -> np.ndarray:
    """Move every pixel ``p = (y, x)`` of image ``n`` to ``A[n] (p - c) + c + t[n]``.

    Shapes: ``images: (N, C, H, W)`` float, ``matrices A: (N, 2, 2)`` acting on ``(y, x)``
    column vectors, ``shifts t: (N, 2)`` in pixels ``(dy, dx)``; ``c = ((H-1)/2, (W-1)/2)``
    is the image centre. Implemented backwards: output pixel ``q`` reads the input at
    ``A[n]^-1 (q - c - t[n]) + c`` (bilinear, ``fill`` outside; see
    :func:`~cnnumpy.data.resample.bilinear_sample`). ``A = I, t = 0`` is the identity.
    """
    check_images(images)
    n, _, h, w = images.shape
    inv = np.linalg.inv(np.asarray(matrices, dtype=np.float64))  # (N, 2, 2)
    gy, gx = pixel_grid(h, w)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    dy = gy[None] - cy - shifts[:, 0, None, None]  # (N, H, W): q - c - t
    dx = gx[None] - cx - shifts[:, 1, None, None]
    ys = inv[:, 0, 0, None, None] * dy + inv[:, 0, 1, None, None] * dx + cy
    xs = inv[:, 1, 0, None, None] * dy + inv[:, 1, 1, None, None] * dx + cx
    return bilinear_sample(images, ys, xs, fill)


@dataclass(frozen=True)
class RandomAffine:
    """LeCun et al. (1998)'s distortions: one random affine map per image.

    Per image, drawn uniformly and independently: a shift ``(dy, dx)`` in
    ``[-translate, translate]`` pixels; a scale ``s`` in ``[1 - scale, 1 + scale]``; a squeeze
    ``k`` in ``[1 - squeeze, 1 + squeeze]`` (x stretched by ``k``, y by ``1/k``, area kept); a
    horizontal shear ``h`` in ``[-shear, shear]`` (``x += h * y``); a rotation in ``[-rotate,
    rotate]`` degrees. On ``(y, x)`` vectors about the image centre::

        A = s * [[1/k, 0], [0, k]] @ [[1, 0], [h, 1]] @ [[cos r, -sin r], [sin r, cos r]]

    then :func:`affine_warp` resamples every image at once. All strengths 0: the identity.
    """

    translate: float = 2.0
    scale: float = 0.1
    squeeze: float = 0.1
    shear: float = 0.2
    rotate: float = 0.0
    fill: Fill = None

    def __post_init__(self) -> None:
        if min(self.translate, self.scale, self.squeeze, self.shear, self.rotate) < 0:
            raise ValueError(f"strengths must be >= 0: {self}")
        if self.scale >= 1 or self.squeeze >= 1:
            raise ValueError(f"scale and squeeze must be < 1 (a factor 1 +- it): {self}")

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``matrices: (n, 2, 2)`` and ``shifts: (n, 2)`` for :func:`affine_warp`."""
        shifts = rng.uniform(-self.translate, self.translate, size=(n, 2))
        s = rng.uniform(1 - self.scale, 1 + self.scale, size=n)
        k = rng.uniform(1 - self.squeeze, 1 + self.squeeze, size=n)
        h = rng.uniform(-self.shear, self.shear, size=n)
        r = np.deg2rad(rng.uniform(-self.rotate, self.rotate, size=n))
        cos, sin = np.cos(r), np.sin(r)
        # s * diag(1/k, k) @ [[1, 0], [h, 1]] @ [[cos, -sin], [sin, cos]], written out
        a = np.empty((n, 2, 2))
        a[:, 0, 0] = cos / k
        a[:, 0, 1] = -sin / k
        a[:, 1, 0] = k * (h * cos + sin)
        a[:, 1, 1] = k * (cos - h * sin)
        return a * s[:, None, None], shifts

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        check_images(images)
        matrices, shifts = self.sample(images.shape[0], rng)
        return affine_warp(images, matrices, shifts, self.fill)


def build_augment(
    spec: str, image_size: int, *, fill: Fill = None, allow_flip: bool = True
) -> Augment | None:
    """The augmentation named by ``spec``, with strengths scaled to ``image_size`` pixels.

    ``spec`` is ``"none"`` (returns None) or names from :data:`AUGMENTATIONS` joined by ``+``,
    applied in that order. At 28 pixels: crop pads 3 (``size // 8``, at least 1); affine
    translates up to 2 px (``size / 14``), scales and squeezes by up to 10 %, shears up to
    0.2; elastic uses Simard's ``sigma = 4`` and ``alpha = 34``, with ``sigma`` scaled by
    ``size / 28`` and ``alpha`` by its square so the displacements scale with the image.
    ``allow_flip=False`` refuses ``flip`` (for digits, whose mirror images are not digits).
    """
    names = [part.strip() for part in spec.split("+")]
    if names == ["none"]:
        return None
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown or not names:
        raise ValueError(
            f"unknown augmentation {spec!r}: use 'none' or names from "
            f"{', '.join(AUGMENTATIONS)} joined by '+'"
        )
    if "flip" in names and not allow_flip:
        raise ValueError(
            "horizontal flips are refused for this data set: a mirrored digit is not the same "
            "digit (use crop, affine or elastic)"
        )
    ratio = image_size / 28
    augments: list[Augment] = []
    for name in names:
        if name == "crop":
            augments.append(RandomCrop(max(1, image_size // 8), fill))
        elif name == "flip":
            augments.append(RandomHorizontalFlip(0.5))
        elif name == "affine":
            augments.append(RandomAffine(translate=2.0 * ratio, fill=fill))
        else:
            augments.append(ElasticDistortion(alpha=34.0 * ratio**2, sigma=4.0 * ratio, fill=fill))
    return augments[0] if len(augments) == 1 else compose(*augments)

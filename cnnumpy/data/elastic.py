"""Elastic distortions (Simard, Steinkraus and Platt, ICDAR 2003), over a whole batch at once.

For every image two random fields ``dy, dx: (H, W)`` are drawn uniformly in ``[-1, 1]``,
smoothed with a Gaussian of standard deviation ``sigma`` pixels and multiplied by ``alpha``;
output pixel ``(y, x)`` then reads the input at ``(y + dy[y, x], x + dx[y, x])`` with bilinear
interpolation. A small ``sigma`` gives nearly random (noisy) displacements, a large one nearly
uniform shifts; Simard et al. found ``sigma = 4``, ``alpha = 34`` best on MNIST's 28x28 digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .resample import Fill, bilinear_sample, check_images, gaussian_blur, pixel_grid


def elastic_fields(
    n: int, h: int, w: int, alpha: float, sigma: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Displacement fields ``(dy, dx)``, each ``(n, h, w)`` float64: ``alpha * G_sigma * U``.

    ``U`` is uniform noise in ``[-1, 1]``, ``G_sigma *`` a separable Gaussian convolution
    (:func:`~cnnumpy.data.resample.gaussian_blur`, reflected borders).
    """
    noise = rng.uniform(-1.0, 1.0, size=(2, n, h, w))
    fields = alpha * gaussian_blur(noise, sigma)
    return fields[0], fields[1]


def elastic_warp(
    images: np.ndarray, dy: np.ndarray, dx: np.ndarray, fill: Fill = None
) -> np.ndarray:
    """``out[n, c, y, x] = images[n, c, y + dy[n, y, x], x + dx[n, y, x]]`` (bilinear).

    Shapes: ``images: (N, C, H, W)`` float, ``dy, dx: (N, H, W)`` displacements in pixels; the
    result has the shape and dtype of ``images``. Zero fields give the images back exactly.
    """
    _, _, h, w = images.shape
    gy, gx = pixel_grid(h, w)
    return bilinear_sample(images, gy[None] + dy, gx[None] + dx, fill)


@dataclass(frozen=True)
class ElasticDistortion:
    """Simard et al.'s elastic distortion with strength ``alpha`` and smoothness ``sigma``.

    ``alpha = 0`` is the identity. ``fill`` is the value outside the image (None: replicate the
    border, which for digits on a blank background is the background).
    """

    alpha: float = 34.0
    sigma: float = 4.0
    fill: Fill = None

    def __post_init__(self) -> None:
        if self.alpha < 0 or self.sigma <= 0:
            raise ValueError(f"need alpha >= 0 and sigma > 0, got {self.alpha}, {self.sigma}")

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        check_images(images)
        n, _, h, w = images.shape
        dy, dx = elastic_fields(n, h, w, self.alpha, self.sigma, rng)
        return elastic_warp(images, dy, dx, self.fill)

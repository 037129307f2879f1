"""Resampling a batch of images at arbitrary points, and Gaussian smoothing, in plain NumPy.

:func:`bilinear_sample` is the common back end of the geometric augmentations: each one builds
the source coordinates of every output pixel (an affine map, a displacement field) and this
function reads the images there, all images at once, by index arithmetic. Coordinates are in
pixels: ``(y, x) = (0, 0)`` is the centre of the top-left pixel, ``(H-1, W-1)`` that of the
bottom-right one (the ``align_corners=True`` convention of PyTorch's ``grid_sample``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Fill = float | Sequence[float] | None
"""Value of the points outside the image: None replicates the nearest border pixel; a number,
or one number per channel, is a constant background."""


def check_images(images: np.ndarray) -> None:
    """Raise unless ``images`` is a floating ``(N, C, H, W)`` array."""
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.dtype.kind != "f":
        what = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images)
        raise TypeError(f"augmentations take float (N, C, H, W) images, got {what}")


def pad_images(images: np.ndarray, pad: int, fill: Fill = None) -> np.ndarray:
    """``images: (N, C, H, W)`` -> ``(N, C, H + 2*pad, W + 2*pad)`` padded with ``fill``."""
    widths = ((0, 0), (0, 0), (pad, pad), (pad, pad))
    if fill is None:
        return np.pad(images, widths, mode="edge")
    c = images.shape[1]
    values = np.broadcast_to(np.asarray(fill, dtype=images.dtype).reshape(-1), (c,))
    out = np.empty(
        (images.shape[0], c, images.shape[2] + 2 * pad, images.shape[3] + 2 * pad), images.dtype
    )
    out[...] = values.reshape(1, c, 1, 1)
    out[:, :, pad : pad + images.shape[2], pad : pad + images.shape[3]] = images
    return out


def bilinear_sample(
    images: np.ndarray, ys: np.ndarray, xs: np.ndarray, fill: Fill = None
) -> np.ndarray:
    """Read ``images`` at the points ``(ys, xs)`` with bilinear interpolation.

    Shapes: ``images: (N, C, H, W)`` float; ``ys, xs: (N, Ho, Wo)`` source coordinates in
    pixels, one pair per output pixel; result ``(N, C, Ho, Wo)`` in ``images.dtype``.

    ``out[n, c, i, j] = sum over the four neighbours (y0 + a, x0 + b), a, b in {0, 1}, of
    (1 - |y - y0 - a|) (1 - |x - x0 - b|) images[n, c, y0 + a, x0 + b]``, with ``y0 =
    floor(y)``. A point outside the image blends with the ``fill`` border (see :data:`Fill`):
    the images are padded by one pixel of ``fill`` and the coordinates clipped to that frame,
    so every output is a convex combination of image and fill values. Integer coordinates
    reproduce the pixels exactly.
    """
    n, c, h, w = images.shape
    if ys.shape != xs.shape or ys.ndim != 3 or ys.shape[0] != n:
        raise ValueError(f"need ys, xs of shape ({n}, Ho, Wo), got {ys.shape} and {xs.shape}")
    padded = pad_images(images, 1, fill).reshape(n, c, (h + 2) * (w + 2))
    y = np.clip(np.asarray(ys, dtype=np.float64) + 1.0, 0.0, h + 1.0)  # padded coordinates
    x = np.clip(np.asarray(xs, dtype=np.float64) + 1.0, 0.0, w + 1.0)
    y0 = np.minimum(np.floor(y), h).astype(np.intp)  # so that y0 + 1 is still inside
    x0 = np.minimum(np.floor(x), w).astype(np.intp)
    wy = (y - y0).astype(images.dtype)[:, None]  # (N, 1, Ho, Wo), broadcast over channels
    wx = (x - x0).astype(images.dtype)[:, None]
    out_shape = (n, c, *ys.shape[1:])
    top = (y0 * (w + 2) + x0).reshape(n, 1, -1)  # flat index of the top-left neighbour

    def at(offset: int) -> np.ndarray:
        return np.take_along_axis(padded, top + offset, axis=2).reshape(out_shape)

    upper = at(0) * (1 - wx) + at(1) * wx
    lower = at(w + 2) * (1 - wx) + at(w + 3) * wx
    return (upper * (1 - wy) + lower * wy).astype(images.dtype, copy=False)


def pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ys, xs)``, each ``(H, W)`` float64: the coordinates of every pixel centre."""
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                         indexing="ij")  # fmt: skip
    return ys, xs


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Normalised 1-D Gaussian ``exp(-k^2 / (2 sigma^2))`` for ``k = -r..r``,
    ``r = ceil(truncate * sigma)``; shape ``(2r + 1,)``, summing to 1."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    r = max(1, int(np.ceil(truncate * sigma)))
    k = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (k / sigma) ** 2)
    return g / g.sum()


def gaussian_blur(fields: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Smooth ``fields: (..., H, W)`` over the last two axes with a Gaussian of std ``sigma``.

    Separable: one 1-D convolution along H, then one along W, each over the whole batch at
    once (a sliding window view and a dot product with :func:`gaussian_kernel`). Borders are
    extended by reflection (``d c b | a b c d | c b a``, repeated when the kernel is wider than
    the image), so a constant field stays constant. Returns float64 of the same shape.
    """
    g = gaussian_kernel(sigma, truncate)
    r = g.size // 2
    out = np.asarray(fields, dtype=np.float64)
    for axis in (-2, -1):
        widths = [(0, 0)] * out.ndim
        widths[axis] = (r, r)
        padded = np.pad(out, widths, mode="reflect")
        windows = sliding_window_view(padded, g.size, axis=axis)  # (..., H, W, 2r + 1)
        out = windows @ g
    return out

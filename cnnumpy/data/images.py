"""Image files as arrays: decoding with Pillow, and preparing an image for a trained model.

:func:`read_image` decodes PNG, JPEG, BMP, GIF (the first frame) and TIFF files to ``uint8
(C, H, W)`` arrays, one channel for grey images and three for colour ones; transparent pixels
are laid over white, as a viewer shows them. :func:`to_model_input` makes one the grey or
colour, square size a model takes, and :func:`prepare_digit` prepares a drawn or photographed
digit the way the MNIST digits were made.

Pillow is imported on first use (``pip install 'cnnumpy[images]'``), so ``import cnnumpy``
works without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

DIGIT_BOX = 20
"""MNIST's digits were scaled to fit a 20x20 box of the 28x28 field."""
DIGIT_FIELD = 28
LUMA = (0.299, 0.587, 0.114)
"""ITU-R 601 weights of red, green and blue in the grey level (what Pillow's "L" uses)."""


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            "reading image files needs Pillow: pip install 'cnnumpy[images]' (or Pillow)"
        ) from None
    return Image


def read_image(path: str | Path) -> np.ndarray:
    """The image in ``path`` as ``uint8 (C, H, W)``: ``C = 1`` for a grey image (modes 1, L,
    I, F), ``C = 3`` for any other (palette, RGB, CMYK, ...; an alpha channel is laid over white).

    Raises FileNotFoundError for a missing file and ValueError naming the file when it is not
    an image Pillow can decode (not an image, truncated, corrupt).
    """
    Image = _pil()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with Image.open(path) as img:
            img.seek(0)  # a GIF's or multi-page TIFF's first frame
            img.load()
            return _to_array(img)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        raise ValueError(
            f"{path}: expected an image file Pillow can decode (PNG, JPEG, BMP, GIF, TIFF), "
            f"but it is not one or is truncated or corrupt ({type(err).__name__}: {err})"
        ) from None


def _to_array(img: Any) -> np.ndarray:
    """A loaded Pillow image -> ``uint8 (C, H, W)``."""
    Image = _pil()
    if img.mode.startswith("I;16"):
        return (np.asarray(img, dtype=np.uint16) >> 8).astype(np.uint8)[None]
    if img.mode in ("I", "F"):
        return np.clip(np.asarray(img, dtype=np.float64), 0, 255).astype(np.uint8)[None]
    if img.mode in ("1", "L"):
        return np.asarray(img.convert("L"))[None].copy()
    maybe_grey = img.mode in ("LA", "P", "PA")  # a GIF of a grey image has a grey palette
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    rgb = np.asarray(img.convert("RGB")).transpose(2, 0, 1)
    if maybe_grey and (rgb[0] == rgb[1]).all() and (rgb[1] == rgb[2]).all():
        return rgb[:1].copy()
    return rgb.copy()


def to_grey(image: np.ndarray) -> np.ndarray:
    """``uint8 (C, H, W)`` -> ``uint8 (1, H, W)``: the luma of a colour image, grey unchanged."""
    _check(image)
    if image.shape[0] == 1:
        return image
    grey = np.tensordot(np.asarray(LUMA), image[:3].astype(np.float64), axes=1)
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)[None]


def to_model_input(image: np.ndarray, channels: int, size: int) -> np.ndarray:
    """``uint8 (C, H, W)`` -> ``uint8 (channels, size, size)``.

    Grey (``channels=1``, the luma) or colour (``channels=3``, grey repeated), then resized to
    ``size x size`` with Pillow's antialiased bilinear filter; an image that is not square is
    stretched to the square (as ``Resize((size, size))`` does), not cropped.
    """
    _check(image)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    image = to_grey(image) if channels == 1 else image
    if image.shape[0] == 1 and channels == 3:
        image = np.repeat(image, 3, axis=0)
    if image.shape[1:] == (size, size):
        return image
    Image = _pil()
    planes = [
        np.asarray(Image.fromarray(plane).resize((size, size), Image.Resampling.BILINEAR))
        for plane in image
    ]
    return np.stack(planes)


def prepare_digit(image: np.ndarray, size: int = DIGIT_FIELD) -> np.ndarray:
    """A drawn or photographed digit ``uint8 (C, H, W)`` -> ``uint8 (1, size, size)`` made as
    the MNIST digits were (LeCun et al.): grey levels with bright ink on black, cropped to the
    digit's bounding box, scaled (antialiased) so that its longer side fills a 20x20 box
    keeping its aspect ratio, and placed in the 28x28 field so that its centre of mass falls
    on the field's centre, ``((size - 1) / 2, (size - 1) / 2)`` in pixel indices, within half
    a pixel. For another ``size`` the box is ``round(20 * size / 28)``.

    The background is the median of the border pixels: when it is lighter than the ink the
    image is inverted; it is then subtracted and the ink stretched to reach 255, so paper
    that is not white still gives a black background. Raises ValueError for a blank image.
    """
    grey = to_grey(image)[0].astype(np.float64)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    if background > (grey.min() + grey.max()) / 2:  # light paper, dark ink
        grey, background = 255.0 - grey, 255.0 - background
    ink = np.clip(grey - background, 0, None)
    if ink.max() <= 0:
        raise ValueError("prepare_digit: the image is blank (no pixel differs from the background)")
    ink *= 255.0 / ink.max()
    rows, cols = np.nonzero(ink > 0.2 * 255)  # faint specks and shadows do not widen the box
    patch = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    return _centre(_fit(patch, round(DIGIT_BOX * size / DIGIT_FIELD)), size)[None]


def _fit(patch: np.ndarray, box: int) -> np.ndarray:
    """Float ``(h, w)`` -> float scaled so that its longer side is ``box``, aspect kept."""
    h, w = patch.shape
    scale = box / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    Image = _pil()
    scaled = Image.fromarray(patch.astype(np.float32), mode="F").resize(
        new, Image.Resampling.LANCZOS
    )
    return np.clip(np.asarray(scaled, dtype=np.float64), 0, 255)


def _centre(patch: np.ndarray, size: int) -> np.ndarray:
    """``patch`` placed in a black ``size x size`` field with its centre of mass moved, by
    whole pixels, to within half a pixel of the field's centre; what falls outside is cut."""
    ys, xs = np.indices(patch.shape)
    total = patch.sum()
    com = (float((ys * patch).sum() / total), float((xs * patch).sum() / total))
    top, left = (round((size - 1) / 2 - c) for c in com)
    # a canvas wide enough to hold the patch wherever it lands, then the field cut out of it
    pad = max(patch.shape) + size
    canvas = np.zeros((size + 2 * pad, size + 2 * pad))
    canvas[pad + top : pad + top + patch.shape[0], pad + left : pad + left + patch.shape[1]] = patch
    field = canvas[pad : pad + size, pad : pad + size]
    return np.clip(np.rint(field), 0, 255).astype(np.uint8)


def _check(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.dtype != np.uint8:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image)
        raise ValueError(f"expected a uint8 (C, H, W) image, got {got}")
    if image.shape[0] not in (1, 3, 4):
        raise ValueError(f"expected 1 or 3 channels (C, H, W), got shape {image.shape}")

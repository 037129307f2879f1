"""The ``Dataset`` record, and per-channel normalisation fitted on the training images."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Fixed train / val / test splits of one image classification data set.

    Each split is ``(images, labels)`` with ``images: (N, C, H, W)`` (``uint8`` as loaded, floats
    after :func:`normalize`) and ``labels: (N,)`` ``int64`` in ``[0, len(classes))``.
    ``normalization`` is None for raw images and the statistics used otherwise.
    """

    name: str
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]
    normalization: Normalization | None = None

    def __post_init__(self) -> None:
        shapes = set()
        for part in ("train", "val", "test"):
            images, labels = getattr(self, part)
            if images.ndim != 4:
                raise ValueError(
                    f"{self.name} {part} images must be (N, C, H, W), got {images.shape}"
                )
            if labels.shape != (images.shape[0],) or labels.dtype != np.int64:
                raise ValueError(
                    f"{self.name} {part} labels must be int64 of shape ({images.shape[0]},), "
                    f"got {labels.dtype} {labels.shape}"
                )
            if labels.size and not 0 <= labels.min() <= labels.max() < len(self.classes):
                raise ValueError(
                    f"{self.name} {part} labels fall outside [0, {len(self.classes)}), one per "
                    f"class: got values from {labels.min()} to {labels.max()}"
                )
            shapes.add(images.shape[1:])
        if len(shapes) != 1:
            raise ValueError(f"{self.name} splits disagree on the image shape: {sorted(shapes)}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of every image."""
        return tuple(self.train[0].shape[1:])

    def __repr__(self) -> str:
        sizes = ", ".join(f"{p}={len(getattr(self, p)[1])}" for p in ("train", "val", "test"))
        dtype = self.train[0].dtype
        return f"Dataset({self.name!r}, {sizes}, image_shape={self.image_shape}, dtype={dtype})"


@dataclass(frozen=True)
class Normalization:
    """Per-channel ``x' = (x - mean[c]) / std[c]``, with statistics from the training images."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, images: np.ndarray, chunk: int = 4096) -> Normalization:
        """Mean and (population) standard deviation per channel of ``images: (N, C, H, W)``.

        Computed chunk by chunk, without a float64 copy of the whole array: integer images are
        summed exactly in int64 (``sum x`` and ``sum x^2``), float images in float64 around a
        first estimate of the mean (so a large offset does not cancel the variance away). A
        constant channel gets ``std = 1`` so that it maps to zeros instead of NaN.
        """
        if images.ndim != 4 or images.shape[0] == 0:
            raise ValueError(f"expected a non-empty (N, C, H, W) batch, got shape {images.shape}")
        n, c = images.shape[0], images.shape[1]
        count = n * images.shape[2] * images.shape[3]
        exact = images.dtype.kind in "iub" and images.dtype.itemsize <= 2
        acc = np.int64 if exact else np.float64
        shift = np.zeros(c) if exact else images[:1].astype(np.float64).mean(axis=(0, 2, 3))
        s1, s2 = np.zeros(c, dtype=acc), np.zeros(c, dtype=acc)
        for start in range(0, n, chunk):
            part = images[start : start + chunk].astype(acc)
            if not exact:
                part -= shift.reshape(1, c, 1, 1)
            s1 += part.sum(axis=(0, 2, 3))
            s2 += (part * part).sum(axis=(0, 2, 3))
        mean = s1 / count  # of the shifted values
        std = np.sqrt(np.maximum(s2 / count - mean**2, 0.0))
        std = np.where(std > 0, std, 1.0)
        return cls(tuple(float(m) for m in mean + shift), tuple(float(s) for s in std))

    def __call__(self, images: np.ndarray, dtype: type | np.dtype = np.float32) -> np.ndarray:
        """``images: (N, C, H, W)`` -> normalised copy of the same shape in ``dtype``."""
        if images.ndim != 4 or images.shape[1] != len(self.mean):
            raise ValueError(
                f"expected (N, {len(self.mean)}, H, W) images, got shape {images.shape}"
            )
        out = images.astype(dtype)  # the one copy, made directly in the target dtype
        out -= np.asarray(self.mean, dtype=dtype).reshape(1, -1, 1, 1)
        out /= np.asarray(self.std, dtype=dtype).reshape(1, -1, 1, 1)
        return out

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready form, as stored in a checkpoint's metadata."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> Normalization:
        return cls(tuple(float(m) for m in d["mean"]), tuple(float(s) for s in d["std"]))


def normalize(
    data: Dataset, dtype: type | np.dtype = np.float32, stats: Normalization | None = None
) -> Dataset:
    """Float copy of ``data`` normalised with statistics fitted on ``data.train`` images only,
    or with the given ``stats`` (a model that prescribes its input scaling, like LeNet-5).

    The result's ``normalization`` holds the statistics used. Labels are shared, not copied.
    """
    if data.normalization is not None:
        raise ValueError(f"{data.name} is already normalised ({data.normalization})")
    if stats is None:
        stats = Normalization.fit(data.train[0])
    parts = {}
    for part in ("train", "val", "test"):
        images, labels = getattr(data, part)
        parts[part] = (stats(images, dtype), labels)
    return dataclasses.replace(data, **parts, normalization=stats)

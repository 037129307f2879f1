"""Data sets as plain arrays: ``uint8`` images ``(N, C, H, W)``, ``int64`` labels, class names.

Every loader returns a :class:`Dataset` with fixed ``train`` / ``val`` / ``test`` parts, each an
``(images, labels)`` pair. :func:`normalize` turns the images into floats with per-channel
statistics measured on the training part only; the :class:`Normalization` it records travels
with a checkpoint (``to_dict`` / ``from_dict``) so that new images can be prepared the same way.
"""

from .dataset import Dataset, Normalization, Split, normalize
from .digits import digits

__all__ = ["Dataset", "Normalization", "Split", "digits", "normalize"]

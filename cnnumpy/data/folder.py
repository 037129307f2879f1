"""A data set from a folder of image files, one sub-folder per class (torchvision's ImageFolder).

Two layouts::

    root/train/CLASS/*.png, root/test/CLASS/*.png (and optionally root/val/CLASS/*.png)
    root/CLASS/*.png                              (one tree, split here)

Class names are the folder names, sorted; label ``i`` is ``classes[i]``. Files are taken by
their suffix (:data:`IMAGE_SUFFIXES`, any case); hidden files and folders are ignored. One tree
is split deterministically: from each class, sorted by name and shuffled with a fixed seed, a
fifth tests (:data:`TEST_FRACTION`); the rest is shuffled together (fixed seed) and its last
``n_val`` images (a tenth by default) validate. The test split never depends on ``n_val``.

On the command line a folder is the data set ``folder:PATH``; :func:`folder_spec` writes the
canonical name a checkpoint records (absolute path, image size, channels), which
:func:`parse_folder_spec` reads back, so that ``cnnumpy eval`` rebuilds the same data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .dataset import Dataset, Split
from .files import split_last
from .images import read_image, to_model_input

PREFIX = "folder:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1
SEED = 0
"""The split's seed: fixed, so that every run and ``cnnumpy eval`` see the same split."""


def folder_spec(root: str | Path, size: int, channels: int, skip_bad: bool = False) -> str:
    """The canonical data-set name ``folder:/ABS/PATH?size=S&channels=C[&skip_bad=1]``."""
    options = f"size={size}&channels={channels}" + ("&skip_bad=1" if skip_bad else "")
    return f"{PREFIX}{Path(root).resolve()}?{options}"


def parse_folder_spec(name: str) -> tuple[Path, dict[str, int | bool]]:
    """``folder:PATH[?size=S&channels=C&skip_bad=1]`` -> ``(PATH, keyword arguments of
    image_folder)``; the options left out keep :func:`image_folder`'s defaults."""
    if not name.startswith(PREFIX) or len(name) == len(PREFIX):
        raise ValueError(f"expected folder:PATH for a folder of images, got {name!r}")
    path, _, query = name[len(PREFIX) :].partition("?")
    options: dict[str, int | bool] = {}
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key not in ("size", "channels", "skip_bad") or not value.isdigit():
            raise ValueError(f"{name!r}: expected size=N, channels=1|3 or skip_bad=1, got {item!r}")
        options[key] = bool(int(value)) if key == "skip_bad" else int(value)
    return Path(path), options


def run_name(name: str) -> str:
    """A data-set name usable in a directory name: ``folder:/x/shapes?...`` -> ``folder-shapes``."""
    return f"folder-{parse_folder_spec(name)[0].name}" if name.startswith(PREFIX) else name


def image_folder(
    root: str | Path,
    *,
    size: int = 32,
    channels: int = 3,
    n_val: int | None = None,
    skip_bad: bool = False,
    max_bytes: int | None = None,
) -> Dataset:
    """The images under ``root`` as a :class:`Dataset` of ``uint8 (N, channels, size, size)``.

    Each image is decoded with Pillow, made grey (``channels=1``) or colour (``3``) and resized
    to ``size x size`` (see :func:`~cnnumpy.data.images.to_model_input`). Before decoding, the
    decoded size ``N * channels * size * size`` bytes is compared with ``max_bytes`` (default:
    half the available memory) and refused when larger. An image that cannot be decoded is a
    ValueError naming it; with ``skip_bad`` it is left out and a note on stderr says how many.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of images (expected CLASS/ sub-folders)")
    parts, classes = _layout(root)
    n_files = sum(len(files) for files, _ in parts.values())
    check_memory(n_files * channels * size * size, n_files, root, max_bytes)
    bad: list[str] = []
    decoded = {
        part: _decode(files, labels, size, channels, skip_bad, bad)
        for part, (files, labels) in parts.items()
    }
    if bad:
        shown = "; ".join(bad[:3]) + ("; ..." if len(bad) > 3 else "")
        print(
            f"note: skipped {len(bad)} unreadable image(s) under {root}: {shown}", file=sys.stderr
        )
    train = decoded["train"]
    if "val" in decoded:
        if n_val is not None:
            raise ValueError(f"{root} has its own val/ folder: n_val (--val-size) cannot be given")
        val = decoded["val"]
    else:
        n = len(train[1])
        n_val = round(VAL_FRACTION * n) if n_val is None else n_val
        train, val = split_last(*train, n_val, str(root))
    return Dataset(f"{PREFIX}{root.name}", train, val, decoded["test"], classes)


def _layout(root: Path) -> tuple[dict[str, tuple[list[Path], list[int]]], tuple[str, ...]]:
    """``({part: (files, labels)}, classes)`` for both layouts; training files shuffled."""
    if (root / "train").is_dir() and (root / "test").is_dir():
        found = {p: _classes(root / p) for p in ("train", "test", "val") if (root / p).is_dir()}
        classes = tuple(sorted(found["train"]))
        for part, tree in found.items():
            if extra := sorted(set(tree) - set(classes)):
                raise ValueError(
                    f"{root / part} has classes that {root / 'train'} lacks: {', '.join(extra)}"
                )
        parts = {p: _labelled(tree, classes) for p, tree in found.items()}
    else:
        tree = _classes(root)
        classes = tuple(sorted(tree))
        rng = np.random.default_rng(SEED)
        train_tree, test_tree = {}, {}
        for name in classes:
            files = [tree[name][i] for i in rng.permutation(len(tree[name]))]
            n_test = max(1, round(TEST_FRACTION * len(files))) if len(files) > 1 else 0
            test_tree[name], train_tree[name] = files[:n_test], files[n_test:]
        parts = {"train": _labelled(train_tree, classes), "test": _labelled(test_tree, classes)}
    files, labels = parts["train"]
    order = np.random.default_rng(SEED).permutation(len(files))  # classes mixed for val/train-size
    parts["train"] = ([files[i] for i in order], [labels[i] for i in order])
    return parts, classes


def _classes(folder: Path) -> dict[str, list[Path]]:
    """``{class name: its image files, sorted}`` for the sub-folders of ``folder``."""
    tree = {
        sub.name: sorted(
            f for f in sub.rglob("*")
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
        )
        for sub in sorted(folder.iterdir())
        if sub.is_dir() and not sub.name.startswith(".")
    }  # fmt: skip
    if not tree:
        raise ValueError(f"{folder}: expected one sub-folder of images per class, found none")
    if empty := [name for name, files in tree.items() if not files]:
        raise ValueError(
            f"{folder}: class folder(s) {', '.join(empty)} hold no image files "
            f"({', '.join(IMAGE_SUFFIXES)})"
        )
    return tree


def _labelled(tree: dict[str, list[Path]], classes: tuple[str, ...]) -> tuple[list, list]:
    files = [f for name in classes for f in tree.get(name, [])]
    labels = [i for i, name in enumerate(classes) for _ in tree.get(name, [])]
    return files, labels


def _decode(
    files: list[Path], labels: list[int], size: int, channels: int, skip_bad: bool, bad: list
) -> Split:
    """``(uint8 (N, channels, size, size), int64 (N,))``; unreadable files raise, or with
    ``skip_bad`` are appended to ``bad`` as ``"path (reason)"`` and left out."""
    images = np.empty((len(files), channels, size, size), dtype=np.uint8)
    kept = np.ones(len(files), dtype=bool)
    for i, path in enumerate(files):
        try:
            images[i] = to_model_input(read_image(path), channels, size)
        except ValueError:
            if not skip_bad:
                raise
            kept[i] = False
            bad.append(str(path))
    labels = np.asarray(labels, dtype=np.int64)
    if kept.all():  # the usual case: no second copy of what may be half the memory
        return images, labels
    return images[kept], labels[kept]


def available_memory() -> int | None:
    """Bytes of memory available now: MemAvailable on Linux, else free pages from
    ``os.sysconf``; None where neither can be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(needed: int, n_files: int, root: Path, max_bytes: int | None = None) -> None:
    """MemoryError when ``needed`` bytes exceed ``max_bytes`` (default half the available
    memory; no check when that cannot be read)."""
    if max_bytes is None:
        available = available_memory()
        if available is None:
            return
        max_bytes = available // 2
    if needed > max_bytes:
        raise MemoryError(
            f"{root}: {n_files} images decoded to uint8 take {needed / 2**20:.1f} MiB (N x C x "
            f"H x W bytes), more than the {max_bytes / 2**20:.1f} MiB allowed (half the "
            "available memory); training needs about 4 times more again as float32. Use a "
            "smaller --image-size, --channels 1, or fewer images"
        )

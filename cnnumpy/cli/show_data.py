"""``cnnumpy show-data DATASET``: a PNG of sample images per class, optionally augmented.

Shows what the network is given: the first ``--per-class`` images of each class in a split,
one row per class, and with ``--augment`` the same images, distorted exactly as ``cnnumpy
train --augment`` distorts a mini-batch (after normalisation, with the same settings and
background), in a second panel beside them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..data import DATASETS, Dataset, Normalization
from ..inspect import plot_image_grid
from ._common import add_data_arguments, augment_spec, load_data, make_augment

PIXEL_MAX = {"digits": 16.0}  # the brightest value; 255 for the others
DEFAULT_DIR = Path("runs") / "show-data"  # beside the training runs, not loose in the cwd


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show-data",
        help="draw sample images of each class (and their augmented versions) into a PNG",
        description=(
            "Write a PNG grid with the first --per-class images of every class of DATASET's "
            "--split, one row per class. With --augment, a second panel shows the same images "
            "distorted as `cnnumpy train --augment` would distort them."
        ),
    )
    p.add_argument("dataset", choices=sorted(DATASETS), help="the data set to show")
    add_data_arguments(p)
    p.add_argument(
        "--augment", default="none", type=augment_spec, metavar="AUG",
        help="also show the images distorted by AUG (as in cnnumpy train --augment; default "
        "none)",
    )  # fmt: skip
    p.add_argument("--split", default="train", choices=("train", "val", "test"),
                   help="the split shown (default train)")  # fmt: skip
    p.add_argument("--per-class", type=int, default=8, help="images per class (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the augmentation (default 0)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"PNG file (default {DEFAULT_DIR}/DATASET[-AUG].png)")  # fmt: skip
    p.set_defaults(func=run)


def samples_per_class(labels: np.ndarray, num_classes: int, per_class: int) -> np.ndarray:
    """Indices ``(num_classes, per_class)``: the first ``per_class`` samples of each class."""
    if per_class < 1:
        raise ValueError(f"--per-class must be >= 1, got {per_class}")
    rows = []
    for c in range(num_classes):
        where = np.flatnonzero(labels == c)[:per_class]
        if where.size < per_class:
            raise ValueError(f"class {c} has only {where.size} images in this split")
        rows.append(where)
    return np.stack(rows)


def sample_grids(
    data: Dataset, dataset: str, split: str, per_class: int, augment: str, seed: int
) -> list[tuple[str, np.ndarray]]:
    """Panels ``[(name, images (classes, per_class, C, H, W) in [0, 1])]`` for the plot."""
    images, labels = getattr(data, split)
    index = samples_per_class(labels, len(data.classes), per_class)
    chosen = images[index.ravel()]  # (classes * per_class, C, H, W), raw values
    scale = PIXEL_MAX.get(dataset, 255.0)
    grid_shape = (*index.shape, *chosen.shape[1:])
    panels = [("original", (chosen / scale).reshape(grid_shape))]
    if augment != "none":
        norm = Normalization.fit(data.train[0])  # what training fits
        aug = make_augment(augment, dataset, norm, chosen.shape[-1])
        x = aug(norm(chosen), np.random.default_rng(seed))
        mean = np.asarray(norm.mean).reshape(1, -1, 1, 1)
        std = np.asarray(norm.std).reshape(1, -1, 1, 1)
        panels.append((f"augmented: {augment}", ((x * std + mean) / scale).reshape(grid_shape)))
    return panels


def run(args: argparse.Namespace) -> int:
    data = load_data(args.dataset, args.data_dir, verify=not args.no_verify)
    panels = sample_grids(data, args.dataset, args.split, args.per_class, args.augment, args.seed)
    suffix = "" if args.augment == "none" else f"-{args.augment}"
    out = args.out or DEFAULT_DIR / f"{args.dataset}{suffix}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    title = f"{args.dataset} {args.split}: the first {args.per_class} images of each class"
    path = plot_image_grid(panels, data.classes, out, title=title)
    print(f"wrote {path}")
    return 0

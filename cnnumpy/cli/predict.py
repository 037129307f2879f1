"""``cnnumpy predict CHECKPOINT IMAGE...``: classify image files with a trained model."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from ..predict import PREPARE_MODES, ModelSourceChangedWarning, Predictor, load
from ..train import strict_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="classify image files with a trained model",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description=(
            "Read each IMAGE (PNG, JPEG, BMP, GIF or TIFF; needs Pillow), turn it into what the "
            "model in CHECKPOINT was trained on (channels, size and normalisation, all read "
            "from the checkpoint) and print its likeliest classes with their probabilities. "
            "A model built from your own code (--model FILE.py:function) is rebuilt by "
            "importing that file, which executes it: load only checkpoints you trust."
        ),
    )
    p.add_argument("checkpoint", help="a .npz file written by cnnumpy train")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files to classify")
    p.add_argument("--top", type=int, default=3, metavar="K", help="classes to print per image")
    p.add_argument(
        "--json", action="store_true",
        help="print one JSON object per image: file, prediction and the top classes",
    )  # fmt: skip
    p.add_argument(
        "--prepare", default="auto", choices=PREPARE_MODES,
        help="digit: prepare each image as MNIST's digits were made (a dark digit on light "
        "paper becomes light on black, cropped, centred in its box; for the 8x8 digits also "
        "scaled down to their 0-16 range); auto: digit for models trained on mnist or digits, "
        "else none; none: only convert the channels and resize",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelSourceChangedWarning)
        predictor = load(args.checkpoint)
    for warning in caught:
        print(f"note: {warning.message}", file=sys.stderr)
    batch = np.stack([_read(predictor, Path(name), args.prepare) for name in args.images])
    indices, probs = predictor.top(batch, args.top)
    for name, idx, prob in zip(args.images, indices, probs, strict=True):
        top = [(predictor.classes[i], int(i), float(q)) for i, q in zip(idx, prob, strict=True)]
        if args.json:
            ranked = [{"class": c, "index": i, "probability": q} for c, i, q in top]
            record = {"file": name, "prediction": top[0][0], "top": ranked}
            print(strict_json.dumps(record))
        else:
            print(name)
            width = max(len(c) for c, _, _ in top)
            for c, _, q in top:
                print(f"  {c:<{width}}  {q:.4f}")
    return 0


def _read(predictor: Predictor, path: Path, prepare: str) -> np.ndarray:
    """One file as the model's raw input ``(C, H, W)``; ValueError naming the file when it
    cannot be read or prepared."""
    try:
        from ..data.images import read_image
    except ImportError as err:  # Pillow is optional: say how to get it
        raise ValueError(f"reading {path} needs Pillow ({err}): pip install Pillow") from None
    try:
        image = read_image(path)
    except ImportError as err:
        raise ValueError(f"reading {path} needs Pillow: {err}") from None
    try:
        return predictor.prepare(image, prepare)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None

"""``cnnumpy eval CHECKPOINT``: accuracy of a saved model on a split of its data set."""

from __future__ import annotations

import argparse

import numpy as np

from ..data import Normalization
from ._common import add_data_arguments, load_trained, model_outputs

MAX_CLASSES_SHOWN = 20
"""Up to this many classes, the accuracy of each is printed under the total."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint written by `cnnumpy train`",
        description=(
            "Rebuild the model recorded in CHECKPOINT, load its weights (refusing, with one "
            "line naming the problem, a file that is not a complete and consistent checkpoint "
            "of `cnnumpy train`), prepare the data with the "
            "normalisation stored in the checkpoint and print the accuracy on --split. The "
            "data are read from --data-dir, by default from the directory training used."
        ),
    )
    p.add_argument("checkpoint", help="a .npz file written by cnnumpy train")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--batch-size", type=int, default=256, help="evaluation batch size")
    add_data_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model, loss, meta, data = load_trained(args.checkpoint, args.data_dir, not args.no_verify)
    config = meta["extra"]["config"]
    images, labels = getattr(data, args.split)
    scores = model_outputs(model, Normalization.from_dict(meta["normalization"])(images),
                           args.batch_size)  # fmt: skip
    predicted = loss.predict(scores)
    correct = int(np.sum(predicted == labels))
    print(f"{config['model']} (epoch {meta['epoch']}) on {config['dataset']} {args.split}: "
          f"{100 * correct / len(labels):.2f}% ({correct}/{len(labels)})")  # fmt: skip
    if len(data.classes) <= MAX_CLASSES_SHOWN:  # a thousand lines would bury the total
        for i, name in enumerate(data.classes):
            hits, n = int(np.sum(predicted[labels == i] == i)), int(np.sum(labels == i))
            print(f"  {name}: " + (f"{100 * hits / n:.2f}% ({hits}/{n})" if n else "no images"))
    return 0

"""``cnnumpy eval CHECKPOINT``: accuracy of a saved model on a split of its data set."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import nn
from ..checkpoint import load_checkpoint
from ..data import DATASETS, Normalization
from ..models import build_model
from .train import add_data_arguments, load_data


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint written by `cnnumpy train`",
        description=(
            "Rebuild the model recorded in CHECKPOINT, load its weights (refusing a file that "
            "is corrupt or belongs to another architecture), prepare the data with the "
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
    meta = load_checkpoint(args.checkpoint)
    config = meta["extra"].get("config") or {}
    if "model" not in config or config.get("dataset") not in DATASETS:
        raise ValueError(
            f"{args.checkpoint} does not record which model and data set it was trained on "
            "(it was not written by `cnnumpy train`)"
        )
    model = build_model(config["model"], rng=np.random.default_rng(0), **config["model_kwargs"])
    load_checkpoint(args.checkpoint, model)
    model.eval()
    loss = model.criterion if hasattr(model, "criterion") else nn.CrossEntropyLoss()
    data_dir = args.data_dir or config.get("data_dir")
    data = load_data(config["dataset"], data_dir and Path(data_dir), verify=not args.no_verify)
    images, labels = getattr(data, args.split)
    x = Normalization.from_dict(meta["normalization"])(images)
    correct = 0
    for i in range(0, len(labels), args.batch_size):
        scores = model(x[i : i + args.batch_size])
        correct += int(np.sum(loss.predict(scores) == labels[i : i + args.batch_size]))
    print(f"{config['model']} (epoch {meta['epoch']}) on {config['dataset']} {args.split}: "
          f"{100 * correct / len(labels):.2f}% ({correct}/{len(labels)})")  # fmt: skip
    return 0

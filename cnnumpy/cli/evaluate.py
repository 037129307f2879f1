"""``cnnumpy eval CHECKPOINT``: accuracy of a saved model on a split of its data set."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..checkpoint import load_checkpoint
from ..data import DATASETS, Dataset, Normalization
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


def load_trained(
    checkpoint: str | Path, data_dir: Path | None = None, verify: bool = True
) -> tuple[nn.Module, Any, dict, Dataset]:
    """``(model in eval mode, its loss, checkpoint metadata, raw data set)`` for a checkpoint
    written by ``cnnumpy train``: the model named in its config, rebuilt and loaded (refusing
    a corrupt file or another architecture), and the data set it was trained on."""
    meta = load_checkpoint(checkpoint)
    config = meta["extra"].get("config") or {}
    if "model" not in config or config.get("dataset") not in DATASETS:
        raise ValueError(
            f"{checkpoint} does not record which model and data set it was trained on "
            "(it was not written by `cnnumpy train`)"
        )
    model = build_model(config["model"], rng=np.random.default_rng(0), **config["model_kwargs"])
    load_checkpoint(checkpoint, model)
    model.eval()
    loss = model.criterion if hasattr(model, "criterion") else nn.CrossEntropyLoss()
    stored = config.get("data_dir")
    data = load_data(config["dataset"], data_dir or (stored and Path(stored)), verify=verify)
    return model, loss, meta, data


def model_outputs(model: nn.Module, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's outputs (scores or penalties) for ``x``, computed in batches."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    return np.concatenate([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def run(args: argparse.Namespace) -> int:
    model, loss, meta, data = load_trained(args.checkpoint, args.data_dir, not args.no_verify)
    config = meta["extra"]["config"]
    images, labels = getattr(data, args.split)
    scores = model_outputs(model, Normalization.from_dict(meta["normalization"])(images),
                           args.batch_size)  # fmt: skip
    correct = int(np.sum(loss.predict(scores) == labels))
    print(f"{config['model']} (epoch {meta['epoch']}) on {config['dataset']} {args.split}: "
          f"{100 * correct / len(labels):.2f}% ({correct}/{len(labels)})")  # fmt: skip
    return 0

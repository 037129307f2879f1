"""``cnnumpy visualize CHECKPOINT``: PNG figures of what a trained model does inside.

Writes into ``--out`` (default: ``inside/`` beside the checkpoint) the filters of one
convolution (``--layer``, by default the first), the feature maps of one image layer by layer
(as LeCun et al. 1998 show LeNet-5 reading a digit), the confusion matrix and the most
confidently misclassified images of a split, and the learning curves recorded in the checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import nn
from ..checkpoint import CheckpointError, load_checkpoint
from ..data import Normalization
from ..inspect import (
    class_probabilities,
    confusion_matrix,
    conv_layers,
    most_confident_errors,
    plot_confusion,
    plot_feature_maps,
    plot_filters,
    plot_learning_curves,
    plot_misclassified,
    predicts_argmin,
    record_feature_maps,
)
from ._common import add_data_arguments, load_trained, model_outputs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "visualize",
        help="draw a checkpoint's filters, feature maps, confusion matrix and mistakes as PNGs",
        description=(
            "Rebuild the model recorded in CHECKPOINT (as `cnnumpy eval` does) and write "
            "filters.png (of --layer), feature_maps.png (image --index of --split), confusion.png, "
            "misclassified.png and learning_curves.png into --out."
        ),
    )
    p.add_argument("checkpoint", help="a .npz file written by cnnumpy train")
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default: CHECKPOINT's directory/inside)")  # fmt: skip
    p.add_argument("--layer", default=None, metavar="NAME",
                   help="the convolution whose filters filters.png draws, by its dotted name "
                   "as `cnnumpy summary` shows it (default: the first)")  # fmt: skip
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="split of the feature maps' image and mistakes (default test)")  # fmt: skip
    p.add_argument(
        "--index", type=int, default=0, help="image of --split for the feature maps (default 0)"
    )
    p.add_argument(
        "--errors", type=int, default=24, help="misclassified images to show (default 24)"
    )
    p.add_argument(
        "--batch-size", type=int, default=256, help="evaluation batch size (default 256)"
    )
    add_data_arguments(p)
    p.set_defaults(func=run)


def _whole_history(checkpoint: Path, meta: dict) -> dict:
    """The run's history up to its last epoch: ``best.npz`` stops at the best epoch, so the
    ``last.npz`` beside it is read when it belongs to the same run (same config)."""
    last = checkpoint.parent / "last.npz"
    if last.is_file() and last.resolve() != checkpoint.resolve():
        try:
            last_meta = load_checkpoint(last)
        except CheckpointError:
            return meta["history"]
        if last_meta["extra"].get("config") == meta["extra"].get("config"):
            return last_meta["history"]
    return meta["history"]


def pick_conv(model: nn.Module, layer: str | None) -> tuple[str, nn.Conv2d, int, int] | None:
    """``(dotted name, layer, its position from 1, number of convolutions)`` of the
    convolution named ``layer`` (the first when None); None when the model has none. A name
    that is not a convolution's is a ValueError listing the names that are."""
    convs = conv_layers(model)
    names = [n for n, _ in convs]
    if layer is None:
        return (*convs[0], 1, len(convs)) if convs else None
    if layer not in names:
        known = ", ".join(names) if names else "none"
        raise ValueError(f"--layer {layer!r} is not a convolution; the model's are: {known}")
    i = names.index(layer)
    return (*convs[i], i + 1, len(convs))


def _filters(model: nn.Module, name: str, layer: str | None, out: Path) -> Path | None:
    """filters.png of the convolution ``layer`` (the first when None); None when the model has
    no convolution."""
    conv = pick_conv(model, layer)
    if conv is None:
        print(f"{name} has no Conv2d layer: no filters.png")
        return None
    layer_name, conv_layer, position, count = conv
    weight = conv_layer.weight.data
    shape = "x".join(map(str, weight.shape))
    title = f"{name}: convolution '{layer_name}' ({position} of {count}), weight {shape}"
    return plot_filters(weight, out / "filters.png", title)


def run(args: argparse.Namespace) -> int:
    model, loss, meta, data = load_trained(args.checkpoint, args.data_dir, not args.no_verify)
    config = meta["extra"]["config"]
    name, dataset = config["model"], config["dataset"]
    images, labels = getattr(data, args.split)
    if not -len(labels) <= args.index < len(labels):
        raise ValueError(f"--index {args.index} is outside the {len(labels)} {args.split} images")
    out = args.out or Path(args.checkpoint).resolve().parent / "inside"
    out.mkdir(parents=True, exist_ok=True)
    x = Normalization.from_dict(meta["normalization"])(images)
    where = f"{name} (epoch {meta['epoch']}) on {dataset} {args.split}"
    written = [_filters(model, name, args.layer, out)]

    records = record_feature_maps(model, x[args.index])
    label = data.classes[labels[args.index]]
    written.append(plot_feature_maps(
        x[args.index], records, out / "feature_maps.png",
        title=f"{name}: feature maps of {dataset} {args.split} image {args.index} (a '{label}')",
        input_label=f"input ('{label}')",
    ))  # fmt: skip

    outputs = model_outputs(model, x, args.batch_size)
    predicted = np.asarray(loss.predict(outputs))
    matrix = confusion_matrix(labels, predicted, len(data.classes))
    written.append(plot_confusion(matrix, data.classes, out / "confusion.png", where))

    probs = class_probabilities(outputs, lowest_wins=predicts_argmin(loss))
    worst = most_confident_errors(probs, labels, args.errors, y_pred=predicted)
    wrong = int(np.sum(predicted != labels))
    written.append(plot_misclassified(
        images[worst], labels[worst], predicted[worst], probs[worst, predicted[worst]],
        data.classes, out / "misclassified.png",
        f"{where}: the {len(worst)} most confident of {wrong} mistakes",
    ))  # fmt: skip

    written.append(plot_learning_curves(
        _whole_history(Path(args.checkpoint), meta), out / "learning_curves.png",
        title=f"{name} on {dataset}", best_epoch=meta["epoch"],
    ))  # fmt: skip
    for path in filter(None, written):
        print(f"wrote {path}")
    return 0

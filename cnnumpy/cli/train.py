"""``cnnumpy train``: train a model on a data set, with checkpoints, logs and a plot.

With no arguments it trains the CS231n three-layer convnet on scikit-learn's 8x8 digits (built
in, no download) in well under two minutes on two cores and prints the test accuracy. MNIST,
Fashion-MNIST and CIFAR-10 are read from their official files in ``--data-dir``; ``--augment``
distorts the training mini-batches (see :mod:`cnnumpy.data.augment`).

Everything that can fail before training is checked before training (the run directory, the
data, the model options, the checkpoint to resume); see :mod:`cnnumpy.cli._train_run`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import backend
from ..data import DATASETS
from ..train.factory import OPTIMIZERS, SCHEDULES
from ._common import add_data_arguments, augment_spec
from ._folder_options import add_folder_arguments, dataset_name, run_on_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (default: a small convnet on the built-in digits)",
        description=(
            "Train MODEL on DATASET with mini-batch gradient descent. Writes last.npz and "
            "best.npz (checkpoints), history.json, metrics.jsonl (one record per epoch), "
            "result.json and learning_curves.png into the run directory, and prints the test "
            "accuracy of the best model (chosen on the validation split). A run directory is "
            "never overwritten: without --out each run gets a new one (runs/MODEL-DATASET, "
            "then runs/MODEL-DATASET-2, ...); a directory that holds a run is continued with "
            "--resume or replaced with --overwrite. A resumed run keeps its recorded settings: "
            "--lr, --epochs, --patience, --clip-grad-norm, --divergence-factor and --data-dir "
            "may change (recorded as changes), the others must match or be left out. "
            "Prefixed with mpirun -n K, it trains one model on K processes (mpi4py and Open "
            "MPI: pip install 'cnnumpy[mpi]'): each takes its share of every global batch, "
            "the gradients are averaged before every step, rank 0 prints and writes the "
            "files, and --resume needs the same K."
        ),
    )
    _add_model_and_data(p.add_argument_group("model and data"))
    _add_optimisation(p.add_argument_group("optimisation"))
    _add_run(p.add_argument_group("the run"))
    p.set_defaults(func=run_on_folder)


def _add_model_and_data(p: argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--model", default=None, metavar="MODEL",
        help="model (default convnet; `cnnumpy summary --list` names them all), or a builder "
        "of your own: path/to/file.py:function or package.module:function, called with "
        "in_channels, input_size, num_classes, rng and the --model-options (importing the "
        "file executes its code: use only code you trust)",
    )  # fmt: skip
    p.add_argument(
        "--dataset", default=None, type=dataset_name, metavar="DATASET",
        help=f"data set: {', '.join(sorted(DATASETS))} (default digits, built in; the others "
        "are read from --data-dir), or folder:PATH, a folder of image files with one "
        "sub-folder per class (PATH/CLASS/*.png, or PATH/train/CLASS/ and PATH/test/CLASS/), "
        "decoded with Pillow",
    )  # fmt: skip
    add_data_arguments(p)
    add_folder_arguments(p)
    p.add_argument(
        "--model-option", action="append", default=None, type=model_option, metavar="KEY=VALUE",
        dest="model_options",
        help="an extra argument of the model's builder, the value written as JSON (repeatable): "
        "e.g. --model-option batch_norm=true --model-option widths=[32,64,256,128]; not rng "
        "(--seed seeds it) nor in_channels, input_size, num_classes (the data set fixes them)",
    )  # fmt: skip
    p.add_argument(
        "--augment", default=None, type=augment_spec, metavar="AUG",
        help="distort the training mini-batches: none (default), crop, flip, affine, elastic, "
        "or several joined by '+', e.g. crop+flip (flip is refused for digits and mnist)",
    )  # fmt: skip
    p.add_argument(
        "--train-size", type=int, default=None, metavar="N",
        help="train on the first N training images only (quick trials; validation and test "
        "sets stay whole)",
    )  # fmt: skip
    p.add_argument(
        "--val-size", type=int, default=None, metavar="N",
        help="hold out the last N training images for validation (default 5000, a tenth for "
        "folder:PATH; not for digits). 0 trains on all of them, as LeNet-5's paper did, and "
        "keeps the last epoch",
    )  # fmt: skip


def _add_optimisation(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--optimizer", default=None, choices=OPTIMIZERS, help="default adam")
    p.add_argument(
        "--lr", type=float, default=None,
        help="learning rate (default 1e-3); for sdlm the global epsilon (default 0.0005, the "
        "paper's first). With --resume: the new base rate from the next epoch (a schedule "
        "continues, scaled to it)",
    )  # fmt: skip
    p.add_argument(
        "--lr-schedule", default=None, choices=SCHEDULES,
        help="none (constant, the default); cosine: annealed to 0 over --epochs; plateau: "
        "halved when validation accuracy has not improved for 2 epochs; lenet5: LeCun et al. "
        "1998's steps, x1 for epochs 1-2, x0.4 for 3-5, x0.2 for 6-8, x0.1 for 9-12, x0.02 after",
    )  # fmt: skip
    p.add_argument(
        "--mu", type=float, default=None,
        help="sdlm: the damping mu in lr / (mu + h) (default 0.02, the paper's)",
    )  # fmt: skip
    p.add_argument("--momentum", type=float, default=None, help="for sgd/rmsprop (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=None, help="L2 penalty (default 0)")
    p.add_argument(
        "--clip-grad-norm", type=float, default=None, metavar="MAX",
        help="scale each step's gradients down to a joint 2-norm of at most MAX (default off; "
        "0 turns it off)",
    )  # fmt: skip
    p.add_argument("--epochs", type=int, default=None, help="epochs in all (default 20)")
    p.add_argument(
        "--batch-size", type=int, default=None,
        help="mini-batch size (default 32): the global batch, so under mpirun -n K each "
        "process takes B/K of every batch and the run sees the batches one process would",
    )  # fmt: skip
    p.add_argument(
        "--patience", type=int, default=None,
        help="stop when validation accuracy has not improved for this many epochs (default "
        "off; 0 turns it off)",
    )  # fmt: skip
    p.add_argument(
        "--divergence-factor", type=float, default=None, metavar="F",
        help="stop the run, with an error and the last checkpoint untouched, when an epoch's "
        "mean training loss exceeds F times the starting loss (the first mini-batch's, before "
        "any step) or a weight becomes NaN or infinite (default 10; 0 checks the weights only)",
    )  # fmt: skip


def _add_run(p: argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--seed", type=int, default=None, help="seed of weights and shuffling (default 0)"
    )
    p.add_argument(
        "--out", type=Path, default=None,
        help="the run directory (default: a new one, runs/MODEL-DATASET or runs/MODEL-DATASET-N, "
        "printed at the start and the end)",
    )  # fmt: skip
    p.add_argument(
        "--resume", action="store_true",
        help="continue the run in --out from its last.npz (default --out: the newest run of "
        "MODEL on DATASET under runs/), with its recorded settings",
    )  # fmt: skip
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace the run that --out holds (its checkpoints, history and results are "
        "deleted when training starts)",
    )  # fmt: skip
    p.add_argument(
        "--sync-bn", action="store_const", const=True, default=None,
        help="under mpirun -n K: batch norm with the statistics of the whole global batch "
        "(SyncBatchNorm, all-reduced in the forward and backward passes) instead of each "
        "process's share (the default, as PyTorch's DistributedDataParallel)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--threads", type=positive_int, default=None, metavar="N",
        help=f"threads for cnnumpy's own kernels (default: ${backend.ENV_VAR}, else the usable "
        f"cores, at most {backend.MAX_DEFAULT_THREADS}; under mpirun -n K each process's "
        "share of the machine's cores, for BLAS too); results do not depend on it",
    )  # fmt: skip


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def model_option(text: str) -> tuple[str, object]:
    """argparse type for ``--model-option``: ``KEY=VALUE`` with a JSON value (lists become
    tuples, as the builders' defaults are). JSON, never ``eval``: a value can only be data."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. batch_norm=true")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(
            f'{text!r}: the value must be JSON (true, 0.5, [32, 64], "name"): {err.msg}'
        ) from None
    return key, tuple(parsed) if isinstance(parsed, list) else parsed

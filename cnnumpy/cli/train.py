"""``cnnumpy train``: train a model on a data set, with checkpoints, logs and a plot.

With no arguments it trains the CS231n three-layer convnet on scikit-learn's 8x8 digits (built
in, no download) in well under two minutes on two cores and prints the test accuracy. MNIST,
Fashion-MNIST and CIFAR-10 are read from their official files in ``--data-dir``; ``--augment``
distorts the training mini-batches (see :mod:`cnnumpy.data.augment`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .. import backend
from ..data import DATASETS, Dataset, Normalization, normalize
from ..inspect import plot_learning_curves
from ..models import MODELS, build_model
from ..solver import Solver
from ..train.factory import (
    OPTIMIZERS,
    SCHEDULES,
    criterion_for,
    default_lr,
    make_optimizer,
    make_scheduler,
)
from ._common import DEFAULT_DATA_DIR, add_data_arguments, augment_spec, load_data, make_augment


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (default: a small convnet on the built-in digits)",
        description=(
            "Train MODEL on DATASET with mini-batch gradient descent. Writes last.npz and "
            "best.npz (checkpoints), history.json, metrics.jsonl (one record per epoch) and "
            "learning_curves.png into --out, and prints the test accuracy of the best model "
            "(chosen on the validation split). A run that was stopped can be continued with "
            "--resume."
        ),
    )
    _add_model_and_data(p.add_argument_group("model and data"))
    _add_optimisation(p.add_argument_group("optimisation"))
    _add_run(p.add_argument_group("the run"))
    p.set_defaults(func=run)


def _add_model_and_data(p: argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--model", default="convnet", choices=sorted(MODELS), metavar="MODEL",
        help="model (default convnet; `cnnumpy summary --list` names them all)",
    )  # fmt: skip
    p.add_argument(
        "--dataset", default="digits", choices=sorted(DATASETS),
        help="data set (default digits, built in; the others are read from --data-dir)",
    )  # fmt: skip
    add_data_arguments(p)
    p.add_argument(
        "--model-option", action="append", default=[], type=model_option, metavar="KEY=VALUE",
        help="an extra argument of the model's builder, the value written as JSON (repeatable): "
        "e.g. --model-option batch_norm=true --model-option widths=[32,64,256,128]",
    )  # fmt: skip
    p.add_argument(
        "--augment", default="none", type=augment_spec, metavar="AUG",
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
        help="hold out the last N training images for validation (default 5000; not for "
        "digits). 0 trains on all of them, as LeNet-5's paper did, and keeps the last epoch",
    )  # fmt: skip


def _add_optimisation(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS, help="default adam")
    p.add_argument(
        "--lr", type=float, default=None,
        help="learning rate (default 1e-3); for sdlm the global epsilon (default 0.0005, the "
        "paper's first)",
    )  # fmt: skip
    p.add_argument(
        "--lr-schedule", default="none", choices=SCHEDULES,
        help="none (constant, the default); cosine: annealed to 0 over --epochs; plateau: "
        "halved when validation accuracy has not improved for 2 epochs; lenet5: LeCun et al. "
        "1998's steps, x1 for epochs 1-2, x0.4 for 3-5, x0.2 for 6-8, x0.1 for 9-12, x0.02 after",
    )  # fmt: skip
    p.add_argument(
        "--mu", type=float, default=0.02,
        help="sdlm: the damping mu in lr / (mu + h) (default 0.02, the paper's)",
    )  # fmt: skip
    p.add_argument("--momentum", type=float, default=0.9, help="for sgd/rmsprop (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty (default 0)")
    p.add_argument(
        "--clip-grad-norm", type=float, default=None, metavar="MAX",
        help="scale each step's gradients down to a joint 2-norm of at most MAX (default off)",
    )  # fmt: skip
    p.add_argument("--epochs", type=int, default=20, help="epochs (default 20)")
    p.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    p.add_argument(
        "--patience", type=int, default=None,
        help="stop when validation accuracy has not improved for this many epochs (default off)",
    )  # fmt: skip


def _add_run(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--seed", type=int, default=0, help="seed of weights and shuffling (default 0)")
    p.add_argument("--out", type=Path, default=None, help="output dir (default runs/MODEL-DATA)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.npz")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--threads", type=positive_int, default=None, metavar="N",
        help=f"threads for cnnumpy's own kernels (default: ${backend.ENV_VAR}, else the usable "
        f"cores, at most {backend.MAX_DEFAULT_THREADS}); results do not depend on it",
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


def run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        backend.set_num_threads(args.threads)
    data = _normalised_data(args)
    train = _training_part(data, args)
    model_kwargs = _model_kwargs(data, args)
    model = build_model(args.model, rng=np.random.default_rng(args.seed), **model_kwargs)
    lr = args.lr if args.lr is not None else default_lr(args.optimizer)
    optimizer = make_optimizer(args.optimizer, model.parameters(), lr, momentum=args.momentum,
                               weight_decay=args.weight_decay, mu=args.mu)  # fmt: skip
    out = args.out or Path("runs") / f"{args.model}-{args.dataset}"
    data_dir = None
    if args.dataset != "digits":
        data_dir = str((args.data_dir or DEFAULT_DATA_DIR).resolve())
    config = {
        "model": args.model, "model_kwargs": model_kwargs, "dataset": args.dataset,
        "data_dir": data_dir, "augment": args.augment, "lr_schedule": args.lr_schedule,
        "train_size": len(train[1]),
    }  # fmt: skip
    validated = len(data.val[1]) > 0  # --val-size 0 trains on every image, keeps the last epoch
    solver = Solver(
        model, criterion_for(model), optimizer, train, data.val if validated else None,
        batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, patience=args.patience,
        checkpoint_dir=out, progress=not args.no_progress, model_name=args.model,
        normalization=data.normalization.to_dict(), resume=args.resume, config=config,
        augment=make_augment(args.augment, args.dataset, data.normalization, data.image_shape[1]),
        scheduler=make_scheduler(args.lr_schedule, optimizer, args.epochs),
        clip_grad_norm=args.clip_grad_norm,
    )  # fmt: skip
    start = time.perf_counter()
    history = solver.train()
    _report(solver, history, data, args, out, validated, time.perf_counter() - start)
    return 0


def _normalised_data(args: argparse.Namespace) -> Dataset:
    """The data set, normalised with the model's prescribed scaling or the training statistics."""
    raw = load_data(args.dataset, args.data_dir, verify=not args.no_verify,
                    val_size=args.val_size)  # fmt: skip
    scaling = MODELS[args.model].input_scaling
    channels = raw.image_shape[0]
    stats = None if scaling is None else Normalization((scaling[0],) * channels,
                                                       (scaling[1],) * channels)  # fmt: skip
    return normalize(raw, stats=stats)


def _training_part(data: Dataset, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    train = data.train
    if args.train_size is None:
        return train
    if not 1 <= args.train_size <= len(train[1]):
        raise ValueError(
            f"--train-size must be between 1 and {len(train[1])} (the {args.dataset} "
            f"training split), got {args.train_size}"
        )
    return train[0][: args.train_size], train[1][: args.train_size]


def _model_kwargs(data: Dataset, args: argparse.Namespace) -> dict:
    c, h, w = data.image_shape
    if h != w:
        raise ValueError(f"models take square images; {args.dataset} has {h}x{w}")
    model_kwargs = {"in_channels": c, "input_size": h, "num_classes": len(data.classes)}
    clash = sorted(set(model_kwargs) & {key for key, _ in args.model_option})
    if clash:
        raise ValueError(f"--model-option cannot set {', '.join(clash)}: the data set fixes it")
    model_kwargs.update(args.model_option)
    return model_kwargs


def _report(
    solver: Solver,
    history: dict,
    data: Dataset,
    args: argparse.Namespace,
    out: Path,
    validated: bool,
    seconds: float,
) -> None:
    """Test accuracy, ``result.json``, the learning curves, and where everything went."""
    test_acc = solver.check_accuracy(*data.test)
    plot = plot_learning_curves(history, out / "learning_curves.png",
                                title=f"{args.model} on {args.dataset}",
                                best_epoch=solver.best_epoch)  # fmt: skip
    result = {
        "model": args.model, "dataset": args.dataset, "augment": args.augment,
        "test_accuracy": test_acc,
        "best_val_accuracy": solver.best_val_acc, "best_epoch": solver.best_epoch,
        "epochs_run": solver.epoch, "seconds": round(seconds, 2),
    }  # fmt: skip
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    kept = "best" if validated else "last"
    print(f"test accuracy: {100 * test_acc:.2f}% ({len(data.test[1])} {args.dataset} images; "
          f"{kept} epoch {solver.best_epoch} of {solver.epoch}, {seconds:.1f} s)")  # fmt: skip
    print(f"checkpoint:    {out / 'best.npz'} (last epoch: {out / 'last.npz'})")
    print(f"history:       {out / 'history.json'} (per epoch: {out / 'metrics.jsonl'})")
    print(f"curves:        {plot}")

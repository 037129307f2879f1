"""``cnnumpy train``: train a model on a data set, with checkpoints, history and a plot.

With no arguments it trains the CS231n three-layer convnet on scikit-learn's 8x8 digits (built
in, no download) in well under two minutes on two cores and prints the test accuracy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .. import nn, optim
from ..data import digits, normalize
from ..models import MODELS, build_model
from ..plots import plot_learning_curves
from ..solver import Solver

DATASETS = {"digits": digits}
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (default: a small convnet on the built-in digits)",
        description=(
            "Train MODEL on DATASET with mini-batch gradient descent. Writes last.npz and "
            "best.npz (checkpoints), history.json and learning_curves.png into --out, and "
            "prints the test accuracy of the best model (chosen on the validation split). "
            "A run that was stopped can be continued with --resume."
        ),
    )
    p.add_argument(
        "--model", default="convnet", choices=sorted(MODELS), help="model (default convnet)"
    )
    p.add_argument("--dataset", default="digits", choices=sorted(DATASETS), help="data set")
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS, help="default adam")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--momentum", type=float, default=0.9, help="for sgd/rmsprop (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty (default 0)")
    p.add_argument("--epochs", type=int, default=20, help="epochs (default 20)")
    p.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and shuffling")
    p.add_argument("--out", type=Path, default=None, help="output dir (default runs/MODEL-DATA)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.npz")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def make_optimizer(name: str, params, lr: float, momentum: float, weight_decay: float):
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return optim.Adam(params, lr=lr, weight_decay=weight_decay)


def run(args: argparse.Namespace) -> int:
    data = normalize(DATASETS[args.dataset]())
    c, h, w = data.image_shape
    if h != w:
        raise ValueError(f"models take square images; {args.dataset} has {h}x{w}")
    model_kwargs = {"in_channels": c, "input_size": h, "num_classes": len(data.classes)}
    model = build_model(args.model, rng=np.random.default_rng(args.seed), **model_kwargs)
    loss = model.criterion if hasattr(model, "criterion") else nn.CrossEntropyLoss()
    optimizer = make_optimizer(
        args.optimizer, model.parameters(), args.lr, args.momentum, args.weight_decay
    )
    out = args.out or Path("runs") / f"{args.model}-{args.dataset}"
    config = {"model": args.model, "model_kwargs": model_kwargs, "dataset": args.dataset}
    solver = Solver(
        model, loss, optimizer, data.train, data.val,
        batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, patience=args.patience,
        checkpoint_dir=out, progress=not args.no_progress, model_name=args.model,
        normalization=data.normalization.to_dict(), resume=args.resume, config=config,
    )  # fmt: skip
    start = time.perf_counter()
    history = solver.train()
    seconds = time.perf_counter() - start
    test_acc = solver.check_accuracy(*data.test)
    plot = plot_learning_curves(history, out / "learning_curves.png",
                                title=f"{args.model} on {args.dataset}")  # fmt: skip
    result = {
        "model": args.model, "dataset": args.dataset, "test_accuracy": test_acc,
        "best_val_accuracy": solver.best_val_acc, "best_epoch": solver.best_epoch,
        "epochs_run": solver.epoch, "seconds": round(seconds, 2),
    }  # fmt: skip
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"test accuracy: {100 * test_acc:.2f}% ({len(data.test[1])} {args.dataset} images; "
          f"best epoch {solver.best_epoch} of {solver.epoch}, {seconds:.1f} s)")  # fmt: skip
    print(f"checkpoint:    {out / 'best.npz'} (last epoch: {out / 'last.npz'})")
    print(f"history:       {out / 'history.json'}")
    print(f"curves:        {plot}")
    return 0

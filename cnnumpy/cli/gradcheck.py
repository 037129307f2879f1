"""``cnnumpy gradcheck MODEL``: numerical against analytic gradients of a whole model."""

from __future__ import annotations

import argparse

import numpy as np

from ..inspect import check_model_gradients
from ..models import MODELS, build_model
from ..train.factory import criterion_for
from ._common import add_model_arguments, model_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gradcheck",
        help="compare a model's backward pass with numerical gradients in float64",
        description=(
            "Build MODEL with reduced widths in float64, run a tiny random batch through it "
            "(8x8 images where the architecture allows, else its smallest size) and "
            "its loss, and compare every parameter's analytic gradient with central "
            "differences on a random sample of its entries. Prints the worst relative error "
            "per parameter and fails (exit 1) if any exceeds --tolerance."
        ),
    )
    add_model_arguments(p)
    p.add_argument(
        "--batch-size", type=int, default=4,
        help="samples in the batch (default 4; batch norm needs more than 2)",
    )  # fmt: skip
    p.add_argument(
        "--entries", type=int, default=10, help="entries checked per parameter (default 10)"
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-6,
        help="largest relative error passed (default 1e-06)",
    )
    p.add_argument("--full-width", action="store_true", help="use the model's real widths")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the weights and the batch (default 0)"
    )
    p.add_argument(
        "--mode", choices=("train", "eval"), default="train",
        help="train (batch statistics, dropout on; the default) or eval mode",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.model is None:
        raise ValueError("name a model (see `cnnumpy summary --list`)")
    rng = np.random.default_rng(args.seed)
    kwargs = model_kwargs(args)
    if args.input_size is None and not args.full_width:
        kwargs["input_size"] = MODELS[args.model].tiny_size
    model = build_model(args.model, tiny=not args.full_width, rng=rng, **kwargs).to(np.float64)
    mode = args.mode
    model.train(mode == "train")
    loss = criterion_for(model)
    size = kwargs["input_size"]
    x = rng.standard_normal((args.batch_size, kwargs["in_channels"], size, size))
    y = rng.integers(0, args.num_classes, args.batch_size)
    errors = check_model_gradients(
        model, loss, x, y, max_entries=args.entries, seed=args.seed, tol=args.tolerance
    )
    width = max(map(len, errors))
    worst = max(errors.values())
    for name, err in errors.items():
        flag = "" if err <= args.tolerance else "   <-- FAILS"
        print(f"{name.ljust(width)}  {err:.2e}{flag}")
    verdict = "passed" if worst <= args.tolerance else "FAILED"
    print(f"gradcheck {verdict} in {mode} mode: worst relative error {worst:.2e} "
          f"(tolerance {args.tolerance:g})")  # fmt: skip
    return 0 if worst <= args.tolerance else 1

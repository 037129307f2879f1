"""``cnnumpy summary MODEL``: the model's layers, output shapes, parameters and connections."""

from __future__ import annotations

import argparse

import numpy as np

from ..inspect import format_summary, summary
from ..models import MODELS, build_model
from ._common import add_model_arguments, model_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="print a model's layers with output shapes, parameters and connections",
        description=(
            "Print one row per layer: output shape, parameter count, connections (inputs and "
            "bias feeding each output unit, as LeCun et al. 1998 count them) and multiply-adds "
            "per sample. With --list, print the models that can be named."
        ),
    )
    add_model_arguments(p)
    p.add_argument("--list", action="store_true", help="list the available models and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.list or args.model is None:
        width = max(map(len, MODELS))
        for name, spec in sorted(MODELS.items()):
            print(f"{name.ljust(width)}  {spec.description}")
        return 0
    kwargs = model_kwargs(args)
    model = build_model(args.model, rng=np.random.default_rng(0), **kwargs)
    shape = (kwargs["in_channels"], kwargs["input_size"], kwargs["input_size"])
    print(f"{args.model}")
    print(format_summary(summary(model, shape), shape))
    return 0

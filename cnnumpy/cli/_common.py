"""Arguments shared by several sub-commands."""

from __future__ import annotations

import argparse

from ..models import MODELS


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help=f"model name, one of: {', '.join(sorted(MODELS))}")
    parser.add_argument("--in-channels", type=int, default=1, help="input channels (default 1)")
    parser.add_argument(
        "--input-size", type=int, default=None,
        help="input height and width (default: the size the model is designed for, 28 or 32)",
    )  # fmt: skip
    parser.add_argument("--num-classes", type=int, default=10, help="classes (default 10)")


def model_kwargs(args: argparse.Namespace) -> dict:
    """Builder arguments from the command line; an unknown model is a clear error."""
    if args.model not in MODELS:
        names = ", ".join(sorted(MODELS))
        raise ValueError(f"unknown model {args.model!r}; choose one of: {names}")
    size = args.input_size if args.input_size is not None else MODELS[args.model].input_size
    return {"in_channels": args.in_channels, "input_size": size, "num_classes": args.num_classes}

"""Arguments shared by several sub-commands."""

from __future__ import annotations

import argparse

from ..models import MODELS


def add_model_arguments(parser: argparse.ArgumentParser, default_size: int = 28) -> None:
    parser.add_argument(
        "model", nargs="?", help=f"model name, one of: {', '.join(sorted(MODELS))}"
    )
    parser.add_argument("--in-channels", type=int, default=1, help="input channels (default 1)")
    parser.add_argument(
        "--input-size", type=int, default=default_size,
        help=f"input height and width (default {default_size})",
    )  # fmt: skip
    parser.add_argument("--num-classes", type=int, default=10, help="classes (default 10)")


def model_kwargs(args: argparse.Namespace) -> dict:
    return {
        "in_channels": args.in_channels,
        "input_size": args.input_size,
        "num_classes": args.num_classes,
    }

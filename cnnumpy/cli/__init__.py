"""The ``cnnumpy`` command: one sub-command per module in this package.

Each sub-command module has ``register(subparsers)``, which adds its parser and sets
``func`` to the function that runs it.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import bench, evaluate, experiment, gradcheck, show_data, summary, train, visualize

COMMANDS = [train, evaluate, summary, gradcheck, show_data, visualize, experiment, bench]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnumpy",
        description="Convolutional networks in NumPy: train, evaluate, inspect and check them.",
    )
    parser.add_argument("--version", action="version", version=f"cnnumpy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as err:  # user errors: a clear message, not a traceback
        print(f"cnnumpy {args.command}: error: {err}", file=sys.stderr)
        return 1

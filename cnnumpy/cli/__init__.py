"""The ``cnnumpy`` command: one sub-command per module in this package.

Each sub-command module has ``register(subparsers)``, which adds its parser and sets
``func`` to the function that runs it.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from . import (
    bench,
    docs,
    evaluate,
    experiment,
    export,
    gradcheck,
    predict,
    show_data,
    summary,
    train,
    visualize,
)

COMMANDS = [train, evaluate, predict, summary, gradcheck, show_data, visualize, experiment, bench,
            export, docs]  # fmt: skip


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


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as shells report a writer whose reader left


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status: 0, 1
    for an error (its message on stderr), 2 for a usage error, 130 after Ctrl-C, 141 when
    the reader of its output went away (``| head``)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args.argv = argv  # so that a command can print the command line that continues it
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit where it cannot be caught
        return status
    except BrokenPipeError:  # the reader left (`| head`): stop quietly, as Unix tools do
        # Later writes (the interpreter's last flush) go nowhere instead of failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (ValueError, OSError) as err:  # user errors: a clear message, not a traceback
        print(f"cnnumpy {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before or after the work a command reports on itself
        print(f"cnnumpy {args.command}: interrupted", file=sys.stderr)
        return 130

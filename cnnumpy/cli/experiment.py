"""``cnnumpy experiment NAME``: run one of the experiments in :mod:`cnnumpy.experiments`.

Each writes ``NAME.json`` (its numbers) and ``NAME.png`` (its figure) into ``--out`` (default
``runs/experiments/NAME``) and prints its headline numbers. ``--quick`` runs it at tiny sizes,
in seconds, to check that it works: a smoke test whose numbers mean nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..data import normalize
from ..experiments import EXPERIMENTS, SMOKE_TEST
from ._common import add_data_arguments, load_data

DATASETS = ("mnist", "fashion-mnist", "digits")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``experiment`` sub-command to ``sub``."""
    p = sub.add_parser(
        "experiment",
        help="measure a claim about CNNs (activations, init, dropout, ...): a JSON and a PNG",
        description=(
            "Run experiment NAME and write NAME.json (the numbers) and NAME.png (the figure) "
            "into --out. The default sizes are the runs reported in docs/experiments/ (minutes "
            "each on two cores); --quick shrinks them to seconds. --list names them all."
        ),
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="experiment (see --list)")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument(
        "--dataset", default="mnist", choices=DATASETS,
        help="data set (default mnist, read from --data-dir; digits is built in)",
    )  # fmt: skip
    add_data_arguments(p)
    p.add_argument(
        "--seed", type=int, default=0, help="seed of weights, subsets and batches (default 0)"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="output directory (default runs/experiments/NAME)"
    )
    p.add_argument(
        "--quick", action="store_true",
        help="tiny sizes: a smoke test in seconds, whose numbers mean nothing",
    )  # fmt: skip
    p.set_defaults(func=run)


def format_seconds(seconds: float) -> str:
    """A duration to two significant figures under a minute (``0.043 s``, ``1.8 s``,
    ``42 s``), in minutes and seconds above (``7 min 25 s``)."""
    if seconds < 60:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def print_summary(name: str, headline: list[tuple[str, str]], quick: bool) -> None:
    """The headline lines, labels aligned; a smoke test says so first."""
    print(f"{name}:")
    if quick:
        print(f"  {SMOKE_TEST}")
    width = max((len(label) for label, _ in headline), default=0)
    for label, text in headline:
        print(f"  {label.ljust(width)}  {text}")


def run(args: argparse.Namespace) -> int:
    """List the experiments, or run one and print its headline numbers and files."""
    if args.list or args.name is None:
        width = max(map(len, EXPERIMENTS))
        for name, spec in EXPERIMENTS.items():
            print(f"{name.ljust(width)}  {spec.description}")
        return 0
    if args.name not in EXPERIMENTS:
        raise ValueError(
            f"unknown experiment {args.name!r}; choose one of: {', '.join(EXPERIMENTS)}"
        )
    spec = EXPERIMENTS[args.name]
    data = None
    if spec.needs_data:
        data = normalize(load_data(args.dataset, args.data_dir, verify=not args.no_verify))
    out = args.out or Path("runs") / "experiments" / args.name
    sizes = spec.quick if args.quick else {}
    start = time.perf_counter()
    numbers = spec.run(data, out, seed=args.seed, smoke_test=args.quick, **sizes)
    seconds = time.perf_counter() - start
    print_summary(args.name, spec.headline(numbers), args.quick)
    print(f"took {format_seconds(seconds)}")
    print(f"numbers: {numbers['files']['json']}")
    print(f"figure:  {numbers['files']['png']}")
    return 0

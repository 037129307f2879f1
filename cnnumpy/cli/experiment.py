"""``cnnumpy experiment NAME``: run one of the experiments in :mod:`cnnumpy.experiments`.

Each writes ``NAME.json`` (its numbers) and ``NAME.png`` (its figure) into ``--out`` (default
``runs/experiments/NAME``). ``--quick`` runs it at tiny sizes, in seconds, to check that it
works; the numbers of a quick run mean nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data import normalize
from ..experiments import EXPERIMENTS
from ._common import add_data_arguments, load_data

DATASETS = ("mnist", "fashion-mnist", "digits")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiment",
        help="measure a claim about CNNs (activations, init, dropout, ...): a JSON and a PNG",
        description=(
            "Run experiment NAME and write NAME.json (the numbers) and NAME.png (the figure) "
            "into --out. The default sizes are the runs reported in EXPERIMENTS.md (minutes "
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
    p.add_argument("--seed", type=int, default=0, help="seed of weights, subsets and batches")
    p.add_argument("--out", type=Path, default=None, help="default runs/experiments/NAME")
    p.add_argument("--quick", action="store_true", help="tiny sizes: seconds, for smoke tests")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
    numbers = spec.run(data, out, seed=args.seed, **(spec.quick if args.quick else {}))
    summary = {k: v for k, v in numbers.items() if k not in ("config", "files")}
    text = json.dumps(summary)
    print(f"{args.name}: {text[:600]}{' ...' if len(text) > 600 else ''}")
    print(f"took {numbers.get('seconds', '?')} s")
    print(f"numbers: {numbers['files']['json']}")
    print(f"figure:  {numbers['files']['png']}")
    return 0

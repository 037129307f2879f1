"""``cnnumpy train --dataset folder:PATH``: the options of a folder of images, and folding them
into the data set's canonical name (``folder:/ABS/PATH?size=S&channels=C``), which the run
records like any other data-set name, so that a resumed run, ``cnnumpy eval`` and
``cnnumpy visualize`` rebuild the same images."""

from __future__ import annotations

import argparse

from ..data import DATASETS
from ..data.folder import PREFIX, folder_spec, parse_folder_spec
from ._train_run import run

DEFAULT_SIZE = 32
DEFAULT_CHANNELS = 3


def dataset_name(text: str) -> str:
    """argparse type for ``--dataset``: a known name or ``folder:PATH``."""
    if text in DATASETS:
        return text
    if text.startswith(PREFIX):
        try:
            parse_folder_spec(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r}: choose one of {', '.join(sorted(DATASETS))}, or folder:PATH"
    )


def add_folder_arguments(p: argparse._ArgumentGroup) -> None:
    """``--image-size``, ``--channels`` and ``--skip-bad-images``."""
    p.add_argument(
        "--image-size", type=int, default=None, metavar="N",
        help=f"folder:PATH only: resize every image to N x N (default {DEFAULT_SIZE}). The "
        "decoded folder takes N_images x C x N x N bytes of memory as uint8, and 4 times that "
        "again as float32 while training; more than half the available memory is refused",
    )  # fmt: skip
    p.add_argument(
        "--channels", type=int, default=None, choices=(1, 3),
        help=f"folder:PATH only: 1 (grey) or 3 (colour) channels (default {DEFAULT_CHANNELS})",
    )  # fmt: skip
    p.add_argument(
        "--skip-bad-images", action="store_true", default=None,
        help="folder:PATH only: leave out images that cannot be decoded (counted in a note) "
        "instead of stopping with an error naming the first",
    )  # fmt: skip


def fold_folder_options(args: argparse.Namespace) -> None:
    """Replace ``args.dataset`` ``folder:PATH`` (or ``folder`` with ``--data-dir PATH``) by its
    canonical name with the size and channels; ValueError when a folder option is given for
    another data set."""
    given = {
        "size": args.image_size, "channels": args.channels, "skip_bad": args.skip_bad_images
    }  # fmt: skip
    dataset = args.dataset or ""
    if dataset != "folder" and not dataset.startswith(PREFIX):
        if any(v is not None for v in given.values()):
            raise ValueError(
                "--image-size, --channels and --skip-bad-images apply to --dataset folder:PATH "
                f"only, not to {args.dataset or 'the default digits'}"
            )
        return
    if dataset == "folder":
        if args.data_dir is None:
            raise ValueError("--dataset folder reads --data-dir: give the folder of images")
        path, options = args.data_dir, {}
    else:
        path, options = parse_folder_spec(dataset)
    options |= {k: v for k, v in given.items() if v is not None}
    if options.setdefault("size", DEFAULT_SIZE) < 1:
        raise ValueError(f"--image-size must be >= 1, got {options['size']}")
    options.setdefault("channels", DEFAULT_CHANNELS)
    args.dataset = folder_spec(path, **options)


def run_on_folder(args: argparse.Namespace) -> int:
    """``cnnumpy train``, with the folder options folded into the data-set name first."""
    fold_folder_options(args)
    return run(args)

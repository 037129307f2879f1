"""What several sub-commands share: their common arguments, reading a data set, rebuilding a
trained model from its checkpoint. Commands import from here and from the library, never from
one another."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..checkpoint import CheckpointError, load_checkpoint
from ..data import DATASETS, Dataset, Normalization, build_augment, is_dataset, load_dataset
from ..data.augment import AUGMENTATIONS, Augment
from ..models import MODELS, build_model, is_custom
from ..predict import ModelSourceChangedWarning, rebuild_model
from ..train.factory import criterion_for

DEFAULT_DATA_DIR = Path("data")
NO_FLIP = ("digits", "mnist")  # a mirrored digit is not a digit


# -- arguments ----------------------------------------------------------------------------------
def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help=f"model name, one of: {', '.join(sorted(MODELS))}")
    parser.add_argument(
        "--in-channels", type=int, default=None,
        help="input channels (default: the model's own input, 1 for the MNIST models, "
        "3 for the CIFAR-10 and ImageNet ones)",
    )  # fmt: skip
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
    channels = args.in_channels if args.in_channels is not None else in_channels_of(args.model)
    return {"in_channels": channels, "input_size": size, "num_classes": args.num_classes}


GREY_MODELS = frozenset({"convnet", "fc", "lenet5", "lenet5_modern", "lenet_theano"})
"""The zoo's models for MNIST-style grey images; the others are for colour images."""


def in_channels_of(name: str) -> int:
    """The input channels model ``name`` is designed for: 1 for the grey-image models (and a
    model designed for 28x28 inputs, as MNIST's are), else 3."""
    return 1 if name in GREY_MODELS or MODELS[name].input_size <= 28 else 3


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--no-verify``."""
    p.add_argument(
        "--data-dir", type=Path, default=None,
        help=f"directory with the official files of mnist / fashion-mnist (the four IDX files, "
        f".gz or not, there or in a mnist/ or fashion-mnist/ subdirectory) or cifar10 (the "
        f"binary batches, there or in cifar-10-batches-bin/); default ./{DEFAULT_DATA_DIR}",
    )  # fmt: skip
    p.add_argument(
        "--no-verify", action="store_true",
        help="accept data files whose sha256 differs from the official one (the format is "
        "still checked)",
    )  # fmt: skip


def augment_spec(text: str) -> str:
    """argparse type for ``--augment``: 'none' or known names joined by '+'."""
    if text != "none" and not all(part in AUGMENTATIONS for part in text.split("+")):
        raise argparse.ArgumentTypeError(
            f"{text!r}: use none or {', '.join(AUGMENTATIONS)}, or several joined by '+'"
        )
    return text


# -- data ---------------------------------------------------------------------------------------
def load_data(
    name: str, data_dir: Path | None, verify: bool = True, val_size: int | None = None
) -> Dataset:
    """The data set ``name``; file-based ones from ``data_dir`` (default ``./data``), with the
    last ``val_size`` training images held out (the data set's default when None)."""
    root = None if name == "digits" else data_dir or DEFAULT_DATA_DIR
    return load_dataset(name, root, verify=verify, n_val=val_size)


def make_augment(
    spec: str, dataset: str, normalization: Normalization, image_size: int
) -> Augment | None:
    """``--augment`` for images normalised by ``normalization``: outside the image is the
    normalised 0 (black) pixel, as if the raw image had been padded with zeros."""
    fill = tuple(-m / s for m, s in zip(normalization.mean, normalization.std, strict=True))
    return build_augment(spec, image_size, fill=fill, allow_flip=dataset not in NO_FLIP)


# -- trained models -----------------------------------------------------------------------------
def load_trained(
    checkpoint: str | Path, data_dir: Path | None = None, verify: bool = True
) -> tuple[nn.Module, Any, dict, Dataset]:
    """``(model in eval mode, its loss, checkpoint metadata, raw data set)`` for a checkpoint
    written by ``cnnumpy train``: the model named in its config, rebuilt and loaded, and the
    data set it was trained on.

    Raises :class:`CheckpointError` (a ValueError) naming the file for anything that is not a
    usable checkpoint of ``cnnumpy train``: what :func:`load_checkpoint` refuses, and a
    config that does not name a known model and data set or whose arguments do not build the
    model, or no normalisation statistics for the data set's channels.
    """
    path = Path(checkpoint)
    meta = load_checkpoint(path)
    config = _training_config(path, meta["extra"].get("config"))
    normalization = meta["normalization"]
    if normalization is None:
        raise CheckpointError(
            f"checkpoint {path}: meta.normalization: expected the mean and std the model was "
            "trained with (every checkpoint of `cnnumpy train` has them), got null"
        )
    model = _rebuild(path, config)
    load_checkpoint(path, model)
    model.eval()
    stored = config.get("data_dir")
    data = load_data(config["dataset"], data_dir or (stored and Path(stored)), verify=verify)
    if len(normalization["mean"]) != data.image_shape[0]:
        raise CheckpointError(
            f"checkpoint {path}: meta.normalization: expected statistics for the "
            f"{data.image_shape[0]} channel(s) of {config['dataset']}, got "
            f"{len(normalization['mean'])}"
        )
    return model, criterion_for(model), meta, data


def _training_config(path: Path, config: Any) -> dict:
    """``meta.extra.config`` once it names a known model and data set and the model's
    arguments (the schema has typed whatever fields it has)."""
    if not isinstance(config, dict):
        raise CheckpointError(
            f"checkpoint {path} does not record which model and data set it was trained on "
            "(meta.extra.config is missing: it was not written by `cnnumpy train`)"
        )
    for field, known in (("model", MODELS), ("dataset", DATASETS)):
        value = config.get(field)
        if value not in known and not (field == "model" and isinstance(value, str)
                                       and is_custom(value)) and not (
                field == "dataset" and is_dataset(value)):  # folder:PATH  # fmt: skip
            raise CheckpointError(
                f"checkpoint {path}: meta.extra.config.{field}: expected one of "
                f"{', '.join(sorted(known))}, got {config.get(field)!r}"
            )
    if not isinstance(config.get("model_kwargs"), dict):
        raise CheckpointError(
            f"checkpoint {path}: meta.extra.config.model_kwargs: expected the arguments "
            f"{config['model']} was built with, got {config.get('model_kwargs')!r}"
        )
    return config


def _rebuild(path: Path, config: dict) -> nn.Module:
    """The model ``config`` names, built from its recorded arguments (any seed: the weights
    are replaced). A builder of the user's own whose file changed since training is noted."""
    if is_custom(config["model"]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ModelSourceChangedWarning)
            model = rebuild_model(path, config)
        for warning in caught:
            print(f"note: {warning.message}", file=sys.stderr)
        return model
    try:
        return build_model(config["model"], rng=np.random.default_rng(0), **config["model_kwargs"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"checkpoint {path}: meta.extra.config.model_kwargs do not build a "
            f"{config['model']}: {err}"
        ) from None


def model_outputs(model: nn.Module, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's outputs (scores or penalties) for ``x``, computed in batches."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    return np.concatenate([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])

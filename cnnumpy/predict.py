"""A trained model, ready to classify new images: ``cn.load(checkpoint) -> Predictor``.

The checkpoint's ``extra.config`` says which model to rebuild (a zoo name with its
``model_kwargs``, or a builder of the user's own, ``path/to/file.py:function``), and its
``normalization`` how the training images were scaled. ``cnnumpy train`` records both; from
Python, give them to the ``Checkpoint`` callback::

    Checkpoint(run_dir, normalization=data.normalization.to_dict(),
               extra={"config": {"model": "convnet", "dataset": "digits",
                                 "model_kwargs": {"in_channels": 1, "input_size": 8,
                                                  "num_classes": 10}}})

(``Solver(checkpoint_dir=..., normalization=..., config=...)`` records them the same way).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import nn
from .checkpoint import CheckpointError, load_checkpoint
from .data import Normalization
from .data.cifar import CLASSES as CIFAR10_CLASSES
from .data.digits import CLASSES as DIGIT_CLASSES
from .data.mnist import FASHION_MNIST_CLASSES, MNIST_CLASSES
from .inspect.analysis import class_probabilities, predicts_argmin
from .models import build_model, is_custom, source_sha256
from .train.factory import criterion_for

KNOWN_CLASSES = {"digits": DIGIT_CLASSES, "mnist": MNIST_CLASSES,
                 "fashion-mnist": FASHION_MNIST_CLASSES, "cifar10": CIFAR10_CLASSES}  # fmt: skip
DIGIT_DATASETS = ("digits", "mnist")
"""Data sets of handwritten digits, whose models ``prepare="auto"`` feeds MNIST-style digits."""
PREPARE_MODES = ("auto", "digit", "none")
_HOW_TO_RECORD = (
    "record it when training from Python: Checkpoint(..., extra={'config': {'model': NAME or "
    "'path/file.py:function', 'model_kwargs': {'in_channels': C, 'input_size': S, "
    "'num_classes': K, ...}, 'dataset': NAME}}), or Solver(..., config={...}) with the same "
    "keys; `cnnumpy train` records it"
)


class ModelSourceChangedWarning(UserWarning):
    """The file of a user's model builder differs from the one the checkpoint was trained with."""


@dataclass
class Predictor:
    """A trained ``model`` in eval mode with what its inputs need: the per-channel
    ``normalization`` of the raw pixels (None: fed as they are), ``input_shape`` ``(C, H, W)``,
    the ``classes``' names and the checkpoint's ``config``. ``lowest_wins``: the model outputs
    penalties (LeNet-5's RBF) and the lowest one is the prediction."""

    model: nn.Module
    normalization: Normalization | None
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    lowest_wins: bool = False
    config: dict[str, Any] = field(default_factory=dict)

    def outputs(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """The model's raw outputs ``(N, K)`` (scores, or penalties) for ``images``: raw pixels
        ``(N, C, H, W)`` or one grey image ``(H, W)``, uint8 or float on the training data's
        own scale (0-255 for 8-bit images, 0-16 for the built-in digits)."""
        x = self._batch(images)
        x = x.astype(np.float32) if self.normalization is None else self.normalization(x)
        return np.concatenate([self.model(x[i : i + batch_size])
                               for i in range(0, len(x), batch_size)])  # fmt: skip

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(classes (N,) int64, probabilities (N, K))``: the predicted class index of each
        image (``self.classes[i]`` names it) and the softmax of its scores (of the negated
        penalties when ``lowest_wins``)."""
        probs = class_probabilities(self.outputs(images), lowest_wins=self.lowest_wins)
        return probs.argmax(axis=1).astype(np.int64), probs

    def top(self, images: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` likeliest classes of each image, likeliest first: ``(indices (N, k),
        probabilities (N, k))``; ``k`` is capped at the number of classes."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        _, probs = self.predict(images)
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return order, np.take_along_axis(probs, order, axis=1)

    def prepare(self, image: np.ndarray, mode: str = "auto") -> np.ndarray:
        """One image as read from a file (``uint8 (C, H, W)``, see
        :func:`cnnumpy.data.images.read_image`) turned into the model's raw input ``(C, H, W)``.

        ``mode``: ``"none"`` converts the channels and resizes; ``"digit"`` first prepares a
        handwritten digit as MNIST's were made (a dark digit on light paper becomes a light
        one on black, centred in its box), then for the 8x8 digits scales down to their 0-16
        range; ``"auto"`` is ``"digit"`` for models trained on MNIST or the built-in digits.
        """
        from .data.images import prepare_digit, to_model_input  # needs Pillow: only here

        if mode not in PREPARE_MODES:
            raise ValueError(
                f"prepare mode must be one of {', '.join(PREPARE_MODES)}, got {mode!r}"
            )
        c, size = self.input_shape[0], self.input_shape[1]
        if mode == "none" or (mode == "auto" and self.config.get("dataset") not in DIGIT_DATASETS):
            return to_model_input(image, c, size)
        digit = to_model_input(prepare_digit(image, size=28), c, size)
        if self.config.get("dataset") == "digits":  # 16 = a 4x4 block whose pixels are all set
            return np.rint(digit.astype(np.float64) * (16 / 255)).astype(np.uint8)
        return digit

    def _batch(self, images: np.ndarray) -> np.ndarray:
        x = np.asarray(images)
        if x.ndim == 2:
            x = np.repeat(x[None, None], self.input_shape[0], axis=1)  # grey to every channel
        if x.ndim != 4 or x.shape[1:] != self.input_shape:
            raise ValueError(
                f"expected images of shape (N, {', '.join(map(str, self.input_shape))}) or "
                f"({self.input_shape[1]}, {self.input_shape[2]}), got {x.shape}"
            )
        if x.dtype.kind not in "uif":
            raise ValueError(f"expected uint8 or float pixels, got dtype {x.dtype}")
        return x


def load(checkpoint: str | os.PathLike) -> Predictor:
    """The model a checkpoint holds, rebuilt, loaded and in eval mode, as a :class:`Predictor`.

    Raises :class:`~cnnumpy.checkpoint.CheckpointError` (a ValueError) naming the file when it
    is not a valid checkpoint or does not record how to rebuild its model (the message says
    what to record); warns with :class:`ModelSourceChangedWarning` when a user's model file
    changed since training. Importing a user's model file executes it.
    """
    path = Path(checkpoint)
    meta = load_checkpoint(path)
    model = rebuild_model(path, meta["extra"].get("config"))
    load_checkpoint(path, model)
    model.eval()
    config = meta["extra"]["config"]
    kwargs = config["model_kwargs"]
    norm = meta["normalization"]
    return Predictor(
        model, None if norm is None else Normalization.from_dict(norm),
        (kwargs["in_channels"], kwargs["input_size"], kwargs["input_size"]),
        _class_names(config), predicts_argmin(criterion_for(model)), dict(config),
    )  # fmt: skip


def rebuild_model(path: Path, config: Any) -> nn.Module:
    """The untrained model ``config`` (a checkpoint's ``extra.config``) names, built from its
    recorded arguments (any seed: the weights are replaced). CheckpointError naming ``path``
    and what to record when it cannot be."""
    if not isinstance(config, dict) or not isinstance(config.get("model"), str):
        raise CheckpointError(
            f"checkpoint {path} does not record which model it holds (meta.extra.config.model "
            f"is missing); {_HOW_TO_RECORD}"
        )
    name, kwargs = config["model"], config.get("model_kwargs")
    needed = ("in_channels", "input_size", "num_classes")
    if not isinstance(kwargs, dict) or any(k not in kwargs for k in needed):
        raise CheckpointError(
            f"checkpoint {path}: meta.extra.config.model_kwargs: expected the arguments "
            f"{name} was built with, at least {', '.join(needed)}, got {kwargs!r}; "
            f"{_HOW_TO_RECORD}"
        )
    if is_custom(name):
        _check_source(path, name, config.get("model_sha256"))
    try:
        return build_model(name, rng=np.random.default_rng(0), **kwargs)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path}: cannot rebuild {name} from "
                              f"meta.extra.config: {err}") from None  # fmt: skip


def _check_source(path: Path, spec: str, recorded: Any) -> None:
    try:
        now = source_sha256(spec)
    except ValueError as err:
        raise CheckpointError(f"checkpoint {path}: {err}") from None
    if isinstance(recorded, str) and now is not None and now != recorded:
        warnings.warn(
            f"{spec.rpartition(':')[0]} has changed since checkpoint {path} was trained with it "
            f"(sha256 {recorded[:12]}... then, {now[:12]}... now); the model is rebuilt from "
            "the file as it is now",
            ModelSourceChangedWarning, stacklevel=3,
        )  # fmt: skip


def _class_names(config: dict[str, Any]) -> tuple[str, ...]:
    """The recorded class names (a folder data set's), the data set's own, or the indices."""
    recorded = config.get("classes")
    if isinstance(recorded, list) and all(isinstance(c, str) for c in recorded):
        return tuple(recorded)
    known = KNOWN_CLASSES.get(config.get("dataset"))
    if known is not None and len(known) == config["model_kwargs"]["num_classes"]:
        return known
    return tuple(str(i) for i in range(int(config["model_kwargs"]["num_classes"])))


__all__ = [
    "DIGIT_DATASETS",
    "KNOWN_CLASSES",
    "PREPARE_MODES",
    "ModelSourceChangedWarning",
    "Predictor",
    "load",
    "rebuild_model",
]

"""The numbers behind the figures of a trained network: confusion matrix, class
probabilities, its most confident mistakes, the feature maps of one image and its
convolutions. Pure functions, so they are tested without looking at a picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from .recording import is_leaf, record_calls

# Layers whose output is a stack of maps worth drawing: the convolutions and the poolings, whose
# maps show what the network looks at. Activations and normalisations repeat those maps.
MAP_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Conv2d,
    nn.ConvTranspose2d,
    nn.TableConv2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Subsampling,
)


# -- predictions ------------------------------------------------------------------------------
def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` int64 counts from ``y_true, y_pred: (N,)``: entry
    ``[t, p]`` is the number of samples of true class ``t`` predicted as ``p`` (rows are the
    truth, columns the prediction)."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.size} true labels but {y_pred.size} predictions")
    for name, y in (("true labels", y_true), ("predictions", y_pred)):
        if y.size and not 0 <= y.min() <= y.max() < num_classes:
            raise ValueError(f"{name} fall outside [0, {num_classes})")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    # Shifting by the row maximum keeps exp from overflowing and changes nothing else.
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def predicts_argmin(loss: nn.Module) -> bool:
    """Whether ``loss.predict`` picks the lowest output (penalties, as LeNet-5's MAP/RBF) rather
    than the highest score; found by asking it about one row ``[0, 1]``."""
    return int(loss.predict(np.array([[0.0, 1.0]]))[0]) == 0


def class_probabilities(outputs: np.ndarray, lowest_wins: bool = False) -> np.ndarray:
    """``(N, K)`` probabilities from the model's ``outputs: (N, K)``: the softmax of the scores,
    or with ``lowest_wins`` (penalties, predicted by argmin) the softmax of the negated
    penalties."""
    outputs = np.asarray(outputs, dtype=np.float64)
    return _softmax(-outputs if lowest_wins else outputs)


def most_confident_errors(
    probs: np.ndarray, y_true: np.ndarray, k: int, y_pred: np.ndarray | None = None
) -> np.ndarray:
    """Indices of at most ``k`` misclassified samples, the most confident first: sorted by the
    probability ``probs: (N, K)`` gives the (wrong) prediction. ``y_true, y_pred: (N,)``;
    ``y_pred`` defaults to the argmax of ``probs``. Ties keep the samples' order."""
    probs = np.asarray(probs)
    y_pred = probs.argmax(axis=1) if y_pred is None else np.asarray(y_pred)
    wrong = np.flatnonzero(y_pred != np.asarray(y_true))
    confidence = probs[wrong, y_pred[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:k]]


# -- inside the model -------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureMaps:
    """One layer's output for one image."""

    name: str  # the layer's dotted name in the model, e.g. "0" or "layer1.0.conv1"
    kind: str  # its class name
    maps: np.ndarray  # (C, H, W)


def _feature_maps(
    name: str, module: nn.Module, inputs: tuple, output: np.ndarray
) -> FeatureMaps | None:
    if output.ndim != 4:  # a pooling that ends in (N, C) holds no maps
        return None
    kind = type(module).__name__
    # A copy: the layer may reuse its output buffer on the next call.
    return FeatureMaps(name or kind, kind, np.array(output[0]))


def record_feature_maps(
    model: nn.Module, image: np.ndarray, kinds: tuple[type[nn.Module], ...] = MAP_LAYERS
) -> list[FeatureMaps]:
    """Run one normalised ``image: (C, H, W)`` through ``model`` in eval mode and return the
    ``(C', H', W')`` output of every layer that is an instance of ``kinds`` (by default the
    convolutions, poolings and subsamplings), in the order they ran (a layer that runs twice
    appears twice). Outputs that are not maps (not 4-D with the batch axis) are skipped.

    The model is left as it was: same training mode, no hooks.
    """
    layers = [(n, m) for n, m in model.named_modules() if is_leaf(m) and isinstance(m, kinds)]
    return record_calls(model, np.asarray(image)[None], layers, _feature_maps)


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """``(dotted name, layer)`` of every ``Conv2d`` in the model, in definition order; their
    ``weight: (O, C/groups, KH, KW)`` are the filters :func:`plot_filters` draws."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """``(name, layer)`` of the first ``Conv2d`` in the model, or None if it has none."""
    convs = conv_layers(model)
    return convs[0] if convs else None

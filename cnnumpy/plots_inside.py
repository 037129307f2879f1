"""Figures of what a trained network does inside: its first filters, the feature maps of one
image, the confusion matrix and the most confident mistakes.

The numbers behind the figures come from pure functions (:func:`confusion_matrix`,
:func:`record_feature_maps`, :func:`class_probabilities`, :func:`most_confident_errors`) so
that they can be tested without looking at a picture. The plots use matplotlib's Agg backend.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import nn
from .plots import _pyplot

# Layers whose output is a stack of maps worth drawing (TableConv2d is matched by its name).
_MAP_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Subsampling)


# -- the numbers ------------------------------------------------------------------------------
def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` int64 counts: entry ``[t, p]`` is the number of samples of
    true class ``t`` predicted as ``p`` (rows are the truth, columns the prediction)."""
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
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def predicts_argmin(loss) -> bool:
    """Whether ``loss.predict`` picks the lowest output (penalties, as LeNet-5's MAP/RBF) rather
    than the highest score; found by asking it about one row ``[0, 1]``."""
    return int(loss.predict(np.array([[0.0, 1.0]]))[0]) == 0


def class_probabilities(outputs: np.ndarray, lowest_wins: bool = False) -> np.ndarray:
    """``(N, K)`` probabilities from the model's outputs: the softmax of the scores, or with
    ``lowest_wins`` (penalties, predicted by argmin) the softmax of the negated penalties."""
    outputs = np.asarray(outputs, dtype=np.float64)
    return _softmax(-outputs if lowest_wins else outputs)


def most_confident_errors(
    probs: np.ndarray, y_true: np.ndarray, k: int, y_pred: np.ndarray | None = None
) -> np.ndarray:
    """Indices of at most ``k`` misclassified samples, the most confident first: sorted by the
    probability the model gave its (wrong) prediction. ``y_pred`` defaults to argmax of probs."""
    probs = np.asarray(probs)
    y_pred = probs.argmax(axis=1) if y_pred is None else np.asarray(y_pred)
    wrong = np.flatnonzero(y_pred != np.asarray(y_true))
    confidence = probs[wrong, y_pred[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:k]]


@dataclass(frozen=True)
class FeatureMaps:
    name: str  # the layer's dotted name in the model, e.g. "0" or "layer1.0.conv1"
    kind: str  # its class name
    maps: np.ndarray  # (C, H, W): the layer's output for the one image


def _named_modules(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    yield prefix, module
    for name, child in module.named_children():
        yield from _named_modules(child, f"{prefix}.{name}" if prefix else name)


def _draws_maps(module: nn.Module) -> bool:
    return isinstance(module, _MAP_LAYERS) or type(module).__name__.endswith("Conv2d")


def record_feature_maps(model: nn.Module, image: np.ndarray) -> list[FeatureMaps]:
    """Run one normalised ``image: (C, H, W)`` through ``model`` in eval mode and return the
    output of every convolution, pooling and subsampling layer, in the order they ran (a layer
    that runs twice appears twice). Outputs that are not ``(C, H, W)`` maps are skipped."""
    records: list[FeatureMaps] = []
    wrapped = []
    for name, m in _named_modules(model):
        if list(m.children()) or not _draws_maps(m):
            continue

        def recording_forward(x, m=m, name=name, forward=m.forward):
            out = forward(x)
            if out.ndim == 4:
                records.append(FeatureMaps(name or type(m).__name__, type(m).__name__,
                                           np.array(out[0])))  # fmt: skip
            return out

        m.forward = recording_forward
        wrapped.append(m)
    was_training = model.training
    try:
        model.eval()
        model(np.asarray(image)[None])
    finally:
        for m in wrapped:
            del m.forward
        model.train(was_training)
    return records


def first_conv(model: nn.Module) -> tuple[str, nn.Module] | None:
    """``(name, layer)`` of the first ``Conv2d`` in the model, or None if it has none."""
    for name, m in _named_modules(model):
        if isinstance(m, nn.Conv2d):
            return name, m
    return None


# -- the figures ------------------------------------------------------------------------------
def _save(fig, plt, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _tile(tiles: np.ndarray, ncols: int, gap: int, fill: float) -> np.ndarray:
    """``tiles: (N, h, w, ...)`` -> one picture with ``ncols`` tiles a row, ``gap`` pixels of
    ``fill`` between them (and after a last row that is not full)."""
    n, h, w = tiles.shape[:3]
    rows = -(-n // ncols)
    out = np.full((rows * (h + gap) - gap, ncols * (w + gap) - gap, *tiles.shape[3:]), fill)
    for i, t in enumerate(tiles):
        r, c = divmod(i, ncols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = t
    return out


def _plain(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)


def _display(images: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` -> ``(N, H, W)`` (C 1) or ``(N, H, W, 3)`` (C 3), each image stretched
    to [0, 1] on its own; other channel counts show their first channel."""
    x = np.asarray(images, dtype=np.float64)
    lo = x.min(axis=(1, 2, 3), keepdims=True)
    span = x.max(axis=(1, 2, 3), keepdims=True) - lo
    x = (x - lo) / np.where(span > 0, span, 1.0)
    return x.transpose(0, 2, 3, 1) if x.shape[1] == 3 else x[:, 0]


def plot_filters(
    weight: np.ndarray, path: str | Path, title: str, max_filters: int = 64, max_channels: int = 16
) -> Path:
    """The kernels ``weight: (O, C, KH, KW)`` of a convolution on one symmetric colour scale
    (``+-max|w|``, zero in the middle). One grey/diverging tile per filter for ``C = 1``, one RGB
    tile per filter for ``C = 3`` (grey = 0), otherwise a filter x input-channel grid."""
    plt = _pyplot()
    w = np.asarray(weight, dtype=np.float64)[:max_filters]
    o, c, kh, kw = w.shape
    bound = float(np.abs(w).max()) or 1.0
    gap = 1
    if c in (1, 3):
        ncols = min(o, 16 if kh <= 7 else 8)
        tiles = w[:, 0] if c == 1 else (w.transpose(0, 2, 3, 1) / bound + 1.0) / 2.0
        mosaic = _tile(tiles, ncols, gap, np.nan if c == 1 else 1.0)
        rows = -(-o // ncols)
        cell = 0.55
        fig, ax = plt.subplots(figsize=(cell * ncols + 2.2, cell * rows * kh / kw + 1.3))
        if c == 1:
            cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
            im = ax.imshow(mosaic, cmap=cmap, vmin=-bound, vmax=bound, interpolation="nearest")
            fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="weight")
        else:
            ax.imshow(np.clip(mosaic, 0.0, 1.0), interpolation="nearest")
            ax.set_xlabel(f"RGB: grey = 0, full colour = ±{bound:.3g}")
        ax.set_xticks(np.arange(ncols) * (kw + gap) + (kw - 1) / 2, range(ncols))
        ax.set_yticks(np.arange(rows) * (kh + gap) + (kh - 1) / 2, range(0, o, ncols))
        ax.set_ylabel("filter (row start + column)")
    else:
        w = w[:, :max_channels]
        c = w.shape[1]
        mosaic = _tile(w.reshape(o * c, kh, kw), c, gap, np.nan)
        fig, ax = plt.subplots(figsize=(0.45 * c + 2.5, 0.45 * o + 1.3))
        cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
        im = ax.imshow(mosaic, cmap=cmap, vmin=-bound, vmax=bound, interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="weight")
        ax.set_xticks(np.arange(c) * (kw + gap) + (kw - 1) / 2, range(c))
        ax.set_yticks(np.arange(o) * (kh + gap) + (kh - 1) / 2, range(o))
        ax.set(xlabel="input channel", ylabel="filter")
    ax.tick_params(length=0, labelsize=7)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_feature_maps(
    image: np.ndarray,
    records: Sequence[FeatureMaps],
    path: str | Path,
    title: str = "",
    input_label: str = "input",
    max_maps: int = 16,
    max_rows: int = 20,
) -> Path:
    """The input ``image: (C, H, W)`` (raw or normalised; stretched for display) on top, then one
    row per recorded layer with its first ``max_maps`` maps, each row on its own grey scale
    (shown by its colour bar). Small maps are enlarged by whole pixels so every row has about
    the input's height. With more than ``max_rows`` layers, evenly spaced ones are shown."""
    plt = _pyplot()
    if len(records) > max_rows:
        keep = np.unique(np.linspace(0, len(records) - 1, max_rows).round().astype(int))
        shown = [records[i] for i in keep]
        title = f"{title} ({len(shown)} of {len(records)} layers)".strip()
    else:
        shown = list(records)
    size = image.shape[-1]
    fig, axes = plt.subplots(
        len(shown) + 1, 1, squeeze=False, figsize=(11, 1.05 * (len(shown) + 1) + 0.7)
    )
    ax = axes[0, 0]
    ax.imshow(_display(image[None])[0], cmap="gray", interpolation="nearest")
    _plain(ax)
    ax.set_ylabel(f"{input_label}\n{'x'.join(map(str, image.shape))}", rotation=0,
                  ha="right", va="center", fontsize=9)  # fmt: skip
    for ax, rec in zip(axes[1:, 0], shown, strict=True):
        maps = rec.maps[:max_maps].astype(np.float64)
        scale = max(1, round(size / max(maps.shape[1:])))
        big = np.kron(maps, np.ones((1, scale, scale)))
        gap = max(1, big.shape[-1] // 10)
        mosaic = _tile(big, len(big), gap, np.nan)
        # Gaps in pale blue: white or black would merge with a map at either end of the scale.
        cmap = plt.get_cmap("gray").with_extremes(bad="#c9d6e8")
        im = ax.imshow(mosaic, cmap=cmap, interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.015, pad=0.01).ax.tick_params(labelsize=6)
        _plain(ax)
        c, h, w = rec.maps.shape
        more = f", first {max_maps}" if c > max_maps else ""
        ax.set_ylabel(f"{rec.name} ({rec.kind})\n{c}x{h}x{w}{more}", rotation=0,
                      ha="right", va="center", fontsize=9)  # fmt: skip
        ax.set_anchor("W")
    axes[0, 0].set_anchor("W")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_confusion(
    matrix: np.ndarray, classes: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """The confusion ``matrix`` (rows true, columns predicted) coloured by count, with the count
    written in every non-empty cell and the accuracy in the title."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    k = len(classes)
    total = int(matrix.sum())
    correct = int(np.trace(matrix))
    accuracy = f"accuracy {100 * correct / max(total, 1):.2f}% ({correct}/{total})"
    side = min(max(4.0, 0.55 * k + 2.0), 16.0)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="images")
    if k <= 30:
        threshold = matrix.max() / 2
        fontsize = 9 if k <= 12 else 6
        for t in range(k):
            for p in range(k):
                if matrix[t, p]:
                    ax.text(p, t, str(matrix[t, p]), ha="center", va="center", fontsize=fontsize,
                            color="white" if matrix[t, p] > threshold else "black")  # fmt: skip
    ticks = range(k) if k <= 30 else []
    ax.set_xticks(ticks, [classes[i] for i in ticks], rotation=45 if k > 10 else 0, ha="right"
                  if k > 10 else "center")  # fmt: skip
    ax.set_yticks(ticks, [classes[i] for i in ticks])
    ax.set(xlabel="predicted class", ylabel="true class")
    ax.set_title(f"{title}\n{accuracy}" if title else accuracy)
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_misclassified(
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray,
    classes: Sequence[str],
    path: str | Path,
    title: str = "",
    ncols: int = 8,
) -> Path:
    """``images: (N, C, H, W)`` (each stretched for display), titled with the true and the
    predicted class and the probability the model gave its prediction."""
    plt = _pyplot()
    n = len(images)
    ncols = max(1, min(ncols, n))
    rows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(rows, ncols, squeeze=False, figsize=(1.45 * ncols, 1.75 * rows + 0.6))
    shown = _display(images) if n else []
    for i, ax in enumerate(axes.ravel()):
        _plain(ax)
        if i >= n:
            ax.set_visible(False)
            continue
        ax.imshow(shown[i], cmap="gray", interpolation="nearest")
        ax.set_title(f"true {classes[y_true[i]]}\npred {classes[y_pred[i]]} "
                     f"({100 * confidence[i]:.0f}%)", fontsize=8)  # fmt: skip
    if n == 0:
        axes[0, 0].set_visible(True)
        axes[0, 0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, plt, path)

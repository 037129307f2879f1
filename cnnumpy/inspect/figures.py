"""Figures of a run and of what its network does inside, each written to an image file:
learning curves, sample images, filters, feature maps, the confusion matrix and the most
confident mistakes. The numbers they show come from :mod:`cnnumpy.inspect.analysis`.

Every function builds its own ``matplotlib.figure.Figure`` and returns the path written; none
touches pyplot or the backend (see :mod:`cnnumpy.inspect._draw`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ._draw import colormap, mosaic, new_figure, plain, save, stretch, tile
from .analysis import FeatureMaps

MAP_FRAME = "#c9d6e8"
"""The colour around every feature map: neither end of the grey scale."""


# -- a run ------------------------------------------------------------------------------------
def _draw_loss(ax, loss: np.ndarray, val_loss: np.ndarray) -> None:
    """The training loss per iteration and its moving average; the validation loss, measured
    once per epoch, at the iteration that ends each epoch."""
    if loss.size:
        its = np.arange(1, loss.size + 1)
        ax.plot(its, loss, color="0.75", linewidth=0.8, label="training, per iteration")
        # A moving average over ~1/25 of the run: the trend without the mini-batch noise.
        window = max(1, loss.size // 25)
        if window > 1:
            smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
            ax.plot(its[window - 1 :], smooth, color="C0", label=f"training, mean of {window}")
    if val_loss.size and not np.isnan(val_loss).all():
        # Every epoch has the same number of mini-batches, so epoch e ends at e/E of the run.
        ends = np.arange(1, val_loss.size + 1) * max(loss.size, val_loss.size) / val_loss.size
        ax.plot(ends, val_loss, color="C1", marker="o", label="validation, per epoch")
    if ax.lines:
        ax.legend()
    ax.set(xlabel="iteration", ylabel="loss", title="Loss")
    ax.grid(alpha=0.3)


def _draw_accuracy(ax, history: Mapping[str, Sequence[float]], best_epoch: int | None) -> None:
    validated = False
    for key, label in (("train_acc", "train"), ("val_acc", "validation")):
        acc = np.asarray(history.get(key, []), dtype=float)
        if acc.size and not np.isnan(acc).all():
            ax.plot(np.arange(1, acc.size + 1), 100 * acc, marker="o", label=label)
            validated |= key == "val_acc"
    if best_epoch:
        kept = "best" if validated else "kept: last, no validation"
        ax.axvline(best_epoch, color="0.4", linestyle=":", label=f"{kept} (epoch {best_epoch})")
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()


def plot_learning_curves(
    history: Mapping[str, Sequence[float]],
    path: str | Path,
    title: str = "",
    best_epoch: int | None = None,
) -> Path:
    """Two panels: the training loss per iteration (``history["loss"]``, with a moving
    average) with the validation loss per epoch (``"val_loss"``, when recorded), and the train
    and validation accuracy per epoch (``"train_acc"``, ``"val_acc"``, fractions), with a
    dotted line at ``best_epoch`` (the checkpoint kept) when given. A run without validation
    (``val_acc`` all NaN) shows no validation curves, and its line is labelled as the last
    epoch, not the best."""
    fig, axes = new_figure((11, 4), 1, 2)
    _draw_loss(
        axes[0, 0],
        np.asarray(history.get("loss", []), dtype=float),
        np.asarray(history.get("val_loss", []), dtype=float),
    )
    _draw_accuracy(axes[0, 1], history, best_epoch)
    return save(fig, path, title)


def plot_image_grid(
    panels: Sequence[tuple[str, np.ndarray]],
    row_labels: Sequence[str],
    path: str | Path,
    title: str = "",
) -> Path:
    """Panels of images side by side, one row per label (e.g. samples per class).

    Each panel is ``(name, images)`` with ``images: (R, K, C, H, W)`` in [0, 1] (values outside
    are clipped), ``C`` 1 (shown in grey, 0 black) or 3 (RGB); all panels have the same ``R =
    len(row_labels)`` rows, which are labelled on the left of the first panel. Pixels are drawn
    as squares without smoothing, so the figure shows exactly the values.
    """
    if not panels:
        raise ValueError("nothing to plot: no panels")
    rows, (_, _, c, h, _) = len(row_labels), panels[0][1].shape
    if any(images.shape[0] != rows or images.ndim != 5 for _, images in panels):
        raise ValueError(f"every panel needs (R={rows}, K, C, H, W) images")
    gap = max(1, h // 14)
    cell = 0.5 if h > 16 else 0.35  # inches per image
    widths = [images.shape[1] for _, images in panels]
    figsize = (cell * sum(widths) + 1.6 + 0.3 * len(panels), cell * rows + 1.0)
    fig, axes = new_figure(figsize, 1, len(panels), width_ratios=widths)
    for i, (ax, (name, images)) in enumerate(zip(axes[0], panels, strict=True)):
        picture = np.clip(mosaic(np.asarray(images, dtype=float), gap), 0.0, 1.0)
        if c == 1:
            ax.imshow(picture[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(picture, interpolation="nearest")
        plain(ax)
        ax.set_title(name)
        if i == 0:
            ax.set_yticks(np.arange(rows) * (h + gap) + (h - 1) / 2, row_labels)
            ax.tick_params(length=0)
    return save(fig, path, title)


# -- what a trained network does --------------------------------------------------------------
def _weights_image(fig, ax, picture: np.ndarray, bound: float) -> None:
    """``picture: (H, W)`` of weights on a diverging scale ``+-bound`` (zero white), NaN gaps
    white, with a colour bar."""
    cmap = colormap("RdBu_r", bad="white")
    im = ax.imshow(picture, cmap=cmap, vmin=-bound, vmax=bound, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="weight")


def _filter_tiles(w: np.ndarray, bound: float):
    """One tile per filter of ``w: (O, C, KH, KW)`` with ``C`` 1 (diverging) or 3 (RGB)."""
    o, c, kh, kw = w.shape
    gap = 1
    ncols = min(o, 16 if kh <= 7 else 8)
    # RGB filters are mapped so that 0 is mid-grey and +-bound the full colours.
    tiles = w[:, 0] if c == 1 else (w.transpose(0, 2, 3, 1) / bound + 1.0) / 2.0
    picture = tile(tiles, ncols, gap, np.nan if c == 1 else 1.0)
    rows = -(-o // ncols)
    fig, axes = new_figure((0.55 * ncols + 2.4, 0.55 * rows * kh / kw + 2.0))
    ax = axes[0, 0]
    if c == 1:
        _weights_image(fig, ax, picture, bound)
    ax.set_xticks(np.arange(ncols) * (kw + gap) + (kw - 1) / 2, range(ncols))
    if rows > 1:
        ax.set_yticks(np.arange(rows) * (kh + gap) + (kh - 1) / 2, range(0, o, ncols))
        label = "filter = row's number + column's"
    else:
        ax.set_yticks([])
        label = "filter"
    if c != 1:
        ax.imshow(np.clip(picture, 0.0, 1.0), interpolation="nearest")
        label += f"\nRGB: grey = 0, full colour = ±{bound:.3g}"
    ax.set_xlabel(label)
    return fig, ax


def _filter_channel_grid(w: np.ndarray, bound: float):
    """A filter x input-channel grid of the kernels ``w: (O, C, KH, KW)``."""
    o, c, kh, kw = w.shape
    gap = 1
    picture = tile(w.reshape(o * c, kh, kw), c, gap, np.nan)
    fig, axes = new_figure((0.45 * c + 2.5, 0.45 * o + 1.3))
    ax = axes[0, 0]
    _weights_image(fig, ax, picture, bound)
    ax.set_xticks(np.arange(c) * (kw + gap) + (kw - 1) / 2, range(c))
    ax.set_yticks(np.arange(o) * (kh + gap) + (kh - 1) / 2, range(o))
    ax.set(xlabel="input channel", ylabel="filter")
    return fig, ax


def plot_filters(
    weight: np.ndarray, path: str | Path, title: str, max_filters: int = 64, max_channels: int = 16
) -> Path:
    """The kernels ``weight: (O, C, KH, KW)`` of a convolution on one symmetric colour scale
    (``+-max|w|``, zero in the middle). One grey/diverging tile per filter for ``C = 1``, one RGB
    tile per filter for ``C = 3`` (grey = 0), otherwise a filter x input-channel grid of the
    first ``max_channels`` channels. At most ``max_filters`` filters are drawn."""
    w = np.asarray(weight, dtype=np.float64)[:max_filters]
    bound = float(np.abs(w).max()) or 1.0
    if w.shape[1] in (1, 3):
        fig, ax = _filter_tiles(w, bound)
    else:
        fig, ax = _filter_channel_grid(w[:, :max_channels], bound)
    ax.tick_params(length=0, labelsize=7)
    for side in ax.spines.values():
        side.set_visible(False)
    return save(fig, path, title)


def _label_row(ax, text: str) -> None:
    ax.set_ylabel(text, rotation=0, ha="right", va="center", fontsize=9)
    ax.set_anchor("W")


def _draw_maps(fig, ax, record: FeatureMaps, size: int, max_maps: int) -> None:
    """The first ``max_maps`` maps of ``record`` in one row, enlarged to about ``size`` pixels
    high, on their own grey scale."""
    maps = record.maps[:max_maps].astype(np.float64)
    # Whole-pixel enlargement: every unit stays one visible square.
    scale = max(1, round(size / max(maps.shape[1:])))
    big = np.kron(maps, np.ones((1, scale, scale)))
    gap = max(1, big.shape[-1] // 10)
    # A frame all round every map, not only gaps between them: a map at the top of the scale
    # is white and would vanish into the white figure at either end of the row.
    picture = np.pad(tile(big, len(big), gap, np.nan), gap, constant_values=np.nan)
    # Frames in pale blue: white or black would merge with a map at either end of the scale.
    im = ax.imshow(picture, cmap=colormap("gray", bad=MAP_FRAME), interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.015, pad=0.01).ax.tick_params(labelsize=6)
    plain(ax)
    c, h, w = record.maps.shape
    more = f", first {max_maps}" if c > max_maps else ""
    _label_row(ax, f"{record.name} ({record.kind})\n{c}x{h}x{w}{more}")


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
    if len(records) > max_rows:
        keep = np.unique(np.linspace(0, len(records) - 1, max_rows).round().astype(int))
        shown = [records[i] for i in keep]
        title = f"{title} ({len(shown)} of {len(records)} layers)".strip()
    else:
        shown = list(records)
    fig, axes = new_figure((11, 1.05 * (len(shown) + 1) + 0.7), len(shown) + 1, 1)
    ax = axes[0, 0]
    ax.imshow(stretch(image[None])[0], cmap="gray", interpolation="nearest")
    plain(ax)
    _label_row(ax, f"{input_label}\n{'x'.join(map(str, image.shape))}")
    for ax, record in zip(axes[1:, 0], shown, strict=True):
        _draw_maps(fig, ax, record, image.shape[-1], max_maps)
    return save(fig, path, title)


def plot_confusion(
    matrix: np.ndarray, classes: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """The confusion ``matrix: (K, K)`` (rows true, columns predicted) coloured by count, with
    the count written in every non-empty cell (up to 30 classes) and the accuracy in the
    title."""
    matrix = np.asarray(matrix)
    k = len(classes)
    total, correct = int(matrix.sum()), int(np.trace(matrix))
    accuracy = f"accuracy {100 * correct / max(total, 1):.2f}% ({correct}/{total})"
    side = min(max(4.0, 0.55 * k + 2.0), 16.0)
    fig, axes = new_figure((side + 1.2, side))
    ax = axes[0, 0]
    im = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="images")
    if k <= 30:
        threshold = matrix.max() / 2  # white text on the dark cells
        fontsize = 9 if k <= 12 else 6
        for t, p in zip(*np.nonzero(matrix), strict=True):
            ax.text(p, t, str(matrix[t, p]), ha="center", va="center", fontsize=fontsize,
                    color="white" if matrix[t, p] > threshold else "black")  # fmt: skip
    ticks = range(k) if k <= 30 else []
    names = [classes[i] for i in ticks]
    ax.set_xticks(ticks, names, rotation=45 if k > 10 else 0, ha="right" if k > 10 else "center")
    ax.set_yticks(ticks, names)
    ax.set(xlabel="predicted class", ylabel="true class")
    ax.set_title(f"{title}\n{accuracy}" if title else accuracy)
    return save(fig, path)


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
    predicted class (``y_true, y_pred: (N,)``) and the probability the model gave its
    prediction (``confidence: (N,)``); "no mistakes" when ``N`` is 0."""
    n = len(images)
    ncols = max(1, min(ncols, n))
    rows = max(1, -(-n // ncols))
    fig, axes = new_figure((1.45 * ncols, 1.75 * rows + 0.6), rows, ncols)
    shown = stretch(images) if n else []
    for i, ax in enumerate(axes.ravel()):
        plain(ax)
        if i >= n:
            ax.set_visible(False)
            continue
        ax.imshow(shown[i], cmap="gray", interpolation="nearest")
        ax.set_title(f"true {classes[y_true[i]]}\npred {classes[y_pred[i]]} "
                     f"({100 * confidence[i]:.0f}%)", fontsize=8)  # fmt: skip
    if n == 0:
        axes[0, 0].set_visible(True)
        axes[0, 0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    return save(fig, path, title)

"""Figures written as PNG files with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works on machines without a display
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(
    history: Mapping[str, Sequence[float]],
    path: str | Path,
    title: str = "",
    best_epoch: int | None = None,
) -> Path:
    """Two panels: the training loss per iteration (with a moving average) and the train and
    validation accuracy per epoch, with a dotted line at ``best_epoch`` (the checkpoint kept)
    when given. A run without validation (``val_acc`` all NaN) shows no validation curve, and
    its line is labelled as the last epoch, not the best."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    loss = np.asarray(history.get("loss", []), dtype=float)
    if loss.size:
        its = np.arange(1, loss.size + 1)
        ax_loss.plot(its, loss, color="0.75", linewidth=0.8, label="per iteration")
        window = max(1, loss.size // 25)
        if window > 1:
            smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
            ax_loss.plot(its[window - 1 :], smooth, color="C0", label=f"mean of {window}")
        ax_loss.legend()
    ax_loss.set(xlabel="iteration", ylabel="training loss", title="Loss")
    ax_loss.grid(alpha=0.3)
    validated = False
    for key, label in (("train_acc", "train"), ("val_acc", "validation")):
        acc = np.asarray(history.get(key, []), dtype=float)
        if acc.size and not np.isnan(acc).all():
            ax_acc.plot(np.arange(1, acc.size + 1), 100 * acc, marker="o", label=label)
            validated |= key == "val_acc"
    if best_epoch:
        kept = "best" if validated else "kept: last, no validation"
        ax_acc.axvline(best_epoch, color="0.4", linestyle=":", label=f"{kept} (epoch {best_epoch})")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    ax_acc.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.grid(alpha=0.3)
    ax_acc.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _mosaic(images: np.ndarray, gap: int) -> np.ndarray:
    """``images: (R, K, C, H, W)`` -> one ``(R*(H+gap)-gap, K*(W+gap)-gap, C)`` picture with
    white lines of ``gap`` pixels between the images."""
    r, k, c, h, w = images.shape
    out = np.ones((r, h + gap, k, w + gap, c))
    out[:, :h, :, :w] = images.transpose(0, 3, 1, 4, 2)  # (R, H, K, W, C)
    out = out.reshape(r * (h + gap), k * (w + gap), c)
    return out[: out.shape[0] - gap, : out.shape[1] - gap]


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
    plt = _pyplot()
    if not panels:
        raise ValueError("nothing to plot: no panels")
    rows, (_, _, c, h, _) = len(row_labels), panels[0][1].shape
    if any(images.shape[0] != rows or images.ndim != 5 for _, images in panels):
        raise ValueError(f"every panel needs (R={rows}, K, C, H, W) images")
    gap = max(1, h // 14)
    cell = 0.5 if h > 16 else 0.35  # inches per image
    widths = [images.shape[1] for _, images in panels]
    fig, axes = plt.subplots(
        1, len(panels), squeeze=False, width_ratios=widths,
        figsize=(cell * sum(widths) + 1.6 + 0.3 * len(panels), cell * rows + 1.0),
    )  # fmt: skip
    for i, (ax, (name, images)) in enumerate(zip(axes[0], panels, strict=True)):
        mosaic = np.clip(_mosaic(np.asarray(images, dtype=float), gap), 0.0, 1.0)
        if c == 1:
            ax.imshow(mosaic[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(mosaic, interpolation="nearest")
        ax.set_title(name)
        ax.set_xticks([])
        centres = (np.arange(rows) * (h + gap) + (h - 1) / 2) if i == 0 else []
        ax.set_yticks(centres, row_labels if i == 0 else [])
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

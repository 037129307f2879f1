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
    history: Mapping[str, Sequence[float]], path: str | Path, title: str = ""
) -> Path:
    """Two panels: the training loss per iteration (with a moving average) and the train and
    validation accuracy per epoch."""
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
    for key, label in (("train_acc", "train"), ("val_acc", "validation")):
        acc = np.asarray(history.get(key, []), dtype=float)
        if acc.size:
            ax_acc.plot(np.arange(1, acc.size + 1), 100 * acc, marker="o", label=label)
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

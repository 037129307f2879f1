"""``batchnorm``: convergence of a deep MLP with and without batch norm at several learning
rates.

Claim (Ioffe & Szegedy 2015): batch normalisation speeds up training and tolerates much higher
learning rates.

Setup: CS231n's fully connected net (``fc``) with ``depth`` hidden layers of ``width`` units,
PyTorch's default initialisation, SGD with momentum 0.9 at each learning rate, with
``normalization=None`` and ``"batchnorm"``; the same seed (weights, batches) for every arm. A
run whose loss becomes NaN/inf is recorded as diverged, with the epochs it completed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data import Dataset
from ..models import build_model
from ._common import (
    accuracy,
    new_figure,
    percent,
    set_title,
    splits,
    train_quietly,
    write_outputs,
)

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not with the CLI
    from matplotlib.figure import Figure

ARMS = {"plain": None, "bn": "batchnorm"}
"""Arm name -> the ``normalization`` argument of the ``fc`` net."""


def run(
    data: Dataset,
    out: str | Path,
    *,
    seed: int = 0,
    depth: int = 8,
    width: int = 100,
    lrs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0),
    n_train: int = 5000,
    n_val: int = 2000,
    n_test: int = 10000,
    epochs: int = 5,
    batch_size: int = 64,
    smoke_test: bool = False,
) -> dict[str, Any]:
    """Run the experiment; write ``out/batchnorm.{json,png}``; return the numbers.

    ``runs["bn"|"plain"][str(lr)]`` holds ``loss_per_epoch``, ``train_acc``, ``val_acc`` per
    epoch, ``test_acc`` (best-validation weights), ``diverged`` and ``seconds``.
    """
    start = time.perf_counter()
    train, val, test = splits(data, n_train, n_val, n_test, seed)
    c, h, _ = data.image_shape
    runs: dict[str, dict[str, Any]] = {arm: {} for arm in ARMS}
    for arm, norm in ARMS.items():
        for lr in lrs:
            model = build_model(
                "fc", hidden_dims=(width,) * depth, normalization=norm, in_channels=c,
                input_size=h, num_classes=len(data.classes), rng=np.random.default_rng(seed),
            )  # fmt: skip
            hist = train_quietly(model, train, val, epochs=epochs, lr=lr, batch_size=batch_size,
                                 seed=seed)  # fmt: skip
            predict = hist.pop("predict")
            hist["test_acc"] = None if hist["diverged"] else accuracy(predict, test)
            del hist["loss"]
            runs[arm][str(lr)] = hist
    numbers = {
        "config": {
            "dataset": data.name, "seed": seed, "depth": depth, "width": width,
            "lrs": list(lrs), "n_train": len(train[1]), "n_val": len(val[1]),
            "n_test": len(test[1]), "epochs": epochs, "optimizer": "sgd", "momentum": 0.9,
            "batch_size": batch_size, "init": "pytorch default", "smoke_test": smoke_test,
        },
        "runs": runs,
        "final_val_acc": {
            arm: {lr: (r["val_acc"][-1] if r["val_acc"] and not r["diverged"] else None)
                  for lr, r in by_lr.items()}
            for arm, by_lr in runs.items()
        },
        "seconds": round(time.perf_counter() - start, 2),
    }  # fmt: skip
    return write_outputs(out, "batchnorm", numbers, figure(numbers))


def headline(numbers: dict[str, Any]) -> list[tuple[str, str]]:
    """One line per learning rate: final validation accuracy without and with BN."""
    final = numbers["final_val_acc"]
    return [
        (f"lr {lr}", f"validation accuracy: no BN {percent(final['plain'][lr])}, "
                     f"BN {percent(final['bn'][lr])}")
        for lr in final["plain"]
    ]  # fmt: skip


def figure(numbers: dict[str, Any]) -> Figure:
    """Per learning rate (columns): training loss and validation accuracy (rows), both arms."""
    c = numbers["config"]
    lrs = [str(lr) for lr in c["lrs"]]
    fig = new_figure(3.6 * len(lrs), 7)
    axes = fig.subplots(2, len(lrs), squeeze=False, sharey="row")
    for col, lr in enumerate(lrs):
        ax_l, ax_a = axes[:, col]
        for arm, color, label in (("plain", "C3", "no BN"), ("bn", "C0", "batch norm")):
            r = numbers["runs"][arm][lr]
            if r["diverged"]:
                label += f" (diverged in epoch {len(r['val_acc']) + 1})"
            ax_l.plot(np.arange(1, len(r["loss_per_epoch"]) + 1), r["loss_per_epoch"],
                      marker="o", color=color, label=label)  # fmt: skip
            ax_a.plot(np.arange(1, len(r["val_acc"]) + 1), 100 * np.asarray(r["val_acc"]),
                      marker="o", color=color, label=label)  # fmt: skip
        ax_l.set(title=f"lr = {lr}", xlabel="epoch", xlim=(0.5, c["epochs"] + 0.5), yscale="log")
        ax_a.set(xlabel="epoch", ylim=(0, 100), xlim=(0.5, c["epochs"] + 0.5))
        for ax in (ax_l, ax_a):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("mean training loss")
    axes[1, 0].set_ylabel("validation accuracy (%)")
    set_title(
        fig,
        f"fc net, {c['depth']} hidden layers of {c['width']}, on {c['n_train']} "
        f"{c['dataset']} images: SGD (momentum 0.9), with and without BN",
        c,
    )
    return fig

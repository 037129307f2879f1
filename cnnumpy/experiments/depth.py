"""``depth``: plain vs residual networks at two depths (He et al. 2015, section 4.2).

Claim: a deeper plain network has a HIGHER training error than a shallower one (degradation:
an optimisation problem, not over-fitting), while the deeper residual network does not.

Setup: the zoo's CIFAR networks ``plain{d}`` and ``resnet{d}`` (``cifar_resnet``: option-A
shortcuts, BN, MSRA init) at two depths ``6n + 2``, with reduced ``widths`` and a reduced
training set, on the data set's own image size; every arm has the same seed (data order).
Training error is the Solver's, measured in eval mode on (up to) 1,000 training images after
each epoch; the per-iteration loss is in training mode.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Dataset
from ..models.resnet import cifar_resnet
from ._common import accuracy, pyplot, splits, train_quietly, write_outputs


def run(
    data: Dataset,
    out: str | Path,
    *,
    seed: int = 0,
    depths: tuple[int, int] = (20, 56),
    widths: tuple[int, int, int] = (4, 8, 16),
    n_train: int = 2000,
    n_val: int = 2000,
    n_test: int = 2000,
    epochs: int = 5,
    lr: float = 0.05,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Run the experiment; write ``out/depth.{json,png}``; return the numbers.

    ``runs["plain20"]`` etc. hold ``loss`` (per iteration), ``loss_per_epoch``, ``train_acc``
    and ``val_acc`` per epoch, ``test_acc``, ``seconds``; ``final_train_error`` the last
    epoch's training error of each.
    """
    start = time.perf_counter()
    train, val, test = splits(data, n_train, n_val, n_test, seed)
    c, h, _ = data.image_shape
    runs: dict[str, Any] = {}
    for kind in ("plain", "resnet"):
        for d in depths:
            name = f"{kind}{d}"
            model = cifar_resnet(
                d, c, len(data.classes), h, widths=widths, plain=kind == "plain",
                rng=np.random.default_rng(seed),
            )  # fmt: skip
            hist = train_quietly(model, train, val, epochs=epochs, lr=lr, batch_size=batch_size,
                                 seed=seed)  # fmt: skip
            predict = hist.pop("predict")
            hist["test_acc"] = None if hist["diverged"] else accuracy(predict, test)
            hist["parameters"] = sum(p.data.size for p in model.parameters())
            runs[name] = hist
    final = {name: (1 - r["train_acc"][-1]) if r["train_acc"] else None for name, r in runs.items()}
    shallow, deep = depths
    numbers = {
        "config": {
            "dataset": data.name, "seed": seed, "depths": list(depths), "widths": list(widths),
            "n_train": len(train[1]), "n_val": len(val[1]), "n_test": len(test[1]),
            "epochs": epochs, "optimizer": "sgd", "lr": lr, "momentum": 0.9,
            "batch_size": batch_size, "shortcut": "A",
        },
        "runs": runs,
        "final_train_error": final,
        "plain_degrades": _worse(final, f"plain{deep}", f"plain{shallow}"),
        "resnet_degrades": _worse(final, f"resnet{deep}", f"resnet{shallow}"),
        "seconds": round(time.perf_counter() - start, 1),
    }  # fmt: skip
    return write_outputs(out, "depth", numbers, _figure(numbers))


def _worse(final: dict[str, float | None], deep: str, shallow: str) -> bool | None:
    """Whether ``deep`` ended with a higher training error than ``shallow`` (None if either
    diverged)."""
    if final[deep] is None or final[shallow] is None:
        return None
    return bool(final[deep] > final[shallow])


def _smooth(values: list[float], window: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if window <= 1 or v.size < window:
        return v
    return np.convolve(v, np.ones(window) / window, mode="valid")


def _figure(numbers: dict[str, Any]):
    plt = pyplot()
    c = numbers["config"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    ax_loss, ax_err, ax_val = axes
    iters_per_epoch = -(-c["n_train"] // c["batch_size"])
    window = max(1, iters_per_epoch // 2)
    for kind, color in (("plain", "C3"), ("resnet", "C0")):
        for d, style in zip(c["depths"], ("--", "-"), strict=True):
            name = f"{kind}{d}"
            r = numbers["runs"][name]
            smooth = _smooth(r["loss"], window)
            x = (np.arange(smooth.size) + window) / iters_per_epoch
            ax_loss.plot(x, smooth, color=color, linestyle=style, label=name)
            epochs = np.arange(1, len(r["train_acc"]) + 1)
            ax_err.plot(epochs, 100 * (1 - np.asarray(r["train_acc"])), marker="o",
                        color=color, linestyle=style, label=name)  # fmt: skip
            ax_val.plot(epochs, 100 * (1 - np.asarray(r["val_acc"])), marker="o",
                        color=color, linestyle=style, label=name)  # fmt: skip
    ax_loss.set(xlabel="epoch", ylabel=f"training loss (mean of {window} iterations)",
                title="Training loss (train mode)", yscale="log")  # fmt: skip
    ax_err.set(xlabel="epoch", ylabel="training error (%)", title="Training error (eval mode)")
    ax_val.set(xlabel="epoch", ylabel="validation error (%)", title="Validation error")
    top = max(ax_err.get_ylim()[1], ax_val.get_ylim()[1])
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in (ax_err, ax_val):  # the two error panels share one scale
        ax.set_ylim(0, top)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(f"Plain vs residual, widths {tuple(c['widths'])}, {c['n_train']} "
                 f"{c['dataset']} images, SGD lr {c['lr']} momentum 0.9")  # fmt: skip
    fig.tight_layout()
    return fig

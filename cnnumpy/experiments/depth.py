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
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data import Dataset
from ..models.resnet import cifar_resnet
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
    smoke_test: bool = False,
) -> dict[str, Any]:
    """Run the experiment; write ``out/depth.{json,png}``; return the numbers.

    ``runs["plain20"]`` etc. hold ``loss`` (per iteration), ``loss_per_epoch``, ``train_acc``
    and ``val_acc`` per epoch, ``test_acc``, ``parameters``, ``seconds``;
    ``final_train_error`` and ``final_loss`` are the last epoch's of each.
    """
    start = time.perf_counter()
    train, val, test = splits(data, n_train, n_val, n_test, seed)
    c, h, _ = data.image_shape
    runs: dict[str, Any] = {}
    for kind in ("plain", "resnet"):
        for d in depths:
            model = cifar_resnet(
                d, c, len(data.classes), h, widths=widths, plain=kind == "plain",
                rng=np.random.default_rng(seed),
            )  # fmt: skip
            hist = train_quietly(model, train, val, epochs=epochs, lr=lr, batch_size=batch_size,
                                 seed=seed)  # fmt: skip
            predict = hist.pop("predict")
            hist["test_acc"] = None if hist["diverged"] else accuracy(predict, test)
            hist["parameters"] = sum(p.data.size for p in model.parameters())
            runs[f"{kind}{d}"] = hist
    final = {name: _last(1 - np.asarray(r["train_acc"])) for name, r in runs.items()}
    shallow, deep = depths
    numbers = {
        "config": {
            "dataset": data.name, "seed": seed, "depths": list(depths), "widths": list(widths),
            "n_train": len(train[1]), "n_val": len(val[1]), "n_test": len(test[1]),
            "epochs": epochs, "optimizer": "sgd", "lr": lr, "momentum": 0.9,
            "batch_size": batch_size, "shortcut": "A", "smoke_test": smoke_test,
        },
        "runs": runs,
        "final_train_error": final,
        "final_loss": {name: _last(r["loss_per_epoch"]) for name, r in runs.items()},
        "plain_degrades": _worse(final, f"plain{deep}", f"plain{shallow}"),
        "resnet_degrades": _worse(final, f"resnet{deep}", f"resnet{shallow}"),
        "seconds": round(time.perf_counter() - start, 2),
    }  # fmt: skip
    return write_outputs(out, "depth", numbers, figure(numbers))


def _last(values: Any) -> float | None:
    return float(values[-1]) if len(values) else None


def _worse(final: dict[str, float | None], deep: str, shallow: str) -> bool | None:
    """Whether ``deep`` ended with a higher training error than ``shallow`` (None if either
    diverged)."""
    if final[deep] is None or final[shallow] is None:
        return None
    return bool(final[deep] > final[shallow])


def headline(numbers: dict[str, Any]) -> list[tuple[str, str]]:
    """One line per network: its last epoch's training loss and training error."""
    lines = []
    for name, loss in numbers["final_loss"].items():
        error = numbers["final_train_error"][name]
        text = "no epoch completed" if loss is None else f"training loss {loss:.3f}"
        lines.append((name, f"{text}, training error {percent(error)}"))
    return lines


def _smooth(values: list[float], window: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if window <= 1 or v.size < window:
        return v
    return np.convolve(v, np.ones(window) / window, mode="valid")


def figure(numbers: dict[str, Any]) -> Figure:
    """Training loss per iteration (smoothed), training error and validation error per epoch
    of the four networks."""
    c = numbers["config"]
    fig = new_figure(15, 4.6)
    ax_loss, ax_err, ax_val = axes = fig.subplots(1, 3)
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
    set_title(
        fig,
        f"Plain vs residual, widths {tuple(c['widths'])}, {c['n_train']} "
        f"{c['dataset']} images, SGD lr {c['lr']} momentum 0.9",
        c,
    )
    return fig

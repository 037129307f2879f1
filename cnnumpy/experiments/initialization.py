"""``init``: Xavier vs MSRA vs a fixed gaussian (std 0.01) in a deep ReLU MLP.

Claim (He et al. 2015, section 2.2): in a ReLU net the variance of the pre-activations
``y_l = W_l x_l`` obeys ``Var[y_l] = (n_l Var[w_l] / 2) Var[y_{l-1}]`` (``n_l`` the fan-in), so
it is kept by MSRA's ``Var(w) = 2/n``, halves every layer with Xavier's ``1/n``, and collapses
by ``n * 1e-4 / 2`` per layer with a fixed std of 0.01 (the AlexNet/Caffe default).

Measured: the variance of every linear layer's output over one batch of real images, in
float64 (the gaussian arm's variance reaches float32's smallest normal numbers, ~1e-38, by
about layer 20), next to the prediction of the formula started from the measured first layer.
A short SGD run per initialisation shows whether the net trains at all, and how many distinct
classes it predicts on the test images (one, when no signal reaches the output and only the
last bias has learnt).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import nn
from ..data import Dataset
from ._common import (
    INITS,
    deep_mlp,
    in_features,
    linear_layers,
    new_figure,
    percent,
    set_title,
    splits,
    train_quietly,
    write_outputs,
)

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not with the CLI
    from matplotlib.figure import Figure

WEIGHT_VARIANCE = {
    "xavier": lambda n: 1.0 / n,
    "msra": lambda n: 2.0 / n,
    "gaussian": lambda n: 1e-4,
}
"""``Var(w)`` of each filler for fan-in ``n`` (Caffe's xavier is uniform with variance 1/n)."""


def layer_variances(model: nn.Sequential, x: np.ndarray) -> list[float]:
    """Variance (over the batch and the units) of each linear layer's output for the input
    ``x: (B, C, H, W)``, forward in eval mode; input side first."""
    variances = []
    model.eval()
    for layer in model:
        x = layer(x)
        if isinstance(layer, nn.Linear):
            variances.append(float(np.var(x)))
    model.train()
    return variances


def predicted_variances(first: float, fan_ins: list[int], init: str) -> list[float]:
    """He et al.'s recursion ``Var[y_l] = n_l Var(w_l) / 2 * Var[y_{l-1}]``, from ``first``
    (the measured variance of layer 1); ``fan_ins[l]`` is layer ``l``'s fan-in."""
    out = [first]
    for n in fan_ins[1:]:
        out.append(out[-1] * n * WEIGHT_VARIANCE[init](n) / 2)
    return out


def relu_mlp(data: Dataset, depth: int, width: int, init: str, seed: int) -> nn.Sequential:
    """The :func:`deep_mlp` of this experiment: ReLU units, weights from ``init`` and ``seed``."""
    return deep_mlp(
        in_features(data), len(data.classes), depth=depth, width=width, activation=nn.ReLU,
        init=init, rng=np.random.default_rng(seed),
    )  # fmt: skip


def run(
    data: Dataset,
    out: str | Path,
    *,
    seed: int = 0,
    depth: int = 20,
    width: int = 256,
    batch: int = 500,
    n_train: int = 5000,
    n_val: int = 2000,
    n_test: int = 10000,
    epochs: int = 3,
    lr: float = 0.01,
    batch_size: int = 64,
    smoke_test: bool = False,
) -> dict[str, Any]:
    """Run the experiment; write ``out/init.{json,png}``; return the numbers.

    ``variance[init]`` and ``predicted[init]`` have ``depth`` entries (one per linear layer);
    ``training[init]`` holds the short run's history, ``test_acc`` and
    ``distinct_predictions`` (how many classes it predicts on the test images).
    """
    start = time.perf_counter()
    train, val, test = splits(data, n_train, n_val, n_test, seed)
    x = train[0][:batch].astype(np.float64)
    variance, predicted, training = {}, {}, {}
    for init in INITS:
        model = relu_mlp(data, depth, width, init, seed).to(np.float64)
        variance[init] = layer_variances(model, x)
        fans = [layer.in_features for layer in linear_layers(model)]
        predicted[init] = predicted_variances(variance[init][0], fans, init)
        fresh = relu_mlp(data, depth, width, init, seed)  # float32, as any trained net
        hist = train_quietly(fresh, train, val, epochs=epochs, lr=lr, batch_size=batch_size,
                             seed=seed)  # fmt: skip
        predicted_labels = hist.pop("predict")(test[0])
        hist["test_acc"] = float(np.mean(predicted_labels == test[1]))
        hist["distinct_predictions"] = int(np.unique(predicted_labels).size)
        del hist["loss"]
        training[init] = hist
    numbers = {
        "config": {
            "dataset": data.name, "seed": seed, "depth": depth, "width": width,
            "batch": len(x), "n_train": len(train[1]), "epochs": epochs, "optimizer": "sgd",
            "lr": lr, "momentum": 0.9, "batch_size": batch_size, "smoke_test": smoke_test,
            "weight_variance": {"xavier": "1/fan_in (uniform)", "msra": "2/fan_in (normal)",
                                "gaussian": "1e-4 (normal, std 0.01)"},
        },
        "variance": variance,
        "predicted": predicted,
        "last_over_first": {k: v[-1] / v[0] for k, v in variance.items()},
        "training": training,
        "seconds": round(time.perf_counter() - start, 2),
    }  # fmt: skip
    return write_outputs(out, "init", numbers, figure(numbers))


def headline(numbers: dict[str, Any]) -> list[tuple[str, str]]:
    """One line per initialisation: variance ratio last/first layer, measured and predicted,
    and the short run's test accuracy."""
    depth = numbers["config"]["depth"]
    lines = []
    for init in numbers["variance"]:
        pred = numbers["predicted"][init]
        t = numbers["training"][init]
        lines.append((init, f"Var layer {depth} / layer 1 {numbers['last_over_first'][init]:.1e} "
                            f"(predicted {pred[-1] / pred[0]:.1e}), test accuracy "
                            f"{percent(t['test_acc'])}"))  # fmt: skip
    return lines


def figure(numbers: dict[str, Any]) -> Figure:
    """Measured and predicted variance per layer, and the short run's validation accuracy."""
    fig = new_figure(12, 4.6)
    ax_v, ax_a = fig.subplots(1, 2)
    depth = numbers["config"]["depth"]
    layers = np.arange(1, depth + 1)
    for i, init in enumerate(INITS):
        ax_v.semilogy(layers, numbers["variance"][init], marker="o", ms=4, color=f"C{i}",
                      label=f"{init}: measured")  # fmt: skip
        ax_v.semilogy(layers, numbers["predicted"][init], linestyle="--", color=f"C{i}",
                      label=f"{init}: n Var(w)/2 per layer")  # fmt: skip
        acc = 100 * np.asarray(numbers["training"][init]["val_acc"])
        ax_a.plot(np.arange(1, acc.size + 1), acc, marker="o", color=f"C{i}", label=init)
    ax_v.set(xlabel="linear layer (1 = next to the input)", ylabel="Var of the layer's output",
             title="Pre-activation variance at initialisation")  # fmt: skip
    ax_a.set(xlabel="epoch", ylabel="validation accuracy (%)", title="Short SGD training",
             ylim=(0, 100))  # fmt: skip
    for ax in (ax_v, ax_a):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    c = numbers["config"]
    set_title(
        fig,
        f"{c['depth']}-layer ReLU MLP (width {c['width']}), batch of {c['batch']} "
        f"{c['dataset']} images",
        c,
    )
    return fig

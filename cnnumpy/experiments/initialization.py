"""``init``: Xavier vs MSRA vs a fixed gaussian (std 0.01) in a deep ReLU MLP.

Claim (He et al. 2015, section 2.2): in a ReLU net the variance of the pre-activations
``y_l = W_l x_l`` obeys ``Var[y_l] = (n_l Var[w_l] / 2) Var[y_{l-1}]`` (``n_l`` the fan-in), so
it is kept by MSRA's ``Var(w) = 2/n``, halves every layer with Xavier's ``1/n``, and collapses
by ``n * 1e-4 / 2`` per layer with a fixed std of 0.01 (the AlexNet/Caffe default).

Measured: the variance of every linear layer's output over one batch of real images, in
float64 (the gaussian arm's variance reaches float32's smallest normal numbers, ~1e-38, by
about layer 20), next to the
prediction of the formula started from the measured first layer. A short SGD run per
initialisation shows whether the net trains at all.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..data import Dataset
from ._common import (
    INITS,
    accuracy,
    deep_mlp,
    in_features,
    linear_layers,
    pyplot,
    splits,
    train_quietly,
    write_outputs,
)

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
) -> dict[str, Any]:
    """Run the experiment; write ``out/init.{json,png}``; return the numbers.

    ``variance[init]`` and ``predicted[init]`` have ``depth`` entries (one per linear layer).
    """
    start = time.perf_counter()
    train, val, test = splits(data, n_train, n_val, n_test, seed)
    x = train[0][:batch].astype(np.float64)
    variance, predicted, training = {}, {}, {}
    for init in INITS:

        def build(init=init):
            return deep_mlp(
                in_features(data), len(data.classes), depth=depth, width=width,
                activation=nn.ReLU, init=init, rng=np.random.default_rng(seed),
            )  # fmt: skip

        model = build().to(np.float64)
        variance[init] = layer_variances(model, x)
        fans = [layer.in_features for layer in linear_layers(model)]
        predicted[init] = predicted_variances(variance[init][0], fans, init)
        hist = train_quietly(build(), train, val, epochs=epochs, lr=lr, batch_size=batch_size,
                             seed=seed)  # fmt: skip
        hist["test_acc"] = accuracy(hist.pop("predict"), test)
        del hist["loss"]
        training[init] = hist
    numbers = {
        "config": {
            "dataset": data.name, "seed": seed, "depth": depth, "width": width,
            "batch": len(x), "n_train": len(train[1]), "epochs": epochs, "optimizer": "sgd",
            "lr": lr, "momentum": 0.9, "batch_size": batch_size,
            "weight_variance": {"xavier": "1/fan_in (uniform)", "msra": "2/fan_in (normal)",
                                "gaussian": "1e-4 (normal, std 0.01)"},
        },
        "variance": variance,
        "predicted": predicted,
        "last_over_first": {k: v[-1] / v[0] for k, v in variance.items()},
        "training": training,
        "seconds": round(time.perf_counter() - start, 1),
    }  # fmt: skip
    return write_outputs(out, "init", numbers, _figure(numbers))


def _figure(numbers: dict[str, Any]):
    plt = pyplot()
    fig, (ax_v, ax_a) = plt.subplots(1, 2, figsize=(12, 4.6))
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
    for ax in (ax_v, ax_a):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    c = numbers["config"]
    fig.suptitle(f"{c['depth']}-layer ReLU MLP (width {c['width']}), batch of {c['batch']} "
                 f"{c['dataset']} images")  # fmt: skip
    fig.tight_layout()
    return fig

"""``activations``: sigmoid, tanh, ReLU, leaky ReLU and PReLU in the same deep plain MLP.

Claim: saturating activations make gradients vanish in deep nets, so the
first layers of a sigmoid or tanh net barely learn, while ReLU-like units keep them alive.

Two measurements per weight initialisation (Caffe's ``xavier``, ``Var(w) = 1/fan_in``, and
``msra``, ``2/fan_in``), every arm built from the same seed so only the activation differs:

* at initialisation, the Frobenius norm of each linear layer's weight gradient for one batch
  of training images (layer 1 is next to the input);
* training curves: mean training loss per epoch and validation accuracy, plain SGD with
  momentum (not Adam, whose per-parameter scaling would hide small gradients).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import nn
from ..data import Dataset
from ._common import (
    accuracy,
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

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "prelu": lambda: nn.PReLU(1, 0.25),
}


def gradient_norms(model: nn.Module, x: np.ndarray, y: np.ndarray) -> list[float]:
    """``||dL/dW_l||_F`` for each linear layer ``l`` (input side first) after one forward and
    backward of the cross-entropy on the batch ``x: (B, C, H, W)``, ``y: (B,)``."""
    loss = nn.CrossEntropyLoss()
    model.train()
    model.zero_grad()
    loss(model(x), y)
    model.backward(loss.backward())
    norms = [float(np.linalg.norm(layer.weight.grad)) for layer in linear_layers(model)]
    model.zero_grad()
    return norms


def run(
    data: Dataset,
    out: str | Path,
    *,
    seed: int = 0,
    depth: int = 20,
    width: int = 100,
    n_train: int = 5000,
    n_val: int = 2000,
    n_test: int = 10000,
    grad_batch: int = 256,
    epochs: int = 5,
    lr: float = 0.01,
    batch_size: int = 64,
    inits: tuple[str, ...] = ("xavier", "msra"),
    smoke_test: bool = False,
) -> dict[str, Any]:
    """Run the experiment; write ``out/activations.{json,png}``; return the numbers.

    ``grad_norms[init][activation]`` has ``depth`` entries; ``training[init][activation]``
    holds per-epoch ``loss_per_epoch``, ``train_acc``, ``val_acc`` and the final ``test_acc``.
    """
    start = time.perf_counter()
    train, val, test = splits(data, n_train, n_val, n_test, seed)
    xb, yb = train[0][:grad_batch], train[1][:grad_batch]
    grads: dict[str, dict[str, list[float]]] = {}
    training: dict[str, dict[str, Any]] = {}
    for init in inits:
        grads[init], training[init] = {}, {}
        for name, act in ACTIVATIONS.items():
            model = deep_mlp(
                in_features(data), len(data.classes), depth=depth, width=width, activation=act,
                init=init, rng=np.random.default_rng(seed),
            )  # fmt: skip
            grads[init][name] = gradient_norms(model, xb, yb)
            hist = train_quietly(model, train, val, epochs=epochs, lr=lr,
                                 batch_size=batch_size, seed=seed)  # fmt: skip
            hist["test_acc"] = accuracy(hist.pop("predict"), test)
            del hist["loss"]  # per iteration: too long for the JSON, the epoch means suffice
            training[init][name] = hist
    numbers = {
        "config": {
            "dataset": data.name, "seed": seed, "depth": depth, "width": width,
            "n_train": len(train[1]), "n_val": len(val[1]), "n_test": len(test[1]),
            "grad_batch": len(yb), "epochs": epochs, "optimizer": "sgd", "lr": lr,
            "momentum": 0.9, "batch_size": batch_size, "inits": list(inits),
            "smoke_test": smoke_test,
        },
        "grad_norms": grads,
        "first_over_last": {
            init: {name: g[0] / g[-1] for name, g in by_act.items()}
            for init, by_act in grads.items()
        },
        "training": training,
        "seconds": round(time.perf_counter() - start, 2),
    }  # fmt: skip
    return write_outputs(out, "activations", numbers, figure(numbers))


def headline(numbers: dict[str, Any]) -> list[tuple[str, str]]:
    """One line per initialisation and activation: the gradient ratio and the test accuracy."""
    depth = numbers["config"]["depth"]
    return [
        (f"{init} {name}", f"||dW_1|| / ||dW_{depth}|| {numbers['first_over_last'][init][name]:.1e}"
                           f", test accuracy {percent(hist['test_acc'])}")
        for init, by_act in numbers["training"].items()
        for name, hist in by_act.items()
    ]  # fmt: skip


def figure(numbers: dict[str, Any]) -> Figure:
    """Per initialisation (columns): gradient norm per layer, training loss, validation
    accuracy (rows)."""
    inits = numbers["config"]["inits"]
    fig = new_figure(5.2 * len(inits), 11)
    axes = fig.subplots(3, len(inits), squeeze=False)
    depth = numbers["config"]["depth"]
    for col, init in enumerate(inits):
        ax_g, ax_l, ax_a = axes[:, col]
        for i, (name, g) in enumerate(numbers["grad_norms"][init].items()):
            ax_g.semilogy(range(1, depth + 1), g, marker="o", ms=3, color=f"C{i}", label=name)
            hist = numbers["training"][init][name]
            epochs = range(1, len(hist["loss_per_epoch"]) + 1)
            ax_l.plot(epochs, hist["loss_per_epoch"], marker="o", color=f"C{i}", label=name)
            ax_a.plot(range(1, len(hist["val_acc"]) + 1), 100 * np.asarray(hist["val_acc"]),
                      marker="o", color=f"C{i}", label=name)  # fmt: skip
        ax_g.set(xlabel="linear layer (1 = next to the input)", ylabel="||dL/dW|| at init",
                 title=f"{init} init: weight-gradient norm per layer")  # fmt: skip
        ax_l.set(xlabel="epoch", ylabel="mean training loss", title=f"{init} init: training loss")
        ax_a.set(xlabel="epoch", ylabel="validation accuracy (%)",
                 title=f"{init} init: validation accuracy", ylim=(0, 100))  # fmt: skip
        for ax in (ax_g, ax_l, ax_a):
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    for row in range(3):  # panels in a row compare inits: one scale
        lows, highs = zip(*(ax.get_ylim() for ax in axes[row]), strict=True)
        for ax in axes[row]:
            ax.set_ylim(min(lows), max(highs))
    c = numbers["config"]
    set_title(
        fig,
        f"{c['depth']}-layer plain MLP (width {c['width']}) on {c['n_train']} "
        f"{c['dataset']} images, SGD lr {c['lr']}",
        c,
    )
    return fig

"""``dropout``: the train/test gap with and without dropout on a small training set, and the
equivalence of inverted and classic dropout.

Claims (Hinton et al. 2012, Srivastava et al. 2014): dropout reduces over-fitting, i.e. the gap
between training and test accuracy when the training set is small; scaling the units at test
time (classic) or at training time (inverted) gives the same network.

Setup: CS231n's fully connected net (``fc``: affine-ReLU-[dropout] x 2, then affine) trained
on ``n_train`` images with Adam, once with ``p = 0`` and once with dropout ``p``.

The equivalence, measured on the classic-dropout net after training (weights ``W``): its
inverted twin has the same weights except that each linear layer after a dropout is multiplied
by the keep probability ``1 - p``. In training mode, with the same masks, the two compute the
same scores (``W (m*h) = (1-p) W (m*h) / (1-p)``); in eval mode classic multiplies the units by
``1 - p`` and inverted leaves them, so again the same scores and the same predictions. Apart
from that, inverted and classic nets trained separately (same seed, same batches, same masks)
are compared, and the test-time scaling is compared with averaging the softmax over many
random masks (the "weight scaling inference rule" it approximates).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import nn
from ..data import Dataset
from ..inspect import class_probabilities
from ..models import build_model
from ._common import (
    Split,
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


def dropouts(model: nn.Module) -> list[nn.Dropout]:
    """The model's dropout layers, input side first."""
    return [m for m in model.modules() if isinstance(m, nn.Dropout)]


def set_inverted(model: nn.Module, inverted: bool) -> nn.Module:
    """Switch every dropout layer of ``model`` to the inverted or the classic form."""
    for m in dropouts(model):
        m.inverted = inverted
    return model


def build(
    data: Dataset, hidden: tuple[int, ...], p: float, inverted: bool, seed: int
) -> nn.Sequential:
    """The ``fc`` net for ``data`` with these hidden widths and dropout ``p`` in the inverted or
    classic form, its weights drawn from ``seed``."""
    c, h, _ = data.image_shape
    model = build_model(
        "fc", hidden_dims=hidden, in_channels=c, input_size=h, num_classes=len(data.classes),
        dropout=p, rng=np.random.default_rng(seed),
    )  # fmt: skip
    return set_inverted(model, inverted)


def inverted_twin(
    classic: nn.Sequential, data: Dataset, hidden: tuple[int, ...], p: float
) -> nn.Sequential:
    """The inverted-dropout net equal to ``classic``: the same state, with the weight of every
    linear layer that reads a dropout's output multiplied by ``1 - p``."""
    twin = build(data, hidden, p, inverted=True, seed=0)
    twin.load_state_dict(classic.state_dict())
    layers = list(twin)
    for before, layer in zip(layers, layers[1:], strict=False):
        if isinstance(before, nn.Dropout) and isinstance(layer, nn.Linear):
            layer.weight.data *= 1 - p
    return twin


def scores(model: nn.Module, x: np.ndarray, training: bool, mask_seed: int = 0) -> np.ndarray:
    """Scores ``(N, K)`` in train or eval mode; in train mode every dropout draws its masks from
    a Generator seeded ``mask_seed`` (so two nets can be given the same masks)."""
    model.train(training)
    for i, m in enumerate(dropouts(model)):
        m.rng = np.random.default_rng([mask_seed, i])
    out = model(x)
    model.train()
    return out


def mc_agreement(model: nn.Module, test: Split, samples: int, seed: int) -> dict[str, float]:
    """Accuracy of the mean softmax over ``samples`` dropout masks, and the fraction of test
    images where it predicts what the scaled (eval-mode) net predicts."""
    x, y = test
    probs = 0.0
    for s in range(samples):
        probs = probs + class_probabilities(
            scores(model, x, training=True, mask_seed=seed * 1000 + s)
        )
    mc = np.argmax(probs, axis=1)
    scaled = np.argmax(scores(model, x, training=False), axis=1)
    return {"mc_test_acc": float(np.mean(mc == y)), "agreement": float(np.mean(mc == scaled))}


def run(
    data: Dataset,
    out: str | Path,
    *,
    seed: int = 0,
    p: float = 0.5,
    hidden: tuple[int, ...] = (512, 512),
    n_train: int = 1000,
    n_val: int = 5000,
    n_test: int = 10000,
    epochs: int = 40,
    lr: float = 1e-3,
    batch_size: int = 50,
    mc_samples: int = 50,
    smoke_test: bool = False,
) -> dict[str, Any]:
    """Run the experiment; write ``out/dropout.{json,png}``; return the numbers.

    ``arms["none"|"inverted"|"classic"]`` hold the per-epoch history and ``train_acc_final``,
    ``test_acc`` and ``gap`` of the best-validation weights; ``equivalence`` compares the
    classic net with its inverted twin (see :func:`equivalence`).
    """
    start = time.perf_counter()
    train, val, test = splits(data, n_train, n_val, n_test, seed)
    arms: dict[str, Any] = {}
    models = {}
    for name, rate, inverted in (("none", 0.0, True), ("inverted", p, True),
                                 ("classic", p, False)):  # fmt: skip
        models[name] = build(data, hidden, rate, inverted, seed)
        hist = train_quietly(models[name], train, val, epochs=epochs, lr=lr, optimizer="adam",
                             batch_size=batch_size, seed=seed)  # fmt: skip
        predict = hist.pop("predict")
        del hist["loss"]
        hist["train_acc_final"] = accuracy(predict, train)  # all n_train images
        hist["test_acc"] = accuracy(predict, test)
        hist["gap"] = hist["train_acc_final"] - hist["test_acc"]
        hist["last_epoch_gap"] = hist["train_acc"][-1] - hist["val_acc"][-1]
        arms[name] = hist
    twin = inverted_twin(models["classic"], data, hidden, p)
    numbers = {
        "config": {
            "dataset": data.name, "seed": seed, "p": p, "hidden": list(hidden),
            "n_train": len(train[1]), "n_val": len(val[1]), "n_test": len(test[1]),
            "epochs": epochs, "optimizer": "adam", "lr": lr, "batch_size": batch_size,
            "mc_samples": mc_samples, "smoke_test": smoke_test,
            "note": "Solver keeps the best-validation weights; test_acc and train_acc_final "
                    "are those weights'; train_acc/val_acc are per epoch",
        },
        "arms": arms,
        "equivalence": equivalence(models["classic"], twin, models["inverted"], test,
                                   mc_samples, seed),
        "seconds": round(time.perf_counter() - start, 2),
    }  # fmt: skip
    return write_outputs(out, "dropout", numbers, figure(numbers))


def equivalence(
    classic: nn.Module,
    twin: nn.Module,
    inverted: nn.Module,
    test: Split,
    mc_samples: int,
    seed: int,
) -> dict[str, Any]:
    """Scores of the trained ``classic`` net against its inverted ``twin`` in eval mode (all of
    ``test``) and in training mode with the same masks (500 images); how often the separately
    trained ``inverted`` net predicts what ``classic`` does; and :func:`mc_agreement`."""
    x = test[0]
    eval_c, eval_t = scores(classic, x, False), scores(twin, x, False)
    train_c, train_t = scores(classic, x[:500], True, 7), scores(twin, x[:500], True, 7)
    pred_c = np.argmax(eval_c, axis=1)
    pred_inverted = np.argmax(scores(inverted, x, False), axis=1)
    return {
        "eval_max_abs_diff": float(np.max(np.abs(eval_c - eval_t))),
        "eval_predictions_equal": bool(np.array_equal(pred_c, np.argmax(eval_t, axis=1))),
        "train_mode_max_abs_diff": float(np.max(np.abs(train_c - train_t))),
        "max_abs_score": float(np.max(np.abs(eval_c))),
        "separately_trained_agreement": float(np.mean(pred_inverted == pred_c)),
        "monte_carlo": mc_agreement(classic, test, mc_samples, seed),
    }


def headline(numbers: dict[str, Any]) -> list[tuple[str, str]]:
    """One line per arm (training and test accuracy, gap), one for the equivalence."""
    lines = []
    for name, a in numbers["arms"].items():
        label = "no dropout" if name == "none" else f"{name} dropout"
        train, test = percent(a["train_acc_final"]), percent(a["test_acc"])
        lines.append((label, f"train {train}, test {test}, gap {100 * a['gap']:.1f} points"))
    eq = numbers["equivalence"]
    same = "yes" if eq["eval_predictions_equal"] else "NO"
    lines.append(("classic vs inverted twin", f"max |score difference| "
                  f"{eq['eval_max_abs_diff']:.2g}, same predictions: {same}"))  # fmt: skip
    return lines


def figure(numbers: dict[str, Any]) -> Figure:
    """Training and validation accuracy per epoch of each arm, and their gap."""
    fig = new_figure(12, 4.6)
    ax_acc, ax_gap = fig.subplots(1, 2)
    styles = {"none": "C3", "inverted": "C0", "classic": "C2"}
    for name, hist in numbers["arms"].items():
        epochs = np.arange(1, len(hist["val_acc"]) + 1)
        tr, va = 100 * np.asarray(hist["train_acc"]), 100 * np.asarray(hist["val_acc"])
        label = "no dropout" if name == "none" else f"{name} dropout"
        ax_acc.plot(epochs, tr, color=styles[name], linestyle="--", label=f"{label}: train")
        ax_acc.plot(epochs, va, color=styles[name], label=f"{label}: validation")
        ax_gap.plot(epochs, tr - va, color=styles[name], label=label)
    c, eq = numbers["config"], numbers["equivalence"]
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Train (dashed) and validation")
    ax_gap.set(xlabel="epoch", ylabel="train - validation accuracy (points)",
               title="Generalisation gap")  # fmt: skip
    ax_gap.text(
        0.98, 0.04,
        f"classic vs its inverted twin (same weights,\nnext layer x (1-p)): max |score diff| "
        f"{eq['eval_max_abs_diff']:.1e},\npredictions equal: {eq['eval_predictions_equal']}",
        transform=ax_gap.transAxes, ha="right", va="bottom", fontsize=8,
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.7"},
    )  # fmt: skip
    for ax in (ax_acc, ax_gap):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right" if ax is ax_acc else "center right")
    ax_gap.set_ylim(bottom=min(-2.0, ax_gap.get_ylim()[0]))
    set_title(
        fig,
        f"fc {c['hidden']} on {c['n_train']} {c['dataset']} images, dropout "
        f"p={c['p']}, Adam lr {c['lr']}",
        c,
    )
    return fig

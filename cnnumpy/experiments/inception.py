"""``inception-1x1``: what a 1x1 reduction in front of a 5x5 convolution saves, and what it
costs in accuracy.

Claim (Szegedy et al. 2014; Lin et al. 2013): a 1x1 convolution that first reduces the channels
makes the 5x5 convolution several times cheaper in parameters and multiply-adds, with little
loss of accuracy.

Counts from first principles, for a stride-1 "same" convolution with ``k x k`` kernels from
``c_in`` to ``c_out`` channels on an ``h x w`` map (no biases):
``weights = k*k*c_in*c_out`` and ``multiply-adds = h*w*c_out*k*k*c_in`` (one per weight per
output pixel). Two configurations:

* GoogLeNet's 5x5 branch of inception (3a): 28x28x192 -> 32 channels, reduced by 16;
* the often-quoted "819,200 vs 204,800" weights: a 5x5 conv 256 -> 128 has 5*5*256*128 =
  819,200 weights; reducing to 64 channels first, the 5x5 conv 64 -> 128 has 5*5*64*128 =
  204,800 and the 1x1 256 -> 64 adds 256*64 = 16,384 (the quoted figure leaves the 1x1 out).
  Its multiply-adds are taken on a 28x28 map.

Both are checked against real layers (:func:`layer_costs`). Accuracy: the same small net with
a 5x5 conv from 32 to 16 channels (the 256 -> 128 example divided by 8), with and without a
1x1 reduction to 8, trained identically.
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
    new_figure,
    percent,
    set_title,
    splits,
    train_quietly,
    write_outputs,
)

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not with the CLI
    from matplotlib.figure import Figure

CONFIGS = {
    "googlenet_3a_5x5": {"size": 28, "c_in": 192, "reduce": 16, "c_out": 32, "k": 5},
    "quoted_256_128": {"size": 28, "c_in": 256, "reduce": 64, "c_out": 128, "k": 5},
}


def conv_cost(size: int, c_in: int, c_out: int, k: int) -> tuple[int, int]:
    """``(weights, multiply-adds)`` of a bias-free stride-1 same-padded ``k x k`` conv from
    ``c_in`` to ``c_out`` channels on a ``size x size`` map, for one image."""
    weights = k * k * c_in * c_out
    return weights, size * size * weights


def costs(size: int, c_in: int, reduce: int, c_out: int, k: int) -> dict[str, int]:
    """Weights and multiply-adds of the direct ``k x k`` conv and of 1x1 reduction + ``k x k``."""
    direct_w, direct_m = conv_cost(size, c_in, c_out, k)
    one_w, one_m = conv_cost(size, c_in, reduce, 1)
    big_w, big_m = conv_cost(size, reduce, c_out, k)
    return {
        "direct_weights": direct_w, "direct_mult_adds": direct_m,
        "reduce_1x1_weights": one_w, "reduced_kxk_weights": big_w,
        "reduced_weights": one_w + big_w, "reduced_mult_adds": one_m + big_m,
    }  # fmt: skip


def branch(
    c_in: int, c_out: int, k: int, reduce: int | None, rng: np.random.Generator | None = None
) -> nn.Sequential:
    """``k x k`` conv (same padding) from ``c_in`` to ``c_out``, each conv followed by ReLU,
    with a 1x1 conv to ``reduce`` channels first when ``reduce`` is set. Convs have no bias
    here, so that the counts are the weights alone; the trained nets add biases."""
    layers: list[nn.Module] = []
    if reduce is not None:
        layers += [nn.Conv2d(c_in, reduce, 1, bias=False, rng=rng), nn.ReLU()]
        c_in = reduce
    layers += [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False, rng=rng), nn.ReLU()]
    return nn.Sequential(*layers)


def layer_costs(model: nn.Sequential, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(parameters, multiply-adds for one image)`` of a flat ``Sequential``, measured on the
    real layers rather than by formula: the sizes of its parameter arrays, and for each conv or
    linear layer the number of values it outputs for one image times the weights each output
    reads (``weight.shape[1:]``: ``c_in/groups * kh * kw``, or ``in_features``)."""
    x = np.zeros((1, *input_shape), dtype=np.float32)
    mult_adds = 0
    for layer in model:
        x = layer(x)
        if isinstance(layer, nn.Conv2d | nn.Linear):
            mult_adds += x.size * int(np.prod(layer.weight.data.shape[1:]))
    return sum(p.data.size for p in model.parameters()), mult_adds


def measured_costs(size: int, c_in: int, reduce: int, c_out: int, k: int) -> dict[str, int]:
    """The counts of :func:`costs`, measured by :func:`layer_costs` on bias-free branches."""
    out = {}
    for name, r in (("direct", None), ("reduced", reduce)):
        layers = branch(c_in, c_out, k, r, np.random.default_rng(0))
        out[f"{name}_weights"], out[f"{name}_mult_adds"] = layer_costs(layers, (c_in, size, size))
    return out


def small_net(data: Dataset, reduce: int | None, rng: np.random.Generator) -> nn.Sequential:
    """conv 3x3 -> 32, ReLU, 2x2 max pool; [1x1 -> ``reduce``, ReLU]; 5x5 -> 16, ReLU; 2x2 max
    pool; linear. Shape: ``(N, C, H, W) -> (N, classes)``; H, W multiples of 4."""
    c, h, w = data.image_shape
    layers: list[nn.Module] = [
        nn.Conv2d(c, 32, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
    ]  # fmt: skip
    if reduce is not None:
        layers += [nn.Conv2d(32, reduce, 1, rng=rng), nn.ReLU()]
    layers += [
        nn.Conv2d(reduce or 32, 16, 5, padding=2, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * (h // 4) * (w // 4), len(data.classes), rng=rng),
    ]  # fmt: skip
    return nn.Sequential(*layers)


def run(
    data: Dataset,
    out: str | Path,
    *,
    seed: int = 0,
    reduce: int = 8,
    n_train: int = 5000,
    n_val: int = 2000,
    n_test: int = 10000,
    epochs: int = 3,
    lr: float = 1e-3,
    batch_size: int = 64,
    smoke_test: bool = False,
) -> dict[str, Any]:
    """Run the experiment; write ``out/inception-1x1.{json,png}``; return the numbers.

    ``counts[config]`` holds the formula's counts and, under ``"layers"``, those measured on
    real layers; ``trained["direct"|"reduced"]`` the small nets' histories, ``test_acc``,
    ``parameters`` and ``mult_adds``.
    """
    start = time.perf_counter()
    counts = {
        name: {"config": cfg, **costs(**cfg), "layers": measured_costs(**cfg)}
        for name, cfg in CONFIGS.items()
    }
    train, val, test = splits(data, n_train, n_val, n_test, seed)
    trained = {}
    for name, r in (("direct", None), ("reduced", reduce)):
        model = small_net(data, r, np.random.default_rng(seed))
        parameters, mult_adds = layer_costs(model, data.image_shape)
        hist = train_quietly(model, train, val, epochs=epochs, lr=lr, optimizer="adam",
                             batch_size=batch_size, seed=seed)  # fmt: skip
        hist["test_acc"] = accuracy(hist.pop("predict"), test)
        del hist["loss"]
        hist["parameters"], hist["mult_adds"] = parameters, mult_adds
        trained[name] = hist
    numbers = {
        "config": {
            "dataset": data.name, "seed": seed, "reduce": reduce, "n_train": len(train[1]),
            "n_val": len(val[1]), "n_test": len(test[1]), "epochs": epochs,
            "optimizer": "adam", "lr": lr, "batch_size": batch_size, "smoke_test": smoke_test,
            "net": "conv3x3 32, pool, [1x1 reduce], conv5x5 16, pool, linear",
        },
        "counts": counts,
        "trained": trained,
        "seconds": round(time.perf_counter() - start, 2),
    }  # fmt: skip
    return write_outputs(out, "inception-1x1", numbers, figure(numbers))


def headline(numbers: dict[str, Any]) -> list[tuple[str, str]]:
    """One line per configuration (weights and multiply-adds saved), one per trained net."""
    lines = []
    for name, c in numbers["counts"].items():
        fewer_weights = c["direct_weights"] / c["reduced_weights"]
        fewer_mult_adds = c["direct_mult_adds"] / c["reduced_mult_adds"]
        lines.append((name, f"weights {c['direct_weights']:,} -> {c['reduced_weights']:,} "
                            f"({fewer_weights:.1f}x fewer), multiply-adds "
                            f"{fewer_mult_adds:.1f}x fewer"))  # fmt: skip
    for name, t in numbers["trained"].items():
        lines.append((f"small net, {name}", f"{t['parameters']:,} parameters, test accuracy "
                                             f"{percent(t['test_acc'])}"))  # fmt: skip
    return lines


def figure(numbers: dict[str, Any]) -> Figure:
    """Weights and multiply-adds of both configurations with and without the reduction, and the
    small nets' validation accuracy."""
    fig = new_figure(15, 4.6)
    axes = fig.subplots(1, 3)
    names = list(numbers["counts"])
    x = np.arange(len(names))
    for ax, what, label in ((axes[0], "weights", "weights"),
                            (axes[1], "mult_adds", "multiply-adds per image")):  # fmt: skip
        direct = [numbers["counts"][n][f"direct_{what}"] for n in names]
        reduced = [numbers["counts"][n][f"reduced_{what}"] for n in names]
        ax.bar(x - 0.2, direct, 0.4, color="C3", label="5x5 directly")
        ax.bar(x + 0.2, reduced, 0.4, color="C0", label="1x1 reduction + 5x5")
        for i, (d, r) in enumerate(zip(direct, reduced, strict=True)):
            ax.text(i - 0.2, d, f"{d:,}", ha="center", va="bottom", fontsize=7)
            ax.text(i + 0.2, r, f"{r:,}\n({d / r:.1f}x fewer)", ha="center", va="bottom",
                    fontsize=7)  # fmt: skip
        cfgs = [numbers["counts"][n]["config"] for n in names]
        ax.set_xticks(x, [f"{c['size']}x{c['size']}x{c['c_in']} -> {c['c_out']}\n"
                          f"(reduce to {c['reduce']})" for c in cfgs])  # fmt: skip
        ax.set(yscale="log", ylabel=label, title=f"{label} of the 5x5 stage")
        ax.legend(fontsize=8, loc="upper left")
    t = numbers["trained"]
    for name, color in (("direct", "C3"), ("reduced", "C0")):
        acc = 100 * np.asarray(t[name]["val_acc"])
        axes[2].plot(np.arange(1, acc.size + 1), acc, marker="o", color=color,
                     label=f"{name}: {t[name]['parameters']:,} params, test "
                     f"{100 * t[name]['test_acc']:.2f}%")  # fmt: skip
    c = numbers["config"]
    title = (
        f"5x5 32->16 vs 1x1 32->{c['reduce']} + 5x5 {c['reduce']}->16\n"
        f"small net, {c['n_train']} {c['dataset']} images, {c['epochs']} epochs"
    )
    axes[2].set(xlabel="epoch", ylabel="validation accuracy (%)", title=title)
    axes[2].xaxis.get_major_locator().set_params(integer=True)
    axes[2].legend(fontsize=8, loc="lower right")
    for ax in axes:
        ax.grid(alpha=0.3)
    set_title(fig, "5x5 convolution with and without a 1x1 reduction", c)
    return fig

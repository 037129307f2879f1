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
* the seeds' "819,200 vs 204,800" weights: a 5x5 conv 256 -> 128 has 5*5*256*128 = 819,200
  weights; reducing to 64 channels first, the 5x5 conv 64 -> 128 has 5*5*64*128 = 204,800 and
  the 1x1 256 -> 64 adds 256*64 = 16,384 (the seeds' figure leaves the 1x1 out). Its
  multiply-adds are taken on a 28x28 map.

Both are checked against :func:`cnnumpy.summary.summary` on real layers. Accuracy: the same
small net with a 5x5 conv from 32 to 16 channels (the 256 -> 128 example divided by 8), with
and without a 1x1 reduction to 8, trained identically.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..data import Dataset
from ..summary import summary
from ._common import accuracy, pyplot, splits, train_quietly, write_outputs

CONFIGS = {
    "googlenet_3a_5x5": {"size": 28, "c_in": 192, "reduce": 16, "c_out": 32, "k": 5},
    "seeds_256_128": {"size": 28, "c_in": 256, "reduce": 64, "c_out": 128, "k": 5},
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


def branch(c_in: int, c_out: int, k: int, reduce: int | None, rng=None) -> nn.Sequential:
    """``k x k`` conv (same padding) from ``c_in`` to ``c_out``, each conv followed by ReLU,
    with a 1x1 conv to ``reduce`` channels first when ``reduce`` is set. Convs have no bias
    here, so that the counts are the weights alone; the trained nets add biases."""
    layers: list[nn.Module] = []
    if reduce is not None:
        layers += [nn.Conv2d(c_in, reduce, 1, bias=False, rng=rng), nn.ReLU()]
        c_in = reduce
    layers += [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False, rng=rng), nn.ReLU()]
    return nn.Sequential(*layers)


def measured_costs(size: int, c_in: int, reduce: int, c_out: int, k: int) -> dict[str, int]:
    """The same numbers, summed over the rows of the library's ``summary`` of real layers."""
    out = {}
    for name, r in (("direct", None), ("reduced", reduce)):
        rows = summary(branch(c_in, c_out, k, r, np.random.default_rng(0)), (c_in, size, size))
        out[f"{name}_weights"] = sum(row.parameters for row in rows)
        out[f"{name}_mult_adds"] = sum(row.multiply_adds for row in rows)
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
    check_summary: bool = True,
) -> dict[str, Any]:
    """Run the experiment; write ``out/inception-1x1.{json,png}``; return the numbers."""
    start = time.perf_counter()
    counts = {name: {"config": cfg, **costs(**cfg)} for name, cfg in CONFIGS.items()}
    if check_summary:
        for name, cfg in CONFIGS.items():
            counts[name]["summary"] = measured_costs(**cfg)
    train, val, test = splits(data, n_train, n_val, n_test, seed)
    trained = {}
    c, h, _ = data.image_shape
    for name, r in (("direct", None), ("reduced", reduce)):
        model = small_net(data, r, np.random.default_rng(seed))
        rows = summary(model, (c, h, h))
        hist = train_quietly(model, train, val, epochs=epochs, lr=lr, optimizer="adam",
                             batch_size=batch_size, seed=seed)  # fmt: skip
        hist["test_acc"] = accuracy(hist.pop("predict"), test)
        del hist["loss"]
        hist["parameters"] = sum(row.parameters for row in rows)
        hist["mult_adds"] = sum(row.multiply_adds for row in rows)
        trained[name] = hist
    numbers = {
        "config": {
            "dataset": data.name, "seed": seed, "reduce": reduce, "n_train": len(train[1]),
            "n_val": len(val[1]), "n_test": len(test[1]), "epochs": epochs,
            "optimizer": "adam", "lr": lr, "batch_size": batch_size,
            "net": "conv3x3 32, pool, [1x1 reduce], conv5x5 16, pool, linear",
        },
        "counts": counts,
        "trained": trained,
        "seconds": round(time.perf_counter() - start, 1),
    }  # fmt: skip
    return write_outputs(out, "inception-1x1", numbers, _figure(numbers))


def _figure(numbers: dict[str, Any]):
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
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
    fig.tight_layout()
    return fig

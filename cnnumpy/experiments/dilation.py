"""``dilation``: the receptive field of stacked 3x3 convolutions, plain and dilated.

Claim (Yu & Koltun 2016): stacking 3x3 convolutions with dilations 1, 2, 4, 8, ... grows the
receptive field exponentially with depth (``2^(l+1) - 1`` after ``l`` layers), against the
linear ``2l + 1`` of plain 3x3 convolutions, without losing resolution or coverage.

Analytic: a stride-1 ``k x k`` conv with dilation ``d`` widens the receptive field by
``(k - 1) * d``, so after layers with dilations ``d_1..d_l`` it is ``1 + (k-1) * sum(d_i)``.

Measured with the library's own conv backward: a stack of single-channel ``nn.Conv2d`` layers
(same padding, all weights 1, no bias, float64), one forward, then a backward from a gradient
that is 1 at the centre output pixel and 0 elsewhere. The input gradient is non-zero exactly
on the input pixels joined to that output by some path (with all-positive weights no paths
can cancel); the width of its bounding box is the measured receptive field, and the fraction
of non-zero pixels inside the box shows holes. A constant dilation of 2 is included for that:
its receptive field grows like ``4l + 1`` but only one pixel in four is seen ("gridding").
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import nn
from ._common import new_figure, set_title, write_outputs

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not with the CLI
    from matplotlib.figure import Figure

KERNEL = 3


def stacks(layers: int) -> dict[str, list[int]]:
    """Dilations per layer of each configuration compared."""
    return {
        "plain (d=1)": [1] * layers,
        "dilated (d=1,2,4,...)": [2**i for i in range(layers)],
        "constant d=2": [2] * layers,
    }


def analytic_rf(dilations: list[int], kernel: int = KERNEL) -> int:
    """Receptive field (pixels across) of stride-1 ``kernel x kernel`` convs with these
    dilations: ``1 + (kernel - 1) * sum(dilations)``."""
    return 1 + (kernel - 1) * sum(dilations)


def input_gradient(dilations: list[int], size: int, kernel: int = KERNEL) -> np.ndarray:
    """``dL/dx: (size, size)`` for ``L`` = the centre pixel of the last output, through a stack
    of same-padded single-channel convs with all-ones weights and these dilations."""
    convs = []
    for d in dilations:
        conv = nn.Conv2d(1, 1, kernel, padding=d * (kernel // 2), dilation=d, bias=False,
                         dtype=np.float64)  # fmt: skip
        conv.weight.data[...] = 1.0
        convs.append(conv)
    model = nn.Sequential(*convs)
    out = model(np.ones((1, 1, size, size)))
    dout = np.zeros_like(out)
    dout[0, 0, size // 2, size // 2] = 1.0
    return model.backward(dout)[0, 0]


def measure(grad: np.ndarray) -> tuple[int, float]:
    """``(width of the bounding box of the non-zero entries, fraction non-zero inside it)``."""
    rows = np.flatnonzero(np.any(grad != 0, axis=1))
    cols = np.flatnonzero(np.any(grad != 0, axis=0))
    if rows.size == 0:
        return 0, 0.0
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    if height != width:
        raise AssertionError(f"receptive field is not square: {height} x {width}")
    box = grad[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return int(width), float(np.mean(box != 0))


def run(
    data: Any, out: str | Path, *, seed: int = 0, layers: int = 6, smoke_test: bool = False
) -> dict[str, Any]:
    """Run the experiment (``data`` and ``seed`` are unused: nothing is random here); write
    ``out/dilation.{json,png}``; return the numbers.

    ``configs[name]`` has, for ``l = 1..layers``, ``analytic`` and ``measured`` receptive
    fields and the ``density`` of the measured one.
    """
    start = time.perf_counter()
    configs = stacks(layers)
    size = max(analytic_rf(d) for d in configs.values()) + 8  # room on every side
    results, grads = {}, {}
    for name, dil in configs.items():
        res: dict[str, list] = {"dilations": dil, "analytic": [], "measured": [], "density": []}
        for n in range(1, layers + 1):
            grad = input_gradient(dil[:n], size)
            rf, density = measure(grad)
            res["analytic"].append(analytic_rf(dil[:n]))
            res["measured"].append(rf)
            res["density"].append(density)
        grads[name] = grad  # after all the layers, for the figure
        results[name] = res
    numbers = {
        "config": {
            "layers": layers, "kernel": KERNEL, "input_size": size, "weights": "ones",
            "smoke_test": smoke_test,
        },
        "configs": results,
        "all_equal": all(r["analytic"] == r["measured"] for r in results.values()),
        "seconds": round(time.perf_counter() - start, 2),
    }  # fmt: skip
    return write_outputs(out, "dilation", numbers, figure(numbers, grads))


def headline(numbers: dict[str, Any]) -> list[tuple[str, str]]:
    """One line per stack: receptive field after each layer, and the share of it seen."""
    return [
        (name, f"receptive field {' '.join(map(str, r['measured']))} "
               f"(analytic {' '.join(map(str, r['analytic']))}), "
               f"{100 * r['density'][-1]:.0f}% of the last one seen")
        for name, r in numbers["configs"].items()
    ]  # fmt: skip


def figure(numbers: dict[str, Any], grads: dict[str, np.ndarray]) -> Figure:
    """The input gradient of each stack after all its layers, and receptive field vs depth."""
    n = len(grads)
    fig = new_figure(4.2 * (n + 1), 4.8)
    axes = fig.subplots(1, n + 1, width_ratios=[1] * n + [1.4])
    layers = numbers["config"]["layers"]
    image = None
    for ax, (name, grad) in zip(axes, grads.items(), strict=False):
        # dL/dx counts paths, which differ by orders of magnitude: show log10 of the share
        # of the largest, with exact zeros (pixels outside the field or in holes) left white.
        # Each panel is cropped to its own field plus a margin, so that holes stay visible.
        rf = numbers["configs"][name]["measured"][-1]
        half, centre = rf // 2 + 3, grad.shape[0] // 2
        crop = grad[centre - half : centre + half + 1, centre - half : centre + half + 1]
        share = np.where(crop > 0, crop / crop.max(), np.nan)
        edge = half + 0.5
        image = ax.imshow(np.log10(share), cmap="viridis", vmin=-6, vmax=0,
                          interpolation="nearest", extent=(-edge, edge, edge, -edge))  # fmt: skip
        ax.set_title(f"{name}\n{layers} layers: field {rf}x{rf}", fontsize=9)
        ax.set(xlabel="input column - output column", ylabel="input row - output row")
    fig.colorbar(
        image, ax=list(axes[:n]), shrink=0.8, label="log10 of |dL/dx| / max (white: exactly 0)"
    )
    ax = axes[n]
    ls = np.arange(1, layers + 1)
    for i, (name, r) in enumerate(numbers["configs"].items()):
        ax.plot(ls, r["analytic"], color=f"C{i}", label=f"{name}: 1 + 2 sum(d)")
        ax.plot(ls, r["measured"], "o", color=f"C{i}", mfc="none", ms=8,
                label=f"{name}: measured (grad)")  # fmt: skip
    ax.set(
        xlabel="3x3 conv layers",
        ylabel="receptive field (pixels across)",
        title="Receptive field vs depth",
    )
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    set_title(
        fig,
        "Receptive field of one output pixel: non-zero region of its input gradient",
        numbers["config"],
    )
    return fig

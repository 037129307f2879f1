"""What the experiments share: data subsets, a quiet training run, a deep plain MLP whose
initialisation is chosen by name, figures drawn without pyplot, and writing ``NAME.json`` +
``NAME.png``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import init as fillers
from .. import nn
from ..data import Dataset
from ..solver import NonFiniteLossError, Solver
from ..train.factory import make_optimizer

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not with the CLI
    from matplotlib.figure import Figure

Split = tuple[np.ndarray, np.ndarray]
INITS = ("xavier", "msra", "gaussian")
"""Weight fillers of :func:`deep_mlp`: Caffe's ``xavier`` (``Var(w) = 1/fan_in``), ``msra``
(``Var(w) = 2/fan_in``, He et al. 2015) and a fixed ``N(0, 0.01^2)``."""

SMOKE_TEST = "SMOKE TEST (--quick sizes): these numbers mean nothing"
"""Heads the title of a figure drawn from a run at the ``quick`` sizes."""


def subset(split: Split, n: int | None, seed: int) -> Split:
    """``n`` samples of ``split = (X, y)`` drawn without replacement (all of them when ``n`` is
    None or too large), kept in their original order so the subset is stable across runs."""
    x, y = split
    if n is None or n >= y.shape[0]:
        return x, y
    idx = np.sort(np.random.default_rng(seed).permutation(y.shape[0])[:n])
    return x[idx], y[idx]


def splits(
    data: Dataset, n_train: int | None, n_val: int | None, n_test: int | None, seed: int
) -> tuple[Split, Split, Split]:
    """Fixed random subsets ``(train, val, test)`` of a normalised data set; the draws depend on
    ``seed`` and the part only, so every arm of an experiment sees the same images."""
    if data.normalization is None:
        raise ValueError("experiments need normalised images: pass normalize(dataset)")
    return (
        subset(data.train, n_train, seed),
        subset(data.val, n_val, seed + 1),
        subset(data.test, n_test, seed + 2),
    )


def train_quietly(
    model: nn.Module,
    train: Split,
    val: Split,
    *,
    epochs: int,
    lr: float,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, Any]:
    """Train with :class:`Solver` (no bar, no printing) and return its history plus ``diverged``
    (the loss became NaN/inf: the history stops there) and ``seconds``.

    ``optimizer`` is any name :func:`cnnumpy.train.factory.make_optimizer` knows. The history
    is per epoch except ``loss`` (per iteration); ``loss_per_epoch`` is the mean training loss
    of each completed epoch. The Solver leaves the best-validation weights in ``model``, as it
    does for ``cnnumpy train``; ``predict`` (not JSON: callers pop it) classifies with them.
    """
    opt = make_optimizer(optimizer, model.parameters(), lr, momentum=momentum)
    solver = Solver(
        model, nn.CrossEntropyLoss(), opt, train, val, batch_size=batch_size, epochs=epochs,
        seed=seed, progress=False, verbose=False,
    )  # fmt: skip
    start = time.perf_counter()
    diverged = False
    try:
        solver.train()
    except NonFiniteLossError:
        diverged = True
    history = {key: [float(v) for v in values] for key, values in solver.history.items()}
    per_epoch = math.ceil(train[1].shape[0] / batch_size)
    losses = history["loss"]
    history["loss_per_epoch"] = [
        float(np.mean(losses[i : i + per_epoch]))
        for i in range(0, len(losses) - per_epoch + 1, per_epoch)
    ]
    history["diverged"] = diverged
    history["seconds"] = round(time.perf_counter() - start, 2)
    history["predict"] = solver.predict
    return history


def accuracy(predict: Callable[[np.ndarray], np.ndarray], split: Split) -> float:
    """Fraction of ``split = (X, y)`` that ``predict(X)`` labels correctly."""
    x, y = split
    return float(np.mean(predict(x) == y))


def redraw(layer: nn.Linear | nn.Conv2d, init: str, rng: np.random.Generator) -> None:
    """Re-draw ``layer.weight`` with the filler ``init`` (see :data:`INITS`) and zero its bias,
    so that only the weights' scale differs between arms."""
    shape, dtype = layer.weight.data.shape, layer.weight.data.dtype
    if init == "xavier":
        w = fillers.xavier(shape, rng, dtype=dtype)
    elif init == "msra":
        w = fillers.msra(shape, rng, dtype=dtype)
    elif init == "gaussian":
        w = fillers.gaussian(shape, rng, std=0.01, dtype=dtype)
    else:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    layer.weight.data = w
    if layer.bias is not None:
        layer.bias.data = np.zeros_like(layer.bias.data)


def deep_mlp(
    in_features: int,
    num_classes: int,
    *,
    depth: int,
    width: int,
    activation: Callable[[], nn.Module],
    init: str,
    rng: np.random.Generator,
) -> nn.Sequential:
    """A plain fully connected net with ``depth`` linear layers: ``Flatten``, then
    ``depth - 1`` times ``Linear(., width) - activation()``, then ``Linear(width, num_classes)``.

    Shape: ``(N, C, H, W)`` with ``C*H*W = in_features`` -> ``(N, num_classes)`` scores.
    Every weight is drawn by ``init`` and every bias is zero.
    """
    if depth < 2:
        raise ValueError(f"depth counts the linear layers and must be >= 2, got {depth}")
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = in_features
    for _ in range(depth - 1):
        layers += [nn.Linear(fan_in, width, rng=rng), activation()]
        fan_in = width
    layers.append(nn.Linear(fan_in, num_classes, rng=rng))
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            redraw(m, init, rng)
    return model


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The model's linear layers, input side first."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def in_features(data: Dataset) -> int:
    """Values per image: ``C * H * W``."""
    return int(np.prod(data.image_shape))


def new_figure(width: float, height: float) -> Figure:
    """A figure that belongs to no GUI and no pyplot state (so the user's matplotlib backend
    is left as it was), laid out automatically."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def set_title(fig: Figure, text: str, config: dict[str, Any]) -> None:
    """The figure's title, headed by :data:`SMOKE_TEST` when the run was a smoke test."""
    if config.get("smoke_test"):
        text = f"{SMOKE_TEST}\n{text}"
    fig.suptitle(text)


def _jsonable(value: Any) -> Any:
    """Plain Python for ``json``: numpy scalars and arrays, tuples; NaN/inf become None (JSON
    has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    return value


def write_outputs(out: str | Path, name: str, numbers: dict[str, Any], fig: Figure) -> dict:
    """Write ``out/NAME.json`` (the numbers) and ``out/NAME.png`` (the figure); return the
    numbers as written, with the two paths under ``"files"``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    png, js = out / f"{name}.png", out / f"{name}.json"
    fig.savefig(png, dpi=80, pil_kwargs={"optimize": True})  # small enough to commit
    numbers = _jsonable({**numbers, "files": {"json": str(js), "png": str(png)}})
    js.write_text(json.dumps(numbers, indent=1) + "\n")
    return numbers


def percent(value: float | None) -> str:
    """``0.9312 -> '93.1%'``; None (a diverged run) -> ``'diverged'``."""
    return "diverged" if value is None else f"{100 * value:.1f}%"

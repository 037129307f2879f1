"""``summary(model, input_shape)``: a table of layers with output shapes, parameters,
connections and multiply-adds, counted the way LeCun et al. 1998 count them.

A *connection* is one input (or the bias) feeding one output unit; a *multiply-add* is one
weight times one input. A layer can define ``connections(in_shape, out_shape)`` and
``multiply_adds(in_shape, out_shape)`` to override the counts given here (LeNet-5's C3 does,
since its partial table reads fewer maps than a full convolution).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from .recording import leaf_modules, record_calls


@dataclass(frozen=True)
class LayerRow:
    """One call of a leaf layer for one sample."""

    name: str  # dotted name in the model, e.g. "features.0"
    kind: str  # class name, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # without the batch axis, e.g. (6, 28, 28)
    parameters: int
    connections: int
    multiply_adds: int


def layer_counts(
    module: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]
) -> tuple[int, int]:
    """``(connections, multiply-adds)`` of one sample through ``module``, whose input and
    output have shapes ``in_shape`` and ``out_shape`` (both with a batch axis of 1).

    Layers without weights (activations, max pooling, reshapes) count as 0: the paper counts
    only what is learned or averaged.
    """
    if hasattr(module, "connections"):
        return module.connections(in_shape, out_shape), module.multiply_adds(in_shape, out_shape)
    out_units = int(np.prod(out_shape[1:]))
    bias = 1 if getattr(module, "bias", None) is not None else 0
    if isinstance(module, nn.Conv2d):
        fan_in = int(np.prod(module.weight.shape[1:]))
        return out_units * (fan_in + bias), out_units * fan_in
    if isinstance(module, nn.ConvTranspose2d):
        # Each input unit is spread over out_channels/groups * KH * KW outputs.
        macs = int(np.prod(in_shape[1:])) * int(np.prod(module.weight.shape[1:]))
        return macs + bias * out_units, macs
    if isinstance(module, nn.Linear | nn.RBFOutput):
        fan_in = module.in_features
        return out_units * (fan_in + bias), out_units * fan_in
    if isinstance(module, nn.Subsampling):
        window = module.kernel_size * module.kernel_size
        return out_units * (window + bias), out_units
    return 0, 0


def _row(name: str, module: nn.Module, inputs: tuple, output: np.ndarray) -> LayerRow:
    connections, macs = layer_counts(module, inputs[0].shape, output.shape)
    params = sum(p.data.size for p in module.parameters())
    return LayerRow(name, type(module).__name__, output.shape[1:], params, connections, macs)


def summary(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerRow]:
    """Run one zero-filled sample of ``input_shape`` ``(C, H, W)`` through ``model`` in eval
    mode and return one row per call of a leaf layer, in the order the calls ran.

    The model is left as it was: same training mode, no hooks.
    """
    params = model.parameters()
    dtype = params[0].dtype if params else np.float32
    x = np.zeros((1, *input_shape), dtype=dtype)
    return record_calls(model, x, leaf_modules(model), _row)


def format_summary(rows: list[LayerRow], input_shape: tuple[int, ...]) -> str:
    """The rows as an aligned text table with totals."""
    header = ("layer", "type", "output shape", "params", "connections", "mult-adds")
    body = [
        (r.name, r.kind, "x".join(map(str, r.output_shape)),
         f"{r.parameters:,}", f"{r.connections:,}", f"{r.multiply_adds:,}")
        for r in rows
    ]  # fmt: skip
    total = (
        "total", "", "", f"{sum(r.parameters for r in rows):,}",
        f"{sum(r.connections for r in rows):,}", f"{sum(r.multiply_adds for r in rows):,}",
    )  # fmt: skip
    widths = [max(len(str(row[i])) for row in [header, *body, total]) for i in range(6)]

    def line(row: tuple) -> str:
        # Names left-aligned, counts right-aligned so their digits line up.
        cells = [
            str(c).ljust(w) if i < 3 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells)

    rule = "-" * len(line(header))
    head = f"input: {'x'.join(map(str, input_shape))}"
    return "\n".join([head, line(header), rule, *map(line, body), rule, line(total)])

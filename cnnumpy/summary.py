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

from . import nn


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int
    connections: int
    multiply_adds: int


def _counts(module: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]):
    """(connections, multiply-adds) of one sample through ``module``."""
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


def summary(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerRow]:
    """Run one zero-filled sample of ``input_shape`` (C, H, W) through ``model`` in eval mode and
    record every leaf layer in the order it ran."""
    rows: list[LayerRow] = []
    leaves = {id(m): name for name, m in _named_modules(model) if not list(m.children())}
    wrapped = []
    for name, m in _named_modules(model):
        if id(m) not in leaves:
            continue

        def recording_forward(x, m=m, name=name, forward=m.forward):
            out = forward(x)
            conn, macs = _counts(m, x.shape, out.shape)
            params = sum(p.data.size for p in m.parameters())
            rows.append(LayerRow(name, type(m).__name__, out.shape[1:], params, conn, macs))
            return out

        m.forward = recording_forward
        wrapped.append(m)
    was_training = model.training
    dtype = model.parameters()[0].dtype if model.parameters() else np.float32
    try:
        model.eval()
        model(np.zeros((1, *input_shape), dtype=dtype))
    finally:
        for m in wrapped:
            del m.forward
        model.train(was_training)
    return rows


def _named_modules(module: nn.Module, prefix: str = ""):
    yield prefix, module
    for name, child in module.named_children():
        yield from _named_modules(child, f"{prefix}.{name}" if prefix else name)


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

    def line(row):
        cells = [
            str(c).ljust(w) if i < 3 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells)

    rule = "-" * len(line(header))
    head = f"input: {'x'.join(map(str, input_shape))}"
    return "\n".join([head, line(header), rule, *map(line, body), rule, line(total)])

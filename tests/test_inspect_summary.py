"""``cnnumpy.inspect.summary``: which layers it records, in which order, with which counts, and
that it leaves the model without hooks (also when the forward raises)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnumpy import nn
from cnnumpy.inspect import LayerRow, format_summary, leaf_modules, summary


class Swapped(nn.Module):
    """Children defined in the order head, body but run body first, and one ReLU run twice."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        self.head = nn.Linear(18, 4, rng=rng)
        self.body = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.ReLU(), nn.Flatten())
        self.act = nn.ReLU()

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.act(self.head(self.act(self.body(x))))


class Boom(nn.Module):
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise ArithmeticError("boom")


def hook_counts(model: nn.Module) -> list[int]:
    return [len(m._forward_hooks) for m in model.modules()]


def test_rows_follow_the_calls_not_the_definitions():
    rows = summary(Swapped(), (1, 5, 5))
    assert [(r.name, r.kind, r.output_shape) for r in rows] == [
        ("body.0", "Conv2d", (2, 3, 3)),
        ("body.1", "ReLU", (2, 3, 3)),
        ("body.2", "Flatten", (18,)),
        ("act", "ReLU", (18,)),
        ("head", "Linear", (4,)),
        ("act", "ReLU", (4,)),
    ]


def test_counts_of_a_convolution_and_a_linear_layer():
    rows = {r.name: r for r in summary(Swapped(), (1, 5, 5))}
    # Conv2d(1, 2, 3) on 5x5: 2*3*3 = 18 output units, each reading 9 inputs and a bias.
    assert rows["body.0"] == LayerRow("body.0", "Conv2d", (2, 3, 3), 2 * 9 + 2, 18 * 10, 18 * 9)
    # Linear(18, 4): 4 units reading 18 inputs and a bias.
    assert rows["head"] == LayerRow("head", "Linear", (4,), 18 * 4 + 4, 4 * 19, 4 * 18)
    assert (rows["body.1"].parameters, rows["body.1"].connections) == (0, 0)


def test_only_leaves_are_recorded():
    model = Swapped()
    assert [name for name, _ in leaf_modules(model)] == [
        "head", "body.0", "body.1", "body.2", "act",
    ]  # fmt: skip
    assert {r.name for r in summary(model, (1, 5, 5))} == {"head", "body.0", "body.1", "body.2",
                                                          "act"}  # fmt: skip


def test_no_hooks_are_left_and_the_mode_is_restored():
    model = Swapped()
    model.train()
    summary(model, (1, 5, 5))
    assert hook_counts(model) == [0] * 7  # Swapped, head, body, body.0-2, act
    assert all(m.training for m in model.modules())
    model.eval()
    summary(model, (1, 5, 5))
    assert not any(m.training for m in model.modules())
    model.train()
    model.body[1].eval()  # a mix of modes stays a mix
    summary(model, (1, 5, 5))
    assert [m.training for m in model.modules()] == [True, True, True, True, False, True, True]


def test_no_hooks_are_left_when_the_forward_raises():
    model = nn.Sequential(nn.ReLU(), Boom(), nn.ReLU())
    model.train()
    with pytest.raises(ArithmeticError, match="boom"):
        summary(model, (1, 2, 2))
    assert hook_counts(model) == [0, 0, 0, 0]
    assert model.training and model[0].training


def test_the_users_own_hooks_stay():
    model = Swapped()
    seen = []
    handle = model.head.register_forward_hook(lambda m, inputs, out: seen.append(out.shape))
    summary(model, (1, 5, 5))
    assert len(model.head._forward_hooks) == 1 and seen == [(1, 4)]
    handle.remove()


def test_summary_runs_in_eval_mode():
    """Batch norm in training mode would fail on one sample of one value per channel."""
    seen = []
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    model[1].register_forward_hook(lambda m, inputs, out: seen.append(m.training))
    model.train()
    summary(model, (1, 1, 1))
    assert seen == [False] and model.training


def test_format_summary_totals():
    rows = [
        LayerRow("a", "Conv2d", (6, 28, 28), 156, 122_304, 117_600),
        LayerRow("b", "ReLU", (6, 28, 28), 0, 0, 0),
        LayerRow("c", "Linear", (10,), 1_000, 1_010, 1_000),
    ]
    lines = format_summary(rows, (1, 32, 32)).splitlines()
    assert lines[0] == "input: 1x32x32"
    assert lines[1].split() == ["layer", "type", "output", "shape", "params", "connections",
                                "mult-adds"]  # fmt: skip
    assert lines[3].split() == ["a", "Conv2d", "6x28x28", "156", "122,304", "117,600"]
    assert lines[-1].split() == ["total", "1,156", "123,314", "118,600"]
    assert len({len(line) for line in lines[1:]}) == 1, "aligned columns"

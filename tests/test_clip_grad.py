"""``nn.clip_grad_norm_`` against ``torch.nn.utils.clip_grad_norm_``, and in the Solver."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cnnumpy import nn, optim
from cnnumpy.data import digits, normalize
from cnnumpy.solver import Solver


def params_with_grads(seed: int, scale: float) -> list[nn.Parameter]:
    rng = np.random.default_rng(seed)
    params = []
    for shape in [(3, 4), (5,), (2, 3, 2, 2)]:
        p = nn.Parameter(rng.standard_normal(shape))
        p.grad[...] = scale * rng.standard_normal(shape)
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_matches_torch(norm_type, max_norm):
    ours = params_with_grads(0, 2.0)
    theirs = [torch.tensor(p.data, requires_grad=True) for p in ours]
    for t, p in zip(theirs, ours, strict=True):
        t.grad = torch.tensor(p.grad)
    total = nn.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert total == pytest.approx(float(expected), rel=1e-12)
    for t, p in zip(theirs, ours, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12, atol=0)
    if max_norm == 0.5:  # clipped: the new norm is max_norm, the direction is kept
        flat = np.concatenate([p.grad.ravel() for p in ours])
        assert np.linalg.norm(flat, norm_type) == pytest.approx(max_norm, rel=1e-5)


def test_small_gradients_and_frozen_parameters_are_untouched():
    params = params_with_grads(1, 1e-3)
    before = [p.grad.copy() for p in params]
    frozen = nn.Parameter(np.ones(3), requires_grad=False)
    frozen.grad[...] = 1e6  # would dominate the norm if it were counted
    total = nn.clip_grad_norm_([*params, frozen], 1.0)
    assert total < 1.0
    for p, g in zip(params, before, strict=True):
        assert np.array_equal(p.grad, g)
    assert np.all(frozen.grad == 1e6)


def test_bad_arguments_and_non_finite_gradients():
    params = params_with_grads(2, 1.0)
    with pytest.raises(ValueError, match="max_norm must be a positive number, got 0"):
        nn.clip_grad_norm_(params, 0)
    with pytest.raises(ValueError, match="norm_type must be positive"):
        nn.clip_grad_norm_(params, 1.0, norm_type=-1)
    params[0].grad[0, 0] = np.nan
    with pytest.raises(ValueError, match="total norm of the gradients is nan"):
        nn.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)


def test_solver_clips_every_step():
    data = normalize(digits(), np.float64)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10, rng=rng)).to(np.float64)
    seen = []

    class Recording(optim.SGD):
        def step(self) -> None:
            seen.append(math.sqrt(sum(float((p.grad**2).sum()) for p in self.params)))
            super().step()

    opt = Recording(model.parameters(), lr=0.1)
    solver = Solver(model, nn.CrossEntropyLoss(), opt, data.train, data.val, epochs=1,
                    progress=False, verbose=False, clip_grad_norm=0.05)  # fmt: skip
    solver.train()
    assert len(seen) == math.ceil(1257 / 64) and max(seen) <= 0.05 + 1e-9
    with pytest.raises(ValueError, match="clip_grad_norm must be None or > 0"):
        Solver(model, nn.CrossEntropyLoss(), opt, data.train, data.val, clip_grad_norm=0.0)

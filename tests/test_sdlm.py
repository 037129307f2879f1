"""SDLM (LeNet-5's stochastic diagonal Levenberg-Marquardt): the update rule, its state dict,
the piecewise-constant epsilon schedule, the curvature refresh before each epoch with
bit-identical resume, and ``cnnumpy train --optimizer sdlm --lr-schedule lenet5`` on real MNIST."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_close

from cnnumpy import nn, optim
from cnnumpy.data import Dataset, digits, normalize
from cnnumpy.optim.sdlm import LENET5_SCHEDULE
from cnnumpy.solver import Solver

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def _params(rng: np.random.Generator) -> list[nn.Parameter]:
    params = [nn.Parameter(rng.standard_normal(s)) for s in ((3, 2), (4,))]
    params.append(nn.Parameter(rng.standard_normal(2), requires_grad=False))
    for p in params:
        p.grad[...] = rng.standard_normal(p.shape)
    return params


def test_step_is_lr_over_mu_plus_h_times_grad(rng):
    params = _params(rng)
    opt = optim.SDLM(params, lr=0.3, mu=0.05)
    hs = [rng.uniform(0.0, 2.0, p.shape) for p in params]
    for state, h in zip(opt.state, hs, strict=True):
        state["hessian_diag"][...] = h
    before = [p.data.copy() for p in params]
    opt.step()
    for i in range(2):
        expected = before[i] - 0.3 / (0.05 + hs[i]) * params[i].grad
        assert_close(params[i].data, expected, rtol=1e-15, name=f"param {i}")
    assert np.array_equal(params[2].data, before[2])  # requires_grad=False: untouched


def test_state_dict_round_trip_carries_the_curvature(rng):
    params = _params(rng)
    opt = optim.SDLM(params, lr=0.1, mu=0.5, samples=7)
    for state in opt.state:
        state["hessian_diag"][...] = rng.uniform(size=state["hessian_diag"].shape)
    opt.step()
    saved = opt.state_dict()
    assert {"lr", "mu", "samples", "hessian_diag.0", "step.0"} <= set(saved)
    other = optim.SDLM(_params(np.random.default_rng(1)))
    other.load_state_dict(saved)
    restored = other.state_dict()
    assert saved.keys() == restored.keys()
    assert all(np.array_equal(saved[k], restored[k]) for k in saved)
    assert (other.lr, other.mu, other.samples) == (0.1, 0.5, 7)


@pytest.mark.parametrize("kwargs", [{"mu": 0.0}, {"lr": -1.0}, {"samples": 0}, {"batch_size": 0}])
def test_invalid_hyper_parameters_are_refused(kwargs, rng):
    with pytest.raises(ValueError, match="SDLM"):
        optim.SDLM(_params(rng), **kwargs)


def test_lenet5_schedule_gives_the_papers_epsilons(rng):
    opt = optim.SDLM(_params(rng), lr=0.0005)
    sched = optim.PiecewiseConstantLR(opt, *LENET5_SCHEDULE)
    lrs = []
    for _ in range(15):
        lrs.append(opt.lr)
        sched.step()
    paper = [5e-4] * 2 + [2e-4] * 3 + [1e-4] * 3 + [5e-5] * 4 + [1e-5] * 3
    assert_close(lrs, paper, rtol=1e-12, name="epsilon per epoch")
    resumed = optim.PiecewiseConstantLR(optim.SDLM(_params(rng), lr=0.0005), *LENET5_SCHEDULE)
    resumed.load_state_dict(sched.state_dict())
    assert resumed.last_epoch == 15 and resumed.get_last_lr() == sched.get_last_lr()


@pytest.mark.parametrize(
    ("boundaries", "factors"),
    [((2, 2), (1, 1, 1)), ((2,), (1.0,)), ((0,), (1, 1)), ((2,), (1, -1))],
)
def test_piecewise_schedule_refuses_bad_steps(boundaries, factors, rng):
    with pytest.raises(ValueError, match="PiecewiseConstantLR"):
        optim.PiecewiseConstantLR(optim.SDLM(_params(rng)), boundaries, factors)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return normalize(digits(), np.float64)


def _solver(data: Dataset, seed: int, **kwargs) -> Solver:
    rng = np.random.default_rng(seed)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 16, rng=rng), nn.Tanh(), nn.Linear(16, 10, rng=rng)
    ).to(np.float64)
    opt = optim.SDLM(model.parameters(), lr=0.01, mu=0.1, samples=100)
    sched = optim.PiecewiseConstantLR(opt, (1, 3), (1.0, 0.5, 0.2))
    kwargs = {"epochs": 4, "progress": False, "verbose": False, "batch_size": 16} | kwargs
    return Solver(model, nn.CrossEntropyLoss(), opt, data.train, data.val, scheduler=sched,
                  **kwargs)  # fmt: skip


def test_solver_reestimates_each_epoch_and_resumes_bit_identically(data, tmp_path):
    whole = _solver(data, 0)
    history = whole.train()
    assert history["lr"] == [0.01, 0.005, 0.005, 0.002]
    assert np.mean(history["loss"][-20:]) < 0.5 * np.mean(history["loss"][:20])
    assert "solver.prepare" in whole.rngs()
    assert (whole.optimizer.state[0]["hessian_diag"] > 0).all()
    _solver(data, 0, epochs=2, checkpoint_dir=tmp_path).train()
    resumed = _solver(data, 7, checkpoint_dir=tmp_path, resume=True)
    resumed.train()
    state, expected = resumed.model.state_dict(), whole.model.state_dict()
    assert all(np.array_equal(state[k], expected[k]) for k in expected)
    assert resumed.history == whole.history
    opt_state, opt_expected = resumed.optimizer.state_dict(), whole.optimizer.state_dict()
    assert all(np.array_equal(opt_state[k], opt_expected[k]) for k in opt_expected)


def test_cli_trains_lenet5_with_sdlm_on_a_few_hundred_images(tmp_path):
    args = ["--model", "lenet5", "--optimizer", "sdlm", "--lr", "0.0001", "--lr-schedule",
            "lenet5", "--dataset", "mnist", "--data-dir", str(MNIST), "--train-size", "400",
            "--batch-size", "2", "--epochs", "1", "--no-progress", "--out", "run"]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "cnnumpy", "train", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    loss = np.asarray(history["loss"])
    assert len(loss) == 200 and history["lr"] == [0.0001]
    assert loss[-50:].mean() < 0.8 * loss[:50].mean(), (loss[:50].mean(), loss[-50:].mean())

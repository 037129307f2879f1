import math

import numpy as np
import pytest
import torch
from helpers import assert_close

from cnnumpy.nn.parameter import Parameter
from cnnumpy.optim import (
    SGD,
    Adam,
    AdamW,
    CosineAnnealingLR,
    MultiStepLR,
    Optimizer,
    ReduceLROnPlateau,
    RMSprop,
    StepLR,
)

SHAPES = [(3, 4), (5,), (2, 3, 2, 2)]
N_STEPS = 10

# (our class, torch class, kwargs): one spec drives the parity, dtype and state-dict tests
OPTIMIZERS = {
    SGD: torch.optim.SGD,
    RMSprop: torch.optim.RMSprop,
    Adam: torch.optim.Adam,
    AdamW: torch.optim.AdamW,
}
CONFIGS = [
    (SGD, dict(lr=0.1)),
    (SGD, dict(lr=0.1, weight_decay=0.05)),
    (SGD, dict(lr=0.1, momentum=0.9)),
    (SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (RMSprop, dict()),
    (RMSprop, dict(lr=0.02, alpha=0.9, weight_decay=0.1)),
    (RMSprop, dict(lr=0.01, centered=True)),
    (RMSprop, dict(lr=0.01, momentum=0.7)),
    (RMSprop, dict(lr=0.01, alpha=0.8, eps=1e-3, momentum=0.5, centered=True, weight_decay=0.05)),
    (Adam, dict()),
    (Adam, dict(lr=0.05, weight_decay=0.1)),
    (Adam, dict(lr=0.05, amsgrad=True)),
    (Adam, dict(lr=0.02, betas=(0.5, 0.7), eps=1e-4, weight_decay=0.05, amsgrad=True)),
    (AdamW, dict()),
    (AdamW, dict(lr=0.05, weight_decay=0.3)),
    (AdamW, dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True)),
]
IDS = [f"{cls.__name__}-" + ",".join(f"{k}={v}" for k, v in kw.items()) for cls, kw in CONFIGS]


def make_problem(seed, dtype, n_steps=N_STEPS):
    """Initial values and a gradient sequence whose scale varies (so AMSGrad's max matters)."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [
        [(math.exp(rng.normal()) * rng.standard_normal(s)).astype(dtype) for s in SHAPES]
        for _ in range(n_steps)
    ]
    return init, grads


def run_ours(cls, kwargs, init, grads, params=None, opt=None):
    params = params or [Parameter(a.copy()) for a in init]
    opt = opt or cls(params, **kwargs)
    for step_grads in grads:
        opt.zero_grad()
        for p, g in zip(params, step_grads, strict=True):
            p.grad += g  # modules accumulate into .grad
        opt.step()
    return params, opt


def run_torch(cls, kwargs, init, grads):
    params = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt = OPTIMIZERS[cls](params, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = torch.tensor(g.copy())
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=IDS)
def test_matches_torch_float64(cls, kwargs):
    init, grads = make_problem(0, np.float64)
    ours, _ = run_ours(cls, kwargs, init, grads)
    expected = run_torch(cls, kwargs, init, grads)
    for i, (p, e) in enumerate(zip(ours, expected, strict=True)):
        assert p.data.dtype == np.float64
        assert_close(p.data, e, rtol=1e-12, name=f"param {i}")
        assert not np.allclose(p.data, init[i]), f"param {i} did not move"


@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=IDS)
def test_float32_stays_float32(cls, kwargs):
    init, grads = make_problem(1, np.float32)
    params = [Parameter(a.copy()) for a in init]
    data_ids = [id(p.data) for p in params]
    ours, opt = run_ours(cls, kwargs, init, grads, params=params)
    expected = run_torch(cls, kwargs, init, grads)
    for i, (p, e) in enumerate(zip(ours, expected, strict=True)):
        assert id(p.data) == data_ids[i], "data must be updated in place"
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
        assert_close(p.data, e, rtol=1e-5, name=f"param {i}")
    for i, state in enumerate(opt.state):
        for name, buf in state.items():
            assert buf.dtype == (np.int64 if name == "step" else np.float32), f"{name}.{i}"


@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=IDS)
def test_state_dict_round_trip(cls, kwargs, tmp_path):
    init, grads = make_problem(2, np.float64)
    whole, _ = run_ours(cls, kwargs, init, grads)

    first, opt = run_ours(cls, kwargs, init, grads[:5])
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
        saved = dict(f)
    assert all(isinstance(v, np.ndarray) for v in saved.values())
    assert int(saved["step.0"]) == 5 and float(saved["lr"]) == opt.lr

    params = [Parameter(p.data.copy()) for p in first]
    fresh = cls(params, **kwargs)
    fresh.load_state_dict(saved)
    resumed, _ = run_ours(cls, kwargs, init, grads[5:], params=params, opt=fresh)
    for i, (a, b) in enumerate(zip(resumed, whole, strict=True)):
        np.testing.assert_array_equal(a.data, b.data, err_msg=f"param {i}")


def test_state_dict_keys_and_copies():
    init, grads = make_problem(3, np.float64, n_steps=2)
    params, opt = run_ours(Adam, dict(amsgrad=True), init, grads)
    d = opt.state_dict()
    hyper = {"lr", "betas", "eps", "weight_decay", "amsgrad"}
    per_param = {f"{name}.{i}" for i in range(3) for name in
                 ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")}  # fmt: skip
    assert set(d) == hyper | per_param
    assert d["betas"].shape == (2,) and d["lr"].shape == () and d["amsgrad"].dtype == bool
    assert d["exp_avg.2"].shape == SHAPES[2]
    before = d["exp_avg.0"].copy()
    opt.step()
    np.testing.assert_array_equal(d["exp_avg.0"], before)  # a snapshot, not a view

    sgd = SGD(params, lr=0.1, momentum=0.9, nesterov=True)
    assert set(sgd.state_dict()) == {
        "lr", "momentum", "dampening", "weight_decay", "nesterov",
        "step.0", "step.1", "step.2", "momentum_buffer.0", "momentum_buffer.1",
        "momentum_buffer.2",
    }  # fmt: skip


def test_load_state_dict_mismatch():
    init, grads = make_problem(4, np.float64, n_steps=3)
    params, opt = run_ours(Adam, dict(lr=0.01), init, grads)
    good = opt.state_dict()

    fewer = Adam([Parameter(a.copy()) for a in init[:2]])
    with pytest.raises(ValueError, match=r"unexpected \['exp_avg.2'"):
        fewer.load_state_dict(good)

    other_shape = Adam([Parameter(np.zeros((4, 3))), *params[1:]])
    with pytest.raises(ValueError, match=r"'exp_avg.0' has shape \(3, 4\), expected \(4, 3\)"):
        other_shape.load_state_dict(good)

    with pytest.raises(ValueError, match=r"missing \['max_exp_avg_sq.0'"):
        Adam(params, amsgrad=True).load_state_dict(good)

    with pytest.raises(ValueError, match="keys do not match"):
        SGD(params, lr=0.1).load_state_dict(good)

    target = Adam(params, lr=0.5)
    snapshot = target.state_dict()
    for bad, match in [
        ({**good, "lr": np.array(-1.0)}, "lr"),
        ({**good, "betas": np.array([0.9, 1.5])}, "betas"),
        ({**good, "betas": np.array([0.9, 0.99, 0.5])}, "'betas' has shape"),
        ({**good, "exp_avg.1": np.zeros(5, dtype=np.int64).astype("U1")}, "dtype"),
        ({k: v for k, v in good.items() if k != "step.1"}, r"missing \['step.1'\]"),
    ]:
        with pytest.raises(ValueError, match=match):
            target.load_state_dict(bad)
    for key, value in target.state_dict().items():  # a failed load changes nothing
        np.testing.assert_array_equal(value, snapshot[key], err_msg=key)


def test_frozen_parameters_are_skipped():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2), requires_grad=False)
    opt = Adam([a, b], lr=0.1, weight_decay=0.1)
    a.grad[:] = 1.0
    b.grad[:] = 1.0
    opt.step()
    np.testing.assert_array_equal(b.data, 1.0)
    assert int(opt.state_dict()["step.1"]) == 0 and int(opt.state_dict()["step.0"]) == 1


def test_zero_grad():
    params = [Parameter(np.ones(3)), Parameter(np.ones((2, 2)))]
    opt = SGD(params, lr=0.1)
    for p in params:
        p.grad += 3.0
    opt.zero_grad()
    assert all(not p.grad.any() for p in params)


def test_lr_attribute_change_takes_effect_like_torch():
    init, grads = make_problem(5, np.float64, n_steps=4)
    params = [Parameter(a.copy()) for a in init]
    opt = Adam(params, lr=0.1)
    tparams = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    topt = torch.optim.Adam(tparams, lr=0.1)
    for k, step_grads in enumerate(grads):
        opt.lr = topt.param_groups[0]["lr"] = 0.1 / (k + 1)
        for p, tp, g in zip(params, tparams, step_grads, strict=True):
            p.grad[...] = g
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for p, tp in zip(params, tparams, strict=True):
        assert_close(p.data, tp.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda ps: SGD(ps, lr=-0.1), "lr"),
        (lambda ps: SGD(ps, lr=0.1, momentum=-0.5), "momentum"),
        (lambda ps: SGD(ps, lr=0.1, weight_decay=-1e-4), "weight_decay"),
        (lambda ps: SGD(ps, lr=0.1, nesterov=True), "Nesterov"),
        (lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
        (lambda ps: RMSprop(ps, lr=-1.0), "lr"),
        (lambda ps: RMSprop(ps, alpha=-0.9), "alpha"),
        (lambda ps: RMSprop(ps, eps=-1e-8), "eps"),
        (lambda ps: RMSprop(ps, momentum=-0.1), "momentum"),
        (lambda ps: RMSprop(ps, weight_decay=-0.1), "weight_decay"),
        (lambda ps: Adam(ps, lr=-1e-3), "lr"),
        (lambda ps: Adam(ps, eps=-1.0), "eps"),
        (lambda ps: Adam(ps, betas=(1.0, 0.999)), r"betas\[0\]"),
        (lambda ps: Adam(ps, betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda ps: Adam(ps, betas=(0.9,)), "pair"),
        (lambda ps: AdamW(ps, weight_decay=-0.01), "weight_decay"),
        (lambda ps: AdamW(ps, lr=float("nan")), "lr"),
        (lambda ps: Adam([]), "empty"),
        (lambda ps: SGD([ps[0], ps[0]], lr=0.1), "more than once"),
    ],
)
def test_bad_hyper_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make([Parameter(np.zeros(2))])


def test_bad_params_type():
    with pytest.raises(TypeError, match="not a Parameter"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="single Parameter"):
        SGD(Parameter(np.zeros(3)), lr=0.1)
    assert isinstance(SGD(iter([Parameter(np.zeros(3))]), lr=0.1), Optimizer)


# ---------------------------------------------------------------- schedulers

SCHEDULERS = [
    (StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=3, gamma=0.5)),
    (StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=7)),
    (
        MultiStepLR,
        torch.optim.lr_scheduler.MultiStepLR,
        dict(milestones=[5, 12, 12, 20], gamma=0.3),
    ),
    (MultiStepLR, torch.optim.lr_scheduler.MultiStepLR, dict(milestones=[0, 4], gamma=0.5)),
    (CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, dict(T_max=10, eta_min=1e-3)),
    (CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, dict(T_max=7)),
]
SCHED_IDS = [f"{c.__name__}-{kw}" for c, _, kw in SCHEDULERS]


def torch_sgd(lr):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)


def lr_sequence_torch(tcls, kwargs, n_epochs=30, lr=0.1):
    topt = torch_sgd(lr)
    sched = tcls(topt, **kwargs)
    out = [(sched.get_last_lr()[0], topt.param_groups[0]["lr"])]
    for _ in range(n_epochs):
        topt.step()
        sched.step()
        out.append((sched.get_last_lr()[0], topt.param_groups[0]["lr"]))
    return out


@pytest.mark.parametrize("cls, tcls, kwargs", SCHEDULERS, ids=SCHED_IDS)
def test_scheduler_matches_torch(cls, tcls, kwargs):
    opt = SGD([Parameter(np.zeros(1))], lr=0.1)
    sched = cls(opt, **kwargs)
    ours = [(sched.get_last_lr()[0], opt.lr)]
    for _ in range(30):
        opt.step()
        sched.step()
        ours.append((sched.get_last_lr()[0], opt.lr))
    expected = lr_sequence_torch(tcls, kwargs)
    np.testing.assert_allclose(ours, expected, rtol=1e-14, atol=0)


@pytest.mark.parametrize("cls, tcls, kwargs", SCHEDULERS, ids=SCHED_IDS)
def test_scheduler_state_dict_round_trip(cls, tcls, kwargs, tmp_path):
    def fresh():
        opt = SGD([Parameter(np.zeros(1))], lr=0.1)
        return opt, cls(opt, **kwargs)

    opt, sched = fresh()
    full = []
    for epoch in range(30):
        if epoch == 12:
            np.savez(tmp_path / "s.npz", **sched.state_dict())
            np.savez(tmp_path / "o.npz", **opt.state_dict())
        sched.step()
        full.append(opt.lr)

    opt2, sched2 = fresh()
    with np.load(tmp_path / "o.npz") as o, np.load(tmp_path / "s.npz") as s:
        opt2.load_state_dict(dict(o))
        sched2.load_state_dict(dict(s))
    resumed = []
    for _ in range(12, 30):
        sched2.step()
        resumed.append(opt2.lr)
    assert resumed == full[12:]


def test_scheduler_mismatch_and_validation():
    opt = SGD([Parameter(np.zeros(1))], lr=0.1)
    step = StepLR(opt, step_size=3)
    with pytest.raises(ValueError, match="keys do not match"):
        CosineAnnealingLR(opt, T_max=5).load_state_dict(step.state_dict())
    with pytest.raises(ValueError, match="'milestones' has shape"):
        MultiStepLR(opt, [1, 2]).load_state_dict(MultiStepLR(opt, [1, 2, 3]).state_dict())
    with pytest.raises(ValueError, match="step_size"):
        StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="step_size"):
        step.load_state_dict({**step.state_dict(), "step_size": np.array(-2)})
    with pytest.raises(ValueError, match="T_max"):
        CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match="milestone"):
        MultiStepLR(opt, [-1, 3])
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="threshold_mode"):
        ReduceLROnPlateau(opt, threshold_mode="pct")
    with pytest.raises(ValueError, match="patience"):
        ReduceLROnPlateau(opt, patience=-1)
    with pytest.raises(TypeError, match="Optimizer"):
        StepLR(torch_sgd(0.1), step_size=2)


# a scripted metric: improves, plateaus, improves a little (within threshold), noisy, improves
METRICS = [1.0, 0.8, 0.7, 0.7, 0.7, 0.69995, 0.7, 0.71, 0.6, 0.6, 0.61, 0.62, 0.6, 0.5, 0.5,
           0.5, 0.5, 0.5, 0.49, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]  # fmt: skip
PLATEAU_CONFIGS = [
    dict(patience=2),
    dict(patience=1, cooldown=2, factor=0.5),
    dict(patience=0, threshold=0.05, threshold_mode="abs", min_lr=0.004),
    dict(mode="max", patience=1, factor=0.3),
    dict(mode="max", patience=2, threshold=0.01, threshold_mode="abs", cooldown=1),
    dict(patience=1, factor=0.5, min_lr=0.05, eps=1e-3),
]


@pytest.mark.parametrize("kwargs", PLATEAU_CONFIGS, ids=[str(k) for k in PLATEAU_CONFIGS])
def test_reduce_on_plateau_matches_torch(kwargs, tmp_path):
    metrics = METRICS if kwargs.get("mode") != "max" else [-m for m in METRICS]
    opt = SGD([Parameter(np.zeros(1))], lr=0.1)
    sched = ReduceLROnPlateau(opt, **kwargs)
    topt = torch_sgd(0.1)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
    ours, theirs = [], []
    for epoch, m in enumerate(metrics):
        if epoch == 15:  # swap in a copy restored from the flat state dict
            np.savez(tmp_path / "p.npz", **sched.state_dict())
            sched = ReduceLROnPlateau(opt, **kwargs)
            with np.load(tmp_path / "p.npz", allow_pickle=False) as f:
                sched.load_state_dict(dict(f))
        sched.step(m)
        topt.step()
        tsched.step(m)
        ours.append((sched.get_last_lr()[0], opt.lr, sched.num_bad_epochs, sched.best))
        theirs.append((tsched.get_last_lr()[0], topt.param_groups[0]["lr"],
                       tsched.num_bad_epochs, tsched.best))  # fmt: skip
    assert ours == theirs
    assert len({lr for lr, *_ in ours}) > 1, "the script should reduce the lr at least once"

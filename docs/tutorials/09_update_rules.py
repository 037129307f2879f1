# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 9. Update rules
#
# Backpropagation gives the gradient $g = \nabla_\theta L$; the update rule decides what to do
# with it. This tutorial writes out SGD, momentum, Nesterov momentum, RMSProp and Adam as
# formulas, runs cnnumpy's optimisers on two loss surfaces of two parameters, where every step
# can be drawn, and checks each optimiser against the formulas implemented by hand in NumPy and
# against `torch.optim` on the same parameters and gradients.
#
# The two surfaces:
#
# - an **ill-conditioned quadratic**, $f(x, y) = \tfrac12 (x^2 + 25 y^2)$: 25 times steeper
#   along $y$ than along $x$, the simplest picture of a loss whose curvature differs by direction;
# - **Rosenbrock's function**, $f(x, y) = (1 - x)^2 + 100 (y - x^2)^2$: a curved, flat-bottomed
#   valley with its minimum at $(1, 1)$, a classic hard case for gradient descent.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from cnnumpy import optim
from cnnumpy.inspect import numerical_gradient, relative_error
from cnnumpy.nn import Parameter

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)  # two parameters: threads would cost more than they save


def quadratic(t):
    return 0.5 * (t[0] ** 2 + 25 * t[1] ** 2)


def quadratic_grad(t):
    return np.array([t[0], 25 * t[1]])


def rosenbrock(t):
    return (1 - t[0]) ** 2 + 100 * (t[1] - t[0] ** 2) ** 2


def rosenbrock_grad(t):
    x, y = t
    return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])


# the hand-derived gradients, against central differences and PyTorch's autograd
for f, grad in ((quadratic, quadratic_grad), (rosenbrock, rosenbrock_grad)):
    for point in ([-1.2, 1.0], [0.3, -0.7], [1.5, 2.0]):
        t = np.array(point)
        num = numerical_gradient(lambda f=f, t=t: f(t), t)
        tt = torch.tensor(point, requires_grad=True)
        f(tt).backward()
        e_num, e_torch = relative_error(grad(t), num), relative_error(grad(t), tt.grad.numpy())
        assert e_num < 1e-8 and e_torch < 1e-14
    print(f"{f.__name__:10s} gradient vs numerical {e_num:.1e}, vs torch {e_torch:.1e} (last point)")

# %% [markdown]
# ## The rules
#
# cnnumpy's optimisers follow `torch.optim` exactly, so the formulas are written the way PyTorch
# computes them; $\eta$ is the learning rate and all buffers start at zero.
#
# **SGD.** $\theta \leftarrow \theta - \eta\, g$. Along a direction of curvature $\lambda$ a
# step multiplies the distance to the minimum by $1 - \eta\lambda$: stable only for
# $\eta < 2/\lambda_{\max}$, and then slow along the flattest direction, at a rate
# $1 - \eta\lambda_{\min}$. The condition number $\lambda_{\max}/\lambda_{\min}$ (25 here) is
# what makes SGD slow.
#
# **Momentum.** Accumulate a velocity and step along it:
#
# $$b \leftarrow \mu\, b + g, \qquad \theta \leftarrow \theta - \eta\, b.$$
#
# Consistent gradients add up (a steady $g$ gives $b \to g/(1-\mu)$, ten times larger for
# $\mu = 0.9$), alternating ones cancel. CS231n writes $v \leftarrow \mu v - \eta g$,
# $\theta \leftarrow \theta + v$: the same rule with $v = -\eta b$ while $\eta$ is constant.
#
# **Nesterov momentum.** Take the gradient at the point the momentum is about to carry us to:
# $v \leftarrow \mu v - \eta\, \nabla f(\theta + \mu v)$, $\theta \leftarrow \theta + v$. To
# avoid a second evaluation point, store the look-ahead point $\phi = \theta + \mu v$ as the
# parameters instead. With $v = -\eta b$ and $g = \nabla f(\phi)$: $b_{\text{new}} = \mu b + g$
# and
#
# $$\phi_{\text{new}} = \theta_{\text{new}} + \mu v_{\text{new}}
# = \phi - \mu v + (1 + \mu) v_{\text{new}}
# = \phi - \eta\bigl((1 + \mu) b_{\text{new}} - \mu b\bigr)
# = \phi - \eta\,(g + \mu\, b_{\text{new}}),$$
#
# using $b_{\text{new}} - \mu b = g$. That is PyTorch's form:
# $b \leftarrow \mu b + g$, $\theta \leftarrow \theta - \eta\,(g + \mu b)$.
#
# **RMSProp** (Hinton's lecture 6e). Divide each coordinate by a running root mean square of
# its own gradients:
#
# $$s \leftarrow \alpha\, s + (1 - \alpha)\, g^2, \qquad
# \theta \leftarrow \theta - \eta\, \frac{g}{\sqrt{s} + \epsilon}$$
#
# (elementwise; $\epsilon = 10^{-8}$ is added outside the root, as in PyTorch). A coordinate with
# large gradients takes proportionally smaller steps, so every coordinate moves at a similar
# speed, about $\eta$ per step, whatever its scale.
#
# **Adam** (Kingma and Ba 2015). Momentum on the gradient and RMSProp's scaling, each with
# a correction for starting at zero:
#
# $$m \leftarrow \beta_1 m + (1 - \beta_1)\, g, \qquad v \leftarrow \beta_2 v + (1 - \beta_2)\, g^2,$$
#
# $$\hat m = \frac{m}{1 - \beta_1^t}, \qquad \hat v = \frac{v}{1 - \beta_2^t}, \qquad
# \theta \leftarrow \theta - \eta\, \frac{\hat m}{\sqrt{\hat v} + \epsilon}.$$
#
# At step $t = 1$, $m = (1 - \beta_1) g$ and the correction gives back $\hat m = g$; likewise
# $\hat v = g^2$. So the first step is $\eta\, g/(|g| + \epsilon)$: about $\eta$ along every
# coordinate, whatever the size of the gradient. Without the corrections every step would be
# $(1 - \beta_1^t)/\sqrt{1 - \beta_2^t}$ times the corrected one: too large, by a factor
# that starts at $0.1/\sqrt{0.001} \approx 3.2$, grows to about 6.5 around step 10, and
# fades only as $\beta_2^t$ does, over thousands of steps (computed at the end of this page).
#
# ## The rules by hand, and cnnumpy's optimisers
#
# Each rule above, written directly in NumPy, one line per formula:

# %%
def by_hand(rule, grad, start, steps, lr, mu=0.9, alpha=0.99, betas=(0.9, 0.999), eps=1e-8):
    """The path of ``rule`` from ``start``, straight from the formulas."""
    theta = np.array(start, dtype=np.float64)
    b, s, m, v = (np.zeros(2) for _ in range(4))
    path = [theta.copy()]
    for t in range(1, steps + 1):
        g = grad(theta)
        if rule == "sgd":
            theta = theta - lr * g
        elif rule == "momentum":
            b = mu * b + g
            theta = theta - lr * b
        elif rule == "nesterov":
            b = mu * b + g
            theta = theta - lr * (g + mu * b)
        elif rule == "rmsprop":
            s = alpha * s + (1 - alpha) * g**2
            theta = theta - lr * g / (np.sqrt(s) + eps)
        elif rule == "adam":
            m = betas[0] * m + (1 - betas[0]) * g
            v = betas[1] * v + (1 - betas[1]) * g**2
            m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
            theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        path.append(theta.copy())
    return np.array(path)


# %% [markdown]
# cnnumpy's optimisers update a list of `Parameter`s in place from their `.grad`; here there is
# one parameter, the point $(x, y)$. Each rule gets its own learning rate (a learning rate means
# something different for each rule, so they are not comparable), listed in the legends below.
# RMSProp uses $\alpha = 0.9$, Hinton's value, in place of PyTorch's default 0.99; momentum is
# 0.9 throughout and Adam has its defaults $\beta = (0.9, 0.999)$.

# %%
def make(rule, lr, alpha):
    """A factory for cnnumpy's optimiser and the keyword arguments of by_hand."""
    factories = {
        "sgd": lambda ps: optim.SGD(ps, lr=lr),
        "momentum": lambda ps: optim.SGD(ps, lr=lr, momentum=0.9),
        "nesterov": lambda ps: optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True),
        "rmsprop": lambda ps: optim.RMSprop(ps, lr=lr, alpha=alpha),
        "adam": lambda ps: optim.Adam(ps, lr=lr),
    }
    return factories[rule], {"lr": lr, "alpha": alpha}


def run(factory, grad, start, steps):
    """The path of a cnnumpy optimiser from ``start``: (steps + 1, 2)."""
    p = Parameter(np.array(start, dtype=np.float64))
    opt = factory([p])
    path = [p.data.copy()]
    for _ in range(steps):
        p.grad[...] = grad(p.data)
        opt.step()
        path.append(p.data.copy())
    return np.array(path)


surfaces = {
    "quadratic": dict(f=quadratic, grad=quadratic_grad, start=(-4.0, 1.5), steps=100,
                      lrs={"sgd": 0.075, "momentum": 0.01, "nesterov": 0.01, "rmsprop": 0.1,
                           "adam": 0.3}),
    "rosenbrock": dict(f=rosenbrock, grad=rosenbrock_grad, start=(-1.2, 1.0), steps=2000,
                       lrs={"sgd": 2e-3, "momentum": 5e-4, "nesterov": 5e-4, "rmsprop": 3e-3,
                            "adam": 0.1}),
}
paths = {}
for name, s in surfaces.items():
    errors = []
    for rule, lr in s["lrs"].items():
        factory, kwargs = make(rule, lr, alpha=0.9)
        paths[name, rule] = run(factory, s["grad"], s["start"], s["steps"])
        n = min(s["steps"], 200)
        hand = by_hand(rule, s["grad"], s["start"], n, **kwargs)
        errors.append(relative_error(paths[name, rule][: n + 1], hand))
    print(f"{name:10s} cnnumpy vs the formulas by hand, first {n} steps: "
          + ", ".join(f"{rule} {e:.1e}" for rule, e in zip(s["lrs"], errors, strict=True)))
    assert max(errors) < 1e-12

# %% [markdown]
# The check stops at 200 steps because over long runs two correct implementations can drift
# apart. RMSProp's steps on Rosenbrock stay of size about $\eta$ however small the gradient, so
# near the valley floor it keeps bouncing from wall to wall, and such a path amplifies any
# difference. cnnumpy computes $(1-\alpha)\,g \cdot g$, the hand version $(1-\alpha)\,g^2$; the
# two can round differently in the last bit, and the paths agree to rounding for hundreds of
# steps, then part:

# %%
s = surfaces["rosenbrock"]
hand = by_hand("rmsprop", s["grad"], s["start"], s["steps"], lr=s["lrs"]["rmsprop"], alpha=0.9)
drift = np.abs(paths["rosenbrock", "rmsprop"] - hand).max(axis=1)
for k in (200, 500, 1000, 2000):
    print(f"RMSProp on Rosenbrock, largest difference up to step {k:4d}: {drift[: k + 1].max():.1e}")

# %% [markdown]
# ## The paths

# %%
fig, axes = plt.subplots(2, 2, figsize=(13, 10), height_ratios=(3, 2))
grids = {"quadratic": ((-4.5, 1.5), (-2.0, 2.0)), "rosenbrock": ((-1.6, 1.6), (-0.6, 1.6))}
for (ax, ax_loss), (name, s) in zip(axes.T, surfaces.items(), strict=True):
    (x0, x1), (y0, y1) = grids[name]
    X, Y = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    Z = s["f"](np.array([X, Y]))
    ax.contour(X, Y, Z, levels=np.logspace(-2, 3, 11), colors="grey", linewidths=0.5)
    for rule, lr in s["lrs"].items():
        path = paths[name, rule]
        label = f"{rule} ($\\eta$ = {lr:g})"
        ax.plot(path[:, 0], path[:, 1], ".-", ms=2, lw=1, label=label)
        ax_loss.loglog(np.arange(1, len(path)), [s["f"](t) for t in path[1:]], lw=1, label=label)
    minimum = (0, 0) if name == "quadratic" else (1, 1)
    ax.plot(*minimum, "k*", ms=12)
    ax.plot(*s["start"], "ko", ms=5)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), title=f"{name}: paths", xlabel="$x$", ylabel="$y$")
    ax.legend(fontsize=8, loc="lower right")
    ax_loss.set(title=f"{name}: loss", xlabel="step", ylabel="$f$", ylim=(1e-12, None))
    ax_loss.grid(alpha=0.3)
plt.tight_layout()
plt.show()

for name, s in surfaces.items():
    print(f"{name}: f after {s['steps']} steps, the first step with f < 1e-3, the last point")
    for rule in s["lrs"]:
        values = np.array([s["f"](t) for t in paths[name, rule]])
        below = np.flatnonzero(values < 1e-3)
        first = f"step {below[0]}" if below.size else "never"
        print(f"  {rule:9s} {values[-1]:9.2e}   {first:10s} {np.round(paths[name, rule][-1], 4)}")

# how often each path crosses the floor of Rosenbrock's valley, y = x^2, in its last 500 steps
for rule in surfaces["rosenbrock"]["lrs"]:
    x, y = paths["rosenbrock", rule][-501:].T
    crossings = np.count_nonzero(np.diff(np.sign(y - x**2)))
    print(f"{rule:9s} crosses the valley floor {crossings:3d} times in the last 500 steps")

# %% [markdown]
# On the quadratic, SGD's learning rate is just under the stability limit $2/25$ of the steep
# direction, so $y$ flips sign at every step while $x$ shrinks by only $1 - 0.075 = 0.925$ per
# step. Momentum builds up speed along the shallow $x$ direction and overshoots; Nesterov's
# look-ahead damps the overshoot. RMSProp and Adam divide each coordinate by its own gradient
# scale, so at first both coordinates move by about $\eta$ per step and the path runs at 45
# degrees whatever the curvature; RMSProp then slides along the floor of the valley, while Adam,
# which adds momentum, overshoots in $x$ and swings back. This per-coordinate rescaling helps
# here because the steep direction is a coordinate axis; a rotated valley would not be
# straightened.
#
# In Rosenbrock's valley the gradient points mostly across the valley, not along its floor.
# SGD must keep its steps small enough for the steep walls and then crawls along the floor;
# momentum adds up the small but consistent component along the floor and gets through in
# about 1,200 steps; Adam's steps of about $\eta$ per coordinate carry it along the floor
# fastest. RMSProp's steps also stay about $\eta$ in size, but without momentum to average
# them they cross the floor from wall to wall at every step (the count above), and after 2000
# steps it is still short of the minimum.
#
# ## Against `torch.optim`
#
# The last check runs `torch.optim` from the same starting point on Rosenbrock's function, with
# the gradients from autograd, for 50 steps, and compares the whole path with cnnumpy's. The
# hyper-parameters are those used above; a difference in any formula (where $\epsilon$ goes,
# the bias corrections, the first momentum step) would show up in the first few steps.

# %%
torch_optimisers = {
    "sgd": lambda ps, lr: torch.optim.SGD(ps, lr=lr),
    "momentum": lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9),
    "nesterov": lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True),
    "rmsprop": lambda ps, lr: torch.optim.RMSprop(ps, lr=lr, alpha=0.9),
    "adam": lambda ps, lr: torch.optim.Adam(ps, lr=lr),
}
s = surfaces["rosenbrock"]
steps = 50
for rule, lr in s["lrs"].items():
    theta = torch.tensor(s["start"], requires_grad=True)
    opt = torch_optimisers[rule]([theta], lr)
    path_t = [theta.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        rosenbrock(theta).backward()
        opt.step()
        path_t.append(theta.detach().numpy().copy())
    path_t = np.array(path_t)
    path_c = paths["rosenbrock", rule][: steps + 1]
    first, whole = relative_error(path_c[1], path_t[1]), relative_error(path_c, path_t)
    print(f"{rule:9s} first step: cnnumpy {np.round(path_c[1], 6)} torch {np.round(path_t[1], 6)}"
          f"   error: step 1 {first:.1e}, {steps} steps {whole:.1e}")
    assert first < 1e-14 and whole < 1e-12

# Adam's first step is about lr along each coordinate, whatever the gradient's size
first_step = paths["rosenbrock", "adam"][1] - np.array(s["start"])
print("Adam's first step:", first_step, " gradient there:", rosenbrock_grad(np.array(s["start"])))
assert np.allclose(np.abs(first_step), s["lrs"]["adam"], rtol=1e-6)

# without the bias corrections, Adam's step would be this many times the corrected one
for t in (1, 10, 100, 1000, 10000):
    print(f"step {t:5d}: (1 - 0.9^t) / sqrt(1 - 0.999^t) = {(1 - 0.9**t) / np.sqrt(1 - 0.999**t):.2f}")

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
# # 7. Initialisation
#
# The weights must start random, or every unit of a layer computes the same thing and receives
# the same gradient forever. The question is the scale. Every layer multiplies the size of the
# signal going forward, and of the gradient going backward, by some factor; through 20 layers
# a factor of $\tfrac12$ becomes $10^{-6}$ and a factor of 2 becomes $10^{6}$. This tutorial
# derives the factor, lists the fillers Caffe offers (Xavier, MSRA and the plain ones), checks
# cnnumpy's fillers against their formulas and against `torch.nn.init`, and measures the
# variance of the activations layer by layer through a deep ReLU and a deep tanh network.

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import cnnumpy.functional as cf
from cnnumpy import init

torch.set_num_threads(1)  # small arrays: threads would cost more than they save
rng = np.random.default_rng(0)

# %% [markdown]
# ## One layer: the variance of a sum
#
# A unit of a fully connected layer computes $y = \sum_{k=1}^{n} w_k x_k$ from its $n$ inputs
# (its **fan-in**; for a convolution $n = C \cdot K_H \cdot K_W$). Let the weights be independent,
# with mean 0 and variance $\mathrm{Var}(w)$, and independent of the inputs. Each product has
# mean 0 and variance $\mathrm{Var}(w)\,\mathbb{E}[x^2]$, and the variances of independent terms
# add:
#
# $$\mathrm{Var}(y) = n\,\mathrm{Var}(w)\,\mathbb{E}[x^2].$$
#
# The input $x$ is the previous layer's output after its nonlinearity, $x = f(y_{\text{prev}})$.
#
# - **Linear, or tanh near 0**: $\mathbb{E}[x^2] \approx \mathrm{Var}(y_{\text{prev}})$. The
#   variance is kept when $n\,\mathrm{Var}(w) = 1$, i.e. $\mathrm{Var}(w) = 1/n_{\text{in}}$
#   (LeCun et al. 1998; Glorot and Bengio 2010).
# - **ReLU**: $y_{\text{prev}}$ is symmetric about 0, and ReLU zeroes the negative half, so
#   $\mathbb{E}[x^2] = \tfrac12 \mathrm{Var}(y_{\text{prev}})$. The variance is kept when
#   $\mathrm{Var}(w) = 2/n_{\text{in}}$ (He et al. 2015, "MSRA").
#
# Backward, the gradient with respect to the layer's input is $W^\top \delta$: each input sums
# over the $n_{\text{out}}$ units it feeds, so by the same argument the gradient's variance is
# multiplied by $n_{\text{out}}\,\mathrm{Var}(w)$ (times $\mathbb{E}[f'^2]$ for the
# nonlinearity). Keeping **that** needs $\mathrm{Var}(w) = 1/n_{\text{out}}$. When
# $n_{\text{in}} \neq n_{\text{out}}$ the two cannot both hold; Glorot and Bengio compromise with
# $\mathrm{Var}(w) = 2/(n_{\text{in}} + n_{\text{out}})$, the inverse of the average.
#
# ## Caffe's fillers
#
# | filler | distribution | $\mathrm{Var}(w)$ |
# | --- | --- | --- |
# | `constant(value)` | every weight $= $ value | 0 |
# | `gaussian(std)` | $N(0, \text{std}^2)$; AlexNet and Caffe's examples use std $= 0.01$ | $\text{std}^2$ |
# | `uniform(a, b)` | $U[a, b]$ | $(b - a)^2/12$ |
# | `xavier(variance_norm)` | $U[-\sqrt{3/n}, \sqrt{3/n}]$ | $1/n$ |
# | `msra(variance_norm)` | $N(0, 2/n)$ | $2/n$ |
#
# (A uniform $U[-a, a]$ has variance $a^2/3$, hence the $\sqrt{3/n}$.) `variance_norm` chooses
# $n$: `FAN_IN` ($n_{\text{in}}$, the default), `FAN_OUT` ($n_{\text{out}}$) or `AVERAGE`
# ($(n_{\text{in}} + n_{\text{out}})/2$, Glorot's compromise). Caffe counts the fans from the
# weight's shape $(F, C, K_H, K_W)$: $n_{\text{in}} = C K_H K_W$ and $n_{\text{out}} = F K_H K_W$.
# Caffe also has `positive_unitball` and `bilinear`, for special layers; `cnnumpy.init` has all
# of them.
#
# ## Each filler against its formula and against PyTorch
#
# For a conv weight of shape $(64, 32, 3, 3)$, so $n_{\text{in}} = 288$ and
# $n_{\text{out}} = 576$, we draw each filler and compare the sample variance with the formula.
# PyTorch has most of the same distributions under other names: `xavier` with `FAN_IN` is
# `kaiming_uniform_` with gain 1 (`nonlinearity="linear"`), `AVERAGE` is `xavier_uniform_`,
# `msra` is `kaiming_normal_` with `nonlinearity="relu"`, and `mode` selects the fan. Its random
# numbers differ from NumPy's, so we compare distributions: the variances, and for the uniform
# fillers the bound. With 18,432 samples a sample variance is within about 1% of the true one
# (its relative standard error is $\sqrt{2/N}$ for a normal, $\sqrt{0.8/N}$ for a uniform); the
# check allows 5%.

# %%
shape = (64, 32, 3, 3)
n_in, n_out = init.caffe_fan_in_and_fan_out(shape)
print(f"shape {shape}: fan_in = {n_in}, fan_out = {n_out}")
assert (n_in, n_out) == (32 * 9, 64 * 9)
n_of = {"FAN_IN": n_in, "FAN_OUT": n_out, "AVERAGE": (n_in + n_out) / 2}
tn = torch.nn.init


def torch_sample(fill):
    w = torch.empty(shape, dtype=torch.float64)
    fill(w)
    return w.numpy()


fillers = {  # name: (cnnumpy sample, predicted Var(w), bound of a uniform or None, torch sample)
    "gaussian std 0.01": (init.gaussian(shape, rng, std=0.01, dtype=np.float64), 1e-4, None,
                          torch_sample(lambda w: tn.normal_(w, std=0.01))),
    "uniform [-0.05, 0.05]": (init.uniform(shape, rng, -0.05, 0.05, dtype=np.float64),
                              0.1**2 / 12, 0.05,
                              torch_sample(lambda w: tn.uniform_(w, -0.05, 0.05))),
}
for norm, mode in (("FAN_IN", "fan_in"), ("FAN_OUT", "fan_out"), ("AVERAGE", None)):
    n = n_of[norm]
    fillers[f"xavier {norm}"] = (
        init.xavier(shape, rng, variance_norm=norm, dtype=np.float64), 1 / n, np.sqrt(3 / n),
        torch_sample(lambda w: tn.xavier_uniform_(w)) if mode is None else
        torch_sample(lambda w, m=mode: tn.kaiming_uniform_(w, mode=m, nonlinearity="linear")))
    fillers[f"msra {norm}"] = (
        init.msra(shape, rng, variance_norm=norm, dtype=np.float64), 2 / n, None,
        None if mode is None else
        torch_sample(lambda w, m=mode: tn.kaiming_normal_(w, mode=m, nonlinearity="relu")))

print(f"{'filler':22s} {'Var(w) formula':>14s} {'cnnumpy':>9s} {'torch':>9s}   bound: formula, "
      "max|w| cnnumpy, torch")
for name, (w, var, bound, wt) in fillers.items():
    line = f"{name:22s} {var:14.3e} {w.var() / var:9.3f}"
    assert abs(w.var() / var - 1) < 0.05 and abs(w.mean()) < 0.05 * np.sqrt(var)
    line += f" {wt.var() / var:9.3f}" if wt is not None else f" {'-':>9s}"
    if wt is not None:
        assert abs(wt.var() / var - 1) < 0.05
    if bound is not None:
        line += f"   {bound:.4f}, {np.abs(w).max():.4f}, {np.abs(wt).max():.4f}"
        assert bound * 0.999 < np.abs(w).max() <= bound and bound * 0.999 < np.abs(wt).max() <= bound
    print(line)
print("(the cnnumpy and torch columns are sample variance / formula)")

# %% [markdown]
# ## Fan-in keeps the forward pass, fan-out the backward pass
#
# A single fully connected layer from 128 inputs to 512 outputs shows the three choices of $n$
# at work. We send a batch of unit-variance inputs forward and a unit-variance gradient
# backward through cnnumpy's `linear_forward` and `linear_backward`, and measure how each
# variance changes. The derivation predicts the forward factor $n_{\text{in}}\mathrm{Var}(w)$
# and the backward factor $n_{\text{out}}\mathrm{Var}(w)$.

# %%
fan_in, fan_out = 128, 512
x = rng.standard_normal((2000, fan_in))
dy = rng.standard_normal((2000, fan_out))
print(f"{'xavier':8s} {'Var(w)':>9s} {'forward':>8s} {'predicted':>10s} {'backward':>9s} "
      f"{'predicted':>10s}")
for norm, n in (("FAN_IN", fan_in), ("FAN_OUT", fan_out), ("AVERAGE", (fan_in + fan_out) / 2)):
    w = init.xavier((fan_out, fan_in), rng, variance_norm=norm, dtype=np.float64)
    y, cache = cf.linear_forward(x, w)
    dx, _, _ = cf.linear_backward(dy, cache)
    forward, backward = y.var() / x.var(), dx.var() / dy.var()
    print(f"{norm:8s} {1 / n:9.2e} {forward:8.3f} {fan_in / n:10.3f} {backward:9.3f} "
          f"{fan_out / n:10.3f}")
    assert abs(forward / (fan_in / n) - 1) < 0.1 and abs(backward / (fan_out / n) - 1) < 0.1

# %% [markdown]
# `FAN_IN` keeps the signal and multiplies the gradient by 4, `FAN_OUT` the other way round,
# and `AVERAGE` is off by a factor 1.6 in both directions, which is the compromise. In the
# network below every hidden layer is square, $n_{\text{in}} = n_{\text{out}}$, and the three
# coincide.
#
# ## Through a deep network
#
# Now 20 fully connected layers of 256 units, fed a batch of 500 unit-variance inputs, with
# ReLU or tanh after every layer but the last; biases are 0. For each filler we record the
# variance of every layer's pre-activation $y_l$ (over the batch and the units), in float64
# because some of them go below float32's range. The prediction chains the one-layer formula,
# starting from the measured variance of layer 1:
#
# - ReLU: $\mathrm{Var}(y_{l+1}) = \tfrac12\, n\,\mathrm{Var}(w)\,\mathrm{Var}(y_l)$, a fixed
#   factor per layer: 1 for MSRA, $\tfrac12$ for Xavier, $\tfrac12 \cdot 256 \cdot 10^{-4} =
#   1/78$ for a Gaussian of std 0.01.
# - tanh: $\mathrm{Var}(y_{l+1}) = n\,\mathrm{Var}(w)\,\mathbb{E}[\tanh^2(z)]$ with
#   $z \sim N(0, \mathrm{Var}(y_l))$: a wide layer's pre-activations are close to Gaussian.
#   The expectation is a one-dimensional integral, computed with Gauss-Hermite quadrature. For
#   small variances $\tanh^2(z) \approx z^2$ and this is the linear formula; for large ones
#   $\tanh^2 \le 1$ caps it.

# %%
depth, width, batch = 20, 256, 500
x0 = rng.standard_normal((batch, width))
net_fillers = {
    "gaussian std 0.01": (lambda shape, r: init.gaussian(shape, r, std=0.01, dtype=np.float64),
                          1e-4 * width),
    "xavier (1/n)": (lambda shape, r: init.xavier(shape, r, dtype=np.float64), 1.0),
    "msra (2/n)": (lambda shape, r: init.msra(shape, r, dtype=np.float64), 2.0),
}
nodes, quad_weights = np.polynomial.hermite_e.hermegauss(80)  # for E[g(z)], z ~ N(0, 1)
quad_weights = quad_weights / quad_weights.sum()


def predicted(v1, gain, unit):
    """Variance of y_1..y_depth from Var(y_1), with gain = n Var(w)."""
    v = [v1]
    for _ in range(depth - 1):
        if unit == "relu":
            v.append(gain * v[-1] / 2)
        else:
            v.append(gain * np.sum(quad_weights * np.tanh(np.sqrt(v[-1]) * nodes) ** 2))
    return np.array(v)


units = {"relu": cf.relu_forward, "tanh": cf.tanh_forward}
measured, prediction = {}, {}
for unit, activation in units.items():
    for name, (filler, gain) in net_fillers.items():
        r = np.random.default_rng(1)  # the same draws for both units
        h, variances = x0, []
        for _ in range(depth):
            y, _ = cf.linear_forward(h, filler((width, width), r))
            variances.append(y.var())
            h, _ = activation(y)
        measured[unit, name] = np.array(variances)
        prediction[unit, name] = predicted(variances[0], gain, unit)

fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
layers = np.arange(1, depth + 1)
for ax, unit in zip(axes, units, strict=False):
    for name in net_fillers:
        (line,) = ax.semilogy(layers, measured[unit, name], "o", ms=4, label=f"{name}, measured")
        ax.semilogy(layers, prediction[unit, name], "--", color=line.get_color(), lw=1,
                    label=f"{name}, predicted")
    ax.set(title=f"{unit}: variance of each layer's pre-activation", xlabel="layer $l$",
           ylabel="Var($y_l$)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
for i, name in enumerate(net_fillers):  # tanh again, without the collapsing filler, linear axis
    if i > 0:
        axes[2].plot(layers, measured["tanh", name], "o", ms=4, color=f"C{i}",
                     label=f"{name}, measured")
        axes[2].plot(layers, prediction["tanh", name], "--", lw=1, color=f"C{i}",
                     label=f"{name}, predicted")
axes[2].plot(layers[1:], 1 / (2 * layers[1:]), ":", color="k", lw=1, label="$1/(2l)$")
axes[2].set(title="tanh, linear scale", xlabel="layer $l$", ylabel="Var($y_l$)")
axes[2].grid(alpha=0.3)
axes[2].legend(fontsize=7)
plt.tight_layout()
plt.show()

print(f"{'':5s} {'filler':18s} {'Var(y_1)':>9s} {'Var(y_20)':>10s} {'predicted':>10s}")
for (unit, name), v in measured.items():
    p = prediction[unit, name]
    print(f"{unit:5s} {name:18s} {v[0]:9.3f} {v[-1]:10.2e} {p[-1]:10.2e}")
    # the chained prediction holds within a factor 3 after 20 layers (it ignores the finite width)
    assert 1 / 3 < v[-1] / p[-1] < 3

# %% [markdown]
# **ReLU.** MSRA keeps the variance level through all 20 layers. Xavier halves it at every
# layer, $2^{-19} \approx 2 \times 10^{-6}$ in all; the Gaussian of std 0.01 loses a factor 78
# per layer and ends near $10^{-37}$, a signal that any bias would drown (tutorial 4 measured
# what such factors do to the gradients). The measured points follow the straight lines of the
# prediction. MSRA's end up within a factor 2 of it, not exactly on it: with 256 units each
# layer's factor is a random number close to 1, not 1, and 20 of them compound.
#
# **tanh.** Near 0, tanh is the identity, so the Gaussian filler collapses exactly as with a
# linear net ($256 \cdot 10^{-4}$ per layer). Xavier's factor 1 is the right one for the linear
# part, but tanh bends below the identity: for small $v$,
# $\mathbb{E}[\tanh^2 z] \approx v - 2v^2$, so $1/v$ grows by 2 per layer and the variance decays
# like $1/(2l)$, polynomially rather than geometrically (right panel). MSRA's factor 2 would make
# a linear net explode; tanh saturates instead, and the variance settles where
# $v = 2\,\mathbb{E}[\tanh^2(z)]$. The Gaussian-integral prediction captures all three.
#
# The same measurement on MNIST images, with a short training run for each filler, is
# `cnnumpy experiment init --dataset mnist --data-dir DIR --seed 0`; its results are in
# `docs/experiments/init.json`:

# %%
here = [Path.cwd(), *Path.cwd().parents, Path(cf.__file__).resolve().parents[2]]
root = next(d for d in here if (d / "docs" / "experiments").is_dir())
mnist = json.loads((root / "docs" / "experiments" / "init.json").read_text())
cfg = mnist["config"]
print(f"MNIST, {cfg['depth']} ReLU layers of {cfg['width']}, batch {cfg['batch']}, "
      f"seed {cfg['seed']}")
for name in ("xavier", "msra", "gaussian"):
    v, p = mnist["variance"][name], mnist["predicted"][name]
    print(f"  {name:8s} Var(w) = {cfg['weight_variance'][name]:24s} Var(y_20)/Var(y_1) "
          f"measured {v[-1] / v[0]:.1e}, predicted {p[-1] / p[0]:.1e}; test accuracy after "
          f"{cfg['epochs']} epochs {mnist['training'][name]['test_acc']:.1%}")

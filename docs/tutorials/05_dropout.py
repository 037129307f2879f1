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
# # 5. Dropout
#
# Dropout (Hinton et al. 2012; Srivastava et al. 2014) zeroes each unit of a layer at random
# during training, a fresh choice for every example and every step, so that no unit can rely
# on particular others being present. At test time nothing is dropped. The whole subject is
# the bookkeeping that makes the two phases agree: a unit that was present only part of the
# time in training must not suddenly deliver more at test time. There are two ways to do it,
# and two opposite meanings of the letter $p$.

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import cnnumpy.functional as cf
from cnnumpy.functional.dropout import DropoutCache
from cnnumpy.inspect import numerical_gradient_array, relative_error

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)  # tiny arrays: threads would cost more than they save
rng = np.random.default_rng(0)

# %% [markdown]
# ## Keep-probability or drop-probability?
#
# Write $q$ for the probability of **keeping** a unit. Each unit $i$ gets a mask
# $m_i \sim \mathrm{Bernoulli}(q)$, independent of all others.
#
# | where | the letter | means | $q$ |
# | --- | --- | --- | --- |
# | Srivastava et al. (2014); CS231n's notes and assignments (`dropout_param['p']`) | $p$ | probability of keeping | $p$ |
# | PyTorch's `F.dropout(x, p)`, `nn.Dropout(p)`; cnnumpy | $p$ | probability of dropping | $1 - p$ |
#
# cnnumpy follows PyTorch: `dropout_forward(x, p=0.2)` drops 20% of the units. CS231n's
# `{'p': 0.8}` is the same layer, so porting code from one convention to the other means
# writing $p \to 1 - p$. Mixing them up is silent: the layer still runs, it just keeps 20%
# instead of 80%.

# %%
x_big = np.ones((1000, 1000))
for p in (0.2, 0.8):
    out, cache = cf.dropout_forward(x_big, p=p, rng=np.random.default_rng(1))
    print(f"cnnumpy p = {p}: fraction of units kept {cache.mask.mean():.4f} (expected {1 - p:.1f})")
    assert abs(cache.mask.mean() - (1 - p)) < 0.005

# %% [markdown]
# ## Two ways to match training and testing
#
# The mask makes the training output random. Its expectation, entry by entry, is
# $\mathbb{E}[m_i x_i] = q\,x_i$: on average a unit delivers only a fraction $q$ of its value.
# The test-time output should equal this average, so one of the two phases has to be scaled.
#
# **Original dropout**, also called classic dropout (Hinton et al. 2012; the form in the papers
# and in AlexNet), leaves training alone and scales at test time:
#
# $$\text{train: } y = m \odot x, \qquad \text{test: } y = q\,x.$$
#
# **Inverted dropout** (PyTorch's, CS231n's, cnnumpy's default) scales at training time so
# that the test-time pass is the identity:
#
# $$\text{train: } y = \frac{m \odot x}{q}, \qquad \text{test: } y = x.$$
#
# In both, the expected training output equals the test output:
# $\mathbb{E}[m \odot x] = q\,x$ and $\mathbb{E}[m \odot x / q] = x$. Inverted dropout is
# preferred because the deployed network does not need to know dropout was ever used; cnnumpy
# has both (`inverted=True` or `False`).
#
# To see the equality numerically, take a vector of six values, draw $K = 40\,000$ masks at
# once (the same vector repeated in $K$ rows), and average the training outputs over the masks.
# Each entry of the average has standard error
# $\mathrm{sd}(m_i x_i)/\sqrt{K} = |x_i|\sqrt{q(1-q)/K}$ for the original form (divide by $q$ for
# inverted); the check asks for agreement to within 5 standard errors.

# %%
p = 0.5  # drop-probability, as in cnnumpy and PyTorch
q = 1 - p
K = 40_000
x = rng.standard_normal(6)
rows = np.tile(x, (K, 1))

print(f"{'form':9s} {'x':10s}" + "".join(f"{v:9.4f}" for v in x))
averages = {}
for inverted in (False, True):
    form = "inverted" if inverted else "original"
    train, _ = cf.dropout_forward(rows, p=p, rng=np.random.default_rng(2), inverted=inverted)
    test, _ = cf.dropout_forward(x, p=p, training=False, inverted=inverted)
    average = train.mean(axis=0)
    stderr = np.abs(x) * np.sqrt(q * (1 - q) / K) / (q if inverted else 1)
    averages[form] = (train, test)
    print(f"{form:9s} {'mean of K':10s}" + "".join(f"{v:9.4f}" for v in average))
    print(f"{'':9s} {'test pass':10s}" + "".join(f"{v:9.4f}" for v in test))
    print(f"{'':9s} {'z-score':10s}" + "".join(f"{v:9.2f}" for v in (average - test) / stderr))
    assert np.all(np.abs(average - test) < 5 * stderr)

assert np.allclose(averages["original"][1], q * x) and np.array_equal(averages["inverted"][1], x)

# %% [markdown]
# The running average over the first $k$ masks, for one unit, settles on the test-time value in
# both forms, with fluctuations that shrink like $1/\sqrt{k}$. Both forms were given a generator
# with the same seed, so they drew the same masks: the inverted outputs are exactly the original
# ones divided by $q$ (hence the identical z-scores above), fluctuations included.

# %%
unit = int(np.argmax(np.abs(x)))  # the largest entry, for a readable scale
k = np.arange(1, K + 1)
fig, ax = plt.subplots(figsize=(7, 3.5))
for form, (train, test) in averages.items():
    (line,) = ax.semilogx(k, np.cumsum(train[:, unit]) / k, label=f"{form}: mean of first k masks")
    ax.axhline(test[unit], color=line.get_color(), ls="--", lw=1, label=f"{form}: test pass")
ax.set(xlabel="number of masks k", ylabel=f"output of unit {unit}",
       title=f"x = {x[unit]:.3f}, p = {p} (drop)")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The backward pass
#
# With the mask fixed, dropout is linear in $x$: $y = s\, m \odot x$ with $s = 1/q$ (inverted)
# or $s = 1$ (original). So
#
# $$\frac{\partial L}{\partial x} = s\, m \odot \frac{\partial L}{\partial y},$$
#
# with **the same mask** as the forward: a dropped unit gets no gradient, a kept one gets the
# upstream gradient times $s$. The cache holds the mask. At test time the layer is the constant
# scaling $y = q x$ or $y = x$, and the gradient is scaled the same way.
#
# For the numerical check the forward must draw the same mask on every call, so each call
# gets a generator created with the same seed.

# %%
xs = rng.standard_normal((4, 5))
dout = rng.standard_normal(xs.shape)
for inverted in (True, False):
    for training in (True, False):

        def forward(a, inverted=inverted, training=training):
            return cf.dropout_forward(a, p=0.3, training=training,
                                      rng=np.random.default_rng(3), inverted=inverted)

        out, cache = forward(xs)
        dx = cf.dropout_backward(dout, cache)
        dx_num = numerical_gradient_array(lambda f=forward: f(xs)[0], xs, dout)
        err = relative_error(dx, dx_num)
        name = ("inverted" if inverted else "original") + (", train" if training else ", test")
        print(f"{name:16s} dx vs numerical {err:.1e}")
        assert err < 1e-8

# %% [markdown]
# ## A network trained one way is a network of the other kind
#
# Dropout is usually followed by a linear layer. Take the original form with weights $W$, and
# the inverted form with weights $qW$. With the same mask in training,
# $qW\,(m \odot x)/q = W(m \odot x)$; at test time $qW x = W(q x)$. The two networks compute the
# same function in both phases: an original-dropout network is an inverted one whose next
# weights are multiplied by $q$. (This is what "scale the weights at test time" means in the
# original paper.) With cnnumpy's kernels:

# %%
W = rng.standard_normal((3, 6))
p_drop = 0.3
x_batch = rng.standard_normal((8, 6))
scores = {}
for inverted, weight in ((False, W), (True, (1 - p_drop) * W)):
    for training in (True, False):
        h, _ = cf.dropout_forward(x_batch, p=p_drop, training=training,
                                  rng=np.random.default_rng(4), inverted=inverted)
        scores[inverted, training] = cf.linear_forward(h, weight)[0]
for training in (True, False):
    err = relative_error(scores[False, training], scores[True, training])
    print(f"{'train' if training else 'test '}: original with W vs inverted with qW: {err:.1e}")
    assert err < 1e-14

# %% [markdown]
# The same experiment on a trained MNIST network, with 10,000 test images, is part of
# `cnnumpy experiment dropout --dataset mnist --data-dir DIR --seed 0`; it wrote
# `docs/experiments/dropout.json`, read here:

# %%
here = [Path.cwd(), *Path.cwd().parents, Path(cf.__file__).resolve().parents[2]]
root = next(d for d in here if (d / "docs" / "experiments").is_dir())
measured = json.loads((root / "docs" / "experiments" / "dropout.json").read_text())
eq = measured["equivalence"]
print(f"p = {measured['config']['p']}, hidden {measured['config']['hidden']}")
print(f"max |score difference|, eval mode, 10,000 test images: {eq['eval_max_abs_diff']} "
      f"(scores up to {eq['max_abs_score']:.1f})")
print(f"max |score difference|, training mode, same masks:     {eq['train_mode_max_abs_diff']}")
print(f"same predictions as the average softmax over "
      f"{measured['config']['mc_samples']} masks: {eq['monte_carlo']['agreement']:.2%}")

# %% [markdown]
# The last line is about something the equality above does **not** promise. The expectation
# argument is exact for the first linear layer after dropout. A network puts nonlinearities
# after it, and $\mathbb{E}[f(W(m \odot x)/q)] \neq f(W x)$ in general. The test-time pass is
# then an approximation of the average over masks (the "weight scaling inference rule"), good
# enough that the predictions agree on 99% of the images above. With one ReLU after the linear
# layer:

# %%
rows = np.tile(x_batch[:1], (K, 1))
h, _ = cf.dropout_forward(rows, p=p_drop, rng=np.random.default_rng(5))
z, _ = cf.linear_forward(h, W)
lin_avg, relu_avg = z.mean(axis=0), np.maximum(z, 0).mean(axis=0)
lin_test = cf.linear_forward(x_batch[:1], W)[0][0]
stderr = z.std(axis=0) / np.sqrt(K)
print("linear: mean over masks", np.round(lin_avg, 3), " test pass", np.round(lin_test, 3))
print("ReLU:   mean over masks", np.round(relu_avg, 3), " test pass",
      np.round(np.maximum(lin_test, 0), 3))
assert np.all(np.abs(lin_avg - lin_test) < 5 * stderr)  # exact in expectation
assert np.max(np.abs(relu_avg - np.maximum(lin_test, 0))) > 10 * stderr.max()  # not after a ReLU

# %% [markdown]
# ## PyTorch
#
# PyTorch's `F.dropout(x, p, training=True)` is inverted dropout with $p$ the drop-probability.
# We cannot share its random numbers, so we check what must hold for any mask: every output
# entry is either exactly 0 or the input times $1/(1-p)$; the fraction kept is $1-p$ up to
# binomial error; the average over many calls tends to $x$; evaluation is the identity. Then,
# given the mask PyTorch drew, its gradient must be cnnumpy's `dropout_backward` with that
# mask and the scale $1/(1-p)$.

# %%
torch.manual_seed(0)
p = 0.3
xt = torch.tensor(rng.standard_normal((2000, 50)), requires_grad=True)
yt = F.dropout(xt, p=p, training=True)
kept = (yt != 0).detach().numpy()
x_np, y_np = xt.detach().numpy(), yt.detach().numpy()

scale_err = relative_error(y_np[kept], x_np[kept] / (1 - p))
kept_fraction = kept.mean()
kept_stderr = np.sqrt(p * (1 - p) / kept.size)
print(f"kept entries = x / (1 - p): relative error {scale_err:.1e}")
print(f"fraction kept {kept_fraction:.4f}, expected {1 - p} (standard error {kept_stderr:.4f})")
assert scale_err < 1e-15 and abs(kept_fraction - (1 - p)) < 5 * kept_stderr

# the expectation: the mean over 20,000 masks of one row
x_row = torch.tensor(rng.standard_normal(6))
mean_t = F.dropout(x_row.repeat(20_000, 1), p=p, training=True).mean(0)  # 20,000 masks
stderr = x_row.abs() * np.sqrt(p / (1 - p) / 20_000)  # sd of m x / q is |x| sqrt((1-q)/q)
print("torch, mean of 20,000 masks", np.round(mean_t.numpy(), 4))
print("x                          ", np.round(x_row.numpy(), 4))
assert torch.all((mean_t - x_row).abs() < 5 * stderr)
assert torch.equal(F.dropout(x_row, p=p, training=False), x_row)  # eval: the identity

# backward, with PyTorch's own mask in cnnumpy's kernel
dout = rng.standard_normal(x_np.shape)
yt.backward(torch.tensor(dout))
dx = cf.dropout_backward(dout, DropoutCache(kept, 1 / (1 - p)))
err = relative_error(dx, xt.grad.numpy())
print(f"dx: cnnumpy with PyTorch's mask vs PyTorch {err:.1e}")
assert err < 1e-15

# %% [markdown]
# ## Summary
#
# - Dropout keeps each unit with probability $q$; original dropout multiplies by $q$ at test
#   time, inverted dropout divides by $q$ in training. Both make the test-time output the
#   expectation of the training output at the layer itself.
# - CS231n's and Srivastava's $p$ is $q$; PyTorch's and cnnumpy's $p$ is $1 - q$.
# - The backward multiplies the upstream gradient by the forward's mask and scale.
# - A network with original dropout is the inverted network with the next weights scaled by
#   $q$; through the nonlinearities that follow, the test pass only approximates the average
#   over masks.

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
# # 6. Batch normalisation
#
# Batch normalisation (Ioffe and Szegedy, 2015) standardises every feature over the
# mini-batch, then lets the network rescale it with two learnt parameters. The forward pass is
# four lines. The backward pass is the best exercise in backpropagation there is: the mean and
# the variance depend on every example in the batch, so each output depends on each input of
# its column, and the gradient has to flow through the statistics too.
#
# This tutorial derives the backward twice: node by node on the computational graph, then
# simplified to a compact formula. Both are checked against central differences, against
# cnnumpy's two kernels (`batch_norm_*_naive`, the graph; `batch_norm_*`, the compact form)
# and against PyTorch. Then come the running statistics that replace the batch's at test time,
# and the spatial version used after convolutions.

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import cnnumpy.functional as cf
from cnnumpy.inspect import numerical_gradient, numerical_gradient_array, relative_error

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)  # tiny arrays: threads would cost more than they save
rng = np.random.default_rng(0)

# %% [markdown]
# ## The forward pass: four steps
#
# Take a batch $x \in \mathbb{R}^{m \times D}$: $m$ examples, $D$ features. Each feature
# (column) $j$ is normalised on its own, with its own parameters $\gamma_j$ and $\beta_j$:
#
# $$\mu_j = \frac1m \sum_{i=1}^m x_{ij} \qquad\text{(mean)}$$
#
# $$\sigma^2_j = \frac1m \sum_{i=1}^m (x_{ij} - \mu_j)^2 \qquad\text{(variance, divided by } m)$$
#
# $$\hat x_{ij} = \frac{x_{ij} - \mu_j}{\sqrt{\sigma^2_j + \epsilon}} \qquad\text{(normalise)}$$
#
# $$y_{ij} = \gamma_j\, \hat x_{ij} + \beta_j \qquad\text{(scale and shift)}$$
#
# $\epsilon = 10^{-5}$ keeps the division finite for a constant column. After the third step
# every column has mean 0 and variance $\sigma^2/(\sigma^2+\epsilon) \approx 1$; the fourth lets
# the network undo the normalisation if that is what the loss wants
# ($\gamma = \sqrt{\sigma^2 + \epsilon}$, $\beta = \mu$ restores $x$).

# %%
m, D, eps = 8, 4, 1e-5
x = rng.normal(loc=[1.0, -3.0, 0.0, 10.0], scale=[0.5, 2.0, 1.0, 4.0], size=(m, D))
gamma = rng.normal(1.0, 0.3, D)
beta = rng.normal(0.0, 0.3, D)

mu = x.mean(axis=0)
var = ((x - mu) ** 2).mean(axis=0)
xhat = (x - mu) / np.sqrt(var + eps)
y = gamma * xhat + beta
print("column means of xhat    ", np.abs(np.round(xhat.mean(axis=0), 12)))
print("column variances of xhat", np.round(xhat.var(axis=0), 6))

y_naive, cache_naive, _, _ = cf.batch_norm_forward_naive(x, gamma, beta, None, None, training=True)
y_fast, cache_fast, _, _ = cf.batch_norm_forward(x, gamma, beta, None, None, training=True)
y_torch = F.batch_norm(torch.tensor(x), None, None, torch.tensor(gamma), torch.tensor(beta),
                       training=True, eps=eps).numpy()
for name, other in (("naive", y_naive), ("fast", y_fast), ("torch", y_torch)):
    err = relative_error(y, other)
    print(f"four steps vs {name:5s} kernel: {err:.1e}")
    assert err < 1e-14

# %% [markdown]
# ## The backward pass on the computational graph
#
# Break the forward into nodes that each do one elementary thing (this is exactly how
# `batch_norm_forward_naive` computes it), and name the upstream gradient
# $\texttt{dout} = \partial L/\partial y$:
#
# | node | forward | local rule for the backward |
# | --- | --- | --- |
# | 1 | `mu = sum(x) / m` | `dx += dmu / m` (to every row) |
# | 2 | `xmu = x - mu` | `dx += dxmu`, `dmu = -sum(dxmu)` |
# | 3 | `sq = xmu**2` | `dxmu += 2 * xmu * dsq` |
# | 4 | `var = sum(sq) / m` | `dsq = dvar / m` (to every row) |
# | 5 | `sqrtvar = sqrt(var + eps)` | `dvar = dsqrtvar / (2 * sqrtvar)` |
# | 6 | `ivar = 1 / sqrtvar` | `dsqrtvar = -divar / sqrtvar**2` |
# | 7 | `xhat = xmu * ivar` | `dxmu = dxhat * ivar`, `divar = sum(dxhat * xmu)` |
# | 8 | `gammax = gamma * xhat` | `dxhat = dgammax * gamma`, `dgamma = sum(dgammax * xhat)` |
# | 9 | `out = gammax + beta` | `dgammax = dout`, `dbeta = sum(dout)` |
#
# Two rules of the graph do all the work. A node used in several places (`xmu` feeds both
# `sq` and `xhat`; `x` feeds `mu` and `xmu`) **adds** the gradients that come back along each
# use. A per-column quantity broadcast to every row in the forward (`mu`, `ivar`, `gamma`)
# **sums** its gradient over the rows in the backward, and a sum over rows in the forward
# (nodes 1 and 4) **copies** its gradient to every row. Walking the table from the bottom up:

# %%
dout = rng.standard_normal((m, D))

# forward, one node per line
mu = x.sum(axis=0) / m                      # 1
xmu = x - mu                                # 2
sq = xmu**2                                 # 3
var = sq.sum(axis=0) / m                    # 4
sqrtvar = np.sqrt(var + eps)                # 5
ivar = 1 / sqrtvar                          # 6
xhat = xmu * ivar                           # 7
gammax = gamma * xhat                       # 8
out = gammax + beta                         # 9

# backward, from node 9 down to node 1
dbeta = dout.sum(axis=0)                    # 9
dgammax = dout
dgamma = (dgammax * xhat).sum(axis=0)       # 8
dxhat = dgammax * gamma
divar = (dxhat * xmu).sum(axis=0)           # 7: ivar is broadcast over rows, so sum
dxmu = dxhat * ivar                         #    first use of xmu
dsqrtvar = -divar / sqrtvar**2              # 6
dvar = dsqrtvar / (2 * sqrtvar)             # 5
dsq = np.ones((m, D)) * dvar / m            # 4: a sum over rows, so copy to every row
dxmu = dxmu + 2 * xmu * dsq                 # 3: second use of xmu, added to the first
dx = dxmu.copy()                            # 2: x's first use
dmu = -dxmu.sum(axis=0)                     #    mu is broadcast over rows, so sum
dx = dx + np.ones((m, D)) * dmu / m         # 1: x's second use, added
dx_graph = dx

# %% [markdown]
# Each intermediate gradient can be checked on its own. Treat a node as an input, recompute
# everything after it from there with the rest held fixed, and differentiate numerically.
# Here that is done for `var` (node 4's output: it reaches the loss only through `xhat`),
# for `mu` (which reaches it through `xmu` both directly and via the variance), and for the
# final `dx`; the parameters' gradients too.

# %%
def graph(x, gamma, beta, mu=None, var=None):
    """Batch norm's output, with the option of imposing the mean or the variance."""
    mu = x.mean(axis=0) if mu is None else mu
    var = ((x - mu) ** 2).mean(axis=0) if var is None else var
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


def num(f, a):
    return numerical_gradient_array(f, a, dout)


mu0, var0 = x.mean(axis=0), x.var(axis=0)
checks = {
    "dvar": (dvar, num(lambda: graph(x, gamma, beta, var=var0), var0)),
    "dmu": (dmu, num(lambda: graph(x, gamma, beta, mu=mu0), mu0)),
    "dx": (dx_graph, num(lambda: graph(x, gamma, beta), x)),
    "dgamma": (dgamma, num(lambda: graph(x, gamma, beta), gamma)),
    "dbeta": (dbeta, num(lambda: graph(x, gamma, beta), beta)),
}
for name, (analytic, numeric) in checks.items():
    err = relative_error(analytic, numeric)
    print(f"{name:7s} graph vs numerical {err:.1e}")
    assert err < 1e-7

dx_naive, dgamma_naive, dbeta_naive = cf.batch_norm_backward_naive(dout, cache_naive)
err = max(relative_error(dx_graph, dx_naive), relative_error(dgamma, dgamma_naive),
          relative_error(dbeta, dbeta_naive))
print(f"graph above vs cnnumpy's naive kernel: {err:.1e}")
assert err < 1e-14

# %% [markdown]
# ## Simplifying to a compact formula
#
# The graph is easy to get right but makes many passes over the data. Differentiating the four
# formulas directly gives one expression. Fix a column, write $s = (\sigma^2 + \epsilon)^{-1/2}$
# and $g_k = \gamma\, \texttt{dout}_k$ for the gradient arriving at $\hat x_k$. Then
#
# $$\frac{\partial \mu}{\partial x_i} = \frac1m, \qquad
# \frac{\partial \sigma^2}{\partial x_i} = \frac2m (x_i - \mu)
# - \underbrace{\frac2{m^2}\sum_k (x_k - \mu)}_{=\,0} = \frac2m (x_i - \mu),$$
#
# $$\frac{\partial s}{\partial x_i} = -\tfrac12 (\sigma^2 + \epsilon)^{-3/2}
# \frac{\partial \sigma^2}{\partial x_i} = -\frac{s^3 (x_i - \mu)}{m},$$
#
# and by the product rule on $\hat x_k = (x_k - \mu)\, s$,
#
# $$\frac{\partial \hat x_k}{\partial x_i}
# = s\Bigl(\delta_{ki} - \frac1m\Bigr) - (x_k - \mu)\frac{s^3 (x_i - \mu)}{m}
# = s\Bigl(\delta_{ki} - \frac1m - \frac{\hat x_k \hat x_i}{m}\Bigr).$$
#
# Summing over the outputs, $\partial L/\partial x_i = \sum_k g_k\, \partial \hat x_k/\partial x_i$:
#
# $$\boxed{\frac{\partial L}{\partial x_i} = \frac{\gamma\, s}{m}\Bigl(m\,\texttt{dout}_i
# - \sum_k \texttt{dout}_k - \hat x_i \sum_k \texttt{dout}_k\, \hat x_k\Bigr)}
# \qquad \frac{\partial L}{\partial \gamma} = \sum_k \texttt{dout}_k\, \hat x_k, \qquad
# \frac{\partial L}{\partial \beta} = \sum_k \texttt{dout}_k.$$
#
# Read it as a projection: the upstream gradient, scaled by $\gamma s$, minus its mean and minus
# its component along $\hat x$. Those are the two directions batch norm cannot see: adding a
# constant to a column of $x$ leaves $\hat x$ unchanged, and so does scaling it, up to
# $\epsilon$. So $\sum_i \partial L/\partial x_i = 0$ exactly, and, using $\sum_i \hat x_i = 0$
# and $\sum_i \hat x_i^2 = m\,\sigma^2/(\sigma^2+\epsilon)$,
# $\sum_i \hat x_i\, \partial L/\partial x_i = \gamma s\,\frac{\epsilon}{\sigma^2+\epsilon}
# \sum_k \texttt{dout}_k \hat x_k$: zero but for $\epsilon$ (largest in the column with the
# smallest variance). cnnumpy's fast kernel `batch_norm_backward` computes this formula.

# %%
dx_compact = (gamma / (m * sqrtvar)) * (
    m * dout - dout.sum(axis=0) - xhat * (dout * xhat).sum(axis=0)
)

dx_fast, dgamma_fast, dbeta_fast = cf.batch_norm_backward(dout, cache_fast)
xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps).backward(torch.tensor(dout))

for name, other in (("graph", dx_graph), ("numerical", checks["dx"][1]),
                    ("fast kernel", dx_fast), ("torch", xt.grad.numpy())):
    err = relative_error(dx_compact, other)
    print(f"dx compact vs {name:11s} {err:.1e}")
    assert err < (1e-7 if name == "numerical" else 1e-13)
err = max(relative_error(dgamma, gt.grad.numpy()), relative_error(dbeta, bt.grad.numpy()),
          relative_error(dgamma, dgamma_fast), relative_error(dbeta, dbeta_fast))
print(f"dgamma, dbeta vs torch and the fast kernel: {err:.1e}")
assert err < 1e-13
print("column sums of dx:       ", dx_compact.sum(axis=0))
print("column sums of dx * xhat:", (dx_compact * xhat).sum(axis=0))
print("predicted from epsilon:  ", gamma / sqrtvar * eps / (var + eps) * (dout * xhat).sum(axis=0))
assert np.allclose(dx_compact.sum(axis=0), 0, atol=1e-12)
assert np.allclose((dx_compact * xhat).sum(axis=0),
                   gamma / sqrtvar * eps / (var + eps) * (dout * xhat).sum(axis=0), atol=1e-13)

# %% [markdown]
# ## Running statistics: training against evaluation
#
# At test time a prediction must not depend on which other examples share its batch, and a
# single example has no variance. So, during training, batch norm keeps exponential moving
# averages of the statistics, and evaluation normalises with those instead:
#
# $$\hat\mu \leftarrow (1 - \alpha)\,\hat\mu + \alpha\,\mu_B, \qquad
# \hat\sigma^2 \leftarrow (1 - \alpha)\,\hat\sigma^2 + \alpha\,\frac{m}{m-1}\,\sigma^2_B,$$
#
# $$\text{eval: } y = \gamma\,\frac{x - \hat\mu}{\sqrt{\hat\sigma^2 + \epsilon}} + \beta.$$
#
# Two details are PyTorch's, and cnnumpy follows them:
#
# - `momentum` $= \alpha = 0.1$ is the weight of the **new** batch. CS231n's `momentum = 0.9`
#   is the weight of the old average: the same update, the other way round (and CS231n
#   stores the biased variance).
# - The normalisation uses the biased $\sigma^2_B$ (divided by $m$), but the running average
#   stores the unbiased $\frac{m}{m-1}\sigma^2_B$ (divided by $m-1$), the estimate of the
#   population's variance that does not shrink with the batch size.
#
# Below, 300 batches of $m = 4$ examples of 200 features come from a distribution with known
# means and variances. cnnumpy's kernel and `torch.nn.BatchNorm1d` are fed the same batches and
# must keep the same running statistics at every step. With batches this small the difference the
# unbiased estimate makes is large: the average of the biased variance would settle at
# $\frac{m-1}{m} = 75\%$ of the true variance.

# %%
D_run, m_small, steps = 200, 4, 300
true_mean, true_std = rng.normal(0, 2, D_run), rng.uniform(0.5, 2.0, D_run)
bn_torch = torch.nn.BatchNorm1d(D_run, momentum=0.1, eps=eps)
w, b = rng.normal(1, 0.2, D_run), rng.normal(0, 0.2, D_run)
with torch.no_grad():
    bn_torch.weight.copy_(torch.tensor(w))
    bn_torch.bias.copy_(torch.tensor(b))
running_mean, running_var = np.zeros(D_run), np.ones(D_run)  # the initial values, as in PyTorch
biased_var = np.ones(D_run)  # what the average would be with the biased variance
history = []
worst = 0.0
for _ in range(steps):
    xb = rng.normal(true_mean, true_std, size=(m_small, D_run))
    biased_var = 0.9 * biased_var + 0.1 * xb.var(axis=0)
    out, _, running_mean, running_var = cf.batch_norm_forward(
        xb, w, b, running_mean, running_var, training=True, momentum=0.1, eps=eps)
    out_t = bn_torch(torch.tensor(xb))
    worst = max(worst, relative_error(out, out_t.detach().numpy()),
                relative_error(running_mean, bn_torch.running_mean.numpy()),
                relative_error(running_var, bn_torch.running_var.numpy()))
    # the ratio to the true variance, averaged over the features
    history.append((np.mean(running_var / true_std**2), np.mean(biased_var / true_std**2)))
print(f"worst disagreement with torch over {steps} steps (outputs, running mean and var): "
      f"{worst:.1e}")
assert worst < 1e-12

history = np.array(history)
tail = history[steps // 2:].mean(axis=0)  # the second half, after the start is forgotten
print(f"running var / true var, mean over features and steps {steps // 2}-{steps}: "
      f"unbiased {tail[0]:.3f}, biased {tail[1]:.3f} (m-1)/m = {(m_small - 1) / m_small}")
assert abs(tail[0] - 1) < 0.05 and abs(tail[1] - 0.75) < 0.05

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(history[:, 0], label="running variance (unbiased batch variance), as stored")
ax.plot(history[:, 1], ls="--", label="the same average of the biased batch variance")
ax.axhline(1, color="k", lw=0.8)
ax.axhline((m_small - 1) / m_small, color="k", lw=0.8, ls=":")
ax.set(xlabel="training step", ylabel="running / true variance",
       title=f"mean over {D_run} features, batches of m = {m_small}, momentum 0.1", ylim=(0, 2))
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# In evaluation mode the statistics are constants, so the backward loses both correction terms
# and becomes a per-feature scaling, $\partial L/\partial x = \gamma\,\texttt{dout} /
# \sqrt{\hat\sigma^2 + \epsilon}$. And while a training-mode output depends on the rest of its
# batch, an evaluation-mode output does not:

# %%
xe = rng.normal(true_mean, true_std, size=(5, D_run))
de = rng.standard_normal(xe.shape)
out_e, cache_e, _, _ = cf.batch_norm_forward(xe, w, b, running_mean, running_var, training=False)
dx_e, dw_e, db_e = cf.batch_norm_backward(de, cache_e)
bn_torch.eval()
xt = torch.tensor(xe, requires_grad=True)
bn_torch.zero_grad()
bn_torch(xt).backward(torch.tensor(de))
dx_num = numerical_gradient_array(
    lambda: cf.batch_norm_forward(xe, w, b, running_mean, running_var, training=False)[0], xe, de)
errors = {
    "out vs torch": relative_error(out_e, bn_torch(torch.tensor(xe)).detach().numpy()),
    "dx vs numerical": relative_error(dx_e, dx_num),
    "dx vs torch": relative_error(dx_e, xt.grad.numpy()),
    "dx vs gamma*dout/std": relative_error(dx_e, w * de / np.sqrt(running_var + eps)),
    "dgamma vs torch": relative_error(dw_e, bn_torch.weight.grad.numpy()),
}
for name, err in errors.items():
    print(f"eval mode, {name:21s} {err:.1e}")
    assert err < (1e-8 if name == "dx vs numerical" else 1e-13)

other = np.vstack([xe[:1], rng.normal(true_mean, true_std, size=(4, D_run))])  # row 0, new batch
for training in (True, False):
    a = cf.batch_norm_forward(xe, w, b, running_mean, running_var, training=training)[0][0]
    c = cf.batch_norm_forward(other, w, b, running_mean, running_var, training=training)[0][0]
    print(f"{'train' if training else 'eval '} mode, the same example in two batches: "
          f"{np.round(a[:3], 4)} vs {np.round(c[:3], 4)} (first 3 features)")
    assert np.array_equal(a, c) == (not training)

# %% [markdown]
# ## Spatial batch normalisation
#
# After a convolution, $x$ is $(N, C, H, W)$, and a channel's filter is applied at every
# position. So the statistics are taken per channel over the batch **and** the positions,
# $m = N H W$ values each, with one $\gamma_c$, $\beta_c$ per channel. That is the 2-D batch norm
# of a reshaped array: move the channels last and stack all positions as rows,
# $(N, C, H, W) \to (N, H, W, C) \to (NHW, C)$, normalise the columns, and fold back. The
# gradient comes back the same way. cnnumpy's `spatial_batch_norm_forward_naive` does exactly
# this; the fast kernel works on the $(N, C, HW)$ layout directly without copying.

# %%
N, C, H, W = 3, 4, 5, 5
x4 = rng.normal(2.0, 3.0, size=(N, C, H, W))
d4 = rng.standard_normal(x4.shape)
g4, b4 = rng.normal(1, 0.2, C), rng.normal(0, 0.2, C)


def to_rows(a):
    return a.transpose(0, 2, 3, 1).reshape(N * H * W, C)


def from_rows(a):
    return a.reshape(N, H, W, C).transpose(0, 3, 1, 2)


out_rows, cache_rows, _, _ = cf.batch_norm_forward(to_rows(x4), g4, b4, None, None, training=True)
dx_rows, dg_rows, db_rows = cf.batch_norm_backward(to_rows(d4), cache_rows)
out_reshaped, dx_reshaped = from_rows(out_rows), from_rows(dx_rows)

out_s, cache_s, _, _ = cf.spatial_batch_norm_forward(x4, g4, b4, None, None, training=True)
dx_s, dg_s, db_s = cf.spatial_batch_norm_backward(d4, cache_s)
out_n, cache_n, _, _ = cf.spatial_batch_norm_forward_naive(x4, g4, b4, None, None, training=True)
dx_n, _, _ = cf.spatial_batch_norm_backward_naive(d4, cache_n)
xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x4, g4, b4))
out_t = F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
out_t.backward(torch.tensor(d4))
dx_num = numerical_gradient(
    lambda: float(np.sum(cf.spatial_batch_norm_forward(x4, g4, b4, None, None,
                                                       training=True)[0] * d4)), x4)

errors = {
    "out: reshaped vs fast": relative_error(out_reshaped, out_s),
    "out: naive vs fast": relative_error(out_n, out_s),
    "out: torch vs fast": relative_error(out_t.detach().numpy(), out_s),
    "dx: reshaped vs fast": relative_error(dx_reshaped, dx_s),
    "dx: naive vs fast": relative_error(dx_n, dx_s),
    "dx: torch vs fast": relative_error(xt.grad.numpy(), dx_s),
    "dx: numerical vs fast": relative_error(dx_num, dx_s),
    "dgamma: torch vs fast": relative_error(gt.grad.numpy(), dg_s),
    "dbeta: torch vs fast": relative_error(bt.grad.numpy(), db_s),
    "dgamma: reshaped vs fast": relative_error(dg_rows, dg_s),
}
for name, err in errors.items():
    print(f"{name:25s} {err:.1e}")
    assert err < (1e-7 if "numerical" in name else 1e-13)
print("per-channel mean and variance of the normalised output:",
      np.round(((out_s - b4[:, None, None]) / g4[:, None, None]).mean(axis=(0, 2, 3)), 12),
      np.round(((out_s - b4[:, None, None]) / g4[:, None, None]).var(axis=(0, 2, 3)), 6))

# %% [markdown]
# ## What it buys
#
# `cnnumpy experiment batchnorm --dataset mnist --data-dir DIR --seed 0` trains an 8-layer
# fully connected ReLU net for 5 epochs at four learning rates, with and without batch norm
# after each hidden layer (same initial weights and batches); its results are in
# `docs/experiments/batchnorm.json`, read here:

# %%
here = [Path.cwd(), *Path.cwd().parents, Path(cf.__file__).resolve().parents[2]]
root = next(d for d in here if (d / "docs" / "experiments").is_dir())
measured = json.loads((root / "docs" / "experiments" / "batchnorm.json").read_text())
lrs = measured["config"]["lrs"]
fig, ax = plt.subplots(figsize=(6, 3.5))
for arm, label in (("plain", "no batch norm"), ("bn", "batch norm")):
    acc = [measured["runs"][arm][str(lr)]["val_acc"][-1] for lr in lrs]
    ax.semilogx(lrs, acc, "o-", label=label)
    print(f"{label:14s} validation accuracy after {measured['config']['epochs']} epochs: "
          + ", ".join(f"lr {lr:g}: {a:.1%}" for lr, a in zip(lrs, acc, strict=True)))
ax.set(xlabel="learning rate (SGD, momentum 0.9)", ylabel="validation accuracy",
       title=f"{measured['config']['depth']} hidden layers of {measured['config']['width']}, "
       "MNIST, seed 0")
ax.grid(alpha=0.3)
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Without batch norm this initialisation shrinks the signal at every layer and the net barely
# leaves chance except at one learning rate; with it, every rate from $10^{-3}$ to $10^{-1}$
# trains. The experiments page gives the three seeds and the discussion.

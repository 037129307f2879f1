# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Convolution backward
#
# The backward pass of a layer receives $\partial L / \partial \mathrm{out}$, the gradient of
# the loss with respect to the layer's output (`dout`, of the output's shape), and returns the
# gradients with respect to its input and its parameters. For the convolution of
# [tutorial 1](01_conv_forward.py),
#
# $$
# \mathrm{out}[n, f, i, j] = b_f + \sum_{c, p, q} w[f, c, p, q]\; x_P[n, c,\; iS + p,\; jS + q],
# $$
#
# every output is a sum of products, so the chain rule gives each gradient as a sum over the
# outputs that an input, a weight or a bias took part in:
#
# $$
# \frac{\partial L}{\partial \theta} = \sum_{n, f, i, j}
#     \mathrm{dout}[n, f, i, j]\; \frac{\partial\, \mathrm{out}[n, f, i, j]}{\partial \theta}.
# $$
#
# This page works out the three gradients, shows that each is itself a convolution, and checks
# them against the library's backward, numerical gradients and PyTorch's autograd.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import cnnumpy.functional as cnf
from cnnumpy.inspect import numerical_gradient_array, relative_error

np.set_printoptions(precision=3, suppress=True, linewidth=110)
rng = np.random.default_rng(0)

# %% [markdown]
# ## The bias: a sum of dout
#
# $\partial\, \mathrm{out}[n, f, i, j] / \partial b_{f'}$ is 1 when $f = f'$ and 0 otherwise,
# so the bias gradient adds up `dout` over everything but the filter axis:
#
# $$ \mathrm{db}_f = \sum_{n, i, j} \mathrm{dout}[n, f, i, j]. $$
#
# ## The weights: a correlation of the input with dout
#
# $\partial\, \mathrm{out}[n, f, i, j] / \partial w[f, c, p, q] = x_P[n, c, iS + p, jS + q]$, so
#
# $$
# \mathrm{dw}[f, c, p, q] = \sum_{n, i, j} \mathrm{dout}[n, f, i, j]\;
#     x_P[n, c,\; iS + p,\; jS + q].
# $$
#
# Read with $(p, q)$ as the output position and $(i, j)$ as the summation index, this is the
# forward formula again: the padded input cross-correlated with `dout`, which plays the role of
# the kernel (at stride $S$, a kernel whose taps are $S$ apart). In im2col terms it is the
# product of `dout` with the forward's column matrix, $\mathrm{dw} = \mathrm{dout}_{F \times
# NH'W'}\; \mathrm{cols}^\top$, which is how cnnumpy computes it.
#
# ## The input: a full convolution with the flipped kernel
#
# Input pixel $x_P[n, c, y, x]$ is read by output $(i, j)$ through tap $(p, q)$ whenever
# $y = iS + p$ and $x = jS + q$. Summing over those:
#
# $$
# \mathrm{dx}_P[n, c, y, x] = \sum_{f, p, q} w[f, c, p, q]\;
#     \mathrm{dout}\!\left[n, f, \tfrac{y - p}{S}, \tfrac{x - q}{S}\right],
# $$
#
# over the taps for which $(y - p)/S$ and $(x - q)/S$ are whole and inside `dout`. At stride 1
# this is $\sum_{p, q} w[p, q]\, \mathrm{dout}[y - p, x - q]$: a true convolution (the kernel
# index runs against the image index), and over every position where the kernel and `dout`
# overlap at all, which is a *full* convolution, of size $H' + K - 1 = H + 2P$. A convolution
# is a correlation with the kernel rotated by 180 degrees, so: pad `dout` with $K - 1$ zeros on
# each side and correlate it with the rotated kernel, then cut the padding $P$ off. At stride
# $S > 1$, first spread `dout` out with $S - 1$ zeros between its entries.
#
# ## The classic worked example
#
# A $3 \times 3$ `dout` of ones, fully convolved with the kernel holding $1, \dots, 9$: each
# entry of the $5 \times 5$ result is the sum of the kernel entries that overlap the ones when
# the kernel sits at that offset. The top-left corner sees only $1$; one step right, $1 + 2 =
# 3$; then $1 + 2 + 3 = 6$, $2 + 3 = 5$ and $3$. The first row is $1, 3, 6, 5, 3$, and the
# centre, where the whole kernel overlaps, is $1 + \dots + 9 = 45$.
#
# Here it is computed three ways: by the loop of the formula, as the correlation of the padded
# `dout` with the rotated kernel, and by `conv2d_backward` for a $5 \times 5$ input (no padding,
# stride 1), whose output is $3 \times 3$.

# %%
kernel = np.arange(1, 10, dtype=np.float64).reshape(3, 3)
ones = np.ones((3, 3))


def full_convolution(d: np.ndarray, k: np.ndarray) -> np.ndarray:
    """result[y, x] = sum over (p, q) of k[p, q] * d[y - p, x - q], wherever d is defined."""
    kh, kw = k.shape
    result = np.zeros((d.shape[0] + kh - 1, d.shape[1] + kw - 1))
    for i in range(d.shape[0]):
        for j in range(d.shape[1]):
            # dout[i, j] reached result[i + p, j + q] through k[p, q]: add k, scaled, there.
            result[i : i + kh, j : j + kw] += d[i, j] * k
    return result


by_loops = full_convolution(ones, kernel)
# The numbers worked out by hand above.
assert by_loops[0].tolist() == [1, 3, 6, 5, 3] and by_loops[2, 2] == 45
padded = np.pad(ones, 2)
rotated = kernel[::-1, ::-1]
by_correlation, _ = cnf.conv2d_forward(padded[None, None], rotated[None, None])
_, cache = cnf.conv2d_forward(np.zeros((1, 1, 5, 5)), kernel[None, None])
by_backward, _, _ = cnf.conv2d_backward(ones[None, None], cache)

print("full convolution of ones(3, 3) with 1..9, by loops:\n", by_loops)
print("rotated kernel:\n", rotated)
print("max difference, correlation with the rotated kernel:",
      np.abs(by_correlation[0, 0] - by_loops).max())
print("max difference, conv2d_backward:                    ",
      np.abs(by_backward[0, 0] - by_loops).max())

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 3, figsize=(9, 3.2), width_ratios=[7, 3, 5])
panels = [(padded, "dout = ones(3, 3), padded by K - 1 = 2"),
          (rotated, "kernel rotated 180°"),
          (by_loops, "dx: the 5x5 full convolution")]
for ax, (values, title) in zip(axes, panels, strict=True):
    ax.imshow(values, cmap="Blues", vmin=0, vmax=values.max() * 1.6)
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=10)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
axes[0].add_patch(plt.Rectangle((-0.5, -0.5), 3, 3, fill=False, ec="tab:red", lw=2))
axes[2].add_patch(plt.Rectangle((-0.5, -0.5), 1, 1, fill=False, ec="tab:red", lw=2))
fig.tight_layout()
plt.show()

# %% [markdown]
# The red window shows the first output: the rotated kernel over the padded corner overlaps a
# single one, under the kernel's 1.
#
# ## The three gradients, written with the forward kernel
#
# Each gradient is a convolution, so the forward kernel can compute all three. On a random
# layer with stride 1 and padding 1 (the stride-2 case follows below):

# %%
x = rng.standard_normal((2, 3, 6, 7))
w = rng.standard_normal((4, 3, 3, 3))
b = rng.standard_normal(4)
out, cache = cnf.conv2d_forward(x, w, b, padding=1)
dout = rng.standard_normal(out.shape)
dx, dw, db = cnf.conv2d_backward(dout, cache)

# db: sum over batch and positions.
db_sum = dout.sum(axis=(0, 2, 3))
# dw: correlate the padded input (channels as the batch) with dout (images as channels).
xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
dw_corr, _ = cnf.conv2d_forward(xp.transpose(1, 0, 2, 3), dout.transpose(1, 0, 2, 3))
dw_corr = dw_corr.transpose(1, 0, 2, 3)
# dx: pad dout by K - 1, correlate with the rotated kernel (input and output channels
# swapped), cut the padding P = 1 off.
w_rot = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
dxp, _ = cnf.conv2d_forward(np.pad(dout, ((0, 0), (0, 0), (2, 2), (2, 2))), w_rot)
dx_corr = dxp[:, :, 1:-1, 1:-1]

for name, mine, library in [("db", db_sum, db), ("dw", dw_corr, dw), ("dx", dx_corr, dx)]:
    error = relative_error(mine, library)
    print(f"{name}: shape {str(library.shape):14} relative error {error:.1e}")

# %% [markdown]
# ### Stride 2: spread dout out first
#
# At stride 2 an output moves two input pixels per step, so before the full correlation `dout`
# gets a zero between each pair of its entries (it is "dilated by the stride"). If the stride
# does not divide $H + 2P - K$, the last rows of the input were never read: their gradient is
# zero, and the spread-out `dout` is padded with a few more zeros at the end to reach them.

# %%
x = rng.standard_normal((2, 3, 8, 7))
out, cache = cnf.conv2d_forward(x, w, b, stride=2, padding=1)
dout = rng.standard_normal(out.shape)
dx, dw, db = cnf.conv2d_backward(dout, cache)

spread = np.zeros((2, 4, 2 * out.shape[2] - 1, 2 * out.shape[3] - 1))
spread[:, :, ::2, ::2] = dout
print("dout[0, 0]:\n", dout[0, 0])
print("spread out by the stride:\n", spread[0, 0])

padded_h, padded_w = 8 + 2, 7 + 2
extra_h = padded_h - (spread.shape[2] + 2)  # rows no window reached
extra_w = padded_w - (spread.shape[3] + 2)
spread = np.pad(spread, ((0, 0), (0, 0), (2, 2 + extra_h), (2, 2 + extra_w)))
dxp, _ = cnf.conv2d_forward(spread, w_rot)
print("dx by spreading, relative error:", f"{relative_error(dxp[:, :, 1:-1, 1:-1], dx):.1e}")

# %% [markdown]
# ## Checked numerically
#
# A numerical gradient needs no derivation: nudge one entry by $\pm h$, run the forward, and
# take $(L(\theta + h) - L(\theta - h)) / 2h$ with $L = \sum \mathrm{out} \cdot
# \mathrm{dout}$, whose gradient is exactly what a backward given `dout` returns.
# `cnnumpy.inspect.numerical_gradient_array` does this entry by entry in float64
# ([tutorial 13](13_gradient_checking.py) explains why it works and when it does not). On an
# awkward case, stride 2, padding 1, odd sizes, and also for the loop reference:

# %%
x = rng.standard_normal((2, 3, 7, 6))
w = rng.standard_normal((4, 3, 3, 3))
b = rng.standard_normal(4)
settings = {"stride": 2, "padding": 1}
out, cache = cnf.conv2d_forward(x, w, b, **settings)
dout = rng.standard_normal(out.shape)
dx, dw, db = cnf.conv2d_backward(dout, cache)
_, naive_cache = cnf.conv2d_forward_naive(x, w, b, **settings)
naive_grads = cnf.conv2d_backward_naive(dout, naive_cache)


def forward() -> np.ndarray:
    return cnf.conv2d_forward(x, w, b, **settings)[0]


numeric = {name: numerical_gradient_array(forward, array, dout)
           for name, array in [("dx", x), ("dw", w), ("db", b)]}
print(f"{'':4}{'fast vs numerical':>20}{'naive vs numerical':>20}")
for k, name in enumerate(["dx", "dw", "db"]):
    analytic = (dx, dw, db)[k]
    print(f"{name:4}{relative_error(analytic, numeric[name]):>20.1e}"
          f"{relative_error(naive_grads[k], numeric[name]):>20.1e}")

# %% [markdown]
# Errors around $10^{-10}$ in float64 mean the derivation is right: a wrong one is off by
# order 1.
#
# ## Checked against PyTorch
#
# PyTorch's autograd differentiates its own `conv2d`, which knows nothing of the derivation
# above. Given the same `dout` as the output's gradient:

# %%
xt = torch.tensor(x, requires_grad=True)
wt = torch.tensor(w, requires_grad=True)
bt = torch.tensor(b, requires_grad=True)
torch.nn.functional.conv2d(xt, wt, bt, **settings).backward(torch.from_numpy(dout))
for name, mine, theirs in [("dx", dx, xt.grad), ("dw", dw, wt.grad), ("db", db, bt.grad)]:
    print(f"{name}: max |cnnumpy - PyTorch| = {np.abs(mine - theirs.numpy()).max():.1e}")

# %% [markdown]
# Next: [pooling](03_pooling.py), whose backward routes the gradient instead of summing it.

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
# # 3. Pooling
#
# A pooling layer summarises each window of each channel by one number: its maximum or its
# mean. It has no weights (LeNet-5's subsampling, at the end of this page, has two per
# channel), keeps the channels apart, and shrinks the image: with a $K \times K$ window and
# stride $S$, the output size is the convolution's, $H' = 1 + \lfloor (H + 2P - K) / S
# \rfloor$. Window $(i, j)$ covers rows $iS \dots iS + K - 1$ and columns $jS \dots jS + K - 1$:
#
# $$
# \mathrm{max:}\ \ \mathrm{out}[n, c, i, j] = \max_{p, q < K}\, x[n, c, iS + p, jS + q],
# \qquad
# \mathrm{average:}\ \ \mathrm{out}[n, c, i, j] = \frac{1}{K^2} \sum_{p, q < K}
#     x[n, c, iS + p, jS + q].
# $$

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import cnnumpy.functional as cnf
from cnnumpy import nn
from cnnumpy.inspect import numerical_gradient_array, relative_error

np.set_printoptions(precision=3, suppress=True, linewidth=110)
rng = np.random.default_rng(0)

# %% [markdown]
# ## Max pooling, forward
#
# On a $4 \times 4$ image holding the numbers $0 \dots 15$ in a random order (all different,
# which matters for the backward), $2 \times 2$ windows at stride 2 tile the image into four
# blocks, and each output is its block's largest number:

# %%
x = rng.permutation(16).astype(np.float64).reshape(1, 1, 4, 4)
out, cache = cnf.max_pool2d_forward(x, kernel_size=2, stride=2)
print("x:\n", x[0, 0])
print("max pool 2x2 / 2:\n", out[0, 0])

# %% [markdown]
# ## Max pooling, backward: the gradient goes to the maximum
#
# Within a window, the output equals one input, the maximum, and does not depend on the
# others (as long as the maximum is unique, a small change of any element leaves it the
# maximum and leaves the others below it). So
#
# $$
# \frac{\partial\, \mathrm{out}[n, c, i, j]}{\partial x[n, c, y, x]} =
# \begin{cases} 1 & (y, x) \text{ is the position of the window's maximum,} \\
#               0 & \text{otherwise,} \end{cases}
# $$
#
# and the backward routes each window's `dout` to the position its maximum came from and gives
# every other element zero. The forward only needs to remember where each maximum was:
# cnnumpy's cache keeps the position in the window as one byte per window, not the input.

# %%
dout = np.array([[[[10.0, 20.0], [30.0, 40.0]]]])
dx = cnf.max_pool2d_backward(dout, cache)
print("dout:\n", dout[0, 0])
print("dx: dout at each block's maximum, zero elsewhere\n", dx[0, 0])

# %% [markdown]
# On a random batch, checked against the loop reference (`max_pool2d_forward_naive`), numerical
# gradients and PyTorch. The input is a shuffled arithmetic sequence: values at least
# $0.01$ apart, far more than the $h = 10^{-6}$ of the numerical gradient, so no nudge can
# change which element is the maximum.

# %%
def tie_free(shape: tuple[int, ...], gap: float = 0.01) -> np.ndarray:
    """Distinct values gap apart, shuffled: every window has one clear maximum."""
    values = rng.permutation(int(np.prod(shape))) * gap
    return (values - values.mean()).reshape(shape)


def check_pooling(forward, backward, forward_naive, torch_op, x: np.ndarray, **settings) -> None:
    """Print how a pooling kernel's output and dx compare with the loop reference, numerical
    gradients and PyTorch's op (all in float64, on one random dout)."""
    out, cache = forward(x, **settings)
    dout = rng.standard_normal(out.shape)
    dx = backward(dout, cache)
    out_naive, _ = forward_naive(x, **settings)
    numeric = numerical_gradient_array(lambda: forward(x, **settings)[0], x, dout)
    xt = torch.tensor(x, requires_grad=True)
    out_torch = torch_op(xt, **settings)
    out_torch.backward(torch.from_numpy(dout))
    print(f"  output {out.shape}: max |fast - naive| = {np.abs(out - out_naive).max():.1e},"
          f" max |fast - PyTorch| = {np.abs(out - out_torch.detach().numpy()).max():.1e}")
    print(f"  dx: relative error vs numerical {relative_error(dx, numeric):.1e},"
          f" max |fast - PyTorch| = {np.abs(dx - xt.grad.numpy()).max():.1e}")


print("max pool 2x2 / 2 on (2, 3, 8, 8):")
check_pooling(cnf.max_pool2d_forward, cnf.max_pool2d_backward, cnf.max_pool2d_forward_naive,
              torch.nn.functional.max_pool2d, tie_free((2, 3, 8, 8)), kernel_size=2, stride=2)

# %% [markdown]
# ### Why tie-free inputs
#
# At a tie the maximum has no derivative: nudging one of two equal maxima up raises the output,
# nudging it down leaves the output at the other one. A centred difference averages the two
# one-sided slopes, $1$ and $0$, and reports $0.5$ for each tied element, while the backward,
# like PyTorch's, gives the whole gradient to the first maximum in row-major order. Neither is
# wrong; they answer different questions. A gradient check on an input with ties therefore
# fails for a correct backward, which is why cnnumpy's tests draw tie-free inputs:

# %%
tied = np.array([[[[1.0, 5.0], [5.0, 2.0]]]])  # two maxima in one window
out, cache = cnf.max_pool2d_forward(tied, kernel_size=2)
print("analytic dx:\n", cnf.max_pool2d_backward(np.ones_like(out), cache)[0, 0])
print("numerical dx:\n", numerical_gradient_array(
    lambda: cnf.max_pool2d_forward(tied, kernel_size=2)[0], tied, np.ones_like(out))[0, 0])

# %% [markdown]
# ## Average pooling
#
# Every element of a window enters its mean with weight $1 / K^2$, so each element receives
# `dout` divided by $K^2$ from every window it belongs to:
#
# $$
# \frac{\partial L}{\partial x[n, c, y, x]} =
#     \sum_{(i, j) \ni (y, x)} \frac{\mathrm{dout}[n, c, i, j]}{K^2}.
# $$
#
# There is no kink, so any input will do for the check.

# %%
out, cache = cnf.avg_pool2d_forward(x, kernel_size=2, stride=2)
print("average pool 2x2 / 2:\n", out[0, 0])
print("dx for the dout above: each block shares its dout equally\n",
      cnf.avg_pool2d_backward(dout, cache)[0, 0])
print("avg pool 2x2 / 2 on (2, 3, 8, 8):")
check_pooling(cnf.avg_pool2d_forward, cnf.avg_pool2d_backward, cnf.avg_pool2d_forward_naive,
              torch.nn.functional.avg_pool2d, rng.standard_normal((2, 3, 8, 8)),
              kernel_size=2, stride=2)

# %% [markdown]
# What the two keep of an image, on a synthetic $28 \times 28$ picture of one-pixel strokes:
# max pooling keeps a stroke at full strength if it touches the window at all; average pooling
# spreads it over the window, so a straight line (two of the four pixels) comes out at half its
# value and a diagonal step that clips one pixel at a quarter.

# %%
canvas = np.zeros((28, 28))
canvas[4:24, 6] = 1.0                                            # a vertical stroke
canvas[np.arange(4, 24), np.arange(8, 28)] = 1.0                 # a diagonal one
canvas[20, 2:26] = 1.0                                           # a horizontal one
image = canvas[None, None]
pooled = {
    "input 28x28": canvas,
    "max pool 2x2 / 2": cnf.max_pool2d_forward(image, kernel_size=2)[0][0, 0],
    "average pool 2x2 / 2": cnf.avg_pool2d_forward(image, kernel_size=2)[0][0, 0],
}

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 3, figsize=(8, 2.9))
for ax, (title, values) in zip(axes, pooled.items(), strict=True):
    ax.imshow(values, cmap="Greys", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Overlapping pooling: 3x3 windows at stride 2
#
# AlexNet pooled $3 \times 3$ windows at stride 2 and reported a slightly lower error than
# with $2 \times 2$ windows at stride 2. The windows now overlap by one row and one column, so
# an element can be the maximum of up to four windows, and then its gradient is the *sum* of
# their `dout`s: the chain rule adds over every output an input took part in. In the
# $5 \times 5$ example below the largest value sits at the centre, in all four windows:

# %%
x = tie_free((1, 1, 5, 5), gap=1.0)
x[0, 0, 2, 2] = 100.0  # the maximum of every window
out, cache = cnf.max_pool2d_forward(x, kernel_size=3, stride=2)
dout = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
dx = cnf.max_pool2d_backward(dout, cache)
print("output size 1 + (5 - 3) // 2 =", out.shape[-1])
print("out:\n", out[0, 0])
print("dx: the centre collects 1 + 2 + 3 + 4\n", dx[0, 0])
print("max pool 3x3 / 2 on (2, 3, 9, 9):")
check_pooling(cnf.max_pool2d_forward, cnf.max_pool2d_backward, cnf.max_pool2d_forward_naive,
              torch.nn.functional.max_pool2d, tie_free((2, 3, 9, 9)), kernel_size=3, stride=2)

# %% [markdown]
# ## LeNet-5's trainable subsampling
#
# LeNet-5 (1998) predates max pooling. Its S2 and S4 layers add up each $2 \times 2$ window,
# multiply the sum by a trainable coefficient and add a trainable bias, one pair per channel,
# before a squashing function (a separate layer in cnnumpy):
#
# $$
# \mathrm{out}[n, c, i, j] = a_c\, s[n, c, i, j] + b_c, \qquad
# s[n, c, i, j] = \sum_{p, q < K} x[n, c, iK + p, jK + q].
# $$
#
# With $a_c = 1/K^2$ and $b_c = 0$ it is average pooling. Its gradients follow from the
# product rule:
#
# $$
# \frac{\partial L}{\partial a_c} = \sum_{n, i, j} \mathrm{dout}[n, c, i, j]\, s[n, c, i, j],
# \qquad
# \frac{\partial L}{\partial b_c} = \sum_{n, i, j} \mathrm{dout}[n, c, i, j],
# \qquad
# \frac{\partial L}{\partial x[n, c, y, x]} = a_c\, \mathrm{dout}[n, c, i, j]
# $$
#
# for the window $(i, j)$ that holds $(y, x)$. `nn.Subsampling` is the layer (the forward keeps
# the window sums $s$ for the backward):

# %%
layer = nn.Subsampling(3, kernel_size=2, rng=np.random.default_rng(0), dtype=np.float64)
print(layer, " coefficients a:", layer.weight.data, " biases b:", layer.bias.data)
x = rng.standard_normal((2, 3, 6, 6))
out = layer(x)
dout = rng.standard_normal(out.shape)
layer.zero_grad()
dx = layer.backward(dout)

window_sums = x.reshape(2, 3, 3, 2, 3, 2).sum(axis=(3, 5))
by_hand = layer.weight.data[:, None, None] * window_sums + layer.bias.data[:, None, None]
print("max |layer - a * window sum + b| =", np.abs(out - by_hand).max())

# %% [markdown]
# Checked numerically, and against PyTorch, which has no such layer but builds it from average
# pooling: the window sum is $K^2$ times the window mean.

# %%
def forward() -> np.ndarray:
    return cnf.subsampling_forward(x, layer.weight.data, layer.bias.data, kernel_size=2)[0]


numeric = {
    "dx": numerical_gradient_array(forward, x, dout),
    "da": numerical_gradient_array(forward, layer.weight.data, dout),
    "db": numerical_gradient_array(forward, layer.bias.data, dout),
}
xt = torch.tensor(x, requires_grad=True)
at = torch.tensor(layer.weight.data, requires_grad=True)
bt = torch.tensor(layer.bias.data, requires_grad=True)
out_torch = 4 * torch.nn.functional.avg_pool2d(xt, 2) * at[:, None, None] + bt[:, None, None]
out_torch.backward(torch.from_numpy(dout))
theirs = {"dx": xt.grad, "da": at.grad, "db": bt.grad}
ours = {"dx": dx, "da": layer.weight.grad, "db": layer.bias.grad}
print(f"output: max |cnnumpy - PyTorch| = {np.abs(out - out_torch.detach().numpy()).max():.1e}")
for name in ours:
    print(f"{name}: relative error vs numerical {relative_error(ours[name], numeric[name]):.1e},"
          f" max |cnnumpy - PyTorch| = {np.abs(ours[name] - theirs[name].numpy()).max():.1e}")

# %% [markdown]
# Next: [activations](04_activations.py), the non-linearities between these layers.

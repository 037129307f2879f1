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
# # 8. Transposed and dilated convolution
#
# A convolution is a linear map of its input, so it *is* a matrix. Writing that matrix down
# explains the two variants this tutorial is about:
#
# - the **transposed convolution** (also called "deconvolution" or "fractionally strided
#   convolution") is the map given by the transpose of that matrix. It is what the backward
#   pass of every convolution already computes, and what decoders and segmentation networks use
#   to go from a small map to a large one;
# - the **dilated convolution** spreads the kernel's taps apart, so a few layers see a large
#   part of the image without pooling.
#
# Everything below runs on cnnumpy's kernels (`cnnumpy.functional`) and is checked against
# PyTorch and against numerical gradients.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as TF

import cnnumpy as cn
from cnnumpy import functional as F
from cnnumpy.inspect import numerical_gradient_array, relative_error

rng = np.random.default_rng(0)


def t(a):
    """A float64 NumPy array as a torch tensor (shared memory)."""
    return torch.from_numpy(np.ascontiguousarray(a))


# %% [markdown]
# ## Convolution as a matrix, in 1-D
#
# Take a signal $x \in \mathbb{R}^5$ and a kernel $w = (w_0, w_1, w_2)$. Without padding and
# with stride 1, the convolution (a cross-correlation, as in every deep-learning library) is
#
# $$y_i = \sum_{k=0}^{2} w_k\, x_{i+k}, \qquad i = 0, 1, 2.$$
#
# Each output is a dot product of $w$ with a window of $x$, so stacking the three windows gives
# $y = C x$ with a banded $3 \times 5$ matrix:
#
# $$C = \begin{pmatrix} w_0 & w_1 & w_2 & 0 & 0 \\ 0 & w_0 & w_1 & w_2 & 0 \\
# 0 & 0 & w_0 & w_1 & w_2 \end{pmatrix}.$$
#
# The same numbers appear on every row, shifted by one: that is weight sharing. Here it is in
# code, compared with cnnumpy's `conv2d_forward` on a $1 \times 5$ image.

# %%
w1 = np.array([1.0, 2.0, 3.0])
x1 = rng.standard_normal(5)

C1 = np.zeros((3, 5))
for i in range(3):
    C1[i, i : i + 3] = w1
print(C1)

y_conv, _ = F.conv2d_forward(x1.reshape(1, 1, 1, 5), w1.reshape(1, 1, 1, 3))
err = relative_error(C1 @ x1, y_conv.ravel())
print(f"C @ x vs conv2d_forward: relative error {err:.1e}")
assert err < 1e-14

# %% [markdown]
# ## Convolution as a matrix, in 2-D
#
# In 2-D the image is flattened row by row into a vector. For a $4 \times 4$ input and a
# $3 \times 3$ kernel the output is $2 \times 2$, so $C$ is $4 \times 16$. There is no need to
# work out where each weight goes: since the map is linear, column $j$ of $C$ is the output for
# the $j$-th basis image $e_j$ (a single 1 at pixel $j$). We build $C$ that way, then check it
# against the explicit placement $C[(i, j), (i + u, j + v)] = w[u, v]$.


# %%
def conv_matrix(h, w_in, weight, **hyper):
    """The matrix of ``x -> conv2d(x, weight, **hyper)`` for one-channel (h, w_in) images, built
    one column (one basis image) at a time."""
    cols = []
    for j in range(h * w_in):
        e = np.zeros(h * w_in)
        e[j] = 1.0
        out, _ = F.conv2d_forward(e.reshape(1, 1, h, w_in), weight, **hyper)
        cols.append(out.ravel())
    return np.stack(cols, axis=1)


w2 = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # weights 1..9, easy to spot in the matrix
C2 = conv_matrix(4, 4, w2)

explicit = np.zeros((4, 16))
for i in range(2):
    for j in range(2):
        for u in range(3):
            for v in range(3):
                explicit[i * 2 + j, (i + u) * 4 + (j + v)] = w2[0, 0, u, v]
assert np.array_equal(C2, explicit)
print(C2.astype(int))

# %% [markdown]
# Of its 64 entries only 36 are non-zero (9 weights per row), and the same 9 numbers fill every
# row. A convolution is a very sparse matrix with tied entries; a fully connected layer is the
# dense matrix with no ties. With stride 2 and padding 1 on a $5 \times 5$ input, the output is
# $3 \times 3$ and the rows jump by two pixels:

# %%
C_s2 = conv_matrix(5, 5, w2, stride=2, padding=1)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [16, 25]})
for ax, M, title in [(axes[0], C2, "4x4 input, stride 1: C is 4 x 16"),
                     (axes[1], C_s2, "5x5 input, stride 2, padding 1: C is 9 x 25")]:
    ax.imshow(np.where(M == 0, np.nan, M), cmap="viridis", vmin=1, vmax=9)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("input pixel")
    ax.set_ylabel("output pixel")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The transposed convolution is $C^\top$
#
# $C$ maps the large image to the small one. Its transpose $C^\top$ goes the other way, from
# $\mathbb{R}^{4}$ to $\mathbb{R}^{16}$: each input value $y_i$ is multiplied by the kernel and
# *added* onto the window that produced $y_i$. This is the transposed convolution:
#
# $$z = C^\top y, \qquad z_{p+u,\,q+v} \mathrel{+}= w_{u,v}\, y_{p,q}.$$
#
# The convolution *gathers* a window into one pixel, its transpose *scatters* one pixel onto a
# window. Two properties pin it down, and we check both with cnnumpy's
# `conv_transpose2d_forward`, using the same weight array as the convolution:
#
# 1. **It is the adjoint**: for every $x$ and $y$, $\langle Cx, y\rangle = \langle x,
#    C^\top y\rangle$.
# 2. **It is the backward of the convolution**: for $y = Cx$ and a loss $L$,
#    $\partial L / \partial x = C^\top\, \partial L / \partial y$. So `conv2d_backward`'s `dx`
#    must equal the transposed convolution of `dout`.
#
# With several channels, a conv weight $(F, C, k, k)$ maps $C$ channels to $F$; read by
# `conv_transpose2d` (whose layout is input channels first, as in PyTorch) the same array maps
# $F$ channels back to $C$. We use 2 and 3 channels, stride 2 and padding 1.

# %%
hyper = dict(stride=2, padding=1)
weight = rng.standard_normal((3, 2, 3, 3))  # conv: 2 -> 3 channels; transposed: 3 -> 2
x = rng.standard_normal((2, 2, 5, 5))
y = rng.standard_normal((2, 3, 3, 3))

conv_x, conv_cache = F.conv2d_forward(x, weight, **hyper)
convT_y, _ = F.conv_transpose2d_forward(y, weight, **hyper)
print("conv:           ", x.shape, "->", conv_x.shape)
print("transposed conv:", y.shape, "->", convT_y.shape)

lhs, rhs = np.sum(conv_x * y), np.sum(x * convT_y)
err_adjoint = abs(lhs - rhs) / abs(lhs)
print(f"<conv(x), y> = {lhs:.12f}\n<x, convT(y)> = {rhs:.12f}   relative error {err_adjoint:.1e}")
assert err_adjoint < 1e-12

dx, _, _ = F.conv2d_backward(y, conv_cache)
err_backward = relative_error(dx, convT_y)
err_torch = relative_error(convT_y, TF.conv_transpose2d(t(y), t(weight), **hyper).numpy())
print(f"conv2d_backward's dx vs conv_transpose2d: {err_backward:.1e}")
print(f"cnnumpy vs torch conv_transpose2d:        {err_torch:.1e}")
assert err_backward < 1e-12 and err_torch < 1e-12

# %% [markdown]
# And on one channel, the transposed convolution is literally $C^\top$ times the flattened
# input, with the matrix we built from basis images above:

# %%
y_small = rng.standard_normal((1, 1, 3, 3))
z, _ = F.conv_transpose2d_forward(y_small, w2, **hyper)
err = relative_error(C_s2.T @ y_small.ravel(), z.ravel())
print(f"C^T @ y vs conv_transpose2d_forward: relative error {err:.1e}")
assert err < 1e-14

# %% [markdown]
# ## Output size, and why `output_padding` exists
#
# The convolution's output size is $H' = \lfloor (H + 2p - d(k-1) - 1)/s \rfloor + 1$. With
# $s > 1$ the floor loses information: with $k = 3$, $p = 1$, $s = 2$, both $H = 5$ and $H = 6$
# give $H' = 3$. The transposed convolution inverts the size formula without the floor,
#
# $$H_\text{out} = (H' - 1)\,s - 2p + d(k-1) + \text{output\_padding} + 1,$$
#
# and `output_padding` (smaller than the stride) picks which of the possible sizes you get: 0
# gives 5 and 1 gives 6. Each choice is the adjoint of the convolution on that size:

# %%
x6 = rng.standard_normal((2, 2, 6, 6))
conv6, _ = F.conv2d_forward(x6, weight, **hyper)
convT6, _ = F.conv_transpose2d_forward(y, weight, **hyper, output_padding=1)
print(x6.shape, "->", conv6.shape, "   ", y.shape, "->", convT6.shape)
err = abs(np.sum(conv6 * y) - np.sum(x6 * convT6)) / abs(np.sum(conv6 * y))
print(f"adjoint identity with output_padding=1: relative error {err:.1e}")
assert convT6.shape == x6.shape and err < 1e-12

# %% [markdown]
# ## Fractional strides: insert zeros, then convolve
#
# The name "fractionally strided convolution" comes from a second way of computing the same
# thing. Look at one output pixel of $C^\top y$: it collects $w_{u,v}\, y_{p,q}$ from every
# input pixel $(p, q)$ whose window covers it. With stride $s$, neighbouring input pixels are
# $s$ output pixels apart, so:
#
# 1. insert $s - 1$ zeros between neighbouring input pixels (a stride of $1/s$ in the input);
# 2. pad with $d(k-1) - p$ zeros on each side (plus `output_padding` at the bottom and right);
# 3. run an ordinary stride-1 convolution with the kernel **rotated by 180 degrees** and its two
#    channel axes swapped.
#
# The rotation is there because scattering $w_{u,v}$ forward from $(p,q)$ to $(p+u, q+v)$ is the
# same as gathering backward from $(i, j)$ at offset $-u$. This is also how the backward of a
# strided convolution is derived ([tutorial 2](02_conv_backward.py), and `conv2d_backward`'s
# docstring).


# %%
def conv_transpose_by_zeros(y, weight, stride, padding, output_padding=0):
    n, c, h, w = y.shape
    k = weight.shape[-1]
    up = np.zeros((n, c, (h - 1) * stride + 1, (w - 1) * stride + 1))
    up[:, :, ::stride, ::stride] = y  # 1. zeros between the pixels
    e = k - 1 - padding  # 2. pad (dilation 1 here)
    up = np.pad(up, ((0, 0), (0, 0), (e, e + output_padding), (e, e + output_padding)))
    flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # 3. rotate, swap channels
    out, _ = F.conv2d_forward(up, np.ascontiguousarray(flipped))
    return out, up


for op in (0, 1):
    by_zeros, upsampled = conv_transpose_by_zeros(y, weight, 2, 1, op)
    direct, _ = F.conv_transpose2d_forward(y, weight, **hyper, output_padding=op)
    err = relative_error(by_zeros, direct)
    print(f"output_padding={op}: zero insertion {by_zeros.shape} vs conv_transpose2d: {err:.1e}")
    assert by_zeros.shape == direct.shape and err < 1e-12

fig, axes = plt.subplots(1, 2, figsize=(6, 3))
axes[0].imshow(y[0, 0], cmap="gray")
axes[0].set_title("input y (3x3)", fontsize=10)
axes[1].imshow(conv_transpose_by_zeros(y, weight, 2, 1)[1][0, 0], cmap="gray")
axes[1].set_title("zeros inserted and padded (7x7)", fontsize=10)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
plt.tight_layout()
plt.show()

# %% [markdown]
# Most of the products in step 3 multiply a zero. That is why cnnumpy computes the forward by
# scattering instead (a matrix product, then `col2im` adds each pixel's contributions onto its
# window), and why the zero-insertion form is an explanation rather than an algorithm.
#
# ## The backward of the transposed convolution
#
# Since the forward is $z = C^\top y + b$, its backward is $dy = C\, dz$: the gradient of a
# transposed convolution is an ordinary convolution of `dout` with the same weight. The weight's
# gradient correlates the input with `dout`, as for any convolution:
# $dW[c, f, u, v] = \sum_{n,p,q} y[n, c, p, q]\, dz[n, f, s p + u - p_h, s q + v - p_w]$.
# We check `conv_transpose2d_backward` against central differences (float64) and against
# PyTorch's autograd, with a bias and `output_padding=1`.

# %%
yb = rng.standard_normal((2, 3, 3, 3))
wb = rng.standard_normal((3, 2, 3, 3))
bb = rng.standard_normal(2)
opts = dict(stride=2, padding=1, output_padding=1)
out, cache = F.conv_transpose2d_forward(yb, wb, bb, **opts)
dout = rng.standard_normal(out.shape)
dy, dw, db = F.conv_transpose2d_backward(dout, cache)

forward = lambda: F.conv_transpose2d_forward(yb, wb, bb, **opts)[0]
numeric = [numerical_gradient_array(forward, a, dout) for a in (yb, wb, bb)]

yt, wt, bt = (t(a.copy()).requires_grad_() for a in (yb, wb, bb))
TF.conv_transpose2d(yt, wt, bt, **opts).backward(t(dout))

for name, ours, num, ref in zip(("dx", "dweight", "dbias"), (dy, dw, db), numeric,
                                (yt.grad, wt.grad, bt.grad), strict=True):
    e_num, e_torch = relative_error(ours, num), relative_error(ours, ref.numpy())
    print(f"{name:8s} vs numerical {e_num:.1e}   vs torch {e_torch:.1e}")
    assert e_num < 1e-8 and e_torch < 1e-12

# %% [markdown]
# ## Dilated convolution
#
# A dilation $d$ spreads the $k$ taps of a kernel $d$ pixels apart:
#
# $$y_{i,j} = \sum_{u,v} w_{u,v}\; x_{i + d u,\; j + d v}.$$
#
# That is an ordinary convolution with a larger kernel that has $d - 1$ zeros between its taps.
# The **effective kernel size** is
#
# $$k_\text{eff} = d\,(k - 1) + 1,$$
#
# so a $3 \times 3$ kernel with $d = 2$ covers $5 \times 5$ pixels and with $d = 4$ covers
# $9 \times 9$, still with 9 weights. We check the zero-filled-kernel reading against cnnumpy's
# `dilation=` argument and PyTorch, then the backward against central differences.

# %%
xd = rng.standard_normal((2, 2, 11, 11))
wd = rng.standard_normal((3, 2, 3, 3))
for d in (2, 3):
    k_eff = d * (3 - 1) + 1
    spread = np.zeros((3, 2, k_eff, k_eff))
    spread[:, :, ::d, ::d] = wd  # d - 1 zeros between the taps
    dilated, _ = F.conv2d_forward(xd, wd, dilation=d)
    big, _ = F.conv2d_forward(xd, spread)
    e_big = relative_error(dilated, big)
    e_torch = relative_error(dilated, TF.conv2d(t(xd), t(wd), dilation=d).numpy())
    print(f"d={d}: k_eff={k_eff}, output {dilated.shape[2:]}; vs {k_eff}x{k_eff} kernel with zeros "
          f"{e_big:.1e}, vs torch {e_torch:.1e}")
    assert e_big < 1e-14 and e_torch < 1e-12

out, cache = F.conv2d_forward(xd, wd, dilation=2, padding=2)
dout = rng.standard_normal(out.shape)
dxd, dwd, _ = F.conv2d_backward(dout, cache)
forward = lambda: F.conv2d_forward(xd, wd, dilation=2, padding=2)[0]
for name, ours, a in (("dx", dxd, xd), ("dweight", dwd, wd)):
    e = relative_error(ours, numerical_gradient_array(forward, a, dout))
    print(f"dilation 2 {name:8s} vs numerical: {e:.1e}")
    assert e < 1e-8

# %% [markdown]
# ## Receptive fields of stacked layers
#
# The **receptive field** of an output pixel is the set of input pixels it depends on. For a
# stack of stride-1 layers, each layer with kernel $k_l$ and dilation $d_l$ widens it by
# $d_l (k_l - 1)$:
#
# $$r_L = 1 + \sum_{l=1}^{L} d_l\,(k_l - 1).$$
#
# With $3 \times 3$ kernels and no dilation, $r_L = 2L + 1$ grows linearly. Doubling the
# dilation at every layer ($d_l = 1, 2, 4, 8, \dots$, Yu and Koltun's context module) gives
# $r_L = 1 + 2(2^L - 1) = 2^{L+1} - 1$: exponential growth with the same number of weights and no
# loss of resolution.
#
# We can *measure* a receptive field instead of trusting the formula: it is where the gradient
# of one output pixel with respect to the input is non-zero. Set `dout` to 1 at the centre pixel
# and 0 elsewhere, run the backward, and look at `dx`. All weights are 1 (so nothing cancels)
# and the layers are linear (no dead ReLUs), which makes the gradient non-zero exactly on the
# pixels the output depends on.


# %%
def measured_field(dilations, size=41):
    layers = []
    for d in dilations:
        conv = cn.nn.Conv2d(1, 1, 3, padding=d, dilation=d, bias=False, dtype=np.float64)
        conv.weight.data[...] = 1.0
        layers.append(conv)
    net = cn.nn.Sequential(*layers)
    out = net(np.zeros((1, 1, size, size)))
    dout = np.zeros_like(out)
    dout[0, 0, size // 2, size // 2] = 1.0  # one output pixel, the centre
    grad = net.backward(dout)[0, 0]
    rows, cols = np.nonzero(grad)
    extent = rows.max() - rows.min() + 1
    assert extent == cols.max() - cols.min() + 1
    return grad, extent, np.count_nonzero(grad) / extent**2


stacks = {"plain, d = 1, 1, 1, 1": (1, 1, 1, 1),
          "doubling, d = 1, 2, 4, 8": (1, 2, 4, 8),
          "constant, d = 2, 2, 2, 2": (2, 2, 2, 2)}
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, (label, dilations) in zip(axes, stacks.items(), strict=True):
    print(label)
    for depth in range(1, len(dilations) + 1):
        grad, extent, density = measured_field(dilations[:depth])
        formula = 1 + sum(2 * d for d in dilations[:depth])
        print(f"  {depth} layers: measured {extent:2d}, formula {formula:2d}, "
              f"{density:.0%} of the field's pixels reached")
        assert extent == formula
    ax.imshow(np.log1p(grad), cmap="magma")
    ax.set_title(f"{label}\nreceptive field {extent}x{extent}", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
plt.tight_layout()
plt.show()

# %% [markdown]
# The colour is $\log(1 + \partial y_\text{centre} / \partial x)$: how many paths lead from each
# input pixel to the centre output.
#
# - The plain stack reaches $9 \times 9$ after 4 layers; the doubling stack $31 \times 31$ with
#   the same 36 weights, and every pixel inside is reached.
# - A constant dilation of 2 reaches $17 \times 17$, but only $9 \times 9$ of those pixels (the
#   28% printed above): every tap lands on an even offset, so the odd rows and columns are never
#   read. This is the "gridding" artefact, and why dilations are varied from layer to layer (or
#   start at 1).
#
# `cnnumpy experiment dilation` runs the same measurement on six layers (up to $127 \times 127$)
# and writes `docs/experiments/dilation.json` and its figure.
#
# ## Summary
#
# - A convolution is a sparse matrix $C$ with tied entries; its transpose $C^\top$ is the
#   transposed convolution, which is also the backward of the convolution with respect to its
#   input, so every CNN already computes it.
# - A strided transposed convolution equals zeros inserted between the input pixels, padding,
#   and a stride-1 convolution with the rotated kernel; `output_padding` chooses between the
#   input sizes a strided convolution cannot tell apart.
# - A dilation $d$ gives a $k \times k$ kernel the reach of $d(k-1)+1$ pixels; stacked with
#   doubling dilations the receptive field grows exponentially, with constant dilations it has
#   holes.

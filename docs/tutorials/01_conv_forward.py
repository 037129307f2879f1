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
# # 1. Convolution forward
#
# A convolutional layer slides $F$ small filters over an image and, at every position, takes
# the dot product of a filter with the patch of the image under it. With an input
# $x$ of shape $(N, C, H, W)$ (a batch of $N$ images of $C$ channels), weights $w$ of shape
# $(F, C, K_H, K_W)$ and a bias $b$ of shape $(F,)$, stride $S$ and zero padding $P$:
#
# $$
# \mathrm{out}[n, f, i, j] = b_f + \sum_{c=0}^{C-1} \sum_{p=0}^{K_H-1} \sum_{q=0}^{K_W-1}
#     w[f, c, p, q]\; x_P[n, c,\; iS + p,\; jS + q]
# $$
#
# where $x_P$ is $x$ with $P$ rows and columns of zeros added on every side. The filter is
# not flipped: strictly this is a cross-correlation, and it is what every deep-learning
# library (PyTorch's `conv2d` included) calls a convolution. This page computes it four
# ways: with loops that read as the formula, with cnnumpy's loop reference, with im2col and
# one matrix product (how cnnumpy's fast kernel does it), and with PyTorch, and checks that
# they agree.

# %%
import time
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import torch

import cnnumpy.functional as cnf
from cnnumpy.functional._im2col import conv2d_geometry, im2col, pad_channel_major

np.set_printoptions(precision=3, suppress=True, linewidth=110)

# %% [markdown]
# ## The loops, line by line
#
# The formula as code: pad once, then for every image, filter and output position, multiply
# the window under the filter by the filter and add it all up.

# %%
def conv_forward_loops(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """out[n, f, i, j] = b[f] + sum(x_padded[n, :, window(i, j)] * w[f])."""
    n_images, _, height, width = x.shape
    n_filters, _, kh, kw = w.shape
    # Zeros around the two spatial axes only: none around the batch or channel axes.
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_h = 1 + (height + 2 * pad - kh) // stride
    out_w = 1 + (width + 2 * pad - kw) // stride
    out = np.zeros((n_images, n_filters, out_h, out_w), dtype=x.dtype)
    for n in range(n_images):
        for f in range(n_filters):
            for i in range(out_h):
                for j in range(out_w):
                    window = xp[n, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


# %% [markdown]
# A first example small enough to check by hand: a $4 \times 4$ image holding $0, 1, \dots, 15$
# and one $3 \times 3$ filter that subtracts the left column from the right one (a horizontal
# gradient). Each row of the image increases by 1 from left to right, so every window gives
# $3 \times (2 - 0) = 6$.

# %%
x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
w = np.array([[[[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]]], dtype=np.float64)
b = np.zeros(1)
print("x:\n", x[0, 0])
print("out (stride 1, no padding):\n", conv_forward_loops(x, w, b)[0, 0])

# %% [markdown]
# ## Padding with np.pad
#
# Without padding, every $K \times K$ convolution shrinks the image by $K - 1$ pixels, and the
# border pixels are seen by fewer windows than the centre ones. Padding with $P$ zeros on each
# side fixes both: `np.pad` takes one `(before, after)` pair per axis.

# %%
xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
print("x padded with P = 1:\n", xp[0, 0])
print("out (stride 1, P = 1): same size as x\n", conv_forward_loops(x, w, b, pad=1)[0, 0])

# %% [markdown]
# At the border the zeros stand in for the missing neighbours, so the outputs there are no
# longer 6: the left column compares each row's second pixel with a zero, the right column a
# zero with the third pixel, and the top and bottom rows sum two image rows instead of three.
#
# ## The output size
#
# The window starts at $0, S, 2S, \dots$ and must end inside the padded input of size
# $H + 2P$. The last start is therefore at most $H + 2P - K$, and the number of starts is
#
# $$ H' = 1 + \left\lfloor \frac{H + 2P - K}{S} \right\rfloor, $$
#
# and the same for $W'$. CS231n's assignment insists that $S$ divide $H + 2P - K$; cnnumpy,
# like PyTorch, rounds down, so the last rows of the input that no window reaches are left out.
# With a dilation $D$ (holes between the taps, see [tutorial 8](08_transposed_dilated.py)) the
# kernel spans $D(K - 1) + 1$ pixels, which replaces $K$ in the formula.

# %%
def output_size(size: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    """H' = 1 + floor((H + 2P - K) / S)."""
    return 1 + (size + 2 * pad - kernel) // stride


cases = [  # (what, H, K, S, P)
    ("LeNet-5 C1", 32, 5, 1, 0),
    ("VGG 3x3, 'same'", 224, 3, 1, 1),
    ("AlexNet conv1", 227, 11, 4, 0),
    ("ResNet stem 7x7/2", 224, 7, 2, 3),
    ("stride does not divide", 8, 3, 2, 0),
]
print(f"{'layer':<24}{'H':>5}{'K':>4}{'S':>4}{'P':>4}{'formula':>9}{'cnnumpy':>9}")
for what, h, k, s, p in cases:
    probe = np.zeros((1, 1, h, h))
    got = cnf.conv2d_forward(probe, np.zeros((1, 1, k, k)), stride=s, padding=p)[0].shape[2]
    print(f"{what:<24}{h:>5}{k:>4}{s:>4}{p:>4}{output_size(h, k, s, p):>9}{got:>9}")

# %% [markdown]
# ## The loop reference in cnnumpy
#
# `cnnumpy.functional.conv2d_forward_naive` is the library's own loop version, kept beside the
# fast kernel to document it and to test it. It handles groups and dilation too, but for this
# case it is the loop above. On a random batch with three channels, four filters, stride 2 and
# padding 1 on a $9 \times 9$ input (so the stride does not divide evenly):

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 9, 9))
w = rng.standard_normal((4, 3, 3, 3))
b = rng.standard_normal(4)

ours = conv_forward_loops(x, w, b, stride=2, pad=1)
naive, _ = cnf.conv2d_forward_naive(x, w, b, stride=2, padding=1)
print("output shape:", ours.shape, " max |ours - naive| =", np.abs(ours - naive).max())

# %% [markdown]
# ## im2col: the convolution as one matrix product
#
# The loops do $N F H' W'$ small dot products of length $C K_H K_W$. The same numbers come out
# of one matrix product if every window is first copied out as a column: the column matrix
# has $C K_H K_W$ rows and one column per window, $N H' W'$ columns, and
#
# $$
# \underbrace{\mathrm{out}}_{F \times N H' W'} =
#     \underbrace{w}_{F \times C K_H K_W}\;
#     \underbrace{\mathrm{cols}}_{C K_H K_W \times N H' W'} + b .
# $$
#
# For the $4 \times 4$ image of $0..15$ and a $3 \times 3$ kernel at stride 1 there are four
# windows, so four columns of nine entries:

# %%
def im2col_windows(x: np.ndarray, kh: int, kw: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """One column per window, in the order (n, i, j); rows in the order (c, p, q)."""
    n_images, channels, height, width = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_h = 1 + (height + 2 * pad - kh) // stride
    out_w = 1 + (width + 2 * pad - kw) // stride
    cols = np.empty((channels * kh * kw, n_images * out_h * out_w), dtype=x.dtype)
    for n in range(n_images):
        for i in range(out_h):
            for j in range(out_w):
                window = xp[n, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
                cols[:, (n * out_h + i) * out_w + j] = window.reshape(-1)
    return cols


tiny = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
cols = im2col_windows(tiny, 3, 3)
print("cols (9 x 4):\n", cols)

# %% tags=["hide-input"]
fig, (ax_in, ax_cols) = plt.subplots(1, 2, figsize=(7.5, 3.6), width_ratios=[1, 1.1])
colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
ax_in.imshow(tiny[0, 0], cmap="Greys", vmin=-8, vmax=30)
for (i, j), value in np.ndenumerate(tiny[0, 0]):
    ax_in.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=11)
for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
    inset = 0.06 * (k + 1)
    ax_in.add_patch(plt.Rectangle((j - 0.5 + inset, i - 0.5 + inset), 3 - 2 * inset,
                                  3 - 2 * inset, fill=False, lw=2, ec=colors[k]))
ax_in.set_title("input 4x4 and its four 3x3 windows")
ax_cols.imshow(cols, cmap="Greys", vmin=-8, vmax=30, aspect="auto")
for (r, c), value in np.ndenumerate(cols):
    ax_cols.text(c, r, f"{value:.0f}", ha="center", va="center", fontsize=11, color=colors[c])
ax_cols.set_title("cols: one column per window")
ax_cols.set_xlabel("window (i, j)")
ax_cols.set_ylabel("tap (p, q)")
ax_cols.set_xticks(range(4), ["(0,0)", "(0,1)", "(1,0)", "(1,1)"])
ax_cols.set_yticks(range(9), [f"({p},{q})" for p in range(3) for q in range(3)])
ax_in.set_xticks([])
ax_in.set_yticks([])
fig.tight_layout()
plt.show()

# %% [markdown]
# Each pixel is copied once for every window that contains it (the centre ones four times
# here), so the column matrix is up to $K_H K_W$ times the size of the image: memory traded for
# one large, fast BLAS call. Multiplying by the flattened filter gives the four outputs:

# %%
w_edge = np.array([[[[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]]], dtype=np.float64)
print("w as a row:", w_edge.reshape(1, -1))
print("w @ cols  :", w_edge.reshape(1, -1) @ cols)

# %% [markdown]
# The same on the random batch, reshaping the product back to $(N, F, H', W')$:

# %%
n_images, n_filters = x.shape[0], w.shape[0]
out_h = out_w = output_size(9, 3, stride=2, pad=1)
cols = im2col_windows(x, 3, 3, stride=2, pad=1)
by_matmul = (w.reshape(n_filters, -1) @ cols + b[:, None]).reshape(
    n_filters, n_images, out_h, out_w
).transpose(1, 0, 2, 3)
print("cols:", cols.shape, " max |im2col - loops| =", np.abs(by_matmul - ours).max())

# %% [markdown]
# ### How cnnumpy builds the columns
#
# Copying window by window is itself a loop over $N H' W'$ windows. cnnumpy (after Chainer)
# loops over the $K_H K_W$ kernel taps instead: for tap $(p, q)$ the entries of every window
# form one strided slice of the padded input, `xp[..., p : p + S(H'-1) + 1 : S, q : ...]`, so
# nine slice copies fill the whole matrix for a $3 \times 3$ kernel, whatever the batch size.
# It also puts the channel axis first, `cols[c, p, q, n, i, j]`, which makes the rows come out
# in the order of the flattened weight and the columns in the order $(n, i, j)$ with no
# transposing copy. Its `im2col` gives exactly our matrix:

# %%
def im2col_taps(x: np.ndarray, kh: int, kw: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """The column matrix by one strided-slice copy per kernel tap."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))).transpose(1, 0, 2, 3)
    channels, n_images = xp.shape[:2]
    out_h = 1 + (xp.shape[2] - kh) // stride
    out_w = 1 + (xp.shape[3] - kw) // stride
    cols = np.empty((channels, kh, kw, n_images, out_h, out_w), dtype=x.dtype)
    for p in range(kh):
        for q in range(kw):
            cols[:, p, q] = xp[:, :, p : p + stride * (out_h - 1) + 1 : stride,
                               q : q + stride * (out_w - 1) + 1 : stride]
    return cols.reshape(channels * kh * kw, -1)


geometry = conv2d_geometry(x, w, stride=2, padding=1, dilation=1, groups=1)
library_cols = im2col(pad_channel_major(x, geometry.pads), geometry)
print("library layout:", library_cols.shape)
print("max |taps - windows|   =", np.abs(im2col_taps(x, 3, 3, 2, 1) - cols).max())
print("max |library - windows| =", np.abs(library_cols.reshape(cols.shape) - cols).max())

# %% [markdown]
# ## The fast kernel, and PyTorch
#
# `cnnumpy.functional.conv2d_forward` is im2col and one matrix product per group, taken over
# the batch in cache-sized chunks shared between threads. It returns the output and a cache
# for the backward pass ([tutorial 2](02_conv_backward.py)). PyTorch's `conv2d` computes the
# same cross-correlation:

# %%
fast, cache = cnf.conv2d_forward(x, w, b, stride=2, padding=1)
reference = torch.nn.functional.conv2d(
    torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride=2, padding=1
).numpy()
print("max |fast - loops|   =", np.abs(fast - ours).max())
print("max |fast - naive|   =", np.abs(fast - naive).max())
print("max |fast - PyTorch| =", np.abs(fast - reference).max())

# %% [markdown]
# In float64 all four agree to rounding. In float32 the fast kernel and PyTorch sum in
# different orders, so they agree to about float32's precision, $10^{-7}$ relative:

# %%
x32, w32, b32 = x.astype(np.float32), w.astype(np.float32), b.astype(np.float32)
fast32, _ = cnf.conv2d_forward(x32, w32, b32, stride=2, padding=1)
torch32 = torch.nn.functional.conv2d(
    torch.from_numpy(x32), torch.from_numpy(w32), torch.from_numpy(b32), stride=2, padding=1
).numpy()
print("float32: max |fast - PyTorch| / max |out| =",
      np.abs(fast32 - torch32).max() / np.abs(torch32).max())

# %% [markdown]
# What the matrix product buys, on a batch of 16 images of $3 \times 32 \times 32$ and 8
# filters (timings from the machine that built this page):

# %%
xb = rng.standard_normal((16, 3, 32, 32)).astype(np.float32)
wb = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
bb = np.zeros(8, dtype=np.float32)


def seconds(fn: Callable[[], object], repeat: int = 3) -> float:
    """The best wall time of ``repeat`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


t_loops = seconds(lambda: conv_forward_loops(xb, wb, bb, pad=1), repeat=1)
t_fast = seconds(lambda: cnf.conv2d_forward(xb, wb, bb, padding=1))
print(f"loops: {t_loops * 1e3:8.1f} ms")
print(f"fast:  {t_fast * 1e3:8.2f} ms   ({t_loops / t_fast:,.0f} times faster)")

# %% [markdown]
# ## What a filter does to an image
#
# Two hand-made filters on a synthetic $28 \times 28$ image of a ring: the horizontal
# gradient above and its transpose. Each output is large where the image changes along the
# filter's direction, positive on one side of an edge and negative on the other, which is what
# trained first-layer filters tend to look like too ([tutorial 10](10_lenet5.py)).

# %%
yy, xx = np.mgrid[-13.5:14, -13.5:14]
ring = ((np.hypot(yy, xx) > 6) & (np.hypot(yy, xx) < 10)).astype(np.float32)
filters = np.stack([w_edge[0], w_edge[0].transpose(0, 2, 1)]).astype(np.float32)
edges, _ = cnf.conv2d_forward(ring[None, None], filters, padding=1)
print("filters:", filters.shape, " feature maps:", edges.shape)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 3, figsize=(8, 2.9))
panels = [(ring, "input", "Greys"), (edges[0, 0], "horizontal gradient", "RdBu_r"),
          (edges[0, 1], "vertical gradient", "RdBu_r")]
for ax, (image, title, cmap) in zip(axes, panels, strict=True):
    limit = np.abs(image).max()
    ax.imshow(image, cmap=cmap, vmin=-limit if cmap == "RdBu_r" else 0, vmax=limit)
    ax.set_title(title)
    ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# Next: [the backward pass](02_conv_backward.py), where the same im2col columns give the
# weight gradient and a convolution with the flipped kernel gives the input gradient.

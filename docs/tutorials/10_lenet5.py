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
# # 10. LeNet-5 inside
#
# LeNet-5 (LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document
# recognition", 1998) is the network most CNN courses start from, usually in a modernised form
# with ReLUs, max pooling and a softmax. cnnumpy's `lenet5` is the paper's own network:
#
# - **C1**: 6 maps, $5 \times 5$ convolution of the $32 \times 32$ input;
# - **S2**: 6 maps, each $2 \times 2$ block *summed*, times a trainable coefficient, plus a
#   trainable bias;
# - **C3**: 16 maps, $5 \times 5$ convolution, each map reading only some of S2's maps (the C3
#   table);
# - **S4**: 16 maps, subsampling as S2;
# - **C5**: 120 maps, $5 \times 5$ convolution of the $5 \times 5$ maps (so $1 \times 1$ outputs);
# - **F6**: 84 units, fully connected;
# - **output**: 10 Euclidean radial basis function (RBF) units, each comparing F6's 84 values with
#   a fixed $7 \times 12$ drawing of its digit.
#
# Every stage up to F6 is followed by the squashing function $f(a) = A \tanh(S a)$ with
# $A = 1.7159$ and $S = 2/3$, chosen so that $f(\pm 1) = \pm 1$. This tutorial takes the network
# apart: the parameter and connection counts of the paper, the C3 table, the RBF output, and the
# feature maps of a trained model.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as TF
from IPython.display import Image, display
from scipy.ndimage import zoom

import cnnumpy as cn
from cnnumpy import functional as F
from cnnumpy.data import DataLoader, digits
from cnnumpy.inspect import (
    format_summary,
    numerical_gradient,
    numerical_gradient_array,
    plot_feature_maps,
    record_feature_maps,
    relative_error,
    summary,
)
from cnnumpy.models.lenet import LENET5_C3_TABLE
from cnnumpy.models.lenet_bitmaps import BITMAP_COLS, BITMAP_ROWS, digit_prototypes
from cnnumpy.train import Trainer
from cnnumpy.train.callbacks import Evaluate

rng = np.random.default_rng(0)
model = cn.models.build_model("lenet5", rng=np.random.default_rng(0))
print(model)
print(f"f(1) = {1.7159 * np.tanh(2 / 3):.4f}")

# %% [markdown]
# ## Parameters and connections
#
# The paper counts two things per layer. A **parameter** is a trainable number. A
# **connection** is one input (or the bias) feeding one output unit; with weight sharing, many
# connections share a parameter. For a layer whose $U$ output units each have $n$ inputs and a
# bias, there are $U(n + 1)$ connections. Layer by layer, for one $32 \times 32$ image:
#
# | layer | parameters | connections |
# | --- | --- | --- |
# | C1: 6 kernels $5 \times 5$ on 1 map, output $6 \times 28 \times 28$ | $6(25 + 1) = 156$ | $156 \cdot 28^2 = 122{,}304$ |
# | S2: a coefficient and a bias per map, output $6 \times 14 \times 14$ | $6 \cdot 2 = 12$ | $6 \cdot 14^2 (4 + 1) = 5{,}880$ |
# | C3: 60 kernels $5 \times 5$ (the table below), 16 biases, output $16 \times 10 \times 10$ | $60 \cdot 25 + 16 = 1{,}516$ | $1{,}516 \cdot 10^2 = 151{,}600$ |
# | S4: output $16 \times 5 \times 5$ | $16 \cdot 2 = 32$ | $16 \cdot 5^2 (4 + 1) = 2{,}000$ |
# | C5: 120 kernels $5 \times 5$ on 16 maps, output $120 \times 1 \times 1$ | $120(400 + 1) = 48{,}120$ | $48{,}120$ |
# | F6: $120 \to 84$ | $84(120 + 1) = 10{,}164$ | $10{,}164$ |
#
# C5 and F6 have as many connections as parameters: their outputs are $1 \times 1$, so there is
# nothing to share. cnnumpy's `summary` runs one image through the model with forward hooks and
# counts each layer; the paper's numbers must come out.

# %%
rows = summary(model, (1, 32, 32))
print(format_summary(rows, (1, 32, 32)))

by_name = {r.name: r for r in rows}
paper = {  # LeCun et al. 1998, section II.B
    "c1": (156, 122_304),
    "s2": (12, 5_880),
    "c3": (1_516, 151_600),
    "s4": (32, 2_000),
    "c5": (48_120, 48_120),
    "f6": (10_164, 10_164),
}
formulas = {
    "c1": (6 * (25 + 1), 6 * (25 + 1) * 28**2),
    "s2": (6 * 2, 6 * 14**2 * (4 + 1)),
    "c3": (60 * 25 + 16, (60 * 25 + 16) * 10**2),
    "s4": (16 * 2, 16 * 5**2 * (4 + 1)),
    "c5": (120 * (16 * 25 + 1), 120 * (16 * 25 + 1)),
    "f6": (84 * (120 + 1), 84 * (120 + 1)),
}
for name, counts in paper.items():
    row = by_name[name]
    assert (row.parameters, row.connections) == counts == formulas[name], name
trainable = sum(p.data.size for p in model.parameters() if p.requires_grad)
print(f"\nall six layers match the paper; trainable parameters: {trainable:,}")
assert trainable == 60_000

# %% [markdown]
# The summary's total includes the output layer's 840 numbers ($10 \times 84$), the fixed
# prototypes of the RBF units: they are stored as a non-trainable parameter, so the trainable
# count is the paper's round 60,000.
#
# ## The C3 table
#
# A full $5 \times 5$ convolution from 6 to 16 maps would have $16(6 \cdot 25 + 1) = 2{,}416$
# parameters. LeNet-5's C3 connects each of its 16 maps to a *subset* of S2's maps (Table I of
# the paper): the first six read 3 contiguous maps, the next six 4 contiguous maps, the next three
# 4 non-contiguous maps, and the last one all six. The paper gives two reasons: fewer connections,
# and, more important, a break of symmetry: maps that read different inputs are forced to learn
# different features.

# %%
table = np.zeros((6, 16), dtype=bool)
for c3_map, inputs in enumerate(LENET5_C3_TABLE):
    table[list(inputs), c3_map] = True

fig, ax = plt.subplots(figsize=(8, 3.3))
ax.imshow(table, cmap="Greys", vmin=0, vmax=1.6)
for s2_map, c3_map in zip(*np.nonzero(table), strict=True):
    ax.text(c3_map, s2_map, "X", ha="center", va="center", fontsize=10, color="white")
ax.set_xticks(range(16))
ax.set_yticks(range(6))
ax.set_xticks(np.arange(-0.5, 16), minor=True)
ax.set_yticks(np.arange(-0.5, 6), minor=True)
ax.grid(which="minor", color="0.6", linewidth=0.5)
ax.tick_params(which="minor", length=0)
ax.set_xlabel("C3 map")
ax.set_ylabel("S2 map")
ax.set_title("LeNet-5's C3 table (the paper's Table I)", fontsize=11)
plt.tight_layout()
plt.show()

connections = int(table.sum())
print(f"{connections} (S2 map, C3 map) pairs: {connections} * 25 + 16 = {connections * 25 + 16} "
      f"parameters, against {16 * (6 * 25 + 1)} for a full convolution")
assert connections == 60 and model.c3.weight.data.shape == (60, 5, 5)

# %% [markdown]
# `nn.TableConv2d` stores one $5 \times 5$ kernel per pair of the table. Its output is exactly a
# full convolution whose weight is zero outside the table:
#
# $$\text{out}_f = b_f + \sum_{c \in T_f} w_{f,c} \star x_c = b_f + \sum_{c=0}^{5} \big(M_{f,c}\,
# w_{f,c}\big) \star x_c, \qquad M_{f,c} = [c \in T_f].$$
#
# So the backward follows from the full convolution's: the input gradient is that of the masked
# dense convolution, and each kernel's gradient is the dense gradient read at its own
# $(f, c)$ entry (the entries outside the table get gradients too, but they are never used). We
# check the forward and both gradients against PyTorch's `conv2d` with the masked weight, and the
# backward against central differences.

# %%
c3 = cn.nn.TableConv2d(6, LENET5_C3_TABLE, 5, rng=rng, dtype=np.float64)
x = rng.standard_normal((2, 6, 14, 14))
out = c3(x)
dout = rng.standard_normal(out.shape)
dx = c3.backward(dout)

dense = np.zeros((16, 6, 5, 5))
dense[c3.out_index, c3.in_index] = c3.weight.data
xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, dense, c3.bias.data))
ref = TF.conv2d(xt, wt, bt)
ref.backward(torch.from_numpy(dout))

checks = {
    "output": relative_error(out, ref.detach().numpy()),
    "dx": relative_error(dx, xt.grad.numpy()),
    "dweight": relative_error(c3.weight.grad, wt.grad.numpy()[c3.out_index, c3.in_index]),
    "dbias": relative_error(c3.bias.grad, bt.grad.numpy()),
}
for name, err in checks.items():
    print(f"C3 {name:8s} vs torch conv2d with the masked weight: {err:.1e}")
    assert err < 1e-12

x_small = rng.standard_normal((1, 6, 7, 7))
w_small = c3.weight.data.copy()
out_small, cache = F.table_conv2d_forward(x_small, w_small, None, c3.out_index, c3.in_index, 16)
d_small = rng.standard_normal(out_small.shape)
dx_small, dw_small, _ = F.table_conv2d_backward(d_small, cache)
forward = lambda: F.table_conv2d_forward(x_small, w_small, None, c3.out_index, c3.in_index, 16)[0]
for name, ours, a in (("dx", dx_small, x_small), ("dweight", dw_small, w_small)):
    err = relative_error(ours, numerical_gradient_array(forward, a, d_small))
    print(f"C3 {name:8s} vs numerical: {err:.1e}")
    assert err < 1e-8

# %% [markdown]
# ## Subsampling
#
# S2 and S4 are not max pooling. Each output is the sum of a $2 \times 2$ block, times a trainable
# coefficient $\beta_c$, plus a trainable bias $b_c$, one pair per map:
# $\text{out}_{c,i,j} = \beta_c \sum_{u,v \in \{0,1\}} x_{c,2i+u,2j+v} + b_c$. That is $4 \times$
# average pooling, scaled per channel, which we can check against PyTorch:

# %%
xs = rng.standard_normal((2, 6, 28, 28))
beta, b = rng.standard_normal(6), rng.standard_normal(6)
out, _ = F.subsampling_forward(xs, beta, b)
ref = 4 * TF.avg_pool2d(torch.from_numpy(xs), 2).numpy() * beta[:, None, None] + b[:, None, None]
err = relative_error(out, ref)
print(f"subsampling vs 4 * avg_pool2d * beta + b: {err:.1e}")
assert err < 1e-12

# %% [markdown]
# With $\beta_c$ small, the squashing function after it works in its linear part and the layer
# blurs; with $\beta_c$ large, it saturates and the layer acts as a noisy OR (or AND, with a
# negative bias) of the block.
#
# ## The RBF output and its bitmaps
#
# The output layer has no weights to learn. Output unit $i$ computes the squared Euclidean
# distance between F6's state $x \in \mathbb{R}^{84}$ and a fixed prototype
# $w_i \in \{-1, +1\}^{84}$:
#
# $$y_i = \sum_{j=1}^{84} (x_j - w_{ij})^2 .$$
#
# It is a *penalty*: the prediction is the class with the **smallest** $y_i$. The paper draws each
# prototype as a stylised $7 \times 12$ bitmap of its digit (hence F6's 84 units), so that
# confusable characters get similar codes. Here are cnnumpy's drawings, $+1$ black:

# %%
prototypes = digit_prototypes(10)
assert np.array_equal(prototypes, model.output.weight.data)
fig, axes = plt.subplots(1, 10, figsize=(10, 2))
for digit, ax in enumerate(axes):
    ax.imshow(prototypes[digit].reshape(BITMAP_ROWS, BITMAP_COLS), cmap="Greys", vmin=-1, vmax=1)
    ax.set_title(str(digit))
    ax.set_xticks([])
    ax.set_yticks([])
plt.tight_layout()
plt.show()

# %% [markdown]
# If F6 outputs a prototype exactly, its penalties are $4\times$ the number of pixels in which
# that prototype differs from each other one, since each differing pixel contributes
# $(\pm 2)^2 = 4$. The closest pairs are the codes the network has to tell apart most carefully:

# %%
penalties, _ = F.rbf_forward(prototypes, prototypes)
hamming = (prototypes[:, None, :] != prototypes[None, :, :]).sum(axis=2)
assert np.array_equal(penalties, 4 * hamming) and np.all(np.argmin(penalties, axis=1) == np.arange(10))
pairs = sorted((hamming[i, j], i, j) for i in range(10) for j in range(i + 1, 10))
print("closest prototype pairs (differing pixels):",
      ", ".join(f"{i}-{j} ({h})" for h, i, j in pairs[:4]))

# %% [markdown]
# The gradients are one line each: $\partial y_i / \partial x_j = 2(x_j - w_{ij})$, so
# $dx_j = \sum_i 2\, dy_i\, (x_j - w_{ij})$. The loss trained on these penalties is the paper's
# MAP criterion (eq. 9), which pulls the correct penalty $y_c$ down and pushes the others up,
# through a log-sum-exp with a constant "rubbish" penalty $j$:
#
# $$E = y_c + \log\Big(e^{-j} + \sum_i e^{-y_i}\Big), \qquad
# \frac{\partial E}{\partial y_i} = [i = c] - \frac{e^{-y_i}}{e^{-j} + \sum_k e^{-y_k}} .$$
#
# Both are checked against central differences:

# %%
f6 = np.tanh(rng.standard_normal((4, 84)))  # F6's states lie in (-1.7, 1.7)
labels = np.array([3, 1, 4, 1])
pen, cache = F.rbf_forward(f6, prototypes)
dpen = rng.standard_normal(pen.shape)
dx_rbf, _ = F.rbf_backward(dpen, cache)
# The penalties are quadratic in x, so central differences are exact up to rounding: a large
# step h keeps that rounding (relative to penalties in the hundreds) small.
numeric = numerical_gradient_array(lambda: F.rbf_forward(f6, prototypes)[0], f6, dpen, h=1e-3)
err = relative_error(dx_rbf, numeric)
print(f"RBF dx vs numerical:        {err:.1e}")
assert err < 1e-8

pen = pen / 20  # penalties of a partly trained network, so that the exponentials matter
loss, dloss = F.map_loss(pen, labels, j=2.0)
err = relative_error(dloss, numerical_gradient(lambda: F.map_loss(pen, labels, j=2.0)[0], pen))
print(f"MAP loss gradient vs numerical: {err:.1e}")
assert err < 1e-8

# %% [markdown]
# ## A trained LeNet-5, and what it sees
#
# The paper trained on MNIST's $28 \times 28$ digits centred in a $32 \times 32$ field, scaled so
# that the background is $-0.1$ and full ink $1.175$ (mean about 0, variance about 1). To train in
# seconds, we use scikit-learn's $8 \times 8$ digits that ship with cnnumpy, enlarged three times
# (bilinear) to $24 \times 24$, padded to $28 \times 28$, then prepared exactly as MNIST is
# (`lenet5_preprocess`). The model trains with Adam on the MAP loss for three epochs; the README
# gives the paper's own training recipe on MNIST.

# %%
data = digits()


def as_lenet_input(images):
    """(N, 1, 8, 8) digits with values 0..16 -> (N, 1, 32, 32), LeNet-5's input scaling."""
    big = zoom(images[:, 0] / 16.0, (1, 3, 3), order=1).clip(0.0, 1.0)
    return cn.models.lenet5_preprocess(np.pad(big, ((0, 0), (2, 2), (2, 2))))


x_train, y_train = as_lenet_input(data.train[0]), data.train[1]
x_val, y_val = as_lenet_input(data.val[0]), data.val[1]
print(x_train.shape, f"values {x_train.min():.3f} .. {x_train.max():.3f}")

model = cn.models.build_model("lenet5", rng=np.random.default_rng(0))
train_loader = DataLoader(x_train, y_train, batch_size=32, shuffle=True, normalized=True)
val_loader = DataLoader(x_val, y_val, batch_size=270, normalized=True)
trainer = Trainer(model, model.criterion, cn.optim.Adam(model.parameters(), lr=2e-3), train_loader,
                  epochs=3, callbacks=[Evaluate(val_loader)])
history = trainer.fit()
for epoch, acc in enumerate(history["val_acc"], 1):
    print(f"epoch {epoch}: validation accuracy {acc:.1%}")
assert history["val_acc"][-1] > 0.8

# %% [markdown]
# `record_feature_maps` runs one image through the model with forward hooks on the
# convolutions and subsamplings and keeps their outputs (before the squashing);
# `plot_feature_maps` draws them one layer per row, as the paper's Fig. 2 does. The same
# figure for the paper's network trained on full MNIST is `docs/reproductions/lenet5-feature-maps.png`,
# drawn by `cnnumpy visualize` from a checkpoint of the README's faithful `lenet5` run.

# %%
index = 4
image = x_val[index]
records = record_feature_maps(model, image)
model.eval()
penalties = model(image[None])[0]
prediction = int(np.argmin(penalties))
print("layers recorded:", ", ".join(f"{r.name} {'x'.join(map(str, r.maps.shape))}" for r in records))
print(f"label {y_val[index]}, predicted {prediction} (smallest penalty {penalties.min():.1f})")

with tempfile.TemporaryDirectory() as tmp:
    path = plot_feature_maps(image, records, Path(tmp) / "maps.png",
                             title=f"lenet5 on a validation digit (a '{y_val[index]}')")
    display(Image(filename=str(path)))

# %% [markdown]
# C1's maps are the digit seen through six $5 \times 5$ filters (edges of several orientations,
# or the ink itself); S2 halves them; C3's 16 maps combine S2's in the table's groups and are
# already hard to read; S4 and C5 are the features F6 maps to the $7 \times 12$ code that the RBF
# units compare with their bitmaps.
#
# ## Summary
#
# - LeNet-5's counts (156, 12, 1,516, 32, 48,120 and 10,164 parameters; 122,304, 5,880, 151,600,
#   2,000, 48,120 and 10,164 connections) follow from the layer shapes, and cnnumpy's `summary`
#   reproduces them.
# - C3 is a convolution with a fixed sparsity pattern: a masked full convolution, whose gradient
#   is the full convolution's read at the table's entries.
# - The output layer measures distances to fixed bitmaps; the smallest penalty wins, and the MAP
#   loss trains against it.

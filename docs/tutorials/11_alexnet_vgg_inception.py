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
# # 11. AlexNet, VGG and Inception
#
# Between 2012 and 2014 three ImageNet winners set the shape of CNNs for years. Each introduced
# a piece that is still worth understanding from the inside:
#
# - **AlexNet** (Krizhevsky, Sutskever and Hinton, 2012): local response normalisation (LRN),
#   and convolutions split into two groups, one per GPU;
# - **VGG** (Simonyan and Zisserman, 2014): only $3 \times 3$ convolutions, stacked;
# - **Inception / GoogLeNet** (Szegedy et al., 2014): $1 \times 1$ convolutions that reduce the
#   channels before the expensive $3 \times 3$ and $5 \times 5$ ones.
#
# We derive each, compute it with cnnumpy, and check it against PyTorch and numerical gradients.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as TF

import cnnumpy as cn
from cnnumpy import functional as F
from cnnumpy.inspect import numerical_gradient_array, relative_error, summary
from cnnumpy.models.alexnet import LRN_ALPHA, LRN_BETA, LRN_K, LRN_SIZE
from cnnumpy.models.googlenet import inception_v1_module

rng = np.random.default_rng(0)


def t(a, grad=False):
    """A float64 NumPy array as a torch tensor."""
    return torch.tensor(a, requires_grad=grad)


def n_params(layer):
    return sum(p.data.size for p in layer.parameters())


# %% [markdown]
# ## Local response normalisation
#
# AlexNet normalises each ReLU output $a^i_{x,y}$ (channel $i$, position $(x, y)$) by the energy
# of the $n$ neighbouring channels at the same position (section 3.3 of the paper):
#
# $$b^i_{x,y} = a^i_{x,y} \Big/ \Big(k + \alpha \sum_{j=\max(0,\, i - n/2)}^{\min(N-1,\, i + n/2)}
# \big(a^j_{x,y}\big)^2\Big)^{\beta},$$
#
# with $k = 2$, $n = 5$, $\alpha = 10^{-4}$, $\beta = 0.75$ and $N$ channels. A unit with
# strongly active neighbours is damped: a form of competition between feature maps, which the
# paper credits with 1.2 to 1.4 points of error. (Batch normalisation has since replaced it.)
#
# **PyTorch defines $\alpha$ differently.** `torch.nn.functional.local_response_norm(x, size,
# alpha, beta, k)` divides by $k + \frac{\alpha}{n} \sum_j (a^j)^2$: its $\alpha$ is applied to the
# *mean* of the squares, not the sum. To get the paper's layer, pass $n$ times the paper's
# $\alpha$, i.e. `alpha=5e-4`. cnnumpy's `LocalResponseNorm` follows PyTorch's definition, and
# `cnnumpy.models.alexnet` passes $5\alpha$. We check all three against a direct loop over the
# paper's formula, on inputs large enough for the normalisation to matter.

# %%
print(f"cnnumpy's AlexNet: size={LRN_SIZE}, paper alpha={LRN_ALPHA}, beta={LRN_BETA}, k={LRN_K}")


def lrn_paper(a, n=5, alpha=1e-4, beta=0.75, k=2.0):
    """The paper's formula, channel by channel."""
    channels = a.shape[1]
    b = np.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        energy = np.sum(a[:, lo : hi + 1] ** 2, axis=1)
        b[:, i] = a[:, i] / (k + alpha * energy) ** beta
    return b


a = 40 * np.abs(rng.standard_normal((2, 8, 5, 5)))  # ReLU outputs of a few tens
paper = lrn_paper(a)
ours, _ = F.local_response_norm_forward(a, size=5, alpha=5 * 1e-4, beta=0.75, k=2.0)
layer = cn.nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)
torch_out = TF.local_response_norm(t(a), 5, alpha=5 * 1e-4, beta=0.75, k=2.0).numpy()
for name, out in [("F.local_response_norm_forward", ours), ("nn.LocalResponseNorm", layer(a)),
                  ("torch local_response_norm", torch_out)]:
    err = relative_error(out, paper)
    print(f"{name:30s} (alpha = 5e-4) vs the paper's formula (alpha = 1e-4): {err:.1e}")
    assert err < 1e-14

wrong = TF.local_response_norm(t(a), 5, alpha=1e-4, beta=0.75, k=2.0).numpy()
print(f"torch with alpha = 1e-4 instead is off by {relative_error(wrong, paper):.0%}")
print(f"mean damping factor a/b on these inputs: {np.mean(a / paper):.2f}")

# %% [markdown]
# **The backward.** Write $d_c = k + \frac{\alpha}{n} \sum_{c' \in W(c)} a_{c'}^2$ for the
# denominator's base, so $b_c = a_c\, d_c^{-\beta}$. Input $a_c$ appears in its own output and in
# the denominator of every $b_{c'}$ whose window $W(c')$ contains $c$, with
# $\partial d_{c'} / \partial a_c = 2 \frac{\alpha}{n} a_c$. Hence
#
# $$\frac{\partial L}{\partial a_c} = \frac{\partial L}{\partial b_c}\, d_c^{-\beta}
# \;-\; \frac{2 \alpha \beta}{n}\, a_c \sum_{c'\,:\, c \in W(c')} \frac{\partial L}{\partial b_{c'}}
# \, a_{c'}\, d_{c'}^{-\beta - 1}.$$
#
# The second sum is again a window sum over channels (the window mirrored), which is how
# `local_response_norm_backward` computes it. We check it against central differences and
# PyTorch's autograd, for the odd size AlexNet uses and an even one (PyTorch's window is then
# $n/2$ channels in front and $n/2 - 1$ behind).

# %%
for size in (5, 4):
    hyper = dict(size=size, alpha=size * 1e-4, beta=0.75, k=2.0)
    out, cache = F.local_response_norm_forward(a, **hyper)
    dout = rng.standard_normal(out.shape)
    dx = F.local_response_norm_backward(dout, cache)
    # The inputs are about 40, so a step of 1e-4 is still small and keeps the rounding error low.
    forward = lambda hyper=hyper: F.local_response_norm_forward(a, **hyper)[0]
    numeric = numerical_gradient_array(forward, a, dout, h=1e-4)
    at = t(a, grad=True)
    TF.local_response_norm(at, **hyper).backward(t(dout))
    e_num, e_torch = relative_error(dx, numeric), relative_error(dx, at.grad.numpy())
    print(f"size {size}: dx vs numerical {e_num:.1e}, vs torch {e_torch:.1e}")
    assert e_num < 1e-8 and e_torch < 1e-12

# %% [markdown]
# ## Grouped convolution
#
# AlexNet was trained on two GTX 580 GPUs with 3 GB each, and the network was split in half
# along the channels: conv2, conv4 and conv5 read only the maps on their own GPU. That is a
# **grouped convolution** with $G = 2$ groups: the $C$ input channels and the $F$ filters are
# each cut into $G$ groups, and the filters of group $g$ see only the input channels of group $g$.
# A filter then has $C/G$ input channels instead of $C$, so the weights are divided by $G$:
#
# $$\text{weights} = F \cdot \frac{C}{G} \cdot k^2 .$$
#
# For AlexNet's conv2 (96 to 256 maps, $5 \times 5$): $256 \cdot 96 \cdot 25 = 614{,}400$
# weights in one group, $256 \cdot 48 \cdot 25 = 307{,}200$ in two. The biases (one per filter)
# are not halved.

# %%
full = cn.nn.Conv2d(96, 256, 5, groups=1, rng=rng)
split = cn.nn.Conv2d(96, 256, 5, groups=2, rng=rng)
print(f"conv2, 1 group:  weight {full.weight.shape}, {n_params(full):,} parameters")
print(f"conv2, 2 groups: weight {split.weight.shape}, {n_params(split):,} parameters")
assert full.weight.data.size == 614_400 and split.weight.data.size == 307_200
assert n_params(full) - 256 == 2 * (n_params(split) - 256)

# %% [markdown]
# A grouped convolution is the same as running $G$ ordinary convolutions, one per slice of the
# channels, and concatenating their outputs. We check that, and PyTorch's `groups=`, on a small
# case, then the backward: in each group it is the ordinary convolution's backward, so `dx` of
# each input slice comes only from its own group's filters.

# %%
x = rng.standard_normal((2, 6, 7, 7))
w = rng.standard_normal((4, 3, 3, 3))  # 6 -> 4 channels in 2 groups: each filter reads 3
b = rng.standard_normal(4)
grouped, cache = F.conv2d_forward(x, w, b, groups=2, padding=1)
halves = [F.conv2d_forward(x[:, 3 * g : 3 * g + 3], w[2 * g : 2 * g + 2], b[2 * g : 2 * g + 2],
                           padding=1)[0] for g in range(2)]
e_split = relative_error(grouped, np.concatenate(halves, axis=1))
e_torch = relative_error(grouped, TF.conv2d(t(x), t(w), t(b), groups=2, padding=1).numpy())
print(f"groups=2 vs two convolutions concatenated: {e_split:.1e}; vs torch: {e_torch:.1e}")
assert e_split < 1e-14 and e_torch < 1e-12

dout = rng.standard_normal(grouped.shape)
dx, dw, db = F.conv2d_backward(dout, cache)
forward = lambda: F.conv2d_forward(x, w, b, groups=2, padding=1)[0]
xt, wt, bt = t(x, True), t(w, True), t(b, True)
TF.conv2d(xt, wt, bt, groups=2, padding=1).backward(t(dout))
for name, ours, arr, ref in [("dx", dx, x, xt), ("dweight", dw, w, wt), ("dbias", db, b, bt)]:
    e_num = relative_error(ours, numerical_gradient_array(forward, arr, dout))
    e_torch = relative_error(ours, ref.grad.numpy())
    print(f"{name:8s} vs numerical {e_num:.1e}, vs torch {e_torch:.1e}")
    assert e_num < 1e-8 and e_torch < 1e-12

# %% [markdown]
# `cn.models.alexnet(groups=True)` builds the two-GPU layout (conv2, conv4 and conv5 grouped);
# `groups=False`, the default, is the single-GPU network everybody reimplements. Taken to the
# extreme, $G = C$ gives the depthwise convolution of MobileNet: one $k \times k$ filter per
# channel.
#
# ## VGG: stacks of $3 \times 3$
#
# VGG uses only $3 \times 3$ convolutions with stride 1 and padding 1. Two of them in a row see a
# $5 \times 5$ window of the input, three see $7 \times 7$ (each adds $k - 1 = 2$ to the receptive
# field, [tutorial 8](08_transposed_dilated.py)). With $C$ channels in and out (no biases), the stacks cost
#
# $$2 \cdot 3^2 C^2 = 18 C^2 \ \text{ against } \ 5^2 C^2 = 25 C^2, \qquad
# 3 \cdot 3^2 C^2 = 27 C^2 \ \text{ against } \ 7^2 C^2 = 49 C^2,$$
#
# 28% and 45% fewer weights, and each layer adds a ReLU, so the stack is *more* non-linear than
# the single large convolution it replaces. With cnnumpy's layers at $C = 256$:

# %%
C = 256
conv3 = lambda: cn.nn.Conv2d(C, C, 3, padding=1, bias=False, rng=rng)
two_3x3 = 2 * n_params(conv3())
three_3x3 = 3 * n_params(conv3())
one_5x5 = n_params(cn.nn.Conv2d(C, C, 5, padding=2, bias=False, rng=rng))
one_7x7 = n_params(cn.nn.Conv2d(C, C, 7, padding=3, bias=False, rng=rng))
print(f"two 3x3:   {two_3x3:,} weights   one 5x5: {one_5x5:,}   ({1 - two_3x3 / one_5x5:.0%} fewer)")
print(f"three 3x3: {three_3x3:,} weights   one 7x7: {one_7x7:,}   ({1 - three_3x3 / one_7x7:.0%} fewer)")
assert (two_3x3, one_5x5) == (18 * C**2, 25 * C**2)
assert (three_3x3, one_7x7) == (27 * C**2, 49 * C**2)

# %% [markdown]
# Without the ReLU in between, two stacked $3 \times 3$ convolutions are *exactly* one
# $5 \times 5$ convolution. Its kernel is
# $w_\text{eff}[f, c] = \sum_m w_1[m, c] * w_2[f, m]$, where $*$ is the full (true) 2-D
# convolution: each tap of the first kernel is spread by the second kernel, which is the
# scattering a transposed convolution does ([tutorial 8](08_transposed_dilated.py)). So `conv_transpose2d` computes
# $w_\text{eff}$ for us, treating the input channels $c$ as a batch. Not every $5 \times 5$
# convolution can be written this way (it has $25 C^2$ free numbers, the stack $18 C^2$): that
# is what the saved weights cost, and the ReLU in between gives the stack functions no single
# convolution has.

# %%
c_in, mid, c_out = 3, 4, 5
w1 = rng.standard_normal((mid, c_in, 3, 3))
w2 = rng.standard_normal((c_out, mid, 3, 3))
x = rng.standard_normal((2, c_in, 12, 12))

w_eff, _ = F.conv_transpose2d_forward(w1.transpose(1, 0, 2, 3).copy(), w2.transpose(1, 0, 2, 3).copy())
w_eff = w_eff.transpose(1, 0, 2, 3).copy()  # (c_in, c_out, 5, 5) -> (c_out, c_in, 5, 5)
stacked = F.conv2d_forward(F.conv2d_forward(x, w1)[0], w2)[0]
single = F.conv2d_forward(x, w_eff)[0]
e_stack = relative_error(stacked, single)
e_torch = relative_error(single, TF.conv2d(TF.conv2d(t(x), t(w1)), t(w2)).numpy())
print(f"w_eff {w_eff.shape}; two 3x3 convs vs one 5x5 conv: {e_stack:.1e}; vs torch's stack: {e_torch:.1e}")
assert e_stack < 1e-13 and e_torch < 1e-13

relu_between = F.conv2d_forward(np.maximum(F.conv2d_forward(x, w1)[0], 0), w2)[0]
print(f"with a ReLU in between the stack is no longer that 5x5 conv: "
      f"relative difference {relative_error(relu_between, single):.2f}")

# %% [markdown]
# The whole VGG-16 feature extractor (13 such convolutions, configuration D of the paper) has
# 14,714,688 parameters, the number torchvision reports for `vgg16().features`. cnnumpy's zoo
# builds it for $32 \times 32$ images (the classifier is smaller than the paper's, as the final
# map is $1 \times 1$):

# %%
vgg16 = cn.models.build_model("vgg16", rng=np.random.default_rng(0))
rows = summary(vgg16, (3, 32, 32))
convs = [r for r in rows if r.kind == "Conv2d"]
conv_params = sum(r.parameters for r in convs)
print(f"{len(convs)} convolutions, all 3x3: {conv_params:,} parameters; "
      f"whole network: {sum(r.parameters for r in rows):,}")
assert len(convs) == 13 and conv_params == 14_714_688

# %% [markdown]
# ## Inception: the $1 \times 1$ reduction
#
# A $1 \times 1$ convolution mixes channels at each pixel and nothing else: it is one fully
# connected layer, $C_\text{in} \to C_\text{out}$, applied to every pixel's channel vector with
# the same weights. (Check: a matrix product over the channel axis.)

# %%
x = rng.standard_normal((2, 6, 4, 4))
w = rng.standard_normal((3, 6, 1, 1))
per_pixel = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x)
err = relative_error(F.conv2d_forward(x, w)[0], per_pixel)
print(f"1x1 conv vs a matrix product over channels: {err:.1e}")
assert err < 1e-14

# %% [markdown]
# The Inception module runs $1 \times 1$, $3 \times 3$ and $5 \times 5$ convolutions (and a
# pooling) side by side and concatenates their outputs. Done directly, the $5 \times 5$ branch
# on many channels would dominate the cost, so GoogLeNet first **reduces** the channels with a
# $1 \times 1$ convolution. For a $k \times k$ convolution from $C_\text{in}$ to $C_\text{out}$
# channels, with a reduction to $R$ channels first:
#
# $$\text{direct: } k^2 C_\text{in} C_\text{out}, \qquad
# \text{reduced: } C_\text{in} R + k^2 R\, C_\text{out}.$$
#
# The example usually quoted is a $5 \times 5$ convolution from 256 to 128 channels, reduced to
# 64 first: $25 \cdot 256 \cdot 128 = 819{,}200$ weights direct, against
# $25 \cdot 64 \cdot 128 = 204{,}800$ for the reduced $5 \times 5$. The quoted figure leaves out
# the $1 \times 1$ layer's own $256 \cdot 64 = 16{,}384$ weights; with them the saving is
# $3.7\times$ rather than $4\times$. Multiply-adds (one per weight per output pixel, here on a
# $28 \times 28$ map) scale the same way. GoogLeNet's own inception (3a) $5 \times 5$ branch goes
# from 192 to 32 channels through 16. We count both with cnnumpy's layers (the real layers have
# biases, one per output channel, which we report separately) and with `summary`'s multiply-adds.


# %%
def branch_costs(c_in, reduce, c_out, k, size=28):
    direct = cn.nn.Conv2d(c_in, c_out, k, padding=k // 2, rng=rng)
    reduced = cn.nn.Sequential(cn.nn.Conv2d(c_in, reduce, 1, rng=rng), cn.nn.ReLU(),
                               cn.nn.Conv2d(reduce, c_out, k, padding=k // 2, rng=rng), cn.nn.ReLU())
    weights = lambda m: sum(p.data.size for n, p in m.named_parameters() if n.endswith("weight"))
    macs = lambda m: sum(r.multiply_adds for r in summary(m, (c_in, size, size)))
    return {"direct weights": weights(direct), "direct biases": n_params(direct) - weights(direct),
            "reduced weights": weights(reduced),
            "reduced biases": n_params(reduced) - weights(reduced),
            "direct mult-adds": macs(direct), "reduced mult-adds": macs(reduced)}


for label, (c_in, reduce, c_out) in {"5x5, 256 -> 128, reduced to 64": (256, 64, 128),
                                     "inception (3a) 5x5, 192 -> 32, reduced to 16": (192, 16, 32)}.items():
    cost = branch_costs(c_in, reduce, c_out, 5)
    formula_direct = 25 * c_in * c_out
    formula_reduced = c_in * reduce + 25 * reduce * c_out
    assert cost["direct weights"] == formula_direct and cost["reduced weights"] == formula_reduced
    assert cost["direct mult-adds"] == 28 * 28 * formula_direct
    assert cost["reduced mult-adds"] == 28 * 28 * formula_reduced
    print(label)
    print(f"  direct:  {cost['direct weights']:>9,} weights (+{cost['direct biases']} biases), "
          f"{cost['direct mult-adds']:>13,} mult-adds")
    print(f"  reduced: {cost['reduced weights']:>9,} weights (+{cost['reduced biases']} biases), "
          f"{cost['reduced mult-adds']:>13,} mult-adds   "
          f"({cost['direct weights'] / cost['reduced weights']:.1f}x fewer weights)")

assert 25 * 256 * 128 == 819_200 and 25 * 64 * 128 == 204_800 and 256 * 64 == 16_384

# %% [markdown]
# Whether the reduction costs accuracy is an empirical question: `cnnumpy experiment
# inception-1x1` trains a small net with and without it on MNIST (see the experiments page). The
# full module, with the numbers of table 1 of the paper for inception (3a), is
# `inception_v1_module(192, 64, 96, 128, 16, 32, 32)`. Its four branches and their parameters:

# %%
module = inception_v1_module(192, 64, 96, 128, 16, 32, 32, rng=rng)
out = module(rng.standard_normal((1, 192, 28, 28)).astype(np.float32))
print("output:", out.shape, "= 64 + 128 + 32 + 32 channels")
names = ["1x1", "1x1 reduce -> 3x3", "1x1 reduce -> 5x5", "3x3 max pool -> 1x1"]
per_branch = [n_params(b) for b in module.children()]
for name, count in zip(names, per_branch, strict=True):
    print(f"  {name:22s} {count:>8,} parameters")
print(f"  {'total':22s} {sum(per_branch):>8,}")
assert out.shape == (1, 256, 28, 28)
without = n_params(cn.nn.Conv2d(192, 128, 3, rng=rng)) + n_params(cn.nn.Conv2d(192, 32, 5, rng=rng))
print(f"the 3x3 and 5x5 convolutions alone, without reductions, would have {without:,}")

fig, ax = plt.subplots(figsize=(6, 2.5))
ax.barh(names[::-1], per_branch[::-1], color="tab:blue")
ax.set_xlabel("parameters")
ax.set_title("inception (3a): parameters per branch", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# - LRN divides each activation by the energy of its neighbouring channels. PyTorch's (and
#   cnnumpy's) `alpha` multiplies the *mean* of the squares, so the paper's $\alpha = 10^{-4}$
#   with $n = 5$ is `alpha=5e-4`.
# - A convolution with $G$ groups is $G$ independent convolutions on slices of the channels,
#   with $1/G$ of the weights.
# - Two $3 \times 3$ layers see what one $5 \times 5$ sees, with 18 instead of 25 weights per
#   channel pair, and a ReLU in between; without it they *are* a $5 \times 5$ convolution.
# - A $1 \times 1$ convolution is a per-pixel fully connected layer; put in front of a
#   $5 \times 5$, it cuts weights and multiply-adds by the ratio of the channel counts.

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
# # 12. ResNet
#
# Until 2015, stacking more layers stopped helping after about twenty. He, Zhang, Ren and Sun
# ("Deep residual learning for image recognition", 2015) showed that this was not over-fitting:
# deeper *plain* networks had a higher **training** error, which they called degradation. Their
# fix is one addition per block, $y = F(x) + x$, and it made 152-layer (and 1,001-layer)
# networks trainable. This tutorial looks at the problem, at the block's forward and backward
# pass, at the two kinds of shortcut used when the shape changes, and at the pre-activation
# block of the follow-up paper.

# %%
import collections
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import cnnumpy as cn
from cnnumpy.data import DataLoader, digits
from cnnumpy.inspect import numerical_gradient, relative_error
from cnnumpy.models.blocks import PadShortcut, basic_block, make_shortcut, preact_block
from cnnumpy.models.resnet import cifar_resnet

rng = np.random.default_rng(0)


def n_params(module):
    return sum(p.data.size for p in module.parameters())


def find(relative):
    """A file of the repository, from the notebook's folder or from the installed package."""
    for base in [Path.cwd(), *Path.cwd().parents, Path(cn.__file__).resolve().parents[1]]:
        if (base / relative).is_file():
            return base / relative
    raise FileNotFoundError(relative)


# %% [markdown]
# ## Degradation: deeper plain networks train worse
#
# `cnnumpy experiment depth` trains the zoo's CIFAR-style networks `plain20`, `plain56`,
# `resnet20` and `resnet56` (at widths 4/8/16 instead of 16/32/64) on 2,000 MNIST images for 5
# epochs with SGD, everything else equal. A plain net is its ResNet twin with the shortcuts
# removed, so both have exactly the same parameters. The run below was made with
# `OPENBLAS_NUM_THREADS=1 cnnumpy experiment depth --dataset mnist --data-dir
# ../shared/data/mnist --seed 0` and its numbers are in `docs/experiments/depth.json`
# (the experiments page has seeds 1 and 2 as well). We read the file and plot it.

# %%
depth = json.loads(find("docs/experiments/depth.json").read_text())
config, runs = depth["config"], depth["runs"]
print({k: config[k] for k in ("dataset", "n_train", "epochs", "lr", "batch_size", "widths")})

fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(12, 4))
window = 16
for name, run in runs.items():
    style = dict(color="C3" if name.startswith("plain") else "C0",
                 linestyle="-" if name.endswith("56") else "--", label=name)
    loss = np.convolve(run["loss"], np.ones(window) / window, mode="valid")
    ax_loss.plot(np.arange(window, len(run["loss"]) + 1), loss, **style)
    epochs = np.arange(1, len(run["train_acc"]) + 1)
    ax_err.plot(epochs, 100 * (1 - np.asarray(run["train_acc"])), marker="o", **style)
    print(f"{name:9s} {run['parameters']:,} parameters, training loss in epoch 5 "
          f"{run['loss_per_epoch'][-1]:.2f}, training error after epoch 5 "
          f"{1 - run['train_acc'][-1]:.1%}")
ax_loss.set(xlabel="iteration", ylabel="training loss (moving average)", title="training loss")
ax_err.set(xlabel="epoch", ylabel="training error (%)", title="training error (eval mode)",
           xticks=np.arange(1, config["epochs"] + 1))
ax_loss.legend()
plt.tight_layout()
plt.show()

assert runs["plain56"]["loss_per_epoch"][-1] > runs["plain20"]["loss_per_epoch"][-1]
assert runs["resnet56"]["loss_per_epoch"][-1] < runs["resnet20"]["loss_per_epoch"][-1]
assert runs["plain56"]["parameters"] == runs["resnet56"]["parameters"]

# %% [markdown]
# The 56-layer plain net (red, solid) ends with a *higher* training loss and error than the
# 20-layer one (red, dashed): more parameters, worse fit of the training set. The residual
# networks (blue) go the other way: 56 layers fit better than 20. (This is a short run; the
# training error is measured in eval mode on 1,000 training images and is noisy, the loss is the
# steadier signal.)
#
# A deeper network can always do at least as well as a shallower one *in principle*: copy the
# shallow one and make the extra layers the identity. Degradation says that SGD does not find
# that solution. A residual block makes it the default: with $F = 0$ the block is the identity.
#
# **A live look at why.** Training these networks takes minutes, but one forward and backward at
# initialisation takes a second, and already shows a difference. Below we measure, for each
# convolution, the size of its weight gradient relative to its weights,
# $\lVert \partial L / \partial W \rVert / \lVert W \rVert$, on one batch of the built-in digits
# (train mode, the same widths as the experiment).

# %%
data = digits()
x_batch, y_batch = next(iter(DataLoader(*data.train, batch_size=128, shuffle=True, seed=0)))

fig, ax = plt.subplots(figsize=(8, 3.8))
for name in ("plain20", "resnet20", "plain56", "resnet56"):
    net = cifar_resnet(int(name[-2:]), 1, 10, 8, widths=(4, 8, 16), plain=name.startswith("plain"),
                       rng=np.random.default_rng(0))
    loss = cn.nn.CrossEntropyLoss()
    loss(net(x_batch), y_batch)
    net.backward(loss.backward())
    ratios = [np.linalg.norm(p.grad) / np.linalg.norm(p.data)
              for n, p in net.named_parameters() if p.data.ndim == 4]
    ax.semilogy(np.arange(1, len(ratios) + 1), ratios, label=name,
                color="C3" if name.startswith("plain") else "C0",
                linestyle="-" if name.endswith("56") else "--")
    blocks = ratios[1:]  # the stem (first conv) reads the image itself
    print(f"{name:9s} first conv {ratios[0]:.2e}, last conv {ratios[-1]:.2e}; over the blocks "
          f"max/min {max(blocks) / min(blocks):,.0f}, per layer x{(ratios[0] / ratios[-1]) ** (1 / (len(ratios) - 1)):.2f}")
ax.set(xlabel="convolution (input side first)", ylabel="|dL/dW| / |W|",
       title="weight gradients at initialisation, one batch")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# In the plain nets the gradient *grows* as it travels back towards the input: by a roughly
# constant factor per layer (printed above), which compounds to four orders of magnitude over
# 56 layers. The first layers then take steps far too large for their weights while the last
# ones barely move, and no single learning rate suits both. In the residual nets the ratio stays
# within about one order of magnitude over all the blocks. (The gradients do not *vanish*:
# batch normalisation prevents that, which is why He et al. called degradation an optimisation
# problem rather than a vanishing-gradient one. What we see at initialisation is the opposite,
# an explosion, in train mode.)
#
# ## The residual block, forward and backward
#
# A basic block computes $y = \operatorname{relu}(F(x) + x)$ with
# $F = \text{bn}_2 \circ \text{conv}_2 \circ \text{relu} \circ \text{bn}_1 \circ \text{conv}_1$
# ($3 \times 3$ convolutions, padding 1, so $F(x)$ has the shape of $x$). cnnumpy builds it as
# `Sequential(residual=Residual(body), relu=ReLU())`, and `nn.Residual` is the sum
# $s = F(x) + x$.
#
# **Backward.** The sum sends its incoming gradient unchanged into both of its inputs, and the
# two paths meet again at $x$, where gradients add:
#
# $$\frac{\partial L}{\partial x} = \Big(\frac{\partial F}{\partial x}\Big)^{\!\top}
# \frac{\partial L}{\partial s} + \frac{\partial L}{\partial s},
# \qquad \texttt{dx = body.backward(dout) + dout}.$$
#
# The second term is the point: whatever the body does to the gradient, the identity path
# delivers $\partial L / \partial s$ to $x$ untouched. We check `nn.Residual`'s backward three
# ways: against that formula evaluated by hand, against central differences of the block
# (float64, batch norm in train mode), and against a PyTorch twin with the same weights.

# %%
block = basic_block(4, 4, 1, shortcut="A", plain=False, rng=rng).to(np.float64)
residual, body = block.residual, block.residual.body
for bn in (body.bn1, body.bn2):  # random affine parameters, so that nothing is trivially 1 or 0
    bn.weight.data[...] = rng.uniform(0.5, 1.5, 4)
    bn.bias.data[...] = rng.uniform(-0.5, 0.5, 4)

x = rng.standard_normal((3, 4, 5, 5))
dout = rng.standard_normal(x.shape)

s = residual(x)
dx = residual.backward(dout)
weight_grads = {n: p.grad.copy() for n, p in residual.named_parameters()}
residual.zero_grad()

body(x)
by_hand = body.backward(dout) + dout
residual.zero_grad()

numeric = numerical_gradient(lambda: float(np.sum(residual(x) * dout)), x)
residual.zero_grad()

twin = torch.nn.Sequential(collections.OrderedDict(
    conv1=torch.nn.Conv2d(4, 4, 3, padding=1, bias=False), bn1=torch.nn.BatchNorm2d(4),
    relu1=torch.nn.ReLU(), conv2=torch.nn.Conv2d(4, 4, 3, padding=1, bias=False),
    bn2=torch.nn.BatchNorm2d(4))).double()
twin.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in body.state_dict().items()})
xt = torch.tensor(x, requires_grad=True)
st = twin(xt) + xt
st.backward(torch.from_numpy(dout))

checks = {
    "output vs torch": relative_error(s, st.detach().numpy()),
    "dx vs body.backward(dout) + dout": relative_error(dx, by_hand),
    "dx vs numerical": relative_error(dx, numeric),
    "dx vs torch": relative_error(dx, xt.grad.numpy()),
}
for name, p in twin.named_parameters():
    checks[f"d{name} vs torch"] = relative_error(weight_grads[f"body.{name}"], p.grad.numpy())
for name, err in checks.items():
    print(f"{name:34s} {err:.1e}")
    assert err < (1e-7 if "numerical" in name else 1e-11), name

# %% [markdown]
# Unrolled over a stack of blocks without the final ReLU (the pre-activation form below),
# $x_{l+1} = x_l + F_l(x_l)$ gives $x_L = x_l + \sum_{i=l}^{L-1} F_i(x_i)$ and
#
# $$\frac{\partial L}{\partial x_l} = \frac{\partial L}{\partial x_L}
# \Big(1 + \frac{\partial}{\partial x_l} \sum_{i=l}^{L-1} F_i(x_i)\Big):$$
#
# the gradient of the top reaches every block directly, added to, not multiplied by, what the
# blocks in between do.
#
# ## Shortcuts when the shape changes: options A and B
#
# The first block of a stage halves the map (stride 2 in $\text{conv}_1$) and doubles the
# channels, so $x$ no longer has the shape of $F(x)$ and cannot be added as it is. The paper
# gives two options:
#
# - **A, zero padding** (the paper's choice for CIFAR): take every other pixel of $x$ and append
#   zero channels, $\text{out}[:, :C] = x[:, :, ::2, ::2]$, $\text{out}[:, C:] = 0$. No
#   parameters. Its backward routes the first $C$ channels of the gradient to the kept pixels
#   and gives every other pixel zero.
# - **B, projection**: a $1 \times 1$ convolution with stride 2 from $C$ to $2C$ channels,
#   followed by batch norm: $2C^2$ weights and $4C$ batch-norm parameters.

# %%
pad = PadShortcut(8, stride=2)
x = rng.standard_normal((2, 4, 6, 6))
out = pad(x)
expected = np.concatenate([x[:, :, ::2, ::2], np.zeros((2, 4, 3, 3))], axis=1)
assert np.array_equal(out, expected)
dout = rng.standard_normal(out.shape)
dx = pad.backward(dout)
numeric = numerical_gradient(lambda: float(np.sum(pad(x) * dout)), x)
err = relative_error(dx, numeric)
print(f"option A: {x.shape} -> {out.shape}, {n_params(pad)} parameters; dx vs numerical {err:.1e}")
assert n_params(pad) == 0 and err < 1e-8

for c in (16, 32):
    projection = make_shortcut(c, 2 * c, 2, "B", rng)
    print(f"option B, {c} -> {2 * c} channels: {n_params(projection):,} parameters "
          f"({2 * c * c:,} weights + {4 * c} batch norm)")
    assert n_params(projection) == 2 * c * c + 4 * c

# %% [markdown]
# ## ResNet-20's parameters
#
# The CIFAR ResNets have a $3 \times 3$ stem with 16 filters, three stages of $n$ blocks with
# 16, 32 and 64 filters, global average pooling and a linear classifier: $6n + 2$ weighted
# layers, so $n = 3$ gives ResNet-20. With option A the count is that of the convolutions
# ($3 \times 3$, no biases: a batch norm follows each), the batch norms ($2C$ each) and the
# classifier:

# %%
conv = lambda c_in, c_out: 9 * c_in * c_out
bn = lambda c: 2 * c
stem = conv(3, 16) + bn(16)
stage1 = 3 * (2 * conv(16, 16) + 2 * bn(16))
stage2 = conv(16, 32) + conv(32, 32) + 2 * bn(32) + 2 * (2 * conv(32, 32) + 2 * bn(32))
stage3 = conv(32, 64) + conv(64, 64) + 2 * bn(64) + 2 * (2 * conv(64, 64) + 2 * bn(64))
fc = 64 * 10 + 10
by_formula = stem + stage1 + stage2 + stage3 + fc
print(f"stem {stem:,} + stage1 {stage1:,} + stage2 {stage2:,} + stage3 {stage3:,} + fc {fc:,} "
      f"= {by_formula:,}")

counts = {}
for label, name, kw in [("resnet20, option A", "resnet20", {}),
                        ("plain20", "plain20", {}),
                        ("resnet20, option B", "resnet20", {"shortcut": "B"}),
                        ("preact_resnet20 (B)", "preact_resnet20", {})]:
    counts[label] = n_params(cn.models.build_model(name, rng=np.random.default_rng(0), **kw))
    print(f"{label:22s} {counts[label]:,}")

assert by_formula == counts["resnet20, option A"] == counts["plain20"] == 269_722
assert counts["resnet20, option B"] == 269_722 + (2 * 16 * 16 + 4 * 16) + (2 * 32 * 32 + 4 * 32)

# %% [markdown]
# ResNet-20 with option A and its plain twin both have 269,722 parameters (the paper's "0.27M"):
# the shortcuts add none, so the comparison between them is fair. Option B adds the two
# projections' 2,752. The pre-activation network's count differs again: its batch norms sit on
# the inputs of the blocks (plus one before the pooling), and its projections have none.
#
# ## Pre-activation: BN, ReLU, then the convolution
#
# In the original block the ReLU comes *after* the addition, so the identity path is not quite
# an identity: $x_{l+1} = \operatorname{relu}(x_l + F(x_l))$. He, Zhang, Ren and Sun ("Identity
# mappings in deep residual networks", 2016) moved batch norm and ReLU in front of each
# convolution:
#
# $$x_{l+1} = x_l + \text{conv}_2(\operatorname{relu}(\text{bn}_2(\text{conv}_1(
# \operatorname{relu}(\text{bn}_1(x_l)))))),$$
#
# which leaves nothing on the shortcut path at all, so the unrolled formula above holds exactly.
# A concrete way to see the difference: zero the last layer of every body, so that $F = 0$. A
# pre-activation stack is then exactly the identity, forward and backward; an original stack is
# a ReLU, which zeroes the negative inputs and their gradients.

# %%
pre = cn.nn.Sequential(*[preact_block(4, 4, 1, rng=rng) for _ in range(3)]).to(np.float64)
post = cn.nn.Sequential(*[basic_block(4, 4, 1, shortcut="A", plain=False, rng=rng)
                          for _ in range(3)]).to(np.float64)
print(pre[0])
for b in pre:
    b.body.conv2.weight.data[...] = 0.0  # F = 0
for b in post:
    b.residual.body.bn2.weight.data[...] = 0.0  # F = 0 (bn2's scale, its shift is 0 too)

x = rng.standard_normal((2, 4, 5, 5))
dout = rng.standard_normal(x.shape)
for name, stack in (("pre-activation", pre), ("original", post)):
    out = stack(x)
    dx = stack.backward(dout)
    print(f"{name:15s} output == x: {np.array_equal(out, x)!s:5s}  dx == dout: "
          f"{np.array_equal(dx, dout)!s:5s}  zeroed gradient entries: {np.mean(dx == 0):.0%}")
assert np.array_equal(pre(x), x)
assert np.array_equal(pre.backward(dout), dout)

# %% [markdown]
# The paper found the pre-activation block trains 1,001-layer networks that the original
# cannot, and generalises better. cnnumpy's `preact_resnet20/56/110` and the Wide ResNets are
# built from `preact_block`.
#
# ## Summary
#
# - Deeper plain networks fit their *training* set worse (degradation); in our measurement their
#   gradients grow by orders of magnitude towards the input at initialisation.
# - A residual block adds its input to its output; its backward adds the incoming gradient to
#   the body's: `dx = body.backward(dout) + dout`.
# - When the shape changes, option A pads with zero channels (no parameters, so ResNet-20 keeps
#   its plain twin's 269,722), option B projects with a $1 \times 1$ convolution.
# - Pre-activation blocks leave the shortcut path a pure identity: $F = 0$ gives exactly
#   $y = x$ and $dx = dout$.

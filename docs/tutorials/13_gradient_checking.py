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
# # 13. Gradient checking
#
# Every backward pass in cnnumpy was derived by hand, and a derivation can be wrong in ways
# that still train (a missing factor of 2 is a different learning rate). The check that needs
# no derivation is the definition of the derivative itself: nudge a parameter, run the forward
# pass again and watch the loss change. This page shows why the *centred* difference is the
# one to use, how to compare its answer with the backward's, why the check must run in
# float64, where it breaks (kinks), and how `cnnumpy gradcheck` applies it to a whole model.

# %%
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np

import cnnumpy.functional as cnf
from cnnumpy.inspect import check_model_gradients, numerical_gradient_array, relative_error
from cnnumpy.models import MODELS, build_model
from cnnumpy.train.factory import criterion_for

np.set_printoptions(precision=3, suppress=True, linewidth=110)
rng = np.random.default_rng(0)

# %% [markdown]
# ## One-sided and centred differences
#
# Taylor's theorem around $x$:
#
# $$
# f(x \pm h) = f(x) \pm h f'(x) + \frac{h^2}{2} f''(x) \pm \frac{h^3}{6} f'''(x) + O(h^4).
# $$
#
# The one-sided (forward) difference keeps the $h^2$ term:
#
# $$
# \frac{f(x + h) - f(x)}{h} = f'(x) + \frac{h}{2} f''(x) + O(h^2),
# $$
#
# an error proportional to $h$. In the centred difference the even terms cancel:
#
# $$
# \frac{f(x + h) - f(x - h)}{2h} = f'(x) + \frac{h^2}{6} f'''(x) + O(h^4),
# $$
#
# an error proportional to $h^2$: at $h = 10^{-5}$, of order $10^{-10}$ rather than $10^{-5}$,
# for twice the evaluations per entry. There is a second error: $f$ is computed with a
# relative rounding error of about $\varepsilon$ (machine epsilon, $2.2 \times 10^{-16}$ in
# float64), and the difference divides it by $h$, adding about $\varepsilon |f| / h$.
# Shrinking $h$ lowers the first error and raises the second; the best $h$ balances them, near
# $\varepsilon^{1/2} \approx 10^{-8}$ for the one-sided difference and
# $\varepsilon^{1/3} \approx 6 \times 10^{-6}$ for the centred one.
#
# Measured on $f = \tanh$ at $x = 0.5$, whose derivative is $1 - \tanh^2 x$, over steps from
# $10^{-1}$ to $10^{-13}$, in float64 and in float32 ($\varepsilon = 1.2 \times 10^{-7}$):

# %%
steps = np.logspace(-1, -13, 61)


def difference_errors(dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Errors of the one-sided and centred quotients of tanh at 0.5, one per step."""
    x = dtype(0.5)
    exact = 1.0 - np.tanh(np.float64(0.5)) ** 2
    forward, centred = [], []
    for h in steps:
        # The step actually taken is what x + h rounds to in this precision.
        up, down = dtype(x + dtype(h)), dtype(x - dtype(h))
        forward.append(abs((np.tanh(up) - np.tanh(x)) / (up - x) - exact) if up != x else np.nan)
        centred.append(abs((np.tanh(up) - np.tanh(down)) / (up - down) - exact)
                       if up != down else np.nan)
    return np.array(forward), np.array(centred)


errors = {dtype.__name__: difference_errors(dtype) for dtype in (np.float64, np.float32)}

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 4.2))
styles = {"float64": "-", "float32": ":"}
for name, (forward, centred) in errors.items():
    ax.loglog(steps, forward, styles[name], color="tab:orange",
              label=f"one-sided, {name}" + (" (error ∝ h)" if name == "float64" else ""))
    ax.loglog(steps, centred, styles[name], color="tab:blue",
              label=f"centred, {name}" + (" (error ∝ h²)" if name == "float64" else ""))
ax.set_xlabel("step h")
ax.set_ylabel("|difference quotient - f'(x)|")
ax.set_title("Error of the difference quotients of tanh at x = 0.5")
ax.invert_xaxis()
ax.legend(loc="upper right", fontsize=9)
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %%
print(f"{'h':>8}" + "".join(f"{name + ' ' + label:>20}" for name in errors
                              for label in ("one-sided", "centred")))
for h in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-8, 1e-10):
    k = np.argmin(np.abs(np.log(steps / h)))
    cells = [f"{err[k]:.1e}" if np.isfinite(err[k]) else "x + h == x"
             for pair in errors.values() for err in pair]
    print(f"{h:>8.0e}" + "".join(f"{cell:>20}" for cell in cells))

# %% [markdown]
# The plot reads from left (large $h$) to right (small $h$). Both lines fall with the slopes
# Taylor predicts, each tenfold smaller step dividing the one-sided error by 10 and the
# centred one by 100, until rounding takes over and the errors grow again as $1/h$, noisily.
# In float64 the centred difference reaches errors a few orders of magnitude below the
# one-sided one, over a wide range of steps around $10^{-6}$. In float32 rounding takes over
# at steps around $10^{-3}$ (below $10^{-7}$ the step is lost altogether: $x + h$ rounds to
# $x$), and no step gets below about $10^{-6}$: too coarse to
# tell a correct backward from one that is slightly wrong. cnnumpy's `numerical_gradient`
# therefore uses centred differences, in float64, with $h = 10^{-6}$.
#
# ## Comparing two gradients: the relative error
#
# A gradient check compares an analytic gradient $a$ with a numerical one $n$. The absolute
# difference depends on the scale of the gradient, which can be $10^{-8}$ in one layer and
# $10^{3}$ in another, so the comparison is relative. CS231n's formula, entry by entry, is
# $|a - n| / \max(|a|, |n|)$. cnnumpy's `relative_error` scales by the whole array instead:
#
# $$
# \mathrm{rel}(a, n) = \frac{\max_k |a_k - n_k|}
#     {\max(\max_k |a_k|,\ \max_k |n_k|,\ \mathrm{floor})},
# $$
#
# because an entry that is zero in exact arithmetic comes out of a centred difference as
# rounding noise, about $10^{-11}$, and divided by itself that is a "relative error" of 1 for a
# correct backward. The optional floor handles gradients that are zero throughout (a bias
# followed by batch normalisation). Rules of thumb for float64 and centred differences: below
# $10^{-7}$ the backward is right; $10^{-4}$ to $10^{-2}$ is suspicious unless kinks are
# involved (below); above that it is wrong.

# %%
analytic = np.array([2.5, -1.0, 0.0, 3e-4])
numeric = np.array([2.5 + 1e-10, -1.0 - 2e-11, 4e-11, 3e-4 + 1e-11])
entrywise = np.abs(analytic - numeric) / np.maximum(np.abs(analytic), np.abs(numeric))
print("entry by entry:", entrywise)
print("cnnumpy's relative_error:", f"{relative_error(analytic, numeric):.1e}")

# %% [markdown]
# ## Checking a layer, and catching a bug
#
# For a layer with array output, the scalar to differentiate is $L = \sum \mathrm{out} \cdot
# \mathrm{dout}$ for a random `dout`: its gradient is exactly what the backward returns when
# handed that `dout`. `numerical_gradient_array(f, x, dout)` perturbs each entry of `x` in
# place, calls `f()` twice, and restores it. Here it checks the convolution's input gradient
# (derived in [tutorial 2](02_conv_backward.py)), and a wrong version of it that forgets to
# rotate the kernel by 180 degrees:

# %%
x = rng.standard_normal((2, 3, 6, 6))
w = rng.standard_normal((4, 3, 3, 3))
out, cache = cnf.conv2d_forward(x, w, padding=1)
dout = rng.standard_normal(out.shape)
dx, dw, _ = cnf.conv2d_backward(dout, cache)


def conv_dx_unrotated(dout: np.ndarray, w: np.ndarray) -> np.ndarray:
    """A plausible mistake: dx as the full correlation with w, not with w rotated."""
    padded = np.pad(dout, ((0, 0), (0, 0), (2, 2), (2, 2)))
    full, _ = cnf.conv2d_forward(padded, w.transpose(1, 0, 2, 3))
    return full[:, :, 1:-1, 1:-1]


numeric_dx = numerical_gradient_array(lambda: cnf.conv2d_forward(x, w, padding=1)[0], x, dout)
print(f"correct dx:          relative error {relative_error(dx, numeric_dx):.1e}")
print(f"kernel not rotated:  relative error "
      f"{relative_error(conv_dx_unrotated(dout, w), numeric_dx):.1e}")

# %% [markdown]
# ### Float32 is not precise enough to check
#
# The same check with the layer in float32: a step of $10^{-6}$ is below float32's resolution
# for inputs of size 1 (its spacing there is $1.2 \times 10^{-7}$), and the forward's own
# rounding, divided by $2h$, swamps the answer. A larger step helps, but not enough to separate
# a correct backward from a subtly wrong one:

# %%
x32, w32, dout32 = x.astype(np.float32), w.astype(np.float32), dout.astype(np.float32)
dx32 = cnf.conv2d_backward(dout32, cnf.conv2d_forward(x32, w32, padding=1)[1])[0]
for h in (1e-6, 1e-4, 1e-2):
    numeric32 = numerical_gradient_array(
        lambda: cnf.conv2d_forward(x32, w32, padding=1)[0], x32, dout32, h=h)
    print(f"float32, h = {h:.0e}: relative error {relative_error(dx32, numeric32):.1e}")

# %% [markdown]
# ### One random direction for large inputs
#
# An entry-by-entry check costs two forward passes per entry. For a large input a single
# random direction $v$ already tests every entry at once: the centred difference along $v$
# should equal the directional derivative $\nabla L \cdot v$ that the backward implies.

# %%
x_big = rng.standard_normal((8, 16, 24, 24))
w_big = rng.standard_normal((16, 16, 3, 3))
out_big, cache_big = cnf.conv2d_forward(x_big, w_big, padding=1)
dout_big = rng.standard_normal(out_big.shape)
dx_big = cnf.conv2d_backward(dout_big, cache_big)[0]
v = rng.standard_normal(x_big.shape)
h = 1e-6


def loss_along(t: float) -> float:
    """L at x + t v."""
    return np.sum(cnf.conv2d_forward(x_big + t * v, w_big, padding=1)[0] * dout_big)


directional = (loss_along(h) - loss_along(-h)) / (2 * h)
predicted = np.sum(dx_big * v)
print(f"{x_big.size:,} input entries, 2 forward passes")
print(f"centred difference {directional:.8f}, backward {predicted:.8f},"
      f" relative error {abs(directional - predicted) / abs(predicted):.1e}")

# %% [markdown]
# ## Kinks
#
# The centred difference assumes $f$ is smooth between $x - h$ and $x + h$. ReLU at 0 and max
# at a tie are not: their derivative jumps. If an input lies within $h$ of the kink, the
# difference quotient averages the two slopes and reports something neither side has.
#
# **ReLU.** $\max(0, x)$ has slope 0 left of 0 and 1 right of it. For $|x| < h$ the centred
# difference is $(x + h) / 2h$, anything between 0 and 1:

# %%
x_relu = np.array([-0.3, -4e-7, 0.0, 2e-7, 5e-7, 0.4])
out, cache = cnf.relu_forward(x_relu)
numeric_relu = numerical_gradient_array(
    lambda: cnf.relu_forward(x_relu)[0], x_relu, np.ones_like(x_relu), h=1e-6)
print(f"{'x':>10}{'analytic':>10}{'numerical':>11}")
for value, a, n in zip(x_relu, cnf.relu_backward(np.ones_like(x_relu), cache), numeric_relu,
                       strict=True):
    print(f"{value:>10.1e}{a:>10.2f}{n:>11.2f}")

# %% [markdown]
# **Max at a tie.** Two equal values in a pooling window: the numerical gradient gives half to
# each, the backward (like PyTorch's) all of it to the first ([tutorial 3](03_pooling.py)).
#
# How to avoid them:
#
# - Draw inputs that keep away from the kink: cnnumpy's tests shift ReLU inputs away from 0
#   and use *tie-free* inputs for max pooling (distinct values, spaced far more than $h$
#   apart), so no nudge can change a sign or an argmax.
# - In a network the kinks are met by intermediate values, which cannot be placed by hand. With
#   random inputs few of them land within $h$ of a kink, and a smaller step makes that rarer
#   still: `check_model_gradients` retries an entry whose error is too large with $h$ ten,
#   a hundred and a thousand times smaller. A wrong backward fails at every step.
# - Check fewer entries: a kink affects a few of them, so a check of a random sample is
#   unlikely to meet one, and a bug usually shows in every entry.
#
# ## A whole model: check_model_gradients and cnnumpy gradcheck
#
# `check_model_gradients(model, loss, x, y)` runs the model and its loss forward and backward
# once, then compares, for a random sample of the entries of every parameter and of the input,
# the gradient the backward accumulated with a centred difference of the loss. Noise layers
# (dropout) have their random generators rewound before every forward, so every evaluation
# sees the same mask. On CS231n's three-layer convnet and on LeNet-5, at the reduced widths
# used for checking, in float64 and train mode:

# %%
for name in ("convnet", "lenet5"):
    spec = MODELS[name]
    model_rng = np.random.default_rng(0)
    model = build_model(name, tiny=True, input_size=spec.tiny_size, rng=model_rng)
    model = model.to(np.float64)
    model.train()
    images = model_rng.standard_normal((4, 1, spec.tiny_size, spec.tiny_size))
    labels = model_rng.integers(0, 10, 4)
    errors = check_model_gradients(model, criterion_for(model), images, labels)
    print(f"{name}: input {images.shape}")
    for parameter, error in errors.items():
        print(f"  {parameter:12} {error:.1e}")

# %% [markdown]
# The command line does the same for any model of the zoo, and exits with status 1 if an error
# exceeds `--tolerance` (default $10^{-6}$):

# %%
result = subprocess.run([sys.executable, "-m", "cnnumpy", "gradcheck", "resnet20"],
                        capture_output=True, text=True, check=True)
lines = result.stdout.splitlines()
print("$ cnnumpy gradcheck resnet20")
print("\n".join([*lines[:5], f"... ({len(lines) - 7} more parameters)", *lines[-2:]]))

# %% [markdown]
# A model whose check fails at every step is a real bug. One that fails only at some entries
# and passes with a smaller step is a kink. The two deepest plain networks of the zoo,
# `plain50` and `plain110`, fail for a third reason: without shortcuts their gradients at
# initialisation explode through 50 to 110 batch-normalised layers, the loss is too curved for
# any step to resolve, and their backward is checked exactly against PyTorch twins instead.

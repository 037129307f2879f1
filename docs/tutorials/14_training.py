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
# # 14. Training end to end
#
# This tutorial trains a small convnet from data to a prediction on an image you make yourself,
# and looks at every step on the way: the normalisation, the training loop and its callbacks,
# when to stop, the learning curves, the confusion matrix and the mistakes. It uses the $8 \times
# 8$ digits that ship with cnnumpy (through scikit-learn), so it runs in seconds and needs no
# download; `cnnumpy train` does the same from the command line.

# %%
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.ndimage import zoom

import cnnumpy as cn
from cnnumpy.data import DataLoader, digits
from cnnumpy.inspect import class_probabilities, confusion_matrix, most_confident_errors
from cnnumpy.train import Trainer
from cnnumpy.train.callbacks import BestModel, Callback, EarlyStopping, Evaluate

# %% [markdown]
# ## The data, and a normalisation fitted on the training split
#
# scikit-learn's digits are 1,797 images of $8 \times 8$ pixels. Each pixel counts the ink in a
# $4 \times 4$ block of a $32 \times 32$ black-and-white scan, so it lies in $0..16$. cnnumpy
# splits them once and for all into 1,257 training, 270 validation and 270 test images, each
# class in the same proportion in all three.

# %%
data = digits()
print(data)
for part in ("train", "val", "test"):
    images, labels = getattr(data, part)
    print(f"{part:5s} {images.shape} {images.dtype}, values {images.min()}..{images.max()}, "
          f"images per class {np.bincount(labels).min()}-{np.bincount(labels).max()}")

fig, axes = plt.subplots(2, 10, figsize=(10, 2.3))
for ax, image, label in zip(axes.flat, data.train[0][:20], data.train[1][:20], strict=True):
    ax.imshow(image[0], cmap="gray_r", vmin=0, vmax=16)
    ax.set_title(str(label), fontsize=9)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# Networks train best on inputs of mean about 0 and variance about 1, so each channel is
# normalised, $x' = (x - \mu) / \sigma$. The mean $\mu$ and standard deviation $\sigma$ are
# measured on the **training** images only, and the same numbers are then applied to the
# validation and test images and to any image the model sees later. Measuring them on all the
# data would let the test set leak into training, and an image arriving later has no set to be
# measured with. The `DataLoader` of the training images fits them (`normalization`); the other
# loaders are given that object.

# %%
train_loader = DataLoader(*data.train, batch_size=32, shuffle=True, seed=0)
norm = train_loader.normalization
print(norm)
train_pixels = data.train[0].astype(np.float64)
assert np.isclose(norm.mean[0], train_pixels.mean()) and np.isclose(norm.std[0], train_pixels.std())

val_loader = DataLoader(*data.val, batch_size=270, normalization=norm)
test_loader = DataLoader(*data.test, batch_size=270, normalization=norm)
train_eval_loader = DataLoader(*data.train, batch_size=512, normalization=norm)  # no shuffling

x, y = next(iter(train_loader))
print(f"one training batch: x {x.shape} {x.dtype}, mean {x.mean():+.2f}, std {x.std():.2f}; y {y.shape}")

# %% [markdown]
# ## The model and the training loop
#
# The model is CS231n's three-layer convnet: conv ($3 \times 3$, 32 filters) - ReLU -
# $2 \times 2$ max pool - affine (100) - ReLU - affine (10), with a softmax cross-entropy loss.
# `Trainer` runs the loop every epoch: for each mini-batch, forward, loss, backward, optimiser
# step; and at named moments it calls its **callbacks**, which do everything else:
#
# - `Evaluate(val_loader, train_eval_loader)` measures the validation loss and accuracy, and the
#   accuracy on the training images, in eval mode after each epoch, and writes them into the
#   epoch's logs;
# - `BestModel()` copies the weights whenever the validation accuracy beats its best so far,
#   and loads the best copy back into the model at the end;
# - `EarlyStopping(patience=4)` stops training once the validation accuracy has not improved for
#   4 epochs in a row.
#
# The Trainer's own history keeps the loss of every mini-batch and each epoch's accuracies. A
# callback of our own, a few lines, also keeps each epoch's validation loss: it runs after
# `Evaluate` (callbacks that write the logs run first, then those that decide, then those that
# only read).


# %%
class ValidationLoss(Callback):
    """Keep each epoch's validation loss (written into the logs by Evaluate)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.values.append(logs["val_loss"])


model = cn.models.build_model("convnet", input_size=8, rng=np.random.default_rng(0))
print(model)
best = BestModel()
stopping = EarlyStopping(patience=4)
val_losses = ValidationLoss()
trainer = Trainer(model, cn.nn.CrossEntropyLoss(), cn.optim.Adam(model.parameters(), lr=1e-3),
                  train_loader, epochs=30,
                  callbacks=[Evaluate(val_loader, train_eval_loader), best, stopping, val_losses])
history = trainer.fit()

epochs_run = len(history["val_acc"])
for epoch in range(epochs_run):
    mark = "  <- best" if epoch + 1 == best.best_epoch else ""
    print(f"epoch {epoch + 1:2d}: train acc {history['train_acc'][epoch]:.1%}, val acc "
          f"{history['val_acc'][epoch]:.1%}, val loss {val_losses.values[epoch]:.3f}{mark}")
print(f"stopped after epoch {epochs_run} of 30; kept the weights of epoch {best.best_epoch}")

# %% [markdown]
# `EarlyStopping` stopped exactly `patience` epochs after the best one (unless the 30 epochs ran
# out first), and `BestModel` left the best epoch's weights in the model. We check both against
# the recorded history:

# %%
val_acc = np.asarray(history["val_acc"])
first_best = int(np.argmax(val_acc)) + 1  # the first epoch reaching the highest accuracy
assert best.best_epoch == first_best
assert epochs_run == min(30, first_best + 4)
_, acc_now = cn.train.callbacks.evaluate(model, trainer.loss, val_loader)
assert acc_now == val_acc[best.best_epoch - 1]
print(f"validation accuracy of the weights left in the model: {acc_now:.1%}")

# %% [markdown]
# ## Patience: cnnumpy's rule and the Theano tutorial's
#
# The deeplearning.net Theano tutorials (`mlp.py`, and `convolutional_mlp.py` for LeNet) stop
# with a different patience rule, counted in mini-batch iterations:
#
# ```python
# patience = 10000               # look at this many iterations (mini-batches) regardless
# patience_increase = 2          # wait this much longer when a new best is found
# improvement_threshold = 0.995  # a relative improvement of this much is significant
# ...
# if this_validation_loss < best_validation_loss:
#     if this_validation_loss < best_validation_loss * improvement_threshold:
#         patience = max(patience, iter * patience_increase)
#     best_validation_loss = this_validation_loss      # (and keep these weights)
# ...
# if patience <= iter:
#     done_looping = True
# ```
#
# With $i^*$ the iteration of the last *significant* improvement (better by more than 0.5%), it
# stops at $\max(p_0, 2 i^*)$: training continues for as long again as it took to get there.
# cnnumpy's `EarlyStopping` (and Keras's) stops at $i_\text{best} + p$: a fixed wait after the
# last improvement of any size. Both keep the best weights, as `BestModel` does. The difference
# is in the waiting time: constant in one, proportional to the time already spent in the other,
# so the Theano rule is patient late in a long run, when improvements come slowly, and the
# fixed rule is patient early. The Theano rule also ignores tiny improvements when extending
# patience (they still update the best model).
#
# Here are both rules applied to the validation errors recorded above, one validation per epoch
# (the Theano tutorial validates once per epoch too, with its 10,000 iterations being 100 epochs
# of 100 mini-batches; we start $p_0$ at 5 epochs).


# %%
def fixed_patience_stop(errors, patience):
    """cnnumpy's EarlyStopping: the epoch after which training stops, or None."""
    best, wait = None, 0
    for epoch, e in enumerate(errors, 1):
        best, wait = (e, 0) if best is None or e < best else (best, wait + 1)
        if wait >= patience:
            return epoch
    return None


def theano_patience_stop(errors, patience, increase=2, threshold=0.995):
    """The Theano tutorial's rule, one validation per epoch: (stop epoch or None, patience)."""
    best = np.inf
    for epoch, e in enumerate(errors, 1):
        if e < best:
            if e < best * threshold:
                patience = max(patience, epoch * increase)
            best = e
        if patience <= epoch:
            return epoch, patience
    return None, patience


val_error = 1 - val_acc
assert fixed_patience_stop(val_error, 4) == (epochs_run if epochs_run < 30 else None)
theano_stop, theano_patience = theano_patience_stop(val_error, patience=5)
print(f"validation error per epoch: {np.round(100 * val_error, 1).tolist()} (%)")
print(f"fixed patience 4: stops after epoch {fixed_patience_stop(val_error, 4)}")
if theano_stop is None:
    print(f"Theano's rule: still running after epoch {epochs_run}; its patience has grown to "
          f"{theano_patience} epochs, so it trains at least until epoch {theano_patience}")
else:
    print(f"Theano's rule: stops after epoch {theano_stop}")

# %% [markdown]
# ## Learning curves
#
# The history holds everything needed to see how training went: the loss of every mini-batch
# (noisy, so we also draw a moving average over one epoch), and per epoch the accuracies on the
# training and validation images and the validation loss. (`cn.inspect.plot_learning_curves`
# draws the same figure to a file; `cnnumpy train` writes it next to the checkpoints.)

# %%
loss = np.asarray(history["loss"])
per_epoch = len(train_loader)
smooth = np.convolve(loss, np.ones(per_epoch) / per_epoch, mode="valid")
epochs = np.arange(1, epochs_run + 1)

fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4))
ax_loss.plot(np.arange(1, len(loss) + 1) / per_epoch, loss, color="0.75", linewidth=0.8,
             label="training loss, per mini-batch")
ax_loss.plot(np.arange(per_epoch, len(loss) + 1) / per_epoch, smooth, color="C0",
             label="training loss, moving average")
ax_loss.plot(epochs, val_losses.values, "o-", color="C1", label="validation loss")
ax_loss.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
ax_loss.legend()
ax_acc.plot(epochs, 100 * np.asarray(history["train_acc"]), "o-", label="training images")
ax_acc.plot(epochs, 100 * val_acc, "o-", label="validation images")
ax_acc.axvline(best.best_epoch, color="0.4", linestyle=":", label=f"kept (epoch {best.best_epoch})")
ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy", ylim=(80, 100.5))
ax_acc.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The training accuracy climbs to about 100% while the validation accuracy levels off a little
# below: the gap between the two is what the model has learned about these particular training
# images rather than about digits. A validation loss that turns upwards while the training loss
# keeps falling is the same signal, and the reason to stop.
#
# ## The test set: confusion matrix
#
# The test images have not been used for anything yet: not for training, not for choosing the
# epoch. They give the unbiased estimate. The confusion matrix counts, for each true class (row),
# how often each class was predicted (column); the diagonal holds the correct answers.

# %%
model.eval()
x_test = norm(data.test[0])
y_test = data.test[1]
scores = model(x_test)
probs = class_probabilities(scores)
y_pred = probs.argmax(axis=1)
matrix = confusion_matrix(y_test, y_pred, 10)
accuracy = np.trace(matrix) / matrix.sum()
print(f"test accuracy {accuracy:.2%} ({np.trace(matrix)} of {matrix.sum()})")
assert np.trace(matrix) == np.sum(y_pred == y_test) and matrix.sum() == len(y_test)
assert accuracy > 0.9

fig, ax = plt.subplots(figsize=(5, 4.5))
ax.imshow(matrix, cmap="Blues")
for t_, p_ in zip(*np.nonzero(matrix), strict=True):
    ax.text(p_, t_, str(matrix[t_, p_]), ha="center", va="center", fontsize=9,
            color="white" if matrix[t_, p_] > matrix.max() / 2 else "black")
ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true",
       title=f"test set: accuracy {accuracy:.2%}")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The most confident mistakes
#
# Among the misclassified test images, the ones the model was surest about are the most
# instructive: they are either genuinely ambiguous digits, label errors, or a systematic
# weakness. The softmax probability of the predicted class measures how sure it was.

# %%
wrong = most_confident_errors(probs, y_test, k=8)
print(f"{np.sum(y_pred != y_test)} mistakes; the most confident first:")
fig, axes = plt.subplots(1, max(len(wrong), 1), figsize=(1.5 * max(len(wrong), 1), 2), squeeze=False)
for ax, i in zip(axes[0], wrong, strict=False):
    ax.imshow(data.test[0][i, 0], cmap="gray_r", vmin=0, vmax=16)
    ax.set_title(f"true {y_test[i]}\npred {y_pred[i]} ({probs[i, y_pred[i]]:.0%})", fontsize=9)
for ax in axes[0]:
    ax.axis("off")
plt.tight_layout()
plt.show()
assert all(y_pred[i] != y_test[i] for i in wrong)
assert np.all(np.diff(probs[wrong, y_pred[wrong]]) <= 0)

# %% [markdown]
# ## Predicting your own image
#
# A new image must be prepared exactly as the training images were: the same size and scale
# ($8 \times 8$, values $0..16$), then normalised with the **training** statistics `norm`, and the
# model run in **eval mode** (which matters for layers that behave differently in training, such
# as dropout and batch norm). First, a digit drawn by hand as an $8 \times 8$ array, a 2: `#` is
# full ink (16), `+` half (8).

# %%
drawing = """
.+####+.
.#+..+#.
......#.
....+#+.
...+#+..
..+#+...
.+#+....
.######.
"""
mine = np.array([[{"#": 16, "+": 8, ".": 0}[ch] for ch in row] for row in drawing.split()],
                dtype=np.uint8)


def predict(image):
    """Class probabilities for one (8, 8) image with values 0..16, as the model was trained."""
    model.eval()
    return class_probabilities(model(norm(image[None, None])))[0]


p = predict(mine)
print(f"hand-drawn: predicted {p.argmax()} with probability {p.max():.1%}")

# %% [markdown]
# Second, a digit rendered by matplotlib the way the data set was made: draw it, crop it to its
# ink, scale it to fit a $32 \times 32$ black-and-white bitmap, then count the ink in each
# $4 \times 4$ block.


# %%
def render_digit(text, fontsize=60, weight="bold"):
    fig = Figure(figsize=(1, 1), dpi=128)  # matplotlib's object API: no backend is switched
    canvas = FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, text, fontsize=fontsize, weight=weight, ha="center", va="center")
    canvas.draw()
    ink = 1 - np.asarray(canvas.buffer_rgba())[..., :3].mean(axis=2) / 255
    rows, cols = np.nonzero(ink > 0.5)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scaled = zoom(crop, 32 / max(crop.shape), order=1)[:32, :32] > 0.5
    bitmap = np.zeros((32, 32), dtype=bool)
    top, left = (32 - scaled.shape[0]) // 2, (32 - scaled.shape[1]) // 2
    bitmap[top : top + scaled.shape[0], left : left + scaled.shape[1]] = scaled
    return bitmap, bitmap.reshape(8, 4, 8, 4).sum(axis=(1, 3)).astype(np.uint8)


fig, axes = plt.subplots(2, 6, figsize=(10, 3.6))
for column, text in enumerate(["3", "4", "5", "6", "8", "9"]):
    bitmap, image = render_digit(text)
    p = predict(image)
    axes[0, column].imshow(bitmap, cmap="gray_r")
    axes[0, column].set_title(f"'{text}', 32x32 bitmap", fontsize=9)
    axes[1, column].imshow(image, cmap="gray_r", vmin=0, vmax=16)
    axes[1, column].set_title(f"predicted {p.argmax()} ({p.max():.0%})", fontsize=9)
    print(f"rendered '{text}': predicted {p.argmax()} with probability {p.max():.1%}")
axes[0, 0].set_ylabel("bitmap")
axes[1, 0].set_ylabel("model input")
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
plt.tight_layout()
plt.show()

# %% [markdown]
# A typeset digit is not a handwritten one: its strokes and proportions differ from anything
# in the training set, so an unsure (or wrong) answer here is a lesson about the distribution
# the model was trained on, not a bug. A skipped step is a more common cause: feed it raw pixels
# without `norm`, or pixels on another scale, and the model sees inputs unlike any it was
# trained on.
#
# ## Summary
#
# - Fit the normalisation on the training split and carry it with the model.
# - `Trainer` runs the loop; callbacks evaluate (`Evaluate`), keep the best weights
#   (`BestModel`) and stop (`EarlyStopping`: a fixed patience after the last improvement; the
#   Theano tutorial waits twice as long as it took to reach the last significant one).
# - The history gives the learning curves; the untouched test set gives the accuracy, the
#   confusion matrix and the mistakes worth looking at.
# - A new image goes through the same preparation and the model in eval mode.

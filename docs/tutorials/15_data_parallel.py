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
# # 15. Data parallelism: one model on K processes
#
# Data-parallel training runs one model on K processes (ranks). Every rank holds the whole
# model and optimiser, takes its share of every mini-batch and computes the gradient of that
# share; the ranks then combine their gradients, so that every one takes the step one process
# would take on the whole batch. This tutorial derives the combination and checks the pieces
# cnnumpy builds it from: the sharded loader, the all-reduce, the gradient buckets, and batch
# norm, which needs more than the gradients combined. The ranks run as threads of this process
# (`cn.distributed.run_threads`), so each claim is checked against one process, without MPI.

# %%
from types import SimpleNamespace

import numpy as np
import torch

import cnnumpy as cn
from cnnumpy import nn
from cnnumpy.data import DataLoader, digits
from cnnumpy.distributed import GradientBuckets, run_threads
from cnnumpy.functional import spatial_batch_norm_forward
from cnnumpy.functional.sync_batch_norm import sync_batch_norm_backward, sync_batch_norm_forward
from cnnumpy.inspect import relative_error
from cnnumpy.optim import SGD
from cnnumpy.solver import Solver

cn.set_num_threads(1)  # the ranks are threads already, and the arrays are tiny
torch.set_num_threads(1)
rng = np.random.default_rng(0)

# %% [markdown]
# ## The gradient of a batch from the gradients of its shards
#
# The loss of a mini-batch of $n$ examples is the mean of the examples' losses,
# $L = \frac1n \sum_{i=1}^n \ell_i$. Split the batch into K shards, rank $r$ holding $n_r$ of
# the examples ($\sum_r n_r = n$), and let $L_r = \frac1{n_r}\sum_{i \in r} \ell_i$ be the mean
# over rank $r$'s shard, the loss that rank computes. Then $L = \sum_r \frac{n_r}{n} L_r$, and
# since the gradient is linear,
#
# $$\nabla L = \sum_{r=0}^{K-1} \frac{n_r}{n}\, g_r, \qquad g_r = \nabla L_r.$$
#
# With equal shards this is the plain average $\frac1K \sum_r g_r$; with unequal ones (the
# last batch of an epoch rarely splits evenly) each rank's gradient is weighted by its share.
# It assumes $\ell_i$ depends on example $i$ alone, which batch norm breaks (see below). A
# conv + linear net in float64, its gradient on a batch of 12 against those of the shards:

# %%
def convnet(seed=1, dtype=np.float32, norm=None):
    r = np.random.default_rng(seed)
    layers = [nn.Conv2d(1, 4, 3, padding=1, rng=r, dtype=dtype)]
    layers += [norm(4, dtype=dtype)] if norm else []
    return nn.Sequential(*layers, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 10, rng=r, dtype=dtype))


def flat(model):
    return np.concatenate([p.grad.ravel() for p in model.parameters()])


def gradients(model, x, y):
    """The gradient of the mean cross-entropy over (x, y), all parameters in one vector."""
    model.zero_grad()
    criterion = nn.CrossEntropyLoss()
    criterion(model(x), y)
    model.backward(criterion.backward())
    return flat(model)


n = 12
x, y = rng.standard_normal((n, 1, 8, 8)), rng.integers(0, 10, n)
model = convnet(dtype=np.float64)
whole = gradients(model, x, y)
for sizes in ((4, 4, 4), (1, 8, 3)):
    bounds = np.cumsum((0, *sizes))
    g = [gradients(model, x[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    err_w = relative_error(sum(n_r / n * g_r for n_r, g_r in zip(sizes, g, strict=True)), whole)
    err_a = relative_error(np.mean(g, axis=0), whole)
    print(f"shards {sizes}: sum_r (n_r/n) g_r vs full batch {err_w:.1e}, "
          f"plain average vs full batch {err_a:.1e}")
    assert err_w < 1e-13
    assert (err_a < 1e-13) == (len(set(sizes)) == 1)

# %% [markdown]
# ## The sharded loader
#
# So each rank needs its share of the **same** global batch. `DataLoader(..., shard=(r, K))`
# gives it: every rank draws the same order (the same seed), and rank $r$ takes images
# $\lfloor n r / K \rfloor$ to $\lfloor n (r+1)/K \rfloor$ of each batch of $n$, so the shares
# differ by one image at most. Together the K ranks see exactly the batches one process sees,
# the last, short one included:

# %%
images, labels = rng.standard_normal((29, 1, 2, 2)).astype(np.float32), np.arange(29)
single = [b for _, b in DataLoader(images, labels, 8, shuffle=True, seed=3, normalized=True)]
K = 3
ranks = [[b for _, b in DataLoader(images, labels, 8, shuffle=True, seed=3, normalized=True,
                                   shard=(r, K))] for r in range(K)]
for i, batch in enumerate(single):
    parts = [ranks[r][i] for r in range(K)]
    print(f"batch {i}: one process {batch.tolist()}\n         ranks  " +
          " | ".join(str(p.tolist()) for p in parts))
    assert np.array_equal(np.concatenate(parts), batch)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1

# %% [markdown]
# ## All-reduce, in a ring
#
# The combination is an **all-reduce**: every rank contributes an array (its gradient times
# $n_r/n$) and every rank receives the element-wise sum. Gathering on one rank and sending the
# sum back would make that rank receive and send $(K-1)N$ values of an $N$-value array. The
# ring all-reduce (NCCL's, and many MPI libraries' for large arrays) spreads the work: cut the
# array into K chunks and arrange the ranks in a ring. In the **reduce-scatter** phase, at
# step $s = 0..K-2$ rank $r$ passes chunk $(r - s) \bmod K$ to rank $r+1$, which adds it to
# its own copy; after $K-1$ steps rank $r$ holds the complete sum of chunk $(r + 1) \bmod K$.
# In the **all-gather** phase the complete chunks travel round the ring the same way (at step
# $K-1+s$ rank $r$ passes chunk $(r+1-s) \bmod K$), copied instead of added.
# Each rank sends $2(K-1)$ chunks of $N/K$ values,
#
# $$2\,\frac{K-1}{K}\,N \text{ values per rank},$$
#
# less than $2N$ however many ranks there are. Each chunk's sum is formed once, on one rank,
# and copied to the others, so every rank receives the same bits. A simulation of K ranks,
# counting what each sends (whole numbers, so that the order of the additions cannot matter):

# %%
def ring_allreduce(arrays):
    K = len(arrays)
    chunks = [np.array_split(a.copy(), K) for a in arrays]  # chunks[rank][chunk]
    sent = [0] * K
    for step in range(2 * (K - 1)):  # K-1 steps of reduce-scatter, then K-1 of all-gather
        which = [(r - step) % K for r in range(K)]  # the chunk rank r sends to rank r+1
        payload = [chunks[r][c].copy() for r, c in enumerate(which)]  # all send, then receive
        for r, (c, data) in enumerate(zip(which, payload, strict=True)):
            mine = chunks[(r + 1) % K]
            mine[c] = mine[c] + data if step < K - 1 else data
            sent[r] += data.size
    return [np.concatenate(c) for c in chunks], sent


N = 24
for K in (2, 3, 4, 6):
    arrays = [rng.integers(-1000, 1000, N).astype(np.float64) for _ in range(K)]
    results, sent = ring_allreduce(arrays)
    print(f"K = {K}: values sent per rank {sent[0]} = 2(K-1)/K N = {2 * (K - 1) * N // K}")
    assert all(np.array_equal(res, np.sum(arrays, axis=0)) for res in results)
    assert sent == [2 * (K - 1) * N // K] * K

# %% [markdown]
# Every message also pays a fixed **latency** $\alpha$ (microseconds on one machine, tens
# across a network): one all-reduce of $N$ bytes costs about
# $2(K-1)\,\alpha + 2\frac{K-1}{K}N/\beta$ at bandwidth $\beta$. A model's gradient is many
# small arrays, and reducing each alone would pay the latency once per array. So
# `GradientBuckets`, as PyTorch's DDP, packs the gradients in parameter order into contiguous
# buffers of up to `bucket_bytes` (25 MiB by default), scaled by $n_r/n$, all-reduces each
# buffer in place and unpacks it. Two ranks holding 1 and 11 of the images above, with a
# communicator that records its calls:

# %%
def average(comm, bucket_bytes, sizes=(1, 11)):
    a, b = sum(sizes[:comm.rank]), sum(sizes[:comm.rank + 1])
    local = convnet(dtype=np.float64)
    gradients(local, x[a:b], y[a:b])
    calls = []
    counting = SimpleNamespace(allreduce_=lambda v: calls.append(v.nbytes) or comm.allreduce_(v))
    GradientBuckets(local.parameters(), bucket_bytes).allreduce_mean(counting, (b - a) / n)
    return flat(local), calls


for bucket_bytes in (2**20, 512):
    for grad, calls in run_threads(lambda comm, b=bucket_bytes: average(comm, b), 2):
        err = relative_error(grad, whole)
        assert err < 1e-13 and len(calls) == (1 if bucket_bytes == 2**20 else 3)
    print(f"buckets of up to {bucket_bytes} bytes: {len(calls)} all-reduce(s) of {calls} bytes "
          f"for 4 parameters; result vs full batch {err:.1e}")

# %% [markdown]
# ## K ranks training as one process
#
# Given a communicator, the Trainer (and the `Solver` in front of it) does all of this: the
# loaders are sharded for the rank, `batch_size` is the global batch, the parameters are
# broadcast from rank 0 at the start, and before every step the gradients are averaged through
# the buckets. The convnet trains for two epochs on 249 digits (batches of 32: the last, of 25,
# splits 12 + 13), in one process and on two thread ranks:

# %%
data = digits()
xd = ((data.train[0][:249] - 4.9) / 6.0).astype(np.float32)  # pixels 0..16, mean 4.9, std 6
yd = data.train[1][:249]


def train(comm=None, norm=None, sync_bn=False):
    model = convnet(norm=norm)
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model, comm)
    solver = Solver(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.05, momentum=0.9),
                    (xd, yd), None, batch_size=32, epochs=2, progress=False, verbose=False,
                    comm=comm)  # fmt: skip
    history = solver.train()
    return {k: v.copy() for k, v in model.state_dict().items()}, history["loss"]


def worst(a, b):
    return max(relative_error(a[k], b[k]) for k in a)


one, loss_one = train()
replicas = run_threads(train, 2)
print(f"loss of the 16 steps, one process: {np.round(loss_one[:4], 4)} ... "
      f"{np.round(loss_one[-2:], 4)}")
for r, (state, loss) in enumerate(replicas):
    print(f"rank {r}: losses vs one process {relative_error(np.array(loss), loss_one):.1e}, "
          f"weights vs one process {worst(state, one):.1e}")
    assert worst(state, one) < 1e-5 and np.allclose(loss, loss_one, rtol=1e-5)
same = all(np.array_equal(replicas[0][0][k], replicas[1][0][k]) for k in one)
print("rank 0 and rank 1 hold the same weights, bit for bit:", same)
assert same

# %% [markdown]
# The two runs are not bit-identical: $\frac{12}{25} g_0 + \frac{13}{25} g_1$ adds the same
# numbers as the full-batch backward in another order, so float32 rounds them differently.
# The replicas are equal bit for bit: every rank receives the same sum and takes the same step.
#
# ## Batch norm: the statistics of which batch?
#
# In batch norm $\ell_i$ depends on the whole batch, through the mean and variance it
# normalises with (tutorial 6). A rank that normalises its shard with the shard's statistics
# (PyTorch's DDP default, and cnnumpy's) computes another function than batch norm of the
# global batch, and for small shards a noticeably different one:

# %%
sizes, C, eps = (3, 5), 3, 1e-5
xb = rng.normal(1.0, 2.0, (sum(sizes), C, 4, 4))
w_loss = rng.standard_normal(xb.shape)  # L = (1/n) sum_i <w_i, y_i>
gamma, beta = rng.normal(1, 0.2, C), rng.normal(0, 0.2, C)
parts, w_parts = np.split(xb, [sizes[0]]), np.split(w_loss, [sizes[0]])
for name, a in (("whole batch", xb), ("rank 0", parts[0]), ("rank 1", parts[1])):
    print(f"channel means, {name:11s}", np.round(a.mean(axis=(0, 2, 3)), 3))
full = spatial_batch_norm_forward(xb, gamma, beta, None, None, training=True)[0]
own = np.concatenate([spatial_batch_norm_forward(p, gamma, beta, None, None, training=True)[0]
                      for p in parts])
print(f"per-rank batch norm vs batch norm of the whole batch: {relative_error(own, full):.2f}")
assert relative_error(own, full) > 0.05

# %% [markdown]
# Synchronised batch norm uses the global statistics. Per channel, with $m_r$ values on rank
# $r$ and $m = \sum_r m_r$, the forward takes two all-reduces: first $[m_r, \sum x]$, which give
# $m$ and $\mu = \frac1m \sum x$; then $\sum (x - \mu)^2$, which gives the biased
# $\sigma^2$ (two passes, as in one process: $\sum x^2 - m\mu^2$ would cancel in float32).
# Each rank normalises its own values, $\hat x = (x - \mu)\,s$, $s = (\sigma^2+\epsilon)^{-1/2}$.
#
# The backward is tutorial 6's formula, whose two sums run over the whole batch:
#
# $$\frac{\partial L}{\partial x_i} = \frac{\gamma s}{m}\Bigl(m\, g_i - \sum_k g_k
# - \hat x_i \sum_k g_k \hat x_k\Bigr), \qquad g = \frac{\partial L}{\partial y},$$
#
# so one all-reduce of $[\sum g, \sum g\,\hat x]$ per channel is enough. One detail is the
# Trainer's convention: rank $r$ differentiates its own loss $L_r$, so it holds
# $\texttt{dout}_r = \partial L_r/\partial y_r = g_r / s_r$ with the share $s_r = n_r/n$,
# and every gradient below it is $1/s_r$ times its part of the global one (hence the buckets'
# weights $s_r$). So the rank sends $s_r \sum \texttt{dout}_r$ and
# $s_r \sum \texttt{dout}_r \hat x$ and returns $\frac1{s_r} \partial L/\partial x_r$; for
# $\gamma$ and $\beta$ its own $\sum \texttt{dout}_r \hat x$ and $\sum \texttt{dout}_r$, which
# the gradient all-reduce weights by $s_r$.
#
# Below, on two ranks, that derivation written out with `allreduce_`, and the library's kernels
# (`sync_batch_norm_forward` and `_backward`, their all-reduces recorded), both against
# `torch.nn.BatchNorm2d` on the whole batch, with $L = \frac1n \sum_i \langle w_i, y_i\rangle$
# for fixed random $w_i$ (so $L_r$ is the same mean over rank $r$'s examples):

# %%
def both(comm):
    n_r, x, w = sizes[comm.rank], parts[comm.rank], w_parts[comm.rank]
    dout, share, axes = w / n_r, n_r / sum(sizes), (0, 2, 3)  # dout = dL_r/dy_r
    counts = comm.allreduce_(np.concatenate([[x.size / C], x.sum(axis=axes)]))
    m, mean = counts[0], counts[1:] / counts[0]
    centred = x - mean[:, None, None]
    var = comm.allreduce_((centred**2).sum(axis=axes)) / m
    s = 1 / np.sqrt(var + eps)
    xhat = centred * s[:, None, None]
    out = gamma[:, None, None] * xhat + beta[:, None, None]
    sums = comm.allreduce_(share * np.concatenate([dout.sum(axis=axes),
                                                   (dout * xhat).sum(axis=axes)]))
    g1, g2 = sums[:C, None, None] / share, sums[C:, None, None] / share
    dx = (gamma * s)[:, None, None] / m * (m * dout - g1 - xhat * g2)
    hand = out, dx, (dout * xhat).sum(axis=axes), dout.sum(axis=axes)
    sent = []  # the library's kernels, recording the shape of each all-reduce
    out, cache, mean, var = sync_batch_norm_forward(
        x, gamma, beta, np.zeros(C), np.ones(C),
        allreduce=lambda a: sent.append(a.shape) or comm.allreduce_(a))
    return hand, (out, *sync_batch_norm_backward(dout, cache)), sent, mean, var


ranks = run_threads(both, 2)
xt = torch.tensor(xb, requires_grad=True)
bn = torch.nn.BatchNorm2d(C, dtype=torch.float64)
bn.load_state_dict({"weight": torch.tensor(gamma), "bias": torch.tensor(beta)}, strict=False)
yt = bn(xt)
(yt * torch.tensor(w_loss)).sum().div(sum(sizes)).backward()
s_r = [n_r / sum(sizes) for n_r in sizes]
for k, name in enumerate(("by hand", "library")):
    (y0, dx0, dg0, db0), (y1, dx1, dg1, db1) = (res[k] for res in ranks)
    errors = {
        "y": relative_error(np.concatenate([y0, y1]), yt.detach().numpy()),
        "s_r dx_r": relative_error(np.concatenate([s_r[0] * dx0, s_r[1] * dx1]), xt.grad),
        "sum_r s_r dgamma_r": relative_error(s_r[0] * dg0 + s_r[1] * dg1, bn.weight.grad),
        "sum_r s_r dbeta_r": relative_error(s_r[0] * db0 + s_r[1] * db1, bn.bias.grad),
    }
    print(f"{name} vs torch: " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    assert max(errors.values()) < 1e-13
_, _, sent, mean, var = ranks[0]
err = max(relative_error(mean, bn.running_mean.numpy()),
          relative_error(var, bn.running_var.numpy()))
print(f"running mean and variance vs torch {err:.1e}; all-reduced: {sent} for C = {C}")
assert err < 1e-13 and sent == [(C + 1,), (C,), (2 * C,)]

# %% [markdown]
# `nn.SyncBatchNorm(C, comm=comm)` is the layer around these kernels, and
# `nn.SyncBatchNorm.convert_sync_batchnorm(model, comm)` swaps it in for every batch norm of a
# model. With it, the convnet with batch norm after its convolution trains on two ranks as in
# one process; with plain `BatchNorm2d`, each rank's statistics its own, the weights drift off:

# %%
one_bn, _ = train(norm=nn.BatchNorm2d)
synced = run_threads(lambda comm: train(comm, nn.BatchNorm2d, sync_bn=True), 2)[0][0]
local = run_threads(lambda comm: train(comm, nn.BatchNorm2d), 2)[0][0]
print(f"weights vs one process: SyncBatchNorm {worst(synced, one_bn):.1e}, "
      f"per-rank BatchNorm2d {worst(local, one_bn):.1e}")
assert worst(synced, one_bn) < 1e-5 and worst(local, one_bn) > 1e-3

# %% [markdown]
# ## Running it for real
#
# On real processes the communicator is MPI's (through mpi4py: `pip install 'cnnumpy[mpi]'`),
# and the command line is the one-process command with a launcher in front:
#
# ```bash
# mpirun -n 4 cnnumpy train --model resnet20 --dataset cifar10 --data-dir DIR \
#     --batch-size 128 --sync-bn
# ```
#
# `--batch-size` is the global batch (32 images per process here); rank 0 prints and writes
# the run directory, and `--resume` needs the same number of processes. From Python,
# `comm = cn.distributed.world()` is the MPI world under `mpirun` and a single process
# otherwise, and `Trainer(..., comm=comm)` takes a loader built with
# `shard=(comm.rank, comm.size)`. What the ranks share and what each keeps for itself:
#
# | synchronised | per rank |
# | --- | --- |
# | the gradients, averaged with the weights $n_r/n$ before every step | the shard of every batch |
# | the parameters and buffers, broadcast from rank 0 at the start | the augmentation's random distortions |
# | the order of the data (the shuffle's Generator is seeded alike) | dropout's masks (each rank's Generator jumps to a stream of its own; rank 0 draws what one process would) |
# | the reported loss, all-reduced, so all ranks stop at the same step | batch norm's statistics and running averages, unless `--sync-bn` (they are made rank 0's before each evaluation) |
# | with `--sync-bn`, batch norm's statistics and their gradients | its share of the machine's cores (`--threads`) |
#
# The noise differs between ranks on purpose: with the same draws on every rank, example $i$
# of every shard would get the same dropout mask and the same distortion, correlated noise
# that one process never draws.

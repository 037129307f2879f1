"""Data-parallel training, K ranks as threads of one process (``cn.distributed.run_threads``):
the communicators, the gradient buckets, the sharded loader, and K ranks at global batch B
against one process at batch B. The same runs under a real ``mpirun`` are in
``test_distributed_mpi.py``."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import assert_close

import cnnumpy as cn
from cnnumpy import nn
from cnnumpy.data import DataLoader
from cnnumpy.distributed import (
    GradientBuckets,
    MPIUnavailableError,
    SingleProcess,
    run_threads,
    thread_group,
)
from cnnumpy.optim import SGD, Adam
from cnnumpy.solver import Solver
from cnnumpy.train import Trainer
from cnnumpy.train.errors import ResumeError


# -- communicators ------------------------------------------------------------------------------
def test_thread_communicators_sum_gather_and_broadcast():
    def body(comm):
        a = np.arange(4.0) * (comm.rank + 1)
        comm.allreduce_(a)
        b = np.full(2, float(comm.rank))
        comm.broadcast_(b, root=2)
        return a, b, comm.allgather({"rank": comm.rank}), comm.broadcast(["x", comm.rank], 1)

    for a, b, gathered, sent in run_threads(body, 3):
        np.testing.assert_array_equal(a, np.arange(4.0) * 6)  # 1 + 2 + 3
        np.testing.assert_array_equal(b, [2.0, 2.0])
        assert gathered == [{"rank": 0}, {"rank": 1}, {"rank": 2}] and sent == ["x", 1]


def test_objects_travel_as_json_never_pickled():
    with pytest.raises(TypeError, match="not JSON serializable"):
        SingleProcess().allgather(object())
    with pytest.raises(TypeError, match="not JSON serializable"):
        run_threads(lambda comm: comm.broadcast(np.float32(1.0) if comm.rank == 0 else None), 2)


def test_a_failing_rank_releases_the_others():
    def body(comm):
        if comm.rank == 1:
            raise RuntimeError("rank 1 broke")
        comm.barrier()  # would wait for ever without the release

    with pytest.raises(RuntimeError, match="rank 1 broke"):
        run_threads(body, 3)


def test_several_processes_without_mpi4py_say_how_to_install_it(monkeypatch):
    monkeypatch.setattr(cn.distributed.comm, "_WORLD", None)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if not installed
    with pytest.raises(MPIUnavailableError, match=r"one of 2 .* pip install 'cnnumpy\[mpi\]'"):
        cn.distributed.world()
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE")
    assert isinstance(cn.distributed.world(), SingleProcess), "no launcher: one process"


def test_thread_group_checks_its_size():
    with pytest.raises(ValueError, match="size must be an int >= 1"):
        thread_group(0)


# -- buckets ------------------------------------------------------------------------------------
class P:
    def __init__(self, grad):
        self.grad = grad


def test_buckets_pack_in_order_and_split_by_size_and_dtype():
    params = [P(np.ones(10, np.float32)), P(np.ones((2, 5), np.float32)),
              P(np.ones(30, np.float32)), P(np.ones(3, np.float64))]  # fmt: skip
    buckets = GradientBuckets(params, bucket_bytes=80)  # 20 float32 values per bucket
    sizes = [(flat.size, flat.dtype) for flat, _ in buckets.buckets]
    assert sizes == [(20, np.float32), (30, np.float32), (3, np.float64)]
    assert buckets.nbytes == 50 * 4 + 3 * 8


def test_buckets_average_with_each_ranks_share():
    """Rank r holds gradient r + 1 of its n_r images; the global mean is sum n_r g_r / n."""
    counts = [3, 1]

    def body(comm):
        params = [P(np.full((2, 3), comm.rank + 1.0, np.float32)), P(np.full(4, -1.0 - comm.rank))]
        GradientBuckets(params, bucket_bytes=8).allreduce_mean(comm, counts[comm.rank] / 4)
        return [p.grad for p in params]

    expected = (3 * 1.0 + 1 * 2.0) / 4
    for g0, g1 in run_threads(body, 2):
        np.testing.assert_allclose(g0, np.full((2, 3), expected), rtol=1e-7)
        np.testing.assert_allclose(g1, np.full(4, -expected), rtol=1e-12)


# -- the sharded loader -------------------------------------------------------------------------
def test_shards_are_disjoint_shares_of_the_one_process_batches():
    x = np.arange(23, dtype=np.float32).reshape(23, 1, 1, 1)
    y = np.arange(23)
    one = [b for _, b in DataLoader(x, y, 8, shuffle=True, seed=5, normalized=True)]
    for k in (2, 3, 5):
        shards = [DataLoader(x, y, 8, shuffle=True, seed=5, normalized=True, shard=(r, k))
                  for r in range(k)]  # fmt: skip
        batches = [[b for _, b in loader] for loader in shards]
        assert all(len(b) == len(one) for b in batches)
        for i, whole in enumerate(one):
            parts = [batches[r][i] for r in range(k)]
            np.testing.assert_array_equal(np.concatenate(parts), whole)
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
        assert sum(loader.shard_samples for loader in shards) == 23


def test_shard_is_checked():
    x, y = np.zeros((4, 1, 1, 1), np.float32), np.zeros(4, int)
    with pytest.raises(ValueError, match=r"shard must be \(rank, K\)"):
        DataLoader(x, y, 2, normalized=True, shard=(2, 2))


# -- K ranks against one process ----------------------------------------------------------------
def convnet(seed=1):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 10, rng=rng))  # fmt: skip


def data(n=70, size=8, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, channels, size, size)).astype(np.float32), rng.integers(0, 10, n)


def solver_run(build, x, y, comm=None, sync_bn=False, **kwargs):
    model = build()
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model, comm or SingleProcess())
    solver = Solver(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.05, momentum=0.9),
                    (x, y), (x[:20], y[:20]), batch_size=16, epochs=2, progress=False,
                    verbose=False, comm=comm, **kwargs)  # fmt: skip
    history = solver.train()
    return {k: v.copy() for k, v in model.state_dict().items()}, history


def assert_states_close(got, expected, rtol=1e-5):
    assert got.keys() == expected.keys()
    for key in expected:
        assert_close(got[key], expected[key], rtol=rtol, name=key)


@pytest.mark.parametrize("k", [2, 3])
def test_k_ranks_train_as_one_process_at_the_same_global_batch(k):
    x, y = data()  # 70 images in batches of 16: the last, of 6, splits unevenly over 3 ranks
    expected, history = solver_run(convnet, x, y)
    results = run_threads(lambda comm: solver_run(convnet, x, y, comm), k)
    for state, hist in results:
        assert_states_close(state, expected)
        np.testing.assert_allclose(hist["loss"], history["loss"], rtol=1e-5)
        np.testing.assert_allclose(hist["val_acc"], history["val_acc"])
    for state, _ in results[1:]:  # the replicas are identical, bit for bit
        assert all(np.array_equal(state[key], results[0][0][key]) for key in state)


def test_a_rank_with_an_empty_share_still_takes_part():
    x, y = data(n=34)  # the last global batch has 2 images for 3 ranks
    expected, _ = solver_run(convnet, x, y)
    for state, _ in run_threads(lambda comm: solver_run(convnet, x, y, comm), 3):
        assert_states_close(state, expected)


def resnet_tiny():
    return cn.models.build_model("resnet20", in_channels=1, num_classes=10, input_size=8,
                                 widths=(4, 4, 8), rng=np.random.default_rng(3))  # fmt: skip


def test_sync_batch_norm_trains_as_one_process_and_per_rank_statistics_do_not():
    x, y = data(n=45)  # the last batch, of 13, splits 6 and 7
    expected, _ = solver_run(resnet_tiny, x, y)
    synced = run_threads(lambda comm: solver_run(resnet_tiny, x, y, comm, sync_bn=True), 2)
    for state, _ in synced:
        assert_states_close(state, expected)
    per_rank = run_threads(lambda comm: solver_run(resnet_tiny, x, y, comm), 2)
    state = per_rank[0][0]
    assert not all(np.allclose(state[k], expected[k], rtol=1e-4, atol=1e-6) for k in expected)


def test_the_noise_of_each_rank_is_its_own_and_rank_0_draws_as_one_process():
    def rngs(comm):
        model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5, rng=np.random.default_rng(4)),
                              nn.Linear(64, 10, rng=np.random.default_rng(5)))
        x, y = data(n=8)
        loader = DataLoader(x, y, 4, shuffle=True, seed=0, normalized=True,
                            shard=(comm.rank, comm.size))  # fmt: skip
        trainer = Trainer(model, nn.CrossEntropyLoss(), Adam(model.parameters()), loader,
                          epochs=0, comm=comm)  # fmt: skip
        return {name: rng.random() for name, rng in trainer.rngs.generators().items()}

    one = rngs(SingleProcess())
    ranks = run_threads(rngs, 2)
    assert ranks[0] == one
    assert ranks[1]["solver.shuffle"] == one["solver.shuffle"], "one order for every rank"
    assert ranks[1]["model.1.rng"] != one["model.1.rng"]


class Sizes(cn.train.Callback):
    rank_zero_only = True

    def __init__(self):
        self.sizes = []

    def on_train_batch_end(self, batch, logs):
        self.sizes.append(logs["size"])


def test_reporting_callbacks_run_on_rank_0_and_count_the_global_batches():
    def body(comm):
        x, y = data(n=37)
        model, sizes = convnet(), Sizes()
        loader = DataLoader(x, y, 16, shuffle=True, normalized=True, shard=(comm.rank, 3))
        trainer = Trainer(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.1),
                          loader, epochs=1, callbacks=[sizes], comm=comm)  # fmt: skip
        trainer.fit()
        return sizes.sizes if sizes in trainer.callbacks else None

    assert run_threads(body, 3) == [[16, 16, 5], None, None]


def test_the_trainer_wants_a_loader_sharded_for_its_rank():
    def body(comm):
        x, y = data(n=8)
        model = convnet()
        Trainer(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.1),
                DataLoader(x, y, 4, normalized=True), epochs=1, comm=comm)  # fmt: skip

    with pytest.raises(ValueError, match=r"must be sharded for this rank: .*shard=\(\d, 2\)"):
        run_threads(body, 2)


def test_sdlm_is_refused_on_several_ranks():
    def body(comm):
        x, y = data(n=8)
        model = convnet()
        Solver(model, nn.CrossEntropyLoss(), cn.optim.SDLM(model.parameters(), lr=1e-3),
               (x, y), None, comm=comm)  # fmt: skip

    with pytest.raises(ValueError, match="SDLM estimates its curvature on each process"):
        run_threads(body, 2)


def test_checkpoints_record_k_and_resume_only_on_the_same_k(tmp_path):
    x, y = data(n=40)

    def run(comm, epochs, resume, out):
        model = convnet()
        solver = Solver(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.05),
                        (x, y), (x[:8], y[:8]), batch_size=8, epochs=epochs, progress=False,
                        verbose=False, checkpoint_dir=out, resume=resume, comm=comm)  # fmt: skip
        solver.train()
        return {k: v.copy() for k, v in model.state_dict().items()}

    whole = run_threads(lambda comm: run(comm, 3, False, tmp_path / "whole"), 2)[0]
    run_threads(lambda comm: run(comm, 1, False, tmp_path / "legs"), 2)
    contents = cn.checkpoint.load_checkpoint(tmp_path / "legs" / "last.npz")
    assert contents["extra"]["world_size"] == 2
    assert {"solver.shuffle", "rank1:solver.shuffle"} <= set(contents["rng_states"])
    resumed = run_threads(lambda comm: run(comm, 3, True, tmp_path / "legs"), 2)[0]
    assert all(np.array_equal(resumed[k], whole[k]) for k in whole), "bit-identical resume"
    with pytest.raises(ResumeError, match="written by a run on 2 processes, this one has 1"):
        run(None, 4, True, tmp_path / "legs")
    with pytest.raises(ResumeError, match="this one has 3: resume it with mpirun -n 2"):
        run_threads(lambda comm: run(comm, 4, True, tmp_path / "legs"), 3)

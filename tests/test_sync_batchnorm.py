"""SyncBatchNorm on K ranks (threads of one process) against batch norm on the whole batch.

The expected values come from single-process ``nn.BatchNorm2d`` and ``torch.nn.BatchNorm2d``
on the concatenated batch, from the graph-form reference, and from centred differences; the
ranks run the Trainer's procedure: each rank's loss is the mean over its own samples of a
fixed per-sample function, and its parameter gradients are scaled by ``n_r / n`` and summed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import GRAD_TOL, assert_close

from cnnumpy import nn
from cnnumpy.distributed import run_threads, thread_group
from cnnumpy.functional.norm import spatial_batch_norm_backward, spatial_batch_norm_forward
from cnnumpy.functional.sync_batch_norm import (
    sync_batch_norm_backward,
    sync_batch_norm_backward_naive,
    sync_batch_norm_forward,
    sync_batch_norm_forward_naive,
)
from cnnumpy.inspect import numerical_gradient, relative_error
from cnnumpy.models import build_model

# N_r per rank: one rank; equal shards; unequal ones; one rank with an empty shard.
SPLITS = {
    "K1": (6,),
    "K2-equal": (3, 3),
    "K2-unequal": (5, 1),
    "K3-equal": (2, 2, 2),
    "K3-unequal": (1, 2, 3),
    "K3-empty": (4, 0, 2),
}
RTOL = {np.float32: 1e-5, np.float64: 1e-11}


def shards(a: np.ndarray, sizes: tuple[int, ...]) -> list[np.ndarray]:
    return np.split(a, np.cumsum(sizes)[:-1])


def per_sample_grad(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """d/dy of the per-sample loss ``sum(p * y + y**2 / 4)`` (one value per sample)."""
    return p + 0.5 * y


def conv_bn(bn: nn.Module) -> nn.Module:
    # No conv bias: batch norm removes it, so its gradient is 0 up to rounding.
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False), bn)


def reference_state(rng: np.random.Generator, dtype) -> dict[str, np.ndarray]:
    model = conv_bn(nn.BatchNorm2d(3)).to(dtype)
    state = model.state_dict()
    for key in state:
        if key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 2.0, state[key].shape).astype(dtype)
        elif state[key].dtype.kind == "f":
            state[key] = rng.standard_normal(state[key].shape).astype(dtype)
    return state


def trainer_step(make, state, x, p, sizes):
    """Each rank: forward on its shard, loss = mean over its samples, backward; then the
    Trainer's average. Returns (outs, dxs scaled by n_r / n, averaged grads, each rank's
    state)."""
    n = x.shape[0]

    def rank(comm):
        model = make(comm)
        model.load_state_dict(state)
        xr, pr = shards(x, sizes)[comm.rank], shards(p, sizes)[comm.rank]
        out = model(xr)
        dx = model.backward(per_sample_grad(out, pr) / max(xr.shape[0], 1))
        share = xr.shape[0] / n
        grads = {k: v.grad * share for k, v in model.named_parameters()}
        return out, dx * share, grads, model.state_dict()

    results = run_threads(rank, len(sizes))
    grads = {k: sum(r[2][k] for r in results) for k in results[0][2]}
    return [r[0] for r in results], [r[1] for r in results], grads, [r[3] for r in results]


def single_process(model, state, x, p):
    model.load_state_dict(state)
    out = model(x)
    dx = model.backward(per_sample_grad(out, p) / x.shape[0])
    return out, dx, {k: v.grad for k, v in model.named_parameters()}, model.state_dict()


def torch_conv_bn(state, x, p):
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, padding=1, bias=False), torch.nn.BatchNorm2d(3)
    )
    model.to(torch.float64 if x.dtype == np.float64 else torch.float32)  # before the load
    model.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    tx = torch.tensor(x, requires_grad=True)
    out = model(tx)
    loss = (torch.tensor(p) * out + out**2 / 4).sum() / x.shape[0]
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in model.named_parameters()}
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    return out.detach().numpy(), tx.grad.numpy(), grads, state


@pytest.mark.parametrize("sizes", list(SPLITS.values()), ids=list(SPLITS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_k_ranks_equal_one_process_and_torch_on_the_full_batch(rng, sizes, dtype):
    state = reference_state(rng, dtype)
    x = (rng.standard_normal((sum(sizes), 2, 3, 4)) * 2 + 1).astype(dtype)
    p = rng.standard_normal((sum(sizes), 3, 3, 4)).astype(dtype)
    outs, dxs, grads, states = trainer_step(
        lambda comm: conv_bn(nn.SyncBatchNorm(3, comm=comm)).to(dtype), state, x, p, sizes
    )
    for other in states[1:]:  # the running statistics are the same on every rank, bit for bit
        for key, value in other.items():
            assert np.array_equal(value, states[0][key]), key
    got = (np.concatenate(outs), np.concatenate(dxs), grads, states[0])
    ours = single_process(conv_bn(nn.BatchNorm2d(3)).to(dtype), state, x, p)
    for expected, who in [(ours, "BatchNorm2d"), (torch_conv_bn(state, x, p), "torch")]:
        for name, a, e in [("out", got[0], expected[0]), ("dx", got[1], expected[1])]:
            assert a.dtype == dtype
            assert_close(a, e, rtol=RTOL[dtype], name=f"{name} vs {who}")
        for kind, actual, wanted in [("grad", got[2], expected[2]), ("state", got[3], expected[3])]:
            for key, e in wanted.items():
                assert_close(actual[key], e, rtol=RTOL[dtype], name=f"{kind} {key} vs {who}")


def test_two_ranks_of_a_converted_resnet20_equal_one_process(rng):
    model = build_model("resnet20", tiny=True, input_size=8, rng=rng).to(np.float64)
    state = model.state_dict()
    x, sizes = rng.standard_normal((5, 3, 8, 8)), (3, 2)
    p = rng.standard_normal((5, model(x[:2]).shape[1]))

    def make(comm):
        built = build_model("resnet20", tiny=True, input_size=8).to(np.float64)
        return nn.SyncBatchNorm.convert_sync_batchnorm(built, comm)

    outs, dxs, grads, states = trainer_step(make, state, x, p, sizes)
    single = single_process(model, state, x, p)
    assert_close(np.concatenate(outs), single[0], rtol=1e-11, name="out")
    assert_close(np.concatenate(dxs), single[1], rtol=1e-10, name="dx")
    for key, e in single[2].items():
        assert_close(grads[key], e, rtol=1e-10, name=f"grad {key}")
    for key, e in single[3].items():
        assert_close(states[1][key], e, rtol=1e-12, name=key)


@pytest.mark.parametrize("sizes", list(SPLITS.values()), ids=list(SPLITS))
@pytest.mark.parametrize("affine", [(True, True), (False, False)])
@pytest.mark.parametrize("stats", [True, False])
def test_kernel_matches_the_graph_reference(rng, sizes, affine, stats):
    x = rng.standard_normal((sum(sizes), 3, 2, 3)) * 1.5 + 0.7
    w = rng.standard_normal(3) if affine[0] else None
    b = rng.standard_normal(3) if affine[1] else None
    rm, rv = (rng.standard_normal(3), rng.uniform(0.5, 2, 3)) if stats else (None, None)
    douts = shards(rng.standard_normal(x.shape), sizes)
    outs, cache, want_rm, want_rv = sync_batch_norm_forward_naive(
        shards(x, sizes), w, b, rm, rv, momentum=0.3, eps=1e-4
    )
    dxs, dws, dbs = sync_batch_norm_backward_naive(douts, cache)

    def rank(comm):
        r = comm.rank
        out, c, new_rm, new_rv = sync_batch_norm_forward(
            shards(x, sizes)[r], w, b, rm, rv, allreduce=comm.allreduce_, momentum=0.3, eps=1e-4
        )
        return out, new_rm, new_rv, *sync_batch_norm_backward(douts[r], c)

    for r, (out, new_rm, new_rv, dx, dw, db) in enumerate(run_threads(rank, len(sizes))):
        assert_close(out, outs[r], rtol=1e-12, name="out")
        assert_close(dx, dxs[r], rtol=1e-12, atol=1e-14, name="dx")
        for name, a, e in [("dweight", dw, dws[r]), ("dbias", db, dbs[r])]:
            if a is None:
                assert not affine[0], name
            else:
                assert_close(a, e, rtol=1e-12, atol=1e-14, name=name)
        if stats:
            assert_close(new_rm, want_rm, rtol=1e-13, name="running_mean")
            assert_close(new_rv, want_rv, rtol=1e-13, name="running_var")
        else:
            assert new_rm is None and new_rv is None


@pytest.mark.parametrize("sizes", [(2, 1, 2), (3, 0, 2), (5,)])
def test_gradcheck_of_the_sharded_computation(rng, sizes):
    """The global loss ``sum_r (n_r / n) L_r``, run sharded, differentiated numerically with
    respect to the whole ``x``, ``weight`` and ``bias``, against the Trainer's gradients."""
    x = rng.standard_normal((sum(sizes), 2, 2, 2)) + 0.5
    w, b, p = rng.standard_normal(2), rng.standard_normal(2), rng.standard_normal(x.shape)
    n = x.shape[0]

    def rank(comm, grads: bool):
        xr, pr = shards(x, sizes)[comm.rank], shards(p, sizes)[comm.rank]
        out, cache, _, _ = sync_batch_norm_forward(xr, w, b, None, None, allreduce=comm.allreduce_)
        share, nr = xr.shape[0] / n, max(xr.shape[0], 1)
        loss = share * float(np.sum(pr * out + out**2 / 4)) / nr
        if not grads:
            return loss
        dx, dw, db = sync_batch_norm_backward(per_sample_grad(out, pr) / nr, cache)
        return dx * share, dw * share, db * share

    results = run_threads(lambda comm: rank(comm, True), len(sizes))
    analytic = [np.concatenate([r[0] for r in results])]
    analytic += [sum(r[1] for r in results), sum(r[2] for r in results)]
    loss = lambda: sum(run_threads(lambda comm: rank(comm, False), len(sizes)))  # noqa: E731
    for name, a, g in zip(["x", "weight", "bias"], [x, w, b], analytic, strict=True):
        err = relative_error(g, numerical_gradient(loss, a))
        assert err < GRAD_TOL, f"d{name}: relative error {err:.3g}"


def random_state(module: nn.Module, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every parameter and buffer drawn from [0.5, 2), so none is at its default."""
    return {
        k: rng.uniform(0.5, 2.0, v.shape).astype(v.dtype) for k, v in module.state_dict().items()
    }


class Refusing:
    """A communicator that must not be used: eval mode does no communication."""

    rank, size = 0, 2

    def allreduce_(self, a):
        raise AssertionError("eval mode called allreduce_")


@pytest.mark.parametrize("track", [True, False])
def test_eval_mode_does_not_communicate_and_is_batch_norm(rng, track):
    ours = nn.SyncBatchNorm(3, track_running_stats=track, comm=Refusing())
    plain = nn.BatchNorm2d(3, track_running_stats=track)
    state = random_state(plain, rng)
    for m in (ours, plain):
        m.load_state_dict(state)
        m.eval()
    x = rng.standard_normal((3, 3, 2, 2)).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    assert np.array_equal(ours(x), plain(x))
    assert np.array_equal(ours.backward(dout), plain.backward(dout))
    assert np.array_equal(ours.weight.grad, plain.weight.grad)
    for key, value in plain.state_dict().items():
        assert np.array_equal(ours.state_dict()[key], value), key


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_process_is_batch_norm_bit_for_bit(rng, dtype):
    x = (rng.standard_normal((4, 3, 5, 5)) * 3 + 2).astype(dtype)
    w, b = rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)
    rm, rv = np.zeros(3, dtype), np.ones(3, dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    plain = spatial_batch_norm_forward(x, w, b, rm, rv, training=True)
    synced = sync_batch_norm_forward(x, w, b, rm, rv, allreduce=lambda a: a)
    got = [*synced[0::2], synced[3], *sync_batch_norm_backward(dout, synced[1])]
    want = [*plain[0::2], plain[3], *spatial_batch_norm_backward(dout, plain[1])]
    for a, e in zip(got, want, strict=True):
        assert a.dtype == dtype and np.array_equal(a, e)


def test_one_value_per_channel_over_all_ranks_is_refused_on_every_rank(rng):
    x = rng.standard_normal((1, 3, 1, 1))

    def rank(comm, sizes):
        xr = x if sizes[comm.rank] else x[:0]
        try:
            return sync_batch_norm_forward(xr, None, None, None, None, allreduce=comm.allreduce_)[0]
        except ValueError as err:
            return str(err)

    refused = run_threads(lambda comm: rank(comm, (1, 0)), 2)
    assert all("Expected more than 1 value per channel" in r for r in refused)
    fine = run_threads(lambda comm: rank(comm, (1, 1)), 2)  # one value each, two in all
    assert_close(fine[0], -fine[1], rtol=1e-12, name="+-1 per channel")


def test_all_shards_empty(rng):
    rm, rv = rng.standard_normal(2), rng.uniform(0.5, 2, 2)

    def rank(comm):
        x = np.zeros((0, 2, 3, 3))
        out, cache, new_rm, new_rv = sync_batch_norm_forward(
            x, np.ones(2), np.zeros(2), rm, rv, allreduce=comm.allreduce_
        )
        return out.shape, new_rm, new_rv, *sync_batch_norm_backward(x, cache)

    for shape, new_rm, new_rv, dx, dw, db in run_threads(rank, 2):
        assert shape == dx.shape == (0, 2, 3, 3)
        assert np.array_equal(new_rm, rm) and np.array_equal(new_rv, rv)
        assert not dw.any() and not db.any()


def test_a_second_backward_raises_on_every_rank_before_communicating(rng):
    x = rng.standard_normal((4, 2, 2, 2))

    def rank(comm):
        bn = nn.SyncBatchNorm(2, comm=comm).to(np.float64)
        out = bn(shards(x, (2, 2))[comm.rank])
        bn.backward(np.ones_like(out))
        with pytest.raises(RuntimeError, match="SyncBatchNorm.backward needs a forward first"):
            bn.backward(np.ones_like(out))
        return True

    assert run_threads(rank, 2) == [True, True]


def test_comm_is_no_state_child_or_parameter():
    comm = thread_group(1)[0]
    bn = nn.SyncBatchNorm(4, eps=1e-3, comm=comm).to(np.float64)
    plain = nn.BatchNorm2d(4, eps=1e-3).to(np.float64)
    assert bn.comm is comm
    assert list(bn.state_dict()) == list(plain.state_dict())
    assert [k for k, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [k for k, _ in bn.named_modules()] == [""] and not list(bn.children())
    assert repr(bn) == "SyncBatchNorm(4, eps=0.001)"
    assert nn.SyncBatchNorm(3).comm.size == 1  # None: one process


def test_convert_sync_batchnorm_keeps_state_mode_and_outputs(rng):
    plain, model = (build_model("resnet20", tiny=True, input_size=8) for _ in range(2))
    state = random_state(plain, rng)
    plain.load_state_dict(state)
    model.load_state_dict(state)
    first_bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    first_bn.eval()  # a mode of its own, to be kept
    plain_bns = [m for m in plain.modules() if type(m) is nn.BatchNorm2d]
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model, None)
    assert converted is model
    syncs = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(syncs) == len(plain_bns) > 0 and all(type(m) is nn.SyncBatchNorm for m in syncs)
    assert first_bn.weight is syncs[0].weight and not syncs[0].training and syncs[1].training
    next(m for m in plain.modules() if isinstance(m, nn.BatchNorm2d)).eval()
    got, want = model.state_dict(), plain.state_dict()
    assert list(got) == list(want) and all(np.array_equal(got[k], want[k]) for k in want)
    x = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    for train in (True, False):
        model.train(train)
        plain.train(train)
        out = model(x)
        assert np.array_equal(out, plain(x)), f"train={train}"
        dout = np.ones_like(out)
        assert np.array_equal(model.backward(dout), plain.backward(dout))
    got, want = model.state_dict(), plain.state_dict()
    assert all(np.array_equal(got[k], want[k]) for k in want), "running statistics"
    for a, e in zip(model.parameters(), plain.parameters(), strict=True):
        assert np.array_equal(a.grad, e.grad)


def test_convert_a_batch_norm_itself(rng):
    comm = thread_group(1)[0]
    for bn in (nn.BatchNorm2d(3, momentum=0.3, affine=False), nn.BatchNorm1d(5, eps=1e-3)):
        bn.to(np.float64).eval()
        new = nn.SyncBatchNorm.convert_sync_batchnorm(bn, comm)
        assert type(new) is nn.SyncBatchNorm and new.comm is comm and not new.training
        assert new.extra_repr() == bn.extra_repr() and new.weight is bn.weight
        assert new.running_mean.dtype == np.float64
    x = rng.standard_normal((4, 5))  # the (N, C) layout of the BatchNorm1d it replaced
    new.train()
    out = new(x)
    assert_close(out.mean(axis=0), np.zeros(5), rtol=0, atol=1e-12, name="mean of out")


def test_exports_to_onnx_as_batch_norm(rng):
    pytest.importorskip("onnx")
    from cnnumpy.onnx import export

    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.SyncBatchNorm(3)).eval()
    graph = export(model, np.zeros((1, 2, 5, 5), np.float32)).graph
    assert "BatchNormalization" in [node.op_type for node in graph.node]

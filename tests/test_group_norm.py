"""Layer norm and group norm: kernels against PyTorch (float64 tight, float32 loose), against
the naive graph references and against numerical gradients; the layers, their errors, and
their ONNX export run in ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import assert_close, check_backward, n, t
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy import nn
from cnnumpy.functional.group_norm import (
    group_norm_backward,
    group_norm_forward,
    layer_norm_backward,
    layer_norm_forward,
)
from cnnumpy.functional.group_norm_naive import (
    group_norm_backward_naive,
    group_norm_forward_naive,
    layer_norm_backward_naive,
    layer_norm_forward_naive,
)

LAYER = {True: (layer_norm_forward, layer_norm_backward),
         False: (layer_norm_forward_naive, layer_norm_backward_naive)}  # fmt: skip
GROUP = {True: (group_norm_forward, group_norm_backward),
         False: (group_norm_forward_naive, group_norm_backward_naive)}  # fmt: skip
AFFINE = [(True, True), (True, False), (False, True), (False, False)]
NAMES = ["out", "dx", "dweight", "dbias"]


def params(rng, shape, weight: bool, bias: bool, dtype=np.float64):
    w = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape) if weight else None
    b = rng.standard_normal(shape) if bias else None
    return [None if a is None else a.astype(dtype) for a in (w, b)]


# (x shape, normalized_shape): a trailing dim, several, all of them, none leading, a 1x1 image.
# No row of two values: they normalise to -1 and +1 whatever they are, so dx is rounding noise.
LAYER_CASES = [((3, 5), (5,)), ((2, 3, 4), (3, 4)), ((4,), 4), ((2, 2, 3, 2), (2, 3, 2)),
               ((3, 3, 1, 1), (3, 1, 1)), ((1, 3), (3,))]  # fmt: skip
# (x shape, num_groups): groups 1 and C, N = 1, 1x1 images.
GROUP_CASES = [((2, 6, 3, 2), 1), ((2, 6, 3, 2), 2), ((2, 6, 3, 2), 3), ((2, 6, 3, 2), 6),
               ((1, 4, 1, 1), 1), ((3, 6, 1, 1), 2), ((1, 3, 2, 3), 3), ((2, 4, 5), 2)]  # fmt: skip


@pytest.mark.parametrize("case", LAYER_CASES)
@pytest.mark.parametrize("affine", AFFINE)
@pytest.mark.parametrize("fast", [True, False])
def test_layer_norm_gradcheck(rng, case, affine, fast):
    shape, ns = case
    forward, backward = LAYER[fast]
    ns_tuple = (ns,) if isinstance(ns, int) else ns
    x = rng.standard_normal(shape) * 1.5 + 0.7
    check_backward(forward, backward, [x, *params(rng, ns_tuple, *affine)], rng,
                   normalized_shape=ns)  # fmt: skip


@pytest.mark.parametrize("case", GROUP_CASES)
@pytest.mark.parametrize("affine", AFFINE)
@pytest.mark.parametrize("fast", [True, False])
def test_group_norm_gradcheck(rng, case, affine, fast):
    shape, groups = case
    forward, backward = GROUP[fast]
    x = rng.standard_normal(shape) * 1.5 + 0.7
    check_backward(forward, backward, [x, *params(rng, (shape[1],), *affine)], rng,
                   num_groups=groups, eps=1e-3)  # fmt: skip


def run(impl, x, w, b, dout, **kw):
    forward, backward = impl
    out, cache = forward(x, w, b, **kw)
    return (out, *backward(dout, cache))


def run_torch(fn, x, w, b, dout, *args):
    """PyTorch in float64 from the very values given: the exact answer for any dtype."""
    tx, tw, tb = (t(None if a is None else a.astype(np.float64)) for a in (x, w, b))
    if tw is None and tb is not None:
        # PyTorch's group-norm backward fails with a bias but no weight ("tensor does not
        # have a device"); a constant weight of 1 is the same function.
        out = fn(tx, *args, torch.ones(tb.shape, dtype=torch.float64), tb)
    else:
        out = fn(tx, *args, tw, tb)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return [
        n(out),
        n(tx.grad),
        None if tw is None else n(tw.grad),
        None if tb is None else n(tb.grad),
    ]


def compare(ours, theirs, x, rows, dtype, eps):
    """float64: tight; float32: loose, with slack for rounding amplified by 1/var of a row."""
    var = x.astype(np.float64).reshape(rows, -1).var(axis=1) if x.size else np.ones(1)
    gain = max(1.0, 1.0 / (var.min() + eps)) * max(1.0, float(np.abs(x).max(initial=0)))
    rtol, atol = (1e-10, 1e-12 * gain) if dtype == np.float64 else (1e-4, 1e-5 * gain)
    for name, a, e in zip(NAMES, ours, theirs, strict=True):
        if e is None:
            assert a is None, f"{name} should be None"
            continue
        assert a.dtype == dtype, f"{name}: dtype {a.dtype}"
        assert_close(a, e, rtol=rtol, atol=atol, name=name)


def layouts(a: np.ndarray, reverse: bool) -> np.ndarray:
    """The same values, as a view with negative strides when ``reverse``."""
    if not reverse or a.ndim == 0:
        return a
    flip = tuple(slice(None, None, -1) for _ in a.shape)
    return a[flip].copy()[flip]


@settings(max_examples=60, deadline=None)
@given(
    n_=st.integers(0, 3), c_per=st.integers(1, 3), groups=st.integers(1, 3),
    hw=st.tuples(st.integers(1, 4), st.integers(1, 4)), affine=st.sampled_from(AFFINE),
    dtype=st.sampled_from([np.float32, np.float64]), reverse=st.booleans(),
    seed=st.integers(0, 2**31),
)  # fmt: skip
def test_group_norm_matches_torch_and_naive(n_, c_per, groups, hw, affine, dtype, reverse, seed):
    rng = np.random.default_rng(seed)
    c = c_per * groups
    x = layouts((rng.standard_normal((n_, c, *hw)) * 2 + 0.5).astype(dtype), reverse)
    w, b = params(rng, (c,), *affine, dtype=dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    ours = run(GROUP[True], x, w, b, dout, num_groups=groups)
    if n_ * c_per * hw[0] * hw[1] == 1:
        # PyTorch refuses a batch holding one value per group (a check inherited from batch
        # norm; with N = 2 it normalises each single value to 0). Ours gives that answer.
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            run_torch(TF.group_norm, x, w, b, dout, groups)
        assert not ours[0].any() if b is None else np.array_equal(ours[0].ravel(), b)
        assert not ours[1].any(), "dx of a single value per group"
        return
    compare(ours, run_torch(TF.group_norm, x, w, b, dout, groups), x, n_ * groups, dtype, 1e-5)
    if dtype == np.float64:
        compare(ours, run(GROUP[False], x, w, b, dout, num_groups=groups), x, n_ * groups,
                dtype, 1e-5)  # fmt: skip
    if n_ == 0:
        assert all(g is None or not g.any() for g in ours[2:]), "gradients after an empty batch"


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(0, 4), min_size=1, max_size=4), trailing=st.integers(1, 4),
    affine=st.sampled_from(AFFINE), dtype=st.sampled_from([np.float32, np.float64]),
    reverse=st.booleans(), seed=st.integers(0, 2**31),
)  # fmt: skip
def test_layer_norm_matches_torch_and_naive(shape, trailing, affine, dtype, reverse, seed):
    shape = [max(d, 1) for d in shape[:-1]] + shape[-1:]  # only the first dim may be 0
    shape[0] = shape[0] if len(shape) > 1 else max(shape[0], 1)
    ns = tuple(shape[-min(trailing, len(shape)) :])
    if 0 in ns:
        ns = tuple(max(d, 1) for d in ns)
        shape[len(shape) - len(ns) :] = ns
    rng = np.random.default_rng(seed)
    x = layouts((rng.standard_normal(shape) * 2 + 0.5).astype(dtype), reverse)
    w, b = params(rng, ns, *affine, dtype=dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    ours = run(LAYER[True], x, w, b, dout, normalized_shape=ns)
    rows = x.size // int(np.prod(ns))
    compare(ours, run_torch(TF.layer_norm, x, w, b, dout, ns), x, rows, dtype, 1e-5)
    if dtype == np.float64:
        compare(ours, run(LAYER[False], x, w, b, dout, normalized_shape=ns), x, rows, dtype, 1e-5)


def test_known_values():
    """Two values per row normalise to -1 and +1 (up to eps) whatever they are."""
    x = np.array([[[1.0, 3.0], [10.0, 20.0]]])
    out, _ = group_norm_forward(x, None, None, num_groups=2, eps=0.0)
    np.testing.assert_allclose(out, [[[-1.0, 1.0], [-1.0, 1.0]]], atol=1e-15)
    out, _ = layer_norm_forward(x, np.array([2.0, 3.0]), np.array([0.5, 0.0]),
                                normalized_shape=2, eps=0.0)  # fmt: skip
    np.testing.assert_allclose(out, [[[-1.5, 3.0], [-1.5, 3.0]]], atol=1e-15)


def test_errors_say_what_was_expected_and_what_came(rng):
    x = rng.standard_normal((2, 6, 3, 3))
    with pytest.raises(ValueError, match=r"C=6 .*4 groups"):
        group_norm_forward(x, None, None, num_groups=4)
    with pytest.raises(
        ValueError, match=r"num_channels \(6\) must be divisible by num_groups \(4\)"
    ):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"weight must have shape \(6,\)"):
        group_norm_forward(x, np.ones(5), None, num_groups=3)
    with pytest.raises(
        ValueError,
        match=r"normalized_shape=\(4, 4\), expected input with shape "
        r"\(\*, 4, 4\), but got input of shape \(2, 6, 3, 3\)",
    ):
        layer_norm_forward(x, None, None, normalized_shape=(4, 4))
    with pytest.raises(ValueError, match=r"expected input with shape \(\*, 2, 6, 3, 3\)"):
        layer_norm_forward(x[0], None, None, normalized_shape=(2, 6, 3, 3))
    with pytest.raises(ValueError, match=r"bias must have shape \(3, 3\)"):
        layer_norm_forward(x, None, np.ones(3), normalized_shape=(3, 3))
    with pytest.raises(ValueError, match="expected input with shape"):
        nn.LayerNorm(5).to(np.float64)(x)
    with pytest.raises(TypeError, match="dtype float32 but the input has dtype float64"):
        layer_norm_forward(x, np.ones(3, np.float32), None, normalized_shape=3)
    _, cache = layer_norm_forward(x, None, None, normalized_shape=3)
    with pytest.raises(ValueError, match="use its backward"):
        group_norm_backward(np.ones_like(x), cache)
    with pytest.raises(ValueError, match="dout must have"):
        layer_norm_backward(np.ones(3), cache)


def test_layers_are_pytorchs(rng):
    """Names, initialisation, repr and one training step against the PyTorch modules."""
    T = torch.nn
    pairs = [(nn.LayerNorm((3, 4), eps=1e-3), T.LayerNorm((3, 4), eps=1e-3)),
             (nn.LayerNorm(4, bias=False), T.LayerNorm(4, bias=False)),
             (nn.GroupNorm(2, 4), T.GroupNorm(2, 4)),
             (nn.GroupNorm(4, 4, affine=False), T.GroupNorm(4, 4, affine=False))]  # fmt: skip
    for ours, theirs in pairs:
        state = ours.state_dict()
        assert list(state) == list(theirs.state_dict())
        for k, v in theirs.state_dict().items():
            np.testing.assert_array_equal(state[k], v.numpy(), err_msg=k)
        for p in ours.parameters():  # away from the initial 1 and 0
            p.data[...] = rng.uniform(0.5, 1.5, p.shape)
        theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
        x = rng.standard_normal((2, 4, 3, 4)).astype(np.float32)
        dout = rng.standard_normal(x.shape).astype(np.float32)
        tx = t(x)
        theirs(tx).backward(torch.tensor(dout))
        assert_close(ours(x), theirs(t(x, False)).detach().numpy(), rtol=1e-5, name="out")
        assert_close(ours.backward(dout), n(tx.grad), rtol=1e-4, name="dx")
        for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters(),
                                      strict=True):  # fmt: skip
            assert_close(p.grad, n(tp.grad), rtol=1e-4, name=name)
    assert repr(nn.LayerNorm(4)) == "LayerNorm((4,))"
    assert (
        repr(nn.LayerNorm((2, 3), eps=1e-3, bias=False))
        == "LayerNorm((2, 3), eps=0.001, bias=False)"
    )
    assert repr(nn.GroupNorm(2, 4, affine=False)) == "GroupNorm(2, 4, affine=False)"


ONNX_CASES = {
    "layer-norm-image": (lambda: nn.LayerNorm((3, 4, 4)), (3, 4, 4)),
    "layer-norm-last": (lambda: nn.LayerNorm(5, elementwise_affine=False), (5,)),
    "layer-norm-no-bias": (lambda: nn.LayerNorm((4, 4), bias=False), (3, 4, 4)),
    "group-norm": (lambda: nn.GroupNorm(2, 6), (6, 3, 3)),
    "instance-norm": (lambda: nn.GroupNorm(3, 3, affine=False), (3, 2, 5)),
    "group-norm-1x1": (lambda: nn.GroupNorm(1, 4), (4, 1, 1)),
}


@pytest.mark.parametrize("case", list(ONNX_CASES))
def test_onnx_export_matches_onnxruntime(case, rng):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from cnnumpy.onnx import export

    make, shape = ONNX_CASES[case]
    model = make().eval()
    for p in model.parameters():
        p.data[...] = rng.uniform(0.5, 1.5, p.shape) * rng.choice([-1.0, 1.0], p.shape)
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    proto = export(model, x[:1])
    assert proto.opset_import[0].version == 17
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    assert_close(session.run(None, {"input": x})[0], model(x), rtol=1e-5, name=case)

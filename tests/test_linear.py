import numpy as np
import pytest
import torch
from helpers import assert_close, check_backward, n, t
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy.functional import linear_backward, linear_forward


@pytest.mark.parametrize("x_shape", [(4, 5), (1, 5), (3, 2, 2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck(rng, x_shape, bias):
    d = int(np.prod(x_shape[1:]))
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((6, d))
    b = rng.standard_normal(6) if bias else None
    check_backward(linear_forward, linear_backward, [x, w, b], rng)


@settings(max_examples=30, deadline=None)
@given(
    n_=st.integers(1, 5),
    dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    m=st.integers(1, 7),
    bias=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_matches_torch(n_, dims, m, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_, *dims)).astype(dtype)
    w = rng.standard_normal((m, int(np.prod(dims)))).astype(dtype)
    b = rng.standard_normal(m).astype(dtype) if bias else None
    out, cache = linear_forward(x, w, b)
    assert out.dtype == dtype
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = linear_backward(dout, cache)

    tx, tw, tb = t(x), t(w), t(b)
    tout = torch.nn.functional.linear(tx.flatten(1), tw, tb)
    tout.backward(torch.tensor(dout))
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    assert_close(out, n(tout), rtol=rtol, name="out")
    assert_close(dx, n(tx.grad), rtol=rtol, name="dx")
    assert_close(dw, n(tw.grad), rtol=rtol, name="dw")
    if bias:
        assert_close(db, n(tb.grad), rtol=rtol, name="db")
    else:
        assert db is None


def test_rejects_bad_input(rng):
    w = rng.standard_normal((3, 4))
    with pytest.raises(ValueError, match="4"):
        linear_forward(rng.standard_normal((2, 5)), w)
    with pytest.raises(TypeError, match="float32 or float64"):
        linear_forward(np.ones((2, 4), dtype=np.int64), w)
    with pytest.raises(ValueError, match="bias must have shape"):
        linear_forward(rng.standard_normal((2, 4)), w, np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        linear_forward(np.full((2, 4), np.nan), w, check_finite=True)
    with pytest.raises(TypeError, match="dtype"):
        linear_forward(rng.standard_normal((2, 4)).astype(np.float32), w)

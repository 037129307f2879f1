import numpy as np
import pytest
import torch
from helpers import assert_close, check_backward, n, t

from cnnumpy import nn
from cnnumpy.functional import constant_pad2d_backward, constant_pad2d_forward

PADDINGS = [0, 2, (1, 2, 3, 0), (0, 0, 0, 4)]


@pytest.mark.parametrize("padding", PADDINGS)
def test_gradcheck(rng, padding):
    check_backward(constant_pad2d_forward, constant_pad2d_backward, [rng.random((2, 3, 4, 5))],
                   rng, padding=padding, value=-0.1)  # fmt: skip


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(rng, padding, dtype):
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    out, cache = constant_pad2d_forward(x, padding, value=-0.1)
    dout = rng.standard_normal(out.shape).astype(dtype)
    pads = (padding,) * 4 if isinstance(padding, int) else padding
    tx = t(x)
    tout = torch.nn.functional.pad(tx, pads, value=-0.1)
    tout.backward(torch.tensor(dout))
    assert out.dtype == dtype
    assert_close(out, n(tout), rtol=0, name="out")
    assert_close(constant_pad2d_backward(dout, cache), n(tx.grad), rtol=0, name="dx")


def test_module_fills_the_border_with_the_value(rng):
    pad = nn.ConstantPad2d(2, -0.1)
    x = rng.standard_normal((1, 1, 3, 3))
    out = pad(x)
    assert out.shape == (1, 1, 7, 7)
    border = np.ones((7, 7), bool)
    border[2:5, 2:5] = False
    assert np.all(out[0, 0][border] == -0.1)
    np.testing.assert_array_equal(out[0, 0, 2:5, 2:5], x[0, 0])
    assert "padding=(2, 2, 2, 2), value=-0.1" in repr(pad)
    assert pad.state_dict() == {}


def test_rejects_bad_arguments(rng):
    x = rng.standard_normal((1, 1, 3, 3))
    with pytest.raises(ValueError, match="padding must be >= 0"):
        constant_pad2d_forward(x, (1, -1, 0, 0))
    with pytest.raises(TypeError, match=r"padding must be an int or \(left, right, top, bottom\)"):
        constant_pad2d_forward(x, (1, 2))
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        constant_pad2d_forward(x[0], 1)
    out, cache = constant_pad2d_forward(x, 1)
    with pytest.raises(ValueError, match=r"dout must have shape \(1, 1, 5, 5\)"):
        constant_pad2d_backward(out[:, :, 1:], cache)

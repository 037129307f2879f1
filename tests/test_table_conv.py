"""The partial (connection-table) convolution: kernels against the loop reference and numerical
gradients, and the ``nn.TableConv2d`` layer around them (LeNet-5's C3)."""

import numpy as np
import pytest
from helpers import assert_close, check_backward

import cnnumpy.functional as F
from cnnumpy import nn

# A table written out by hand: output map 0 reads maps 0 and 2, map 1 reads map 1, map 2 all.
OUT_INDEX, IN_INDEX = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 2, 1, 0, 1, 2])
KW = {"out_index": OUT_INDEX, "in_index": IN_INDEX, "out_channels": 3}


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_forward_matches_the_loop_reference(rng, dtype, rtol):
    x = rng.standard_normal((2, 3, 6, 5)).astype(dtype)
    w, b = rng.standard_normal((6, 3, 2)).astype(dtype), rng.standard_normal(3).astype(dtype)
    out, _ = F.table_conv2d_forward(x, w, b, **KW)
    assert out.shape == (2, 3, 4, 4) and out.dtype == dtype
    assert_close(out, F.table_conv2d_forward_naive(x, w, b, **KW), rtol=rtol, name="out")
    no_bias, _ = F.table_conv2d_forward(x, w, None, **KW)
    assert_close(no_bias, F.table_conv2d_forward_naive(x, w, None, **KW), rtol=rtol, name="nb")


def test_output_map_by_hand():
    """Map 1 reads only input map 1: a 1x1 kernel of 2 doubles it, whatever maps 0 and 2 hold."""
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    w = np.zeros((6, 1, 1))
    w[2] = 2.0
    out, _ = F.table_conv2d_forward(x, w, np.array([0.0, 1.0, 0.0]), **KW)
    assert np.array_equal(out[:, 1], 2 * x[:, 1] + 1)
    assert not out[:, [0, 2]].any()


def test_gradients_are_numerical(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    w, b = rng.standard_normal((6, 3, 2)), rng.standard_normal(3)
    check_backward(F.table_conv2d_forward, F.table_conv2d_backward, [x, w, b], rng, **KW)
    check_backward(F.table_conv2d_forward, F.table_conv2d_backward, [x, w, None], rng, **KW)


def test_input_grad_false_skips_only_dx(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    w, b = rng.standard_normal((6, 2, 2)), rng.standard_normal(3)
    out, cache = F.table_conv2d_forward(x, w, b, **KW)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = F.table_conv2d_backward(dout, cache)
    skipped, dw2, db2 = F.table_conv2d_backward(dout, cache, input_grad=False)
    assert dx.shape == x.shape and skipped is None
    assert np.array_equal(dw, dw2) and np.array_equal(db, db2)


def test_kernel_rejects_a_weight_that_does_not_fit_the_table(rng):
    with pytest.raises(ValueError, match="connections=6"):
        F.table_conv2d_forward(np.zeros((1, 3, 4, 4)), np.zeros((5, 2, 2)), None, **KW)


def test_layer_is_the_kernel_with_its_table(rng):
    layer = nn.TableConv2d(3, ((0, 2), (1,), (0, 1, 2)), 2, rng=rng).to(np.float64)
    assert np.array_equal(layer.out_index, OUT_INDEX) and np.array_equal(layer.in_index, IN_INDEX)
    assert layer.weight.shape == (6, 2, 2) and layer.bias.shape == (3,)
    x = rng.standard_normal((2, 3, 5, 5))
    expected = F.table_conv2d_forward_naive(x, layer.weight.data, layer.bias.data, **KW)
    assert_close(layer(x), expected, rtol=1e-12, name="layer output")
    layer.set_input_grad(False)
    assert layer.backward(np.ones((2, 3, 4, 4))) is None


def test_layer_counts_as_the_paper(rng):
    """A connection is one input or bias feeding one output unit (LeCun et al. 1998)."""
    layer = nn.TableConv2d(3, ((0, 2), (1,), (0, 1, 2)), 2, rng=rng)
    # 4x4 outputs per map; 6 kernels of 2x2 taps, plus one bias per map
    assert layer.connections((1, 3, 5, 5), (1, 3, 4, 4)) == 16 * (6 * 4 + 3)
    assert layer.multiply_adds((1, 3, 5, 5), (1, 3, 4, 4)) == 16 * 6 * 4
    no_bias = nn.TableConv2d(3, ((0, 2), (1,), (0, 1, 2)), 2, bias=False, rng=rng)
    assert no_bias.connections((1, 3, 5, 5), (1, 3, 4, 4)) == 16 * 6 * 4


@pytest.mark.parametrize(
    "table, message",
    [(((0, 0),), "distinct"), (((),), "distinct"), (((0, 3),), r"outside \[0, 3\)")],
)
def test_layer_rejects_bad_tables(table, message):
    with pytest.raises(ValueError, match=message):
        nn.TableConv2d(3, table, 2)


def test_layer_rejects_the_wrong_channels(rng):
    with pytest.raises(ValueError, match=r"expected \(N, 3, H, W\)"):
        nn.TableConv2d(3, ((0,),), 2, rng=rng)(np.zeros((1, 2, 4, 4), np.float32))

"""``cnnumpy.inspect.gradcheck``: central differences against derivatives worked out by hand,
and a model check that passes a correct backward and catches a wrong one."""

from __future__ import annotations

import numpy as np
import pytest

from cnnumpy import nn
from cnnumpy.inspect import (
    check_model_gradients,
    numerical_gradient,
    numerical_gradient_array,
    relative_error,
)


def test_numerical_gradient_of_a_cubic():
    x = np.array([[0.5, -1.0], [2.0, 0.0]])
    grad = numerical_gradient(lambda: float(np.sum(x**3)), x)
    np.testing.assert_allclose(grad, 3 * x**2, atol=1e-8)
    np.testing.assert_array_equal(x, [[0.5, -1.0], [2.0, 0.0]], err_msg="x is restored")


def test_numerical_gradient_array_weights_by_dout():
    x = np.array([1.0, 2.0, 3.0])
    dout = np.array([1.0, -2.0, 0.5])
    # d/dx sum(sin(x) * dout) = cos(x) * dout
    grad = numerical_gradient_array(lambda: np.sin(x), x, dout)
    np.testing.assert_allclose(grad, np.cos(x) * dout, atol=1e-8)
    with pytest.raises(ValueError, match="contiguous"):
        numerical_gradient(lambda: 0.0, np.ones((3, 4)).T)  # no flat view


def test_relative_error_is_relative_to_the_largest_entry():
    assert relative_error([1.0, 4.0], [1.0, 3.0]) == 0.25
    assert relative_error([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert relative_error([1e-9], [0.0], floor=1e-3) == pytest.approx(1e-6)
    with pytest.raises(ValueError, match="shapes differ"):
        relative_error(np.zeros(2), np.zeros(3))


class DoubledWeightGrad(nn.Linear):
    """A wrong backward: the weight's gradient counted twice."""

    def backward(self, dout: np.ndarray) -> np.ndarray:
        before = self.weight.grad.copy()
        dx = super().backward(dout)
        self.weight.grad += self.weight.grad - before
        return dx


def small_model(linear: type[nn.Linear]) -> nn.Sequential:
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Flatten(), linear(8, 3, rng=rng), nn.Tanh()).to(np.float64)


def test_check_model_gradients_passes_a_correct_backward():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((4, 2, 2, 2)), np.array([0, 2, 1, 2])
    errors = check_model_gradients(small_model(nn.Linear), nn.CrossEntropyLoss(), x, y)
    assert set(errors) == {"input", "1.weight", "1.bias"}
    assert max(errors.values()) < 1e-6


def test_check_model_gradients_catches_a_wrong_backward():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((4, 2, 2, 2)), np.array([0, 2, 1, 2])
    errors = check_model_gradients(small_model(DoubledWeightGrad), nn.CrossEntropyLoss(), x, y)
    # Twice the gradient: the error is as large as the gradient itself, on its largest entry.
    assert errors["1.weight"] > 0.3
    assert errors["1.bias"] < 1e-6 and errors["input"] < 1e-6

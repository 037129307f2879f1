"""Helpers shared by the tests: gradient checks and conversions to and from PyTorch."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from cnnumpy import nn
from cnnumpy.inspect import numerical_gradient_array, relative_error

GRAD_TOL = 1e-7  # float64 numerical vs analytic, relative to the gradient's scale


def assert_close(actual, expected, *, rtol: float, name: str = "array", atol: float = 0.0) -> None:
    """Scale-relative comparison with a message that names the array."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    err = np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64)), initial=0.0)
    scale = np.max(np.abs(expected.astype(np.float64)), initial=0.0)
    assert err <= atol + rtol * scale, f"{name}: max abs error {err:.3g} (scale {scale:.3g})"



def assert_conv_close(ours, ref, rtol: float, atol: float = 0.0) -> None:
    """``(out, dx, dweight, dbias)`` against a reference's, each with :func:`assert_close`; a
    None in ``ref`` (no bias) must be None in ``ours`` too."""
    for name, a, r in zip(("out", "dx", "dweight", "dbias"), ours, ref, strict=True):
        if r is None:
            assert a is None, f"{name} should be None"
        else:
            assert_close(a, r, rtol=rtol, atol=atol, name=name)


def check_backward(
    forward: Callable[..., tuple[np.ndarray, object]],
    backward: Callable[[np.ndarray, object], object],
    arrays: Sequence[np.ndarray],
    rng: np.random.Generator,
    tol: float = GRAD_TOL,
    **kwargs,
) -> None:
    """Numerically check each gradient that ``backward`` returns for ``forward(*arrays, **kwargs)``.

    ``backward`` returns dx or a tuple of gradients in the order of ``arrays``. A None in
    ``arrays`` (a missing bias) is passed to ``forward`` as None and its gradient must be None.
    """
    arrays = [None if a is None else np.ascontiguousarray(a, dtype=np.float64) for a in arrays]
    out, cache = forward(*arrays, **kwargs)
    dout = rng.standard_normal(out.shape)
    grads = backward(dout, cache)
    if not isinstance(grads, tuple):
        grads = (grads,)
    assert len(grads) == len(arrays), f"backward returned {len(grads)} gradients for {len(arrays)}"
    for i, (a, g) in enumerate(zip(arrays, grads, strict=True)):
        if a is None:
            assert g is None, f"gradient {i} should be None for a None argument"
            continue
        num = numerical_gradient_array(lambda: forward(*arrays, **kwargs)[0], a, dout)
        err = relative_error(g, num)
        assert err < tol, f"gradient {i} (shape {a.shape}): relative error {err:.3g} >= {tol}"


def t(a: np.ndarray | None, grad: bool = True) -> torch.Tensor | None:
    """A NumPy array as a torch leaf tensor (same dtype) that records its gradient."""
    if a is None:
        return None
    return torch.tensor(a, requires_grad=grad)


def n(x: torch.Tensor | None) -> np.ndarray | None:
    """A torch tensor (or its .grad) back as a NumPy array."""
    return None if x is None else x.detach().numpy()


def tiny_net(seed: int = 0, n: int = 10, dropout: float = 0.0):
    """A float64 two-layer net on ``n`` random 1x2x2 images of 3 classes."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, 1, 2, 2)), np.arange(n) % 3
    layers = [nn.Flatten(), nn.Linear(4, 5, rng=rng), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout, rng=np.random.default_rng(seed + 1)))
    model = nn.Sequential(*layers, nn.Linear(5, 3, rng=rng)).to(np.float64)
    return model, x, y

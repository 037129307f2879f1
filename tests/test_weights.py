"""``cn.save_weights`` / ``cn.load_weights``: safetensors files of a model's state_dict, strict
on keys, shapes and dtypes, and the recipe that moves weights to and from PyTorch twins
(``safetensors.torch``), with PyTorch's outputs as the reference."""

from __future__ import annotations

import numpy as np
import pytest
import resnet_helpers as rh
import safetensors.torch as safetensors_torch
import torch
from helpers import assert_close

import cnnumpy as cn
from cnnumpy import nn
from cnnumpy.models import build_model

T = torch.nn


def _resnet20(dtype=np.float32) -> nn.Module:
    model = build_model("resnet20", tiny=True, input_size=8, rng=np.random.default_rng(0))
    return model.to(dtype)


def _perturbed_state(model: nn.Module, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every array of the state changed, in its own dtype (running variances kept positive)."""
    state = {}
    for key, value in model.state_dict().items():
        if value.dtype.kind == "f":
            state[key] = (np.abs(value) + rng.uniform(0.1, 1.0, value.shape)).astype(value.dtype)
        else:
            state[key] = value + 7
    return state


def test_weights_round_trip_exactly(tmp_path):
    model = _resnet20()
    model.load_state_dict(_perturbed_state(model, np.random.default_rng(0)))
    path = tmp_path / "resnet20.safetensors"
    cn.save_weights(model, path, metadata={"epoch": 3})
    fresh = _resnet20()
    assert cn.load_weights(fresh, path) == {"epoch": "3"}
    for key, value in model.state_dict().items():
        loaded = fresh.state_dict()[key]
        assert loaded.dtype == value.dtype and loaded.shape == value.shape, key
        np.testing.assert_array_equal(loaded, value, err_msg=key)
    assert fresh.state_dict()["bn.num_batches_tracked"].shape == ()


def test_a_file_that_does_not_fit_is_one_error_and_changes_nothing(tmp_path):
    model = _resnet20()
    state = model.state_dict()
    state.pop("fc.bias")
    state["extra.weight"] = np.zeros(3, np.float32)
    state["conv.weight"] = np.zeros((3, 3, 3, 3), np.float32)
    state["bn.weight"] = state["bn.weight"].astype(np.float64)  # never cast silently
    path = tmp_path / "bad.safetensors"
    import safetensors.numpy as safetensors_numpy

    safetensors_numpy.save_file(state, path)
    before = model.state_dict()
    with pytest.raises(ValueError) as info:
        cn.load_weights(model, path)
    message = str(info.value)
    assert "missing keys: fc.bias" in message
    assert "unexpected keys: extra.weight" in message
    assert "conv.weight (file (3, 3, 3, 3) float32, model (2, 3, 3, 3) float32)" in message
    assert "bn.weight (file (2,) float64, model (2,) float32)" in message
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_unreadable_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        cn.load_weights(_resnet20(), tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="junk.safetensors is not a readable safetensors file"):
        cn.load_weights(_resnet20(), junk)


# ---------------------------------------------------------------- the recipe with PyTorch


def _lenet5_modern_twin() -> T.Module:
    """``lenet5_modern(widths=(2, 3, 4, 5), batch_norm=True)`` in torch.nn, same indices."""
    return T.Sequential(
        T.Conv2d(1, 2, 5, padding=2, bias=False), T.BatchNorm2d(2), T.ReLU(), T.MaxPool2d(2),
        T.Conv2d(2, 3, 5, bias=False), T.BatchNorm2d(3), T.ReLU(), T.MaxPool2d(2),
        T.Conv2d(3, 4, 5, bias=False), T.BatchNorm2d(4), T.ReLU(), T.Flatten(),
        T.Linear(4, 5, bias=False), T.BatchNorm1d(5), T.ReLU(), T.Linear(5, 10),
    )  # fmt: skip


TWINS = {  # name: (cnnumpy model, torch twin, input shape)
    "resnet20": (_resnet20, lambda: rh.resnet((3, 3, 3), (2, 4, 4), kind="A"), (3, 8, 8)),
    "lenet5_modern": (
        lambda: build_model("lenet5_modern", tiny=True, input_size=28, batch_norm=True,
                            rng=np.random.default_rng(0)),
        _lenet5_modern_twin, (1, 28, 28),
    ),
}  # fmt: skip


def _randomize_twin(net: T.Module) -> T.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, T.BatchNorm1d | T.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
                m.num_batches_tracked.fill_(5)
    return net.eval()


@pytest.mark.parametrize("name", list(TWINS))
def test_weights_move_from_pytorch_to_cnnumpy(tmp_path, name):
    build, twin, shape = TWINS[name]
    net = _randomize_twin(twin())
    path = tmp_path / "from_torch.safetensors"
    safetensors_torch.save_file(net.state_dict(), path)
    model = build().eval()
    cn.load_weights(model, path)
    x = np.random.default_rng(0).standard_normal((3, *shape)).astype(np.float32)
    expected = net(torch.tensor(x)).detach().numpy()
    assert_close(model(x), expected, rtol=1e-5, name=f"{name} output")


@pytest.mark.parametrize("name", list(TWINS))
def test_weights_move_from_cnnumpy_to_pytorch(tmp_path, name):
    build, twin, shape = TWINS[name]
    model = build()
    model.load_state_dict(_perturbed_state(model, np.random.default_rng(1)))
    path = tmp_path / "from_cnnumpy.safetensors"
    cn.save_weights(model, path)
    net = twin().eval()
    net.load_state_dict(safetensors_torch.load_file(path))  # strict in PyTorch too
    x = np.random.default_rng(0).standard_normal((3, *shape)).astype(np.float32)
    expected = net(torch.tensor(x)).detach().numpy()
    assert_close(model.eval()(x), expected, rtol=1e-5, name=f"{name} output")

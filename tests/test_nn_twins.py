"""Every module that PyTorch also has, checked against its torch twin.

The torch module's ``state_dict()`` is copied into the cnnumpy module (so attribute names and
keys must agree), then outputs, dx and every parameter gradient are compared in float64, in
training and in eval mode, and the running statistics after a training step.
"""

import numpy as np
import pytest
import torch
from helpers import assert_close

import cnnumpy.nn as nn

TOL = 1e-10

# (cnnumpy module factory, torch module factory, input shape)
TWINS = {
    "linear": (lambda: nn.Linear(12, 5), lambda: torch.nn.Linear(12, 5), (3, 12)),
    "linear_nobias": (
        lambda: nn.Linear(12, 5, bias=False),
        lambda: torch.nn.Linear(12, 5, bias=False),
        (3, 12),
    ),
    "conv": (
        lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
        lambda: torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
        (2, 4, 7, 6),
    ),
    "conv_dilated_nobias": (
        lambda: nn.Conv2d(3, 4, (3, 2), dilation=2, bias=False),
        lambda: torch.nn.Conv2d(3, 4, (3, 2), dilation=2, bias=False),
        (2, 3, 8, 7),
    ),
    "conv_transpose": (
        lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
        lambda: torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
        (2, 4, 4, 5),
    ),
    "maxpool_overlap": (lambda: nn.MaxPool2d(3, 2), lambda: torch.nn.MaxPool2d(3, 2), (2, 3, 9, 8)),
    "avgpool_ceil": (
        lambda: nn.AvgPool2d(2, ceil_mode=True, padding=1),
        lambda: torch.nn.AvgPool2d(2, ceil_mode=True, padding=1),
        (2, 3, 7, 6),
    ),
    "global_avg": (
        lambda: nn.AdaptiveAvgPool2d(1),
        lambda: torch.nn.AdaptiveAvgPool2d(1),
        (2, 3, 5, 4),
    ),
    "relu": (nn.ReLU, torch.nn.ReLU, (4, 7)),
    "leaky": (lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2), (4, 7)),
    "elu": (lambda: nn.ELU(0.7), lambda: torch.nn.ELU(0.7), (4, 7)),
    "sigmoid": (nn.Sigmoid, torch.nn.Sigmoid, (4, 7)),
    "tanh": (nn.Tanh, torch.nn.Tanh, (4, 7)),
    "softmax": (nn.Softmax, lambda: torch.nn.Softmax(dim=1), (4, 7)),
    "log_softmax": (nn.LogSoftmax, lambda: torch.nn.LogSoftmax(dim=1), (4, 7)),
    "prelu_1": (nn.PReLU, torch.nn.PReLU, (3, 4, 5, 5)),
    "prelu_c": (lambda: nn.PReLU(4), lambda: torch.nn.PReLU(4), (3, 4, 5, 5)),
    "bn1d": (lambda: nn.BatchNorm1d(6), lambda: torch.nn.BatchNorm1d(6), (5, 6)),
    "bn2d": (lambda: nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), (4, 3, 5, 5)),
    "bn2d_plain": (
        lambda: nn.BatchNorm2d(3, affine=False, track_running_stats=False, momentum=0.3),
        lambda: torch.nn.BatchNorm2d(3, affine=False, track_running_stats=False, momentum=0.3),
        (4, 3, 5, 5),
    ),
    "lrn": (
        lambda: nn.LocalResponseNorm(3, alpha=0.1, beta=0.75, k=2.0),
        lambda: torch.nn.LocalResponseNorm(3, alpha=0.1, beta=0.75, k=2.0),
        (2, 5, 4, 4),
    ),
    "flatten": (nn.Flatten, torch.nn.Flatten, (2, 3, 4, 4)),
    "stack": (
        lambda: nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * 3 * 3, 5),
        ),
        lambda: torch.nn.Sequential(
            torch.nn.Conv2d(2, 4, 3, padding=1),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(4 * 3 * 3, 5),
        ),
        (3, 2, 6, 7),
    ),
}


def _copy_weights(ours: nn.Module, theirs: torch.nn.Module) -> None:
    ours.to(np.float64)
    theirs.double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", list(TWINS))
def test_module_matches_torch_twin(name, training):
    make_ours, make_theirs, shape = TWINS[name]
    torch.manual_seed(0)
    ours, theirs = make_ours(), make_theirs()
    _copy_weights(ours, theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()), "state_dict keys differ"
    ours.train(training)
    theirs.train(training)

    rng = np.random.default_rng(1)
    x = rng.permutation(np.prod(shape)).reshape(shape) / np.prod(shape) - 0.5  # tie-free
    tx = torch.tensor(x, requires_grad=True)
    out, tout = ours(x), theirs(tx)
    assert_close(out, tout.detach().numpy(), rtol=TOL, atol=1e-12, name=f"{name} output")

    dout = rng.standard_normal(out.shape)
    dx = ours.backward(dout)
    tout.backward(torch.tensor(dout))
    assert_close(dx, tx.grad.numpy(), rtol=TOL, atol=1e-12, name=f"{name} dx")
    theirs_grads = {k: p.grad.numpy() for k, p in theirs.named_parameters()}
    ours_grads = {k: p.grad for k, p in ours.named_parameters()}
    assert list(ours_grads) == list(theirs_grads)
    for key, grad in theirs_grads.items():
        assert_close(ours_grads[key], grad, rtol=TOL, atol=1e-12, name=f"{name} d{key}")
    for key, value in theirs.state_dict().items():  # running statistics after the step
        ours_value = ours.state_dict()[key]
        assert_close(ours_value, value.numpy(), rtol=TOL, atol=1e-12, name=f"{name} {key}")


def test_load_state_dict_reports_every_mismatch():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    state = model.state_dict()
    state["0.weight"] = np.zeros((5, 4), np.float32)
    del state["2.bias"]
    state["9.weight"] = np.zeros(1, np.float32)
    before = model.state_dict()
    with pytest.raises(ValueError) as err:
        model.load_state_dict(state)
    msg = str(err.value)
    assert "missing keys: 2.bias" in msg
    assert "unexpected keys: 9.weight" in msg
    assert "0.weight (checkpoint (5, 4), model (3, 4))" in msg
    for key, value in model.state_dict().items():  # nothing was changed
        np.testing.assert_array_equal(value, before[key])


def test_train_eval_recursive_and_repr():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Dropout(0.3), nn.Sequential(nn.BatchNorm2d(2)))
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    text = repr(model)
    assert "(0): Conv2d(1, 2, kernel_size=(3, 3))" in text
    assert "(1): Dropout(p=0.3)" in text
    assert [k for k, _ in model.named_parameters()] == [
        "0.weight",
        "0.bias",
        "2.0.weight",
        "2.0.bias",
    ]

"""Torch twins shared by the model tests: dropout with a given mask, and the comparison of a
cnnumpy model with its twin (outputs, dx, every parameter gradient, buffers) in float64."""

import numpy as np
import torch
from helpers import assert_close

from cnnumpy import nn

TOL = 1e-8
ATOL = 1e-12  # gradients zero in exact arithmetic (a BN bias whose ReLUs are all on)
T = torch.nn


class MaskedDropout(T.Module):
    """Inverted dropout whose mask is copied from the cnnumpy twin's forward."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p, self.mask = p, None

    def forward(self, x):
        if not self.training or self.mask is None:
            return x
        return x * self.mask / (1 - self.p)


def assert_matches_twin(ours, theirs, x, training):
    """Copy the twin's weights into ours; compare outputs, dx, every parameter gradient and the
    buffers after the step."""
    ours.to(np.float64)
    theirs.double()
    state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(state), "state_dict keys differ"
    ours.load_state_dict(state)
    ours.train(training)
    theirs.train(training)
    out = ours(x)
    drops = [m for m in ours.modules() if isinstance(m, nn.Dropout)]
    twin_drops = [m for m in theirs.modules() if isinstance(m, MaskedDropout)]
    for mine, twin in zip(drops, twin_drops, strict=True):
        mask = mine._saved.mask  # the mask the forward drew, kept for its backward
        twin.mask = None if mask is None else torch.tensor(mask)
    if training and any(m.p > 0 for m in drops):
        assert any(not m.mask.all() for m in twin_drops), "no unit was dropped"
    tx = torch.tensor(x, requires_grad=True)
    tout = theirs(tx)
    assert_close(out, tout.detach().numpy(), rtol=TOL, atol=ATOL, name="output")
    dout = np.random.default_rng(7).standard_normal(out.shape)
    ours.zero_grad()
    dx = ours.backward(dout)
    tout.backward(torch.tensor(dout))
    assert_close(dx, tx.grad.numpy(), rtol=TOL, atol=ATOL, name="dx")
    grads = {k: p.grad for k, p in ours.named_parameters()}
    assert list(grads) == [k for k, _ in theirs.named_parameters()]
    for key, p in theirs.named_parameters():
        assert_close(grads[key], p.grad.numpy(), rtol=TOL, atol=ATOL, name=f"d{key}")
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key], value.numpy(), rtol=TOL, atol=ATOL, name=key)


def count(model) -> int:
    return sum(p.data.size for p in model.parameters())


def torch_count(model) -> int:
    return sum(p.numel() for p in model.parameters())

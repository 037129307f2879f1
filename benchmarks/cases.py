"""The speed cases: for each, one step of cnnumpy and the same step in PyTorch.

A case builder returns ``(ours, theirs)``: two zero-argument callables that do the same work on
the same float32 data. Layer cases time forward + backward (dx and every parameter gradient);
training-step cases time forward, loss, backward and an SGD-with-momentum update; eval cases
time the forward of a model in eval mode (PyTorch's under ``torch.no_grad()``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as TF

from cnnumpy import nn, optim
from cnnumpy.functional.conv import conv2d_backward, conv2d_forward
from cnnumpy.functional.norm import spatial_batch_norm_backward, spatial_batch_norm_forward
from cnnumpy.functional.pool import max_pool2d_backward, max_pool2d_forward
from cnnumpy.models import build_model

# The tests' PyTorch twin of the ResNet family (same structure, same parameter names).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from resnet_helpers import resnet as torch_resnet  # noqa: E402

Step = Callable[[], object]


@dataclass(frozen=True)
class Case:
    name: str
    group: str  # conv, pool, norm, step, eval, scaling
    build: Callable[[], tuple[Step, Step]]
    bar: float | None = None  # the bar on the ratio cnnumpy / torch, if it sets one


def _data(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def _torch_layer_step(fn: Callable, inputs: list[np.ndarray], dout: np.ndarray) -> Step:
    tensors = [torch.tensor(a, requires_grad=True) for a in inputs]
    tdout = torch.tensor(dout)

    def step():
        return torch.autograd.grad(fn(*tensors), tensors, tdout)

    return step


def conv_case(x_shape, w_shape, padding: int) -> Callable[[], tuple[Step, Step]]:
    def build():
        x, w, b = _data(x_shape, 0), _data(w_shape, 1) * 0.1, _data(w_shape[:1], 2)
        out, _ = conv2d_forward(x, w, b, padding=padding)
        dout = _data(out.shape, 3)

        def ours():
            _, cache = conv2d_forward(x, w, b, padding=padding)
            return conv2d_backward(dout, cache)

        theirs = _torch_layer_step(lambda *t: TF.conv2d(*t, padding=padding), [x, w, b], dout)
        return ours, theirs

    return build


def max_pool_case(x_shape, kernel: int, stride: int) -> Callable[[], tuple[Step, Step]]:
    def build():
        x = _data(x_shape)
        out, _ = max_pool2d_forward(x, kernel_size=kernel, stride=stride)
        dout = _data(out.shape, 1)

        def ours():
            _, cache = max_pool2d_forward(x, kernel_size=kernel, stride=stride)
            return max_pool2d_backward(dout, cache)

        theirs = _torch_layer_step(lambda t: TF.max_pool2d(t, kernel, stride), [x], dout)
        return ours, theirs

    return build


def batch_norm_case(x_shape) -> Callable[[], tuple[Step, Step]]:
    def build():
        c = x_shape[1]
        x, gamma, beta, dout = _data(x_shape), _data((c,), 1), _data((c,), 2), _data(x_shape, 3)
        mean, var = np.zeros(c, np.float32), np.ones(c, np.float32)

        def ours():
            _, cache, _, _ = spatial_batch_norm_forward(x, gamma, beta, mean, var, training=True)
            return spatial_batch_norm_backward(dout, cache)

        tmean, tvar = torch.zeros(c), torch.ones(c)
        theirs = _torch_layer_step(
            lambda t, g, b: TF.batch_norm(t, tmean, tvar, g, b, training=True),
            [x, gamma, beta], dout,
        )  # fmt: skip
        return ours, theirs

    return build


def _training_steps(ours_model: nn.Module, theirs_model, x: np.ndarray) -> tuple[Step, Step]:
    """SGD(lr 0.01, momentum 0.9) steps of both models on the same batch and labels."""
    y = np.random.default_rng(5).integers(0, 10, x.shape[0])
    ours_model.load_state_dict(
        {k: v.detach().numpy().copy() for k, v in theirs_model.state_dict().items()}
    )
    ours_model.train()
    theirs_model.train()
    loss = nn.CrossEntropyLoss()
    opt = optim.SGD(ours_model.parameters(), lr=0.01, momentum=0.9)
    tx, ty = torch.tensor(x), torch.tensor(y)
    topt = torch.optim.SGD(theirs_model.parameters(), lr=0.01, momentum=0.9)

    def ours():
        loss(ours_model(x), y)
        ours_model.backward(loss.backward())
        opt.step()
        opt.zero_grad()

    def theirs():
        TF.cross_entropy(theirs_model(tx), ty).backward()
        topt.step()
        topt.zero_grad()

    # What the profiler (profile_resnet.py) wraps its timers around.
    ours.model, ours.loss, ours.opt = ours_model, loss, opt
    return ours, theirs


def torch_lenet5_modern() -> torch.nn.Sequential:
    """PyTorch's LeNet-5 shape as cnnumpy's ``lenet5_modern`` builds it for 28x28 inputs."""
    T = torch.nn
    return T.Sequential(
        T.Conv2d(1, 6, 5, padding=2), T.ReLU(), T.MaxPool2d(2),
        T.Conv2d(6, 16, 5), T.ReLU(), T.MaxPool2d(2),
        T.Conv2d(16, 120, 5), T.ReLU(), T.Flatten(),
        T.Linear(120, 84), T.ReLU(), T.Linear(84, 10),
    )  # fmt: skip


def lenet5_modern_step(batch: int) -> Callable[[], tuple[Step, Step]]:
    def build():
        torch.manual_seed(0)
        ours = build_model("lenet5_modern", input_size=28, rng=np.random.default_rng(0))
        return _training_steps(ours, torch_lenet5_modern(), _data((batch, 1, 28, 28)))

    return build


def torch_resnet20() -> torch.nn.Module:
    return torch_resnet((3, 3, 3), (16, 32, 64), cin=3, kind="A")


def resnet20_step(batch: int) -> Callable[[], tuple[Step, Step]]:
    def build():
        torch.manual_seed(0)
        ours = build_model("resnet20", in_channels=3, input_size=32, rng=np.random.default_rng(0))
        return _training_steps(ours, torch_resnet20(), _data((batch, 3, 32, 32)))

    return build


def _eval_forwards(ours_model: nn.Module, theirs_model, x: np.ndarray) -> tuple[Step, Step]:
    """Eval-mode forwards of both models, with the same weights, on the same batch."""
    ours_model.load_state_dict(
        {k: v.detach().numpy().copy() for k, v in theirs_model.state_dict().items()}
    )
    ours_model.eval()
    theirs_model.eval()
    tx = torch.tensor(x)

    def theirs():
        with torch.no_grad():
            return theirs_model(tx)

    return lambda: ours_model(x), theirs


def eval_forward(model: str, batch: int) -> Callable[[], tuple[Step, Step]]:
    def build():
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        if model == "lenet5_modern":
            ours = build_model("lenet5_modern", input_size=28, rng=rng)
            return _eval_forwards(ours, torch_lenet5_modern(), _data((batch, 1, 28, 28)))
        ours = build_model("resnet20", in_channels=3, input_size=32, rng=rng)
        return _eval_forwards(ours, torch_resnet20(), _data((batch, 3, 32, 32)))

    return build


POOL_INPUT = (128, 64, 32, 32)
# The bars of the eval-mode forwards; lenet5_modern's have none.
EVAL_BARS = {("resnet20", 1): 1.0, ("resnet20", 16): 1.3, ("resnet20", 256): 1.3}

CASES = [
    Case("conv 5x5 1->6, 28x28, N=256", "conv", conv_case((256, 1, 28, 28), (6, 1, 5, 5), 2), 2.0),
    Case("conv 5x5 6->16, 14x14, N=256", "conv", conv_case((256, 6, 14, 14), (16, 6, 5, 5), 0),
         1.3),
    Case("conv 3x3 3->32, 32x32, N=128", "conv", conv_case((128, 3, 32, 32), (32, 3, 3, 3), 1),
         2.0),
    Case("conv 3x3 64->64, 32x32, N=64", "conv", conv_case((64, 64, 32, 32), (64, 64, 3, 3), 1),
         2.0),
    Case("conv 3x3 128->128, 16x16, N=64", "conv",
         conv_case((64, 128, 16, 16), (128, 128, 3, 3), 1), 2.0),
    Case("max pool 2x2/2, (128, 64, 32, 32)", "pool", max_pool_case(POOL_INPUT, 2, 2), 1.0),
    Case("max pool 3x3/2, (128, 64, 32, 32)", "pool", max_pool_case(POOL_INPUT, 3, 2), 1.5),
    Case("batch norm 2d train, (128, 64, 32, 32)", "norm", batch_norm_case(POOL_INPUT), 2.0),
    Case("lenet5_modern step, N=64", "step", lenet5_modern_step(64), 2.0),
    Case("lenet5_modern step, N=256", "step", lenet5_modern_step(256), 2.0),
    Case("resnet20 step, N=16", "step", resnet20_step(16), 1.6),
    Case("resnet20 step, N=128", "step", resnet20_step(128), 1.3),
    *(Case(f"{m} eval forward, N={n}", "eval", eval_forward(m, n), EVAL_BARS.get((m, n)))
      for m in ("lenet5_modern", "resnet20") for n in (1, 16, 256)),
    *(Case(f"resnet20 step, N={n}", "scaling", resnet20_step(n)) for n in (32, 64)),
]  # fmt: skip

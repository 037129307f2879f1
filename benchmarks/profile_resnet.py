"""Where a ResNet-20 training step's time goes, by layer kind, for cnnumpy and PyTorch.

cnnumpy: every module's ``forward`` and ``backward`` are wrapped in a timer for the run (an
instance attribute over the class's method, removed afterwards), and each call is charged its
*own* time, its children's calls subtracted, to the kind of the module: the 3x3 convs by stage
(the stem's conv apart), batch norm, ReLU, the option-A shortcut, the residual addition, the
head (pooling, flatten, linear) and the containers' own bookkeeping. Loss and the optimiser
step are timed around their calls. PyTorch: ``torch.profiler`` records the same steps, and
each top-level operator (forward ops on the main thread, ``autograd::engine`` functions for
the backward) is charged to a kind by its name; the convs' stage comes from their recorded
weight or gradient shapes. Both report milliseconds per step, averaged over ``--steps``.

    .venv/bin/python benchmarks/profile_resnet.py [--batch 128] [--steps 3] [--warmup 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import resnet20_step  # noqa: E402

from cnnumpy import nn  # noqa: E402
from cnnumpy.models.blocks import PadShortcut  # noqa: E402

KINDS = [
    "conv 3x3 stem", "conv 3x3 stage1 (16)", "conv 3x3 stage2 (32)", "conv 3x3 stage3 (64)",
    "batch norm", "relu", "shortcut", "residual add", "head (pool, fc)", "loss", "optimiser",
    "other",
]  # fmt: skip
STAGE_OF_WIDTH = {
    16: "conv 3x3 stage1 (16)",
    32: "conv 3x3 stage2 (32)",
    64: "conv 3x3 stage3 (64)",
}


def _module_kind(name: str, module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        return "conv 3x3 stem" if "." not in name else STAGE_OF_WIDTH[module.out_channels]
    if isinstance(module, nn.BatchNorm2d):
        return "batch norm"
    if isinstance(module, nn.ReLU):
        return "relu"
    if isinstance(module, PadShortcut):
        return "shortcut"
    if isinstance(module, nn.Residual):
        return "residual add"
    if isinstance(module, (nn.Linear, nn.Flatten, nn.AdaptiveAvgPool2d)):
        return "head (pool, fc)"
    return "other"


class _SelfTimer:
    """Charges each timed call its own time: elapsed minus the timed calls made inside it."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._inner: list[float] = []

    def wrap(self, fn, kind: str):
        def timed(*args, **kwargs):
            self._inner.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                inner = self._inner.pop()
                self.totals[kind] += elapsed - inner
                if self._inner:
                    self._inner[-1] += elapsed

        return timed


def profile_cnnumpy(step, model: nn.Module, loss, opt, steps: int) -> dict[str, float]:
    """Milliseconds per step by kind; ``step`` is the benchmark's training step closure."""
    timer = _SelfTimer()
    wrapped = []
    for name, module in model.named_modules():
        kind = _module_kind(name, module)
        for method in ("forward", "backward"):
            setattr(module, method, timer.wrap(getattr(module, method), kind))
        wrapped.append(module)
    for method in ("forward", "backward"):
        setattr(loss, method, timer.wrap(getattr(loss, method), "loss"))
    for method in ("step", "zero_grad"):
        setattr(opt, method, timer.wrap(getattr(opt, method), "optimiser"))
    try:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        total = time.perf_counter() - start
    finally:
        for obj in [*wrapped, loss, opt]:
            for method in ("forward", "backward", "step", "zero_grad"):
                obj.__dict__.pop(method, None)
    result = {k: 1e3 * v / steps for k, v in timer.totals.items()}
    result["other"] = result.get("other", 0.0) + 1e3 * total / steps - sum(result.values())
    return result


TORCH_KINDS = [
    ("conv", "conv"), ("batchnorm", "batch norm"), ("batch_norm", "batch norm"),
    ("relu", "relu"), ("slice", "shortcut"), ("pad", "shortcut"), ("aten::add_", "other"),
    ("add", "residual add"), ("loss", "loss"), ("softmax", "loss"), ("optimizer", "optimiser"),
    ("linear", "head (pool, fc)"), ("addmm", "head (pool, fc)"), ("pool", "head (pool, fc)"),
    ("mean", "head (pool, fc)"), ("flatten", "head (pool, fc)"), ("view", "head (pool, fc)"),
    ("tbackward", "head (pool, fc)"),
]  # fmt: skip


def _torch_kind(name: str) -> str:
    """The kind of a top-level operator, by the first ``TORCH_KINDS`` key in its name."""
    n = name.removeprefix("autograd::engine::evaluate_function: ").lower()
    return next((kind for key, kind in TORCH_KINDS if key in n), "other")


def _conv_stage(event) -> str:
    """A conv event's kind from its weight's (forward) or gradient's (backward) channels."""
    stack = [event]
    while stack:
        e = stack.pop()
        stack.extend(e.cpu_children)
        shapes = e.input_shapes or []
        if e.name == "aten::conv2d" and len(shapes) > 1 and shapes[1]:
            f, c = shapes[1][:2]
            return "conv 3x3 stem" if c == 3 else STAGE_OF_WIDTH.get(f, "other")
        if e.name == "aten::convolution_backward" and len(shapes) > 2 and shapes[2]:
            f, c = shapes[2][:2]
            return "conv 3x3 stem" if c == 3 else STAGE_OF_WIDTH.get(f, "other")
    return "other"


def profile_torch(step, steps: int) -> dict[str, float]:
    """Milliseconds per step by kind, from ``torch.profiler``'s top-level events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        total = time.perf_counter() - start
    totals: dict[str, float] = defaultdict(float)
    for e in prof.events():
        if e.cpu_parent is not None:
            continue
        kind = _torch_kind(e.name)
        totals[_conv_stage(e) if kind == "conv" else kind] += e.cpu_time_total / 1e3
    result = {k: v / steps for k, v in totals.items()}
    result["other"] = result.get("other", 0.0) + 1e3 * total / steps - sum(result.values())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="profiled steps (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="unprofiled steps first")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    ours, theirs = resnet20_step(args.batch)()
    for _ in range(args.warmup):
        ours()
        theirs()
    model, loss, opt = ours.model, ours.loss, ours.opt
    mine = profile_cnnumpy(ours, model, loss, opt, args.steps)
    ref = profile_torch(theirs, args.steps)
    print(f"resnet20 training step, N={args.batch}, ms per step (mean of {args.steps})")
    print(f"| {'layer kind':<22} | cnnumpy | torch | ratio |")
    print("| --- | --- | --- | --- |")
    for kind in KINDS:
        a, b = mine.get(kind, 0.0), ref.get(kind, 0.0)
        ratio = f"{a / b:.2f}x" if b > 0.05 else "-"
        print(f"| {kind:<22} | {a:7.1f} | {b:7.1f} | {ratio} |")
    ta, tb = sum(mine.values()), sum(ref.values())
    print(f"| {'total':<22} | {ta:7.1f} | {tb:7.1f} | {ta / tb:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

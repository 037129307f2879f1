"""The Solver (the Trainer with the standard callbacks) on the 8x8 digits: learning, best
model, early stopping, NaN losses, history, checkpoints, and resuming after a SIGKILL to
bit-identical float64 weights."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnumpy import nn, optim
from cnnumpy.checkpoint import load_checkpoint
from cnnumpy.data import Dataset, digits, normalize
from cnnumpy.solver import NonFiniteLossError, Solver
from cnnumpy.train import PRIORITY_EDITOR, Callback

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "_resume_script.py"


@pytest.fixture(scope="module")
def data() -> Dataset:
    return normalize(digits(), np.float64)


def mlp(seed: int = 0, dropout: float = 0.0) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    layers = [nn.Flatten(), nn.Linear(64, 32, rng=rng), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout, rng=np.random.default_rng(seed + 100)))
    layers.append(nn.Linear(32, 10, rng=rng))
    return nn.Sequential(*layers).to(np.float64)


def make_solver(data, model=None, lr=0.05, **kwargs) -> Solver:
    model = model if model is not None else mlp()
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    kwargs = {"epochs": 3, "progress": False} | kwargs
    return Solver(model, nn.CrossEntropyLoss(), opt, data.train, data.val, **kwargs)


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_learns_the_digits_and_keeps_the_best_model(data):
    solver = make_solver(data, epochs=4)
    history = solver.train()
    per_epoch = math.ceil(1257 / 64)
    assert len(history["loss"]) == 4 * per_epoch
    assert len(history["train_acc"]) == len(history["val_acc"]) == len(history["lr"]) == 4
    first, last = np.mean(history["loss"][:5]), np.mean(history["loss"][-per_epoch:])
    assert last < 0.3 * first, (first, last)
    assert min(history["val_acc"][-1], history["train_acc"][-1]) > 0.9, history
    assert solver.check_accuracy(*data.test) > 0.88
    # the model ends with the best epoch's weights
    assert solver.best_val_acc == max(history["val_acc"])
    assert states_equal(solver.model.state_dict(), solver.best_state)
    assert solver.check_accuracy(*data.val) == solver.best_val_acc


def test_predict_and_check_accuracy_in_eval_mode(data):
    model = mlp(dropout=0.5)
    solver = make_solver(data, model=model)
    x, y = data.val
    preds = solver.predict(x, batch_size=50)
    assert preds.shape == (270,) and preds.dtype.kind == "i"
    assert model.training, "predict must restore the training mode"
    model.eval()
    expected = model(x).argmax(axis=1)
    assert np.array_equal(preds, expected)
    assert solver.check_accuracy(x, y) == np.mean(expected == y)


class ScriptedValAcc(Callback):
    """Validation accuracy read from a list instead of measured: a fake validation curve."""

    priority = PRIORITY_EDITOR + 1  # after the evaluation wrote it, before anyone reads it

    def __init__(self, curve) -> None:
        self.curve = iter(curve)

    def on_epoch_end(self, epoch, logs) -> None:
        logs["val_acc"] = next(self.curve)


def test_early_stopping_on_a_fake_validation_curve(data):
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.01)
    curve = [0.5, 0.6, 0.55, 0.6, 0.58, 0.9, 0.95]
    solver = Solver(
        model, nn.CrossEntropyLoss(), opt, data.train, data.val,
        epochs=7, patience=3, progress=False, callbacks=[ScriptedValAcc(curve)],
    )  # fmt: skip
    history = solver.train()
    assert history["val_acc"] == [0.5, 0.6, 0.55, 0.6, 0.58], "stop 3 epochs after the best"
    assert solver.stopped_early and solver.best_epoch == 2 and solver.best_val_acc == 0.6


def test_a_larger_patience_continues_an_early_stopped_run(data, tmp_path):
    def solver(patience, curve, resume=False):
        model = mlp()
        opt = optim.SGD(model.parameters(), lr=0.01)
        return Solver(model, nn.CrossEntropyLoss(), opt, data.train, data.val, epochs=6,
                      patience=patience, progress=False, checkpoint_dir=tmp_path, resume=resume,
                      callbacks=[ScriptedValAcc(curve)])  # fmt: skip

    first = solver(1, [0.5, 0.6, 0.55])
    first.train()
    assert first.stopped_early and first.epoch == 3
    again = solver(3, [0.58, 0.9, 0.95], resume=True)
    assert again.stopped_early, "the restored run is still stopped"
    assert again.record_changes([("patience", 1, 3)]) == [
        {"epoch": 4, "option": "patience", "from": 1, "to": 3}
    ]
    history = again.train()
    assert history["val_acc"] == [0.5, 0.6, 0.55, 0.58, 0.9, 0.95] and not again.stopped_early
    assert load_checkpoint(tmp_path / "last.npz")["extra"]["changes"][0]["to"] == 3


def test_early_stopping_when_nothing_changes(data):
    solver = make_solver(data, lr=0.0, epochs=10, patience=2)
    history = solver.train()
    assert len(history["val_acc"]) == 3 and len(set(history["val_acc"])) == 1
    assert solver.stopped_early and solver.best_epoch == 1
    assert len(make_solver(data, lr=0.0, epochs=4).train()["val_acc"]) == 4, "no patience: all"


class NaNAt(nn.CrossEntropyLoss):
    """Cross-entropy whose ``k``-th call (1-based) in training returns NaN, after calling
    ``before_nan()``; the calls of evaluation (``model`` in eval mode) are not counted."""

    def __init__(self, model: nn.Module, k: int, before_nan=lambda: None) -> None:
        super().__init__()
        self.model, self.k, self.calls, self.before_nan = model, k, 0, before_nan

    def forward(self, scores, y):
        self.calls += self.model.training
        loss = super().forward(scores, y)
        if self.model.training and self.calls == self.k:
            self.before_nan()
            return math.nan
        return loss


def test_nan_loss_stops_with_a_message_and_keeps_the_last_checkpoint(data, tmp_path):
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.05)
    per_epoch = math.ceil(1257 / 64)
    on_disk = {}

    def snapshot() -> None:  # the files as they are when the NaN appears
        on_disk.update({p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()})

    solver = Solver(
        model, NaNAt(model, per_epoch + 5, snapshot), opt, data.train, data.val,
        epochs=3, checkpoint_dir=tmp_path, progress=False,
    )  # fmt: skip
    with pytest.raises(NonFiniteLossError) as info:
        solver.train()
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "loss is nan at epoch 2, iteration 5 of 20 (global iteration 25)" in msg, msg
    assert str(tmp_path / "last.npz") in msg and "after epoch 1" in msg
    assert sorted(on_disk) == ["best.npz", "history.json", "last.npz", "metrics.jsonl"]
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    assert after == on_disk, "the error must leave the checkpoints untouched"
    restored = mlp(seed=1)
    got = load_checkpoint(tmp_path / "last.npz", restored)
    assert got["epoch"] == 1 and len(got["history"]["loss"]) == per_epoch


def test_nan_loss_before_any_checkpoint(data):
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.05)
    solver = Solver(model, NaNAt(model, 3), opt, data.train, data.val, progress=False)
    with pytest.raises(NonFiniteLossError, match="epoch 1, iteration 3 .*no checkpoint has been"):
        solver.train()


def test_history_json_and_the_learning_rate_schedule(data, tmp_path):
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    solver = Solver(
        model, nn.CrossEntropyLoss(), opt, data.train, data.val,
        epochs=4, checkpoint_dir=tmp_path, scheduler=sched, progress=False,
    )  # fmt: skip
    history = solver.train()
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved == history
    assert sorted(saved) == ["loss", "lr", "train_acc", "val_acc", "val_loss"]
    assert saved["lr"] == [0.1, 0.1, 0.05, 0.05]
    assert len(saved["loss"]) == 80 and all(math.isfinite(v) for v in saved["loss"])
    assert all(0.0 <= a <= 1.0 for a in saved["train_acc"] + saved["val_acc"])
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # the validation loss is the mean cross-entropy on the validation images, by hand
    assert solver.best_epoch == 4, "every epoch improved here, so the kept model is the last"
    scores = model.eval()(data.val[0]).astype(np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    by_hand = -log_p[np.arange(len(data.val[1])), data.val[1]].mean()
    assert len(saved["val_loss"]) == 4
    assert saved["val_loss"][-1] == pytest.approx(by_hand, rel=1e-5)


def test_resume_restores_every_piece_of_state(data, tmp_path):
    first = make_solver(data, model=mlp(dropout=0.2), epochs=2, checkpoint_dir=tmp_path)
    first.train()
    ck = load_checkpoint(tmp_path / "last.npz")
    second = make_solver(
        data, model=mlp(seed=9, dropout=0.2), epochs=2, checkpoint_dir=tmp_path, resume=True
    )
    assert second.epoch == 2 and second.history == first.history
    assert second.best_val_acc == first.best_val_acc and second.best_epoch == first.best_epoch
    assert states_equal(second.best_state, first.best_state)
    assert states_equal(second.model.state_dict(), ck["model_state"])
    assert states_equal(second.optimizer.state_dict(), first.optimizer.state_dict())
    for name, gen in first.rngs().items():
        assert second.rngs()[name].bit_generator.state == gen.bit_generator.state, name
    assert set(first.rngs()) == {"solver.shuffle", "model.3.rng"}


def test_resume_in_process_is_bit_identical(data, tmp_path):
    """4 epochs in one go == 2 epochs, a fresh process-like restart, 2 more (dropout included)."""
    whole = make_solver(data, model=mlp(dropout=0.2), epochs=4)
    whole.train()
    make_solver(data, model=mlp(dropout=0.2), epochs=2, checkpoint_dir=tmp_path).train()
    resumed = make_solver(
        data, model=mlp(seed=5, dropout=0.2), epochs=4, checkpoint_dir=tmp_path, resume=True
    )
    resumed.train()
    assert states_equal(resumed.model.state_dict(), whole.model.state_dict())
    assert resumed.history == whole.history


def test_resume_needs_a_checkpoint(data, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        make_solver(data, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="resume=True needs a checkpoint_dir"):
        make_solver(data, resume=True)


def test_rejects_unnormalised_images(data):
    raw = digits()
    with pytest.raises(TypeError, match="train images must be a float array"):
        Solver(mlp(), nn.CrossEntropyLoss(), None, raw.train, data.val)


# -- SIGKILL and resume, in subprocesses --------------------------------------------------------
def run_script(directory: Path, out: Path, *extra: str) -> subprocess.CompletedProcess | None:
    """Run the training script; SIGKILL it when it prints HANG (then return None)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = os.environ | {"PYTHONPATH": path}
    cmd = [sys.executable, str(SCRIPT), str(directory), str(out), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        for line in proc.stdout:
            if line.strip() == "HANG":
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return None
        assert proc.wait(timeout=60) == 0, f"script failed: {cmd}"
        return proc
    finally:
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, np.ndarray]:
    directory = tmp_path_factory.mktemp("uninterrupted")
    run_script(directory, directory / "out.npz")
    with np.load(directory / "out.npz") as npz:
        return dict(npz)


KILLS = {  # each run SIGKILLed as it lists; all but the first are resumed runs
    "mid-epoch": [["--hang-at", "2:17"]],
    "last.npz-before-replace": [["--hang-in", "last.npz:3:replace"]],
    "first-last.npz-half-written": [["--hang-in", "last.npz:1:partial"]],
    "best.npz-before-fsync-then-history.json-after-replace": [
        ["--hang-in", "best.npz:2:fsync"], ["--hang-in", "history.json:3:dir"]
    ],
    "metrics.jsonl-line-before-fsync-then-mid-epoch": [
        ["--hang-in", "metrics.jsonl:2:fsync"], ["--hang-at", "3:5"]
    ],
}  # fmt: skip


@pytest.mark.parametrize("kills", KILLS.values(), ids=KILLS.keys())
def test_sigkill_then_resume_is_bit_identical(tmp_path, uninterrupted, kills):
    """Killed mid-epoch or at any moment of any file's write, once or twice, the run resumes
    to the weights, optimiser, history and metrics of the uninterrupted one."""
    out = tmp_path / "out.npz"
    for i, kill in enumerate(kills):
        resume = ["--resume"] if i else []
        assert run_script(tmp_path, out, *resume, *kill) is None, f"not killed: {kill}"
        written, epoch, stage = kill[1].split(":") if kill[0] == "--hang-in" else (None,) * 3
        if stage in ("partial", "replace"):
            assert list(tmp_path.glob(f".{written}.*.tmp")), "the write leaves a temporary file"
        if (written, epoch) == ("last.npz", "1"):  # killed in the first write of last.npz
            assert not (tmp_path / "last.npz").exists()
            # best.npz holds the whole state of epoch 1, as the command line's message says
            shutil.copy(tmp_path / "best.npz", tmp_path / "last.npz")
    assert not out.exists()
    assert run_script(tmp_path, out, "--resume") is not None
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    with np.load(out) as npz:
        resumed = dict(npz)
    assert resumed.keys() == uninterrupted.keys()
    for key, value in uninterrupted.items():
        assert np.array_equal(resumed[key], value), f"{key} differs after kill + resume"


def test_training_skips_the_first_conv_dx_and_restores_it(data):
    """While it trains, the Solver tells the model that the data's gradient is not needed;
    afterwards the model's backward returns dx again."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, rng=rng), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 64, 10, rng=rng)).to(np.float64)  # fmt: skip
    seen = []
    conv_backward = model[0].backward
    model[0].backward = lambda dout: seen.append(conv_backward(dout)) or seen[-1]
    make_solver(data, model, epochs=1, verbose=False).train()
    assert seen and all(dx is None for dx in seen)
    assert model[0].input_grad
    x = data.train[0][:2]
    assert model.backward(np.ones_like(model(x))).shape == x.shape


def test_without_validation_the_last_epoch_is_kept(data, tmp_path):
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    solver = Solver(model, nn.CrossEntropyLoss(), opt, data.train, None, epochs=3,
                    progress=False, checkpoint_dir=tmp_path)  # fmt: skip
    history = solver.train()
    assert solver.best_epoch == 3 and solver.best_val_acc is None
    assert all(math.isnan(v) for v in history["val_acc"]) and len(history["val_acc"]) == 3
    last = load_checkpoint(tmp_path / "last.npz")
    assert states_equal(solver.model.state_dict(), last["model_state"])
    assert solver.check_accuracy(*data.test) > 0.85
    other = mlp(seed=3)
    resumed = Solver(other, nn.CrossEntropyLoss(),
                     optim.SGD(other.parameters(), lr=0.05, momentum=0.9), data.train, None,
                     epochs=3, progress=False, checkpoint_dir=tmp_path, resume=True)  # fmt: skip
    assert resumed.best_val_acc is None and resumed.best_epoch == 3


@pytest.mark.parametrize(
    "kwargs", [{"patience": 2}, {"scheduler": "plateau"}], ids=["patience", "plateau"]
)
def test_without_validation_refuses_what_needs_a_score(data, kwargs):
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.05)
    if kwargs.get("scheduler") == "plateau":
        kwargs = {"scheduler": optim.ReduceLROnPlateau(opt, mode="max")}
    with pytest.raises(ValueError, match="need validation data"):
        Solver(model, nn.CrossEntropyLoss(), opt, data.train, None, progress=False, **kwargs)

"""The Trainer: the order of its moments, stopping, the plain loop it runs, its registry of
Generators, and bit-identity with the previous main's Solver (fixtures in tests/fixtures)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_net

from cnnumpy import nn, optim
from cnnumpy.checkpoint import load_checkpoint
from cnnumpy.data import DataLoader
from cnnumpy.nn.utils import clip_grad_norm_
from cnnumpy.train import (
    PRIORITY_CHECKPOINT,
    PRIORITY_EDITOR,
    PRIORITY_READER,
    PRIORITY_WRITER,
    Callback,
    CurvatureRefresh,
    NonFiniteLossError,
    Trainer,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
OLD = FIXTURES / "old-main"


def trainer_for(model, x, y, batch_size=4, **kwargs) -> Trainer:
    loader = DataLoader(x, y, batch_size, shuffle=True, seed=1, normalized=True)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return Trainer(model, nn.CrossEntropyLoss(), opt, loader, **({"epochs": 2} | kwargs))


class Recorder(Callback):
    """Writes every moment it sees into ``calls``."""

    def __init__(self, calls: list, name: str = "", priority: int = PRIORITY_READER) -> None:
        self.calls, self.name, self.priority = calls, name, priority

    def on_train_begin(self):
        self.calls.append(f"{self.name}train_begin")

    def on_epoch_begin(self, epoch):
        self.calls.append(f"{self.name}epoch_begin {epoch}")

    def on_train_batch_end(self, batch, logs):
        self.calls.append(f"{self.name}batch {batch} size {logs['size']}")

    def on_epoch_end(self, epoch, logs):
        self.calls.append(f"{self.name}epoch_end {epoch} {sorted(logs)}")

    def on_train_end(self):
        self.calls.append(f"{self.name}train_end")

    def on_exception(self, error):
        self.calls.append(f"{self.name}exception {type(error).__name__}")


def test_a_callback_sees_the_moments_in_order():
    calls = []
    trainer_for(*tiny_net(), callbacks=[Recorder(calls)]).fit()
    epoch = ["batch 1 size 4", "batch 2 size 4", "batch 3 size 2"]
    assert calls == [
        "train_begin",
        "epoch_begin 1", *epoch, "epoch_end 1 ['loss', 'lr']",
        "epoch_begin 2", *epoch, "epoch_end 2 ['loss', 'lr']",
        "train_end",
    ]  # fmt: skip


def test_callbacks_run_by_priority_then_in_the_given_order():
    calls = []
    given = [
        Recorder(calls, "save:", PRIORITY_CHECKPOINT),
        Recorder(calls, "read1:", PRIORITY_READER),
        Recorder(calls, "edit:", PRIORITY_EDITOR),
        Recorder(calls, "read2:", PRIORITY_READER),
        Recorder(calls, "write:", PRIORITY_WRITER),
    ]
    trainer_for(*tiny_net(), epochs=1, callbacks=given).fit()
    assert [c.split(":")[0] for c in calls if c.endswith("train_end")] == [
        "write", "edit", "read1", "read2", "save",
    ]  # fmt: skip


class StopAt(Callback):
    def __init__(self, epoch: int, batch: int | None = None) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, batch, logs):
        if self.batch == batch and self.trainer.epoch + 1 == self.epoch:
            self.trainer.stop_training = True

    def on_epoch_end(self, epoch, logs):
        if self.batch is None and epoch == self.epoch:
            self.trainer.stop_training = True


def test_a_callback_stops_training_after_a_batch_or_an_epoch():
    calls = []
    trainer = trainer_for(*tiny_net(), epochs=5, callbacks=[StopAt(2, batch=2), Recorder(calls)])
    history = trainer.fit()
    assert calls[-3:] == ["batch 2 size 4", "epoch_end 2 ['loss', 'lr']", "train_end"]
    assert trainer.epoch == 2 and len(history["loss"]) == 3 + 2
    trainer = trainer_for(*tiny_net(), epochs=5, callbacks=[StopAt(3)])
    trainer.fit()
    assert trainer.epoch == 3 and len(trainer.history["loss"]) == 9
    assert trainer.fit() and trainer.epoch == 3, "a stopped run stays stopped"


class InterruptAt(Callback):
    """Raises KeyboardInterrupt after a mini-batch, as Ctrl-C would; records where it was."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.at, self.seen = (epoch, batch), None

    def on_train_batch_end(self, batch, logs):
        if (self.trainer.epoch + 1, batch) == self.at:
            self.seen = (self.trainer.epoch, self.trainer.batch)
            raise KeyboardInterrupt


def test_an_exception_calls_on_exception_not_on_train_end():
    calls, stop = [], InterruptAt(2, 2)
    trainer = trainer_for(*tiny_net(), epochs=3, callbacks=[stop, Recorder(calls)])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert calls[-2:] == ["batch 1 size 4", "exception KeyboardInterrupt"]
    assert stop.seen == (1, 2), "epochs done, and the batch in progress"
    assert trainer.model[1].input_grad, "the model is put back as it was"


def test_the_loop_is_the_plain_one_written_out():
    """Two epochs of the Trainer (with clipping) == the loop written by hand."""
    model, x, y = tiny_net(dropout=0.3)
    trainer = trainer_for(model, x, y, clip_grad_norm=0.05)
    trainer.fit()

    ref, _, _ = tiny_net(dropout=0.3)
    opt = optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    loss = nn.CrossEntropyLoss()
    order_rng, losses = np.random.default_rng(1), []
    for _ in range(2):
        order = order_rng.permutation(10)
        for start in range(0, 10, 4):
            idx = order[start : start + 4]
            losses.append(float(loss(ref(x[idx]), y[idx])))
            ref.backward(loss.backward())
            clip_grad_norm_(ref.parameters(), 0.05)
            opt.step()
            opt.zero_grad()
    got, expected = model.state_dict(), ref.state_dict()
    assert all(np.array_equal(got[k], expected[k]) for k in expected)
    assert trainer.history["loss"] == losses
    assert trainer.history["lr"] == [0.1, 0.1]


def test_nonfinite_loss_names_the_epoch_and_iteration():
    model, x, y = tiny_net()
    x[7] = np.nan  # in the batch where default_rng(1)'s order puts it
    position = int(np.argwhere(np.random.default_rng(1).permutation(10) == 7)[0, 0])
    batch = position // 4 + 1
    with pytest.raises(NonFiniteLossError, match=rf"epoch 1, iteration {batch} of 3 .*no check"):
        trainer_for(model, x, y).fit()


def test_generators_are_registered_in_one_place():
    model, x, y = tiny_net(dropout=0.2)
    loader = DataLoader(x, y, 4, shuffle=True, normalized=True, transform=lambda b, r: b)
    opt = optim.SDLM(model.parameters())
    with pytest.raises(TypeError, match="CurvatureRefresh needs the SDLM optimizer"):
        Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), loader,
                epochs=1, callbacks=[CurvatureRefresh()])  # fmt: skip
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, loader, epochs=1,
                      callbacks=[CurvatureRefresh(seed=4)])  # fmt: skip
    rngs = trainer.rngs.generators()
    assert list(rngs) == ["solver.shuffle", "solver.augment", "solver.prepare", "model.3.rng"]
    assert rngs["solver.shuffle"] is loader.rng and rngs["solver.augment"] is loader.transform_rng
    assert rngs["model.3.rng"] is model[3].rng
    with pytest.raises(ValueError, match="registered as 'solver.shuffle' already"):
        trainer.rngs.register("solver.shuffle", np.random.default_rng())
    plain = trainer_for(*tiny_net())
    assert list(plain.rngs.generators()) == ["solver.shuffle"], "no transform, no dropout"


def test_bad_arguments():
    model, x, y = tiny_net()
    with pytest.raises(ValueError, match="epochs must be an int >= 0"):
        trainer_for(model, x, y, epochs=-1)
    with pytest.raises(ValueError, match="clip_grad_norm must be None or > 0"):
        trainer_for(model, x, y, clip_grad_norm=0.0)
    with pytest.raises(TypeError, match="callbacks must be Callback instances"):
        trainer_for(model, x, y, callbacks=[print])


# -- the previous main's Solver, bit for bit (tests/fixtures/README.md) ---------------------------
def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_solver_runs_are_bit_identical_to_the_previous_main():
    spec = importlib.util.spec_from_file_location("solver_runs", FIXTURES / "solver_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    got = module.run_all()
    with np.load(OLD / "solver_runs.npz") as npz:
        expected = dict(npz)
    assert got.keys() == expected.keys()
    if all(np.array_equal(got[key], value) for key, value in expected.items()):
        return  # bit for bit: the machine rounds as the one that wrote the fixtures
    # These runs are in float64, where NumPy's exp and log round the last bit differently on
    # CPUs with and without AVX-512 (its SIMD paths), and the fixtures come from one machine.
    # Another CPU must still agree to 1e-9 relative after every step (a change of arithmetic,
    # such as another order of the updates, is many orders of magnitude larger).
    for key, value in expected.items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(got[key], value, rtol=1e-9, atol=1e-15, err_msg=key)
        elif value.dtype.kind == "U" and key.endswith("history"):
            mine, theirs = json.loads(str(got[key])), json.loads(str(value))
            assert mine.keys() == theirs.keys(), key
            for name in theirs:
                np.testing.assert_allclose(np.array(mine[name], float),
                                           np.array(theirs[name], float),
                                           rtol=1e-9, err_msg=f"{key}.{name}")  # fmt: skip
        else:
            assert np.array_equal(got[key], value), f"{key} differs from the previous main's"


def cnnumpy(*args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "cnnumpy", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


TRAIN = ["train", "--train-size", "300", "--augment", "crop", "--optimizer", "sgd", "--lr", "0.03",
         "--lr-schedule", "cosine", "--model-option", "num_filters=4", "--model-option",
         "hidden_dim=16", "--no-progress", "--out", "run"]  # fmt: skip


ROUNDING = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-9}
"""How far another CPU may round from the one that wrote the fixtures (NumPy's exp and log take
other SIMD paths with and without AVX-512), relative, after the fixtures' few epochs."""


def states_close(a: dict, b: dict) -> bool:
    """Equal bit for bit, or (on a CPU that rounds exp and log otherwise) to ``ROUNDING``."""
    if states_equal(a, b):
        return True
    return a.keys() == b.keys() and all(
        np.allclose(a[k], b[k], rtol=ROUNDING.get(b[k].dtype, 0), atol=1e-7) for k in a
    )


def assert_same_run(got_path: Path, expected_path: Path) -> None:
    got, expected = load_checkpoint(got_path), load_checkpoint(expected_path)
    assert states_close(got["model_state"], expected["model_state"]), "weights differ"
    assert states_close(got["optimizer_state"], expected["optimizer_state"]), "optimiser differs"
    # the previous main recorded no validation loss: every key it had must be equal
    old = expected["history"]
    assert got["epoch"] == expected["epoch"] and old.keys() <= got["history"].keys()
    for key, values in old.items():
        np.testing.assert_allclose(got["history"][key], values, rtol=1e-5, err_msg=key)
    assert got["rng_states"] == expected["rng_states"], "the random draws are exact everywhere"


def test_cli_training_is_bit_identical_to_the_previous_main(tmp_path):
    cnnumpy(*TRAIN, "--epochs", "2", cwd=tmp_path)
    assert_same_run(tmp_path / "run" / "last.npz", OLD / "convnet-2-epochs.npz")


def test_a_checkpoint_of_the_previous_main_evaluates_and_resumes(tmp_path):
    out = cnnumpy("eval", str(OLD / "convnet-2-epochs.npz"), cwd=tmp_path)
    assert "convnet (epoch 2) on digits test: 28.15% (76/270)" in out  # as the old code printed
    (tmp_path / "run").mkdir()
    shutil.copy(OLD / "convnet-2-epochs.npz", tmp_path / "run" / "last.npz")
    cnnumpy(*TRAIN, "--epochs", "4", "--resume", cwd=tmp_path)
    assert_same_run(tmp_path / "run" / "last.npz", OLD / "convnet-resumed-to-4-epochs.npz")
    assert load_checkpoint(tmp_path / "run" / "last.npz")["version"] == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["epoch"] for r in records] == [3, 4] and records[0]["lr"] == 0.0

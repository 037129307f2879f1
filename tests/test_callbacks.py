"""Each training callback on its own: what it does, at which moment, with which state; and a
user's callback as the README shows it."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import tiny_net

from cnnumpy import checkpoint as ck
from cnnumpy import nn, optim
from cnnumpy.data import DataLoader, digits
from cnnumpy.train import (
    PRIORITY_WRITER,
    BestModel,
    Callback,
    Checkpoint,
    CurvatureRefresh,
    EarlyStopping,
    Evaluate,
    LRSchedule,
    MetricsLog,
    Progress,
    Trainer,
)


def make(callbacks, epochs=3, seed=0, drop_last=False) -> Trainer:
    """A Trainer of :func:`tiny` with SGD (lr 0.1), batches of 4; ``callbacks`` is a list, or a
    function of the optimiser that returns one."""
    model, x, y = tiny_net(seed)
    loader = DataLoader(x, y, 4, shuffle=True, seed=1, normalized=True, drop_last=drop_last)
    opt = optim.SGD(model.parameters(), lr=0.1)
    callbacks = callbacks(opt) if callable(callbacks) else callbacks
    return Trainer(model, nn.CrossEntropyLoss(), opt, loader, epochs=epochs, callbacks=callbacks)


class Scripted(Callback):
    """Writes ``values[key][epoch - 1]`` into the logs, as an evaluation would."""

    priority = PRIORITY_WRITER

    def __init__(self, **values: list[float]) -> None:
        self.values = values

    def on_epoch_end(self, epoch, logs):
        logs.update({key: v[epoch - 1] for key, v in self.values.items()})


class Spy(Callback):
    """Keeps each epoch's logs, the model's state and every batch loss (a reader)."""

    def __init__(self) -> None:
        self.logs, self.states, self.batch_losses = [], [], []

    def on_train_batch_end(self, batch, logs):
        self.batch_losses.append(logs["loss"])

    def on_epoch_end(self, epoch, logs):
        self.logs.append(dict(logs))
        self.states.append(self.trainer.model.state_dict())


# -- early stopping -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "patience", "mode", "stop"),
    [
        ([0.5, 0.6, 0.55, 0.6, 0.58, 0.9, 0.95, 0.96, 0.97, 0.98], 3, "max", 5),
        ([1.0, 0.8, 0.9, 0.7, 0.75, 0.72, 0.71, 0.6, 0.5, 0.4], 3, "min", 7),
        ([0.5, 0.4, 0.6, 0.7, 0.8, 0.9, 0.91, 0.92, 0.93, 0.94], 1, "max", 2),
        ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 1, "max", 10),
    ],
)
def test_early_stopping_stops_at_the_right_epoch(values, patience, mode, stop):
    stopper = EarlyStopping(patience, monitor="score", mode=mode)
    trainer = make([Scripted(score=values), stopper], epochs=10)
    trainer.fit()
    assert trainer.epoch == stop
    assert trainer.stop_training == (stop < 10)


def test_early_stopping_state_and_arguments():
    stopper = EarlyStopping(2)
    stopper.trainer = SimpleNamespace(stop_training=False)
    for score in (0.5, 0.4):
        stopper.on_epoch_end(0, {"val_acc": score})
    assert stopper.state_dict() == {"best": 0.5, "wait": 1}
    again = EarlyStopping(2)
    again.trainer = stopper.trainer
    again.load_state_dict(stopper.state_dict())
    again.on_epoch_end(3, {"val_acc": 0.45})
    assert stopper.trainer.stop_training
    with pytest.raises(KeyError, match="monitors 'val_acc', which no callback wrote"):
        again.on_epoch_end(4, {})
    with pytest.raises(ValueError, match="patience must be an int >= 1"):
        EarlyStopping(0)


# -- learning-rate schedules --------------------------------------------------------------------
def test_lr_schedule_steps_once_per_epoch():
    trainer = make(lambda opt: [LRSchedule(optim.StepLR(opt, step_size=1, gamma=0.5))])
    history = trainer.fit()
    assert history["lr"] == [0.1, 0.05, 0.025]
    assert trainer.optimizer.lr == 0.0125


class SpyScheduler:
    def __init__(self) -> None:
        self.calls = []

    def step(self, *args):
        self.calls.append(args)

    def state_dict(self):
        return {"calls": np.array(len(self.calls))}


def test_plateau_schedule_gets_the_validation_score():
    spy = SpyScheduler()
    make([Scripted(val_acc=[0.3, 0.2, 0.4]), LRSchedule(spy, monitor="val_acc")]).fit()
    assert spy.calls == [(0.3,), (0.2,), (0.4,)]
    plain = SpyScheduler()
    make([Scripted(val_acc=[0.3, 0.2, 0.4]), LRSchedule(plain)]).fit()
    assert plain.calls == [(), (), ()]
    with pytest.raises(KeyError, match="monitors 'val_acc'"):
        make([LRSchedule(SpyScheduler(), monitor="val_acc")]).fit()


def test_reduce_on_plateau_halves_after_a_bad_epoch():
    def callbacks(opt):
        plateau = optim.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=0)
        return [Scripted(val_acc=[0.3, 0.2, 0.2, 0.5]), LRSchedule(plateau, monitor="val_acc")]

    assert make(callbacks, epochs=4).fit()["lr"] == [0.1, 0.1, 0.05, 0.025]


# -- evaluation and the best model --------------------------------------------------------------
def test_evaluate_measures_loss_and_accuracy_in_eval_mode():
    model, x, y = tiny_net(dropout=0.5)
    loader = DataLoader(x, y, 3, normalized=True)
    cb = Evaluate(loader, DataLoader(x[:4], y[:4], 3, normalized=True))
    cb.trainer = SimpleNamespace(model=model, loss=nn.CrossEntropyLoss())
    logs = {}
    cb.on_epoch_end(1, logs)
    assert model.training, "the mode is put back"
    model.eval()
    scores = model(x)
    log_p = scores - scores.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    expected_loss = -np.mean(log_p[np.arange(10), y])
    assert logs["val_acc"] == np.mean(scores.argmax(axis=1) == y)
    assert logs["val_loss"] == pytest.approx(expected_loss, rel=1e-12)
    assert logs["train_acc"] == np.mean(scores[:4].argmax(axis=1) == y[:4])
    nothing = Evaluate(None)
    nothing.trainer = cb.trainer
    nothing.on_epoch_end(1, logs)
    assert all(math.isnan(logs[k]) for k in ("val_acc", "val_loss", "train_acc"))


def test_best_model_is_kept_and_restored():
    spy, best = Spy(), BestModel()
    trainer = make([Scripted(val_acc=[0.3, 0.7, 0.5]), best, spy])
    trainer.fit()
    assert [logs["best"] for logs in spy.logs] == [True, True, False]
    assert best.best_epoch == 2 and best.best_score == 0.7
    final = trainer.model.state_dict()
    assert all(np.array_equal(final[k], v) for k, v in spy.states[1].items())
    assert not np.array_equal(final["1.weight"], spy.states[2]["1.weight"])


def test_without_a_monitor_the_last_epoch_is_kept():
    spy, best = Spy(), BestModel(monitor=None)
    trainer = make([Scripted(val_acc=[0.3, 0.7, 0.5]), best, spy])
    trainer.fit()
    assert [logs["best"] for logs in spy.logs] == [True, True, True]
    assert best.best_epoch == 3 and best.best_score is None
    final = trainer.model.state_dict()
    assert all(np.array_equal(final[k], v) for k, v in spy.states[2].items())


# -- checkpoints and the metrics file ----------------------------------------------------------
def test_checkpoint_files_are_written_atomically_each_epoch(tmp_path, monkeypatch):
    replaced = []
    real_replace = os.replace

    def recording_replace(src, dst):
        replaced.append((Path(src).name, Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(ck.os, "replace", recording_replace)
    spy = Spy()
    trainer = make([Scripted(val_acc=[0.5, 0.4]), BestModel(), spy, Checkpoint(tmp_path)],
                   epochs=2)  # fmt: skip
    trainer.fit()
    monkeypatch.undo()
    targets = [dst for _, dst in replaced]
    assert targets == ["best.npz", "last.npz", "history.json", "last.npz", "history.json"]
    assert all(src.startswith(f".{dst}.") and src.endswith(".tmp") for src, dst in replaced)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.npz", "history.json", "last.npz"]
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["loss"] == spy.batch_losses and saved["lr"] == [0.1, 0.1]
    assert saved["val_acc"] == [0.5, 0.4]
    assert saved["train_acc"] == [None, None], "not measured: null in strict JSON, not NaN"
    best = ck.load_checkpoint(tmp_path / "best.npz")
    assert best["epoch"] == 1 and best["callback_states"]["BestModel"]["best_epoch"] == 1
    assert trainer.last_checkpoint == tmp_path / "last.npz"


def test_metrics_log_has_one_record_per_epoch(tmp_path):
    spy = Spy()
    model, x, y = tiny_net()
    subset = DataLoader(x[:5], y[:5], 4, normalized=True)
    trainer = make([Evaluate(None, subset), spy, MetricsLog(tmp_path / "metrics.jsonl")])
    trainer.fit()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [list(r) for r in records] == [
        ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
    ] * 3
    assert [r["epoch"] for r in records] == [1, 2, 3]
    per_epoch = [spy.batch_losses[i : i + 3] for i in (0, 3, 6)]
    assert [r["train_loss"] for r in records] == pytest.approx([np.mean(b) for b in per_epoch])
    assert [r["train_acc"] for r in records] == [s["train_acc"] for s in spy.logs]
    assert all(r["val_loss"] is None and r["val_acc"] is None for r in records)
    assert all(r["lr"] == 0.1 and 0 <= r["seconds"] < 60 for r in records)


def test_metrics_log_on_resume_keeps_the_epochs_done(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"epoch": e, "lr": 0.1}) + "\n" for e in (1, 2, 3))
                    + '{"epoch": 4, "lr"')  # fmt: skip
    log = MetricsLog(path)
    log.trainer = SimpleNamespace(epoch=2)
    log.on_train_begin()
    assert path.read_text() == '{"epoch": 1, "lr": 0.1}\n{"epoch": 2, "lr": 0.1}\n'
    log.trainer.epoch = 0
    log.on_train_begin()
    assert path.read_text() == "", "a fresh run starts an empty file"


class Counter(Callback):
    """A user's callback with state: batches seen, and an array."""

    def __init__(self) -> None:
        self.count, self.seen = 0, np.zeros(3)

    def on_train_batch_end(self, batch, logs):
        self.count += 1
        self.seen[batch - 1] += logs["loss"]

    def state_dict(self):
        return {"count": self.count, "seen": self.seen.copy()}

    def load_state_dict(self, state):
        self.count, self.seen = state["count"], np.array(state["seen"])


def test_resume_restores_the_callbacks_state(tmp_path):
    first, stopper = Counter(), EarlyStopping(5)
    make([Scripted(val_acc=[0.5, 0.6]), stopper, first, Checkpoint(tmp_path)], epochs=2).fit()
    second, stopper2 = Counter(), EarlyStopping(5)
    checkpoint = Checkpoint(tmp_path)
    trainer = make([stopper2, second, checkpoint], epochs=2, seed=9)
    checkpoint.resume()
    assert second.count == 6 and np.array_equal(second.seen, first.seen)
    assert stopper2.state_dict() == {"best": 0.6, "wait": 0}
    assert trainer.epoch == 2 and len(trainer.history["loss"]) == 6
    assert trainer.last_checkpoint_epoch == 2


def test_resume_refuses_a_checkpoint_without_a_callbacks_state(tmp_path):
    """A best-model keeper started fresh would take the next epoch for the best, however bad:
    a callback with state that the checkpoint lacks is an error before any step. Early
    stopping may be added when resuming (a new --patience), and starts counting there."""
    make([Scripted(val_acc=[0.5, 0.6]), Checkpoint(tmp_path)], epochs=2).fit()
    checkpoint = Checkpoint(tmp_path)
    make([Counter(), BestModel(), checkpoint], epochs=3)
    with pytest.raises(ValueError, match="holds no state for BestModel, Counter, which this run"):
        checkpoint.resume()
    checkpoint, stopper = Checkpoint(tmp_path), EarlyStopping(2)
    make([stopper, checkpoint], epochs=3)
    checkpoint.resume()
    assert stopper.state_dict() == {"best": None, "wait": 0}


def test_resume_checks_the_best_weights_against_the_model(tmp_path):
    """best/ weights of another shape would only fail when loaded back after the last epoch;
    resuming refuses them before the first step, naming the key and both shapes."""
    make([Scripted(val_acc=[0.5, 0.6]), BestModel(), Checkpoint(tmp_path)], epochs=2).fit()
    state = ck.load_checkpoint(tmp_path / "last.npz")["callback_states"]["BestModel"]
    best = BestModel()
    make([best], epochs=3)
    bad = dict(state) | {"state.1.weight": state["state.1.weight"][:, :2]}
    with pytest.raises(
        ValueError, match=r"1.weight is float64 \(5, 2\), the model's float64 \(5, 4\)"
    ):
        best.load_state_dict(bad)
    missing = {k: v for k, v in state.items() if not k.startswith("state.")}
    with pytest.raises(ValueError, match="weights of the best epoch \\(2\\) are missing"):
        best.load_state_dict(missing)
    assert best.best_epoch == 0 and best.best_state is None, "nothing changed"
    best.load_state_dict(state)
    assert best.best_epoch == 2


# -- progress -----------------------------------------------------------------------------------
def test_progress_prints_one_line_per_epoch(capsys):
    make([Scripted(val_acc=[0.5, 0.6, 0.4], train_acc=[0.4] * 3, val_loss=[1.0] * 3),
          BestModel(), Progress(bar=False)]).fit()  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/3: mean loss ") and lines[0].endswith(" (best)")
    assert "train acc 0.4000, val loss 1.0000, val acc 0.6000, lr 0.1 (best)" in lines[1]
    assert lines[2].endswith("val acc 0.4000, lr 0.1")


@pytest.mark.parametrize(("done", "drop_last", "per_epoch"), [(0, False, 10), (1, True, 8)])
def test_progress_bar_counts_the_whole_runs_images(done, drop_last, per_epoch, capsys):
    progress = Progress(bar=True, lines=False, file=io.StringIO())
    trainer = make([progress], drop_last=drop_last)
    trainer.epoch = done  # as a resumed run starts
    trainer.fit()
    assert progress.bar.total == 3 * per_epoch
    assert progress.bar.n == 3 * per_epoch and progress.bar.desc.startswith("epoch 3/3")
    assert capsys.readouterr().out == ""


def test_evaluation_has_a_bar_of_its_own_when_the_run_has_one():
    class Recording(Progress):
        def _evaluation_bar(self, total, what):
            bar = super()._evaluation_bar(total, what)
            bars.append(bar)
            return bar

    bars = []
    model, x, y = tiny_net()
    val = DataLoader(x[:7], y[:7], 3, normalized=True)
    trainer = make([Evaluate(val), Recording(bar=True, lines=False, file=io.StringIO())], epochs=2)
    trainer.fit()
    assert [(b.total, b.n) for b in bars] == [(7, 7), (7, 7)]  # each epoch, every image counted
    assert all("validation" in b.desc for b in bars)
    assert trainer.evaluation_bar is None  # nothing left behind after the run
    quiet = make([Evaluate(val), Progress(bar=False, lines=False)], epochs=1)
    quiet.fit()
    assert quiet.evaluation_bar is None


# -- SDLM's curvature ---------------------------------------------------------------------------
def test_curvature_refresh_draws_its_sample_before_each_epoch():
    model, x, y = tiny_net()
    opt = optim.SDLM(model.parameters(), lr=0.01, samples=4)
    seen = []
    estimate = opt.estimate_curvature

    def spy(model_, loss, xs, ys):
        seen.append((xs, ys, model_.training))
        estimate(model_, loss, xs, ys)

    opt.estimate_curvature = spy
    loader = DataLoader(x, y, 4, shuffle=True, normalized=True)
    Trainer(model, nn.CrossEntropyLoss(), opt, loader, epochs=2,
            callbacks=[CurvatureRefresh(seed=6)]).fit()  # fmt: skip
    draws = np.random.default_rng([6, 3])
    assert len(seen) == 2
    for xs, ys, training in seen:
        idx = np.sort(draws.choice(10, size=4, replace=False))
        assert np.array_equal(xs, x[idx]) and np.array_equal(ys, y[idx]) and training
    assert all((s["hessian_diag"] > 0).any() for s in opt.state)


# -- a user's callback, as in the README --------------------------------------------------------
class StopAtAccuracy(Callback):
    """Stops training once the validation accuracy reaches ``target``."""

    def __init__(self, target: float) -> None:
        self.target = target

    def on_epoch_end(self, epoch, logs):
        if logs["val_acc"] >= self.target:
            print(f"{logs['val_acc']:.1%} after {epoch} epochs: stopping")
            self.trainer.stop_training = True


def test_the_readme_callback(capsys):
    data = digits()
    train = DataLoader(*data.train, batch_size=32, shuffle=True)
    val = DataLoader(*data.val, batch_size=256, normalization=train.normalization)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32, rng=rng), nn.ReLU(),
                          nn.Linear(32, 10, rng=rng))  # fmt: skip
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.01),
                      train, epochs=20, callbacks=[Evaluate(val), StopAtAccuracy(0.9)])  # fmt: skip
    trainer.fit()
    out = capsys.readouterr().out
    assert trainer.epoch < 20 and trainer.history["val_acc"][-1] >= 0.9
    assert out == f"{trainer.history['val_acc'][-1]:.1%} after {trainer.epoch} epochs: stopping\n"
    assert all(acc < 0.9 for acc in trainer.history["val_acc"][:-1])

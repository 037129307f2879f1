"""Files that are not usable checkpoints: each is refused before anything is loaded, with one
``CheckpointError`` naming the file and the problem, and by ``cnnumpy eval`` with one line on
stderr and exit status 1.

A real checkpoint is written once by ``cnnumpy train`` (and the previous main's version 1 file is
in ``tests/fixtures/old-main``); each case rewrites it with one thing changed. The expected words
are written out here, never taken from the code under test.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from cnnumpy import optim
from cnnumpy.checkpoint import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from cnnumpy.cli import main
from cnnumpy.models import build_model

V1 = Path(__file__).parent / "fixtures" / "old-main" / "convnet-2-epochs.npz"
TRAIN = ["train", "--train-size", "200", "--epochs", "1", "--lr-schedule", "cosine",
         "--patience", "2", "--augment", "crop", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """The directory of a one-epoch ``cnnumpy train`` run on 200 digits (about a second)."""
    out = tmp_path_factory.mktemp("run")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*TRAIN, "--out", str(out)]) == 0
    return next(out.rglob("last.npz")).parent


def source(run: Path, version: int) -> Path:
    return run / "last.npz" if version == 2 else V1


def rewrite(src: Path, dst: Path, change: Callable[[dict, dict], str | None]) -> Path:
    """``src`` with ``change(arrays, meta)`` applied, written to ``dst`` as a plain npz; a
    string returned by ``change`` replaces the JSON of ``meta``."""
    with np.load(src, allow_pickle=False) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays.pop("meta")))
    text = change(arrays, meta)
    np.savez(dst, meta=np.array(json.dumps(meta) if text is None else text), **arrays)
    return dst


def trained_model(path: Path):
    """A freshly built model (other weights) of the architecture the checkpoint's run used."""
    config = json.loads(str(np.load(path)["meta"]))["extra"]["config"]
    return build_model(config["model"], rng=np.random.default_rng(7), **config["model_kwargs"])


def eval_fails(path: Path, capsys, *words: str) -> str:
    """``cnnumpy eval path`` exits 1 with one line on stderr naming the file and ``words``."""
    assert main(["eval", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnumpy eval: error: "), captured.err
    assert str(path) in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# -- a tampered checkpoint ----------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    version: int  # of the file tampered with: 2 (the run's last.npz) or 1 (the fixture)
    change: Callable[[dict, dict], str | None]
    words: str  # what the error must say, literally

    def __str__(self) -> str:
        return self.name


def _set(group: str, *keys: str, value) -> Callable[[dict, dict], None]:
    """A change setting ``meta[group][keys...]`` (``group`` "" for meta itself) to ``value``."""

    def change(arrays: dict, meta: dict) -> None:
        target = meta[group] if group else meta
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def _drop(*keys: str) -> Callable[[dict, dict], None]:
    def change(arrays: dict, meta: dict) -> None:
        target = meta
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return change


def _array(name: str, how: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict, dict], None]:
    def change(arrays: dict, meta: dict) -> None:
        arrays[name] = how(arrays[name])

    return change


def _drop_group(group: str) -> Callable[[dict, dict], None]:
    def change(arrays: dict, meta: dict) -> None:
        for key in [k for k in arrays if k.startswith(group + "/")]:
            del arrays[key]

    return change


def _both(*changes: Callable[[dict, dict], None]) -> Callable[[dict, dict], None]:
    def change(arrays: dict, meta: dict) -> None:
        for c in changes:
            c(arrays, meta)

    return change


NAN = float("nan")
SHUFFLE = "solver.shuffle"
CASES = [
    # weights: never cast, never non-finite, best state shaped as the model
    Case("int32 weights", 2, _array("model/0.weight", lambda a: (a * 100).astype(np.int32)),
         "model/0.weight: expected a floating-point array, got int32 of shape (32, 1, 3, 3)"),
    Case("NaN weights", 2, _array("model/4.weight", lambda a: np.full_like(a, NAN)),
         "model/4.weight: expected finite values, got 51200 NaN and 0 infinite of 51200"),
    Case("infinite bias", 2, _array("model/6.bias", lambda a: a + np.inf),
         "model/6.bias: expected finite values, got 0 NaN and 10 infinite of 10"),
    Case("reshaped best weights", 2, _array("cb/BestModel/state.0.weight", np.ravel),
         "cb/BestModel/state.0.weight: expected float32 of shape (32, 1, 3, 3) as "
         "model/0.weight, got float32 of shape (288,)"),
    Case("float64 best weights", 2, _array("cb/BestModel/state.6.bias", np.float64),
         "cb/BestModel/state.6.bias: expected float32 of shape (10,) as model/6.bias, got "
         "float64 of shape (10,)"),
    Case("reshaped best/ array (version 1)", 1, _array("best/0.weight", np.ravel),
         "best/0.weight: expected float32 of shape (4, 1, 3, 3) as model/0.weight, got float32 "
         "of shape (36,)"),
    Case("best weights gone", 2, _drop_group("cb/BestModel"),
         'cb/BestModel/state.*: expected the weights of the best epoch '
         '(meta.callbacks["BestModel"].best_epoch is 1), got none'),
    Case("model arrays changed after saving", 2,
         _both(_array("model/6.weight", np.transpose),
               _array("cb/BestModel/state.6.weight", np.transpose)),
         "model/: the keys, shapes and dtypes of its arrays do not match meta.arch_hash"),
    # the optimiser's and the schedule's state
    Case("optimiser buffer reshaped", 2, _array("optim/exp_avg.0", np.ravel),
         "optim/: expected one shape and dtype for parameter 0's buffers (the parameter's), got "
         "(32, 1, 3, 3) float32, (288,) float32"),
    Case("optimiser state of no parameter", 2,
         _both(_array("optim/exp_avg.0", np.ravel), _array("optim/exp_avg_sq.0", np.ravel)),
         "optim/: 1 parameter state(s) of shape (288,) float32, but model/ has 0 array(s)"),
    Case("integer optimiser buffer", 2, _array("optim/exp_avg.1", lambda a: a.astype(np.int32)),
         "optim/exp_avg.1: expected a floating-point array, got int32 of shape (32,)"),
    Case("negative optimiser step", 2, _array("optim/step.0", lambda a: np.full_like(a, -5)),
         "optim/step.0: expected a 0-d integer >= 0, got int64 of shape () (-5)"),
    Case("NaN learning rate", 2, _array("optim/lr", lambda a: a * NAN),
         "optim/lr: expected finite values, got 1 NaN and 0 infinite of 1"),
    Case("NaN in the schedule", 2, _array("cb/LRSchedule/base_lr", lambda a: a * NAN),
         "cb/LRSchedule/base_lr: expected finite values, got 1 NaN and 0 infinite of 1"),
    # meta fields: each one's type and constraint
    Case("epoch -3", 2, _set("", "epoch", value=-3),
         "meta.epoch: expected an integer >= 0, got -3"),
    Case("epoch as a string", 2, _set("", "epoch", value="1"),
         'meta.epoch: expected an integer >= 0, got "1"'),
    Case("meta without extra", 2, _drop("extra"),
         "meta.extra: expected an object, got nothing (the field is missing)"),
    Case("meta without history", 2, _drop("history"),
         "meta.history: expected an object, got nothing (the field is missing)"),
    Case("version 1 without best_val_acc", 1, _drop("extra", "best_val_acc"),
         "meta.extra.best_val_acc: expected null or a number in [0, 1] (a version 1 file with a "
         "best state keeps its score and epoch there), got nothing (the field is missing)"),
    Case("best epoch after the last", 1, _set("extra", "best_epoch", value=7),
         "meta.extra.best_epoch: expected an integer in [0, 2] (meta.epoch), got 7"),
    Case("stopped_early a string", 2, _set("extra", "stopped_early", value="no"),
         'meta.extra.stopped_early: expected true or false, got "no"'),
    Case("train_size 0", 2, _set("extra", "config", "train_size", value=0),
         "meta.extra.config.train_size: expected null or an integer >= 1, got 0"),
    Case("zero std", 2, _set("normalization", "std", value=[0.0]),
         "meta.normalization.std[0]: expected a finite number > 0, got 0.0"),
    Case("normalization a string", 2, _set("", "normalization", value="auto"),
         'meta.normalization: expected null or an object, got "auto"'),
    Case("history with a word", 2, _set("history", "loss", value=[2.3, "high"]),
         'meta.history["loss"][1]: expected null or a finite number (or NaN), got "high"'),
    Case("history with infinity", 2, _set("history", "val_acc", value=[float("inf")]),
         'meta.history["val_acc"][0]: expected null or a finite number (or NaN), got Infinity'),
    Case("rng has_uint32 7", 2, _set("rng_states", SHUFFLE, "has_uint32", value=7),
         'meta.rng_states["solver.shuffle"].has_uint32: expected an integer in [0, 1], got 7'),
    Case("rng increment a float", 2, _set("rng_states", SHUFFLE, "state", "inc", value=1.5),
         'meta.rng_states["solver.shuffle"].state.inc: expected an odd integer in [0, 2**128), '
         "got 1.5"),
    Case("rng of an unknown kind", 2, _set("rng_states", SHUFFLE, "bit_generator", value="Xor"),
         'meta.rng_states["solver.shuffle"]: expected a bit generator state (an object whose '
         "bit_generator is one of PCG64, PCG64DXSM, MT19937, Philox, SFC64)"),
    Case("rng state without its increment", 2, _drop("rng_states", SHUFFLE, "state", "inc"),
         'meta.rng_states["solver.shuffle"].state.inc: expected an odd integer in [0, 2**128), '
         "got nothing (the field is missing)"),
    Case("early stopping waited too long", 2, _set("callbacks", "EarlyStopping", "wait", value=5),
         'meta.callbacks["EarlyStopping"].wait: expected an integer in [0, 1] (meta.epoch), got 5'),
    Case("best score a word", 2, _set("callbacks", "BestModel", "best_score", value="high"),
         'meta.callbacks["BestModel"].best_score: expected null or a finite number (or NaN), '
         'got "high"'),
    Case("unknown meta field", 2, _set("", "surprise", value=1),
         "meta: unexpected field 'surprise'"),
    Case("has_best_state lies", 2, _set("", "has_best_state", value=True),
         "best/: the archive has no best/ arrays, but meta.has_best_state is true"),
    Case("scheduler arrays gone (version 1)", 1, _drop_group("sched"),
         'sched/: the archive has no sched/ arrays, but meta.scheduler_class is '
         '"CosineAnnealingLR"'),
    # the archive's entries and the format
    Case("unknown entry", 2, lambda arrays, meta: arrays.update(junk=np.zeros(3)),
         "unexpected entry 'junk'"),
    Case("state of a callback meta does not list", 2,
         lambda arrays, meta: arrays.update({"cb/Ghost/x": np.zeros(3)}),
         "unexpected entry 'cb/Ghost/x'"),
    Case("callback state in a version 1 file", 1,
         lambda arrays, meta: arrays.update({"cb/BestModel/state.0.weight": np.zeros(3)}),
         "unexpected entry 'cb/BestModel/state.0.weight'"),
    Case("format version 99", 2, _set("", "version", value=99),
         "has format version 99; this cnnumpy reads versions 1 and 2"),
    Case("another format", 2, _set("", "format", value="keras"),
         "is not a cnnumpy checkpoint (meta.format must be 'cnnumpy-checkpoint', got \"keras\")"),
    Case("meta not JSON", 2, lambda arrays, meta: "{not json",
         "'meta' is not JSON (Expecting property name enclosed in double quotes"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_tampered_checkpoint_is_refused_and_nothing_loaded(run, tmp_path, case):
    path = rewrite(source(run, case.version), tmp_path / "tampered.npz", case.change)
    model = trained_model(source(run, case.version))
    before = model.state_dict()
    optimizer = optim.Adam(model.parameters(), lr=0.5)
    optimizer_before = optimizer.state_dict()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, model, optimizer)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert case.words in message, message
    after = model.state_dict()
    assert all(np.array_equal(after[k], v) for k, v in before.items()), "the model changed"
    assert optimizer.lr == 0.5 and optimizer.state_dict().keys() == optimizer_before.keys()


def test_the_untampered_files_load(run, tmp_path):
    """The baseline of every case: the rewrite itself changes nothing that matters."""
    for version in (1, 2):
        path = rewrite(source(run, version), tmp_path / f"same-{version}.npz", lambda a, m: None)
        model = trained_model(path)
        contents = load_checkpoint(path, model)
        assert contents["version"] == version
        for key, value in contents["model_state"].items():
            assert np.array_equal(model.state_dict()[key], value), key
    assert load_checkpoint(run / "best.npz")["epoch"] == 1


IN_ONE_LINE = ("int32 weights", "reshaped best weights", "epoch -3",
               "version 1 without best_val_acc", "format version 99")  # fmt: skip


@pytest.mark.parametrize("case", [c for c in CASES if c.name in IN_ONE_LINE], ids=str)
def test_eval_refuses_a_tampered_checkpoint_in_one_line(run, tmp_path, capsys, case):
    path = rewrite(source(run, case.version), tmp_path / "tampered.npz", case.change)
    eval_fails(path, capsys, case.words)


# -- what `cnnumpy eval` needs beyond a valid file ----------------------------------------------
EVAL_NEEDS = [
    Case("normalization null", 2, _set("", "normalization", value=None),
         "meta.normalization: expected the mean and std the model was trained with"),
    Case("statistics for 3 channels", 2,
         _set("", "normalization", value={"mean": [0.0] * 3, "std": [1.0] * 3}),
         "meta.normalization: expected statistics for the 1 channel(s) of digits, got 3"),
    Case("no config", 2, _drop("extra", "config"),
         "does not record which model and data set it was trained on"),
    Case("unknown model", 2, _set("extra", "config", "model", value="skynet"),
         "meta.extra.config.model: expected one of "),
    Case("unknown data set", 2, _set("extra", "config", "dataset", value="imagenet"),
         "meta.extra.config.dataset: expected one of "),
    Case("model arguments that build nothing", 2,
         _set("extra", "config", "model_kwargs", "bogus", value=3),
         "meta.extra.config.model_kwargs do not build a convnet: convnet takes no argument "
         "'bogus'"),
]  # fmt: skip


@pytest.mark.parametrize("case", EVAL_NEEDS, ids=str)
def test_eval_refuses_a_checkpoint_without_what_it_needs(run, tmp_path, capsys, case):
    path = rewrite(source(run, case.version), tmp_path / "incomplete.npz", case.change)
    load_checkpoint(path)  # a valid checkpoint for the library
    eval_fails(path, capsys, case.words)


# -- files that are no checkpoint at all --------------------------------------------------------
def _zip_of_text(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")


def _truncated(run: Path, path: Path) -> None:
    raw = (run / "last.npz").read_bytes()
    path.write_bytes(raw[: len(raw) * 2 // 3])


NOT_CHECKPOINTS = {
    "png": (lambda run, p: shutil.copy(run / "learning_curves.png", p),
            "is not a cnnumpy checkpoint (it is a PNG image, not an .npz archive)"),
    "text": (lambda run, p: p.write_text("epoch 1: loss 2.3\n"),
             "is not a cnnumpy checkpoint (it is a text file, not an .npz archive)"),
    "history.json": (lambda run, p: shutil.copy(run / "history.json", p),
                     "is not a cnnumpy checkpoint (it is a JSON file holding a training "
                     "history, like history.json, not an .npz archive)"),
    "empty": (lambda run, p: p.write_bytes(b""),
              "is not a cnnumpy checkpoint (it is an empty file, not an .npz archive)"),
    "truncated": (_truncated, "is unreadable or corrupt (a damaged or truncated archive"),
    "npy": (lambda run, p: np.save(open(p, "wb"), np.ones(3)),
            "is not a cnnumpy checkpoint (it is a single NumPy array (.npy), not an .npz"),
    "zip": (lambda run, p: _zip_of_text(p),
            "is not a cnnumpy checkpoint (a zip archive whose member 'readme.txt' is not a "
            "NumPy array)"),
    "directory": (lambda run, p: p.mkdir(), "is a directory, not a checkpoint"),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(NOT_CHECKPOINTS))
def test_a_file_that_is_no_checkpoint_is_named_for_what_it_is(run, tmp_path, capsys, kind):
    make, words = NOT_CHECKPOINTS[kind]
    path = tmp_path / f"file.{kind}"
    make(run, path)
    model = trained_model(run / "last.npz")
    before = model.state_dict()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, model)
    message = str(info.value)
    assert str(path) in message and words in message, message
    assert "pickle" not in message and "allow_pickle" not in message
    assert all(np.array_equal(model.state_dict()[k], v) for k, v in before.items())
    eval_fails(path, capsys, words)


@pytest.mark.parametrize("kind", ["png", "int32 weights", "epoch -3"])
def test_the_real_command_prints_one_line_and_no_traceback(run, tmp_path, kind):
    path = tmp_path / "file.npz"
    if kind in NOT_CHECKPOINTS:
        NOT_CHECKPOINTS[kind][0](run, path)
    else:
        rewrite(run / "last.npz", path, next(c for c in CASES if c.name == kind).change)
    proc = subprocess.run([sys.executable, "-m", "cnnumpy", "eval", str(path)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and str(path) in proc.stderr, proc.stderr


# -- resuming, loading into objects that do not fit, writing -----------------------------------
def test_resume_refuses_a_tampered_last_checkpoint_before_training(run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run, out)
    rewrite(run / "last.npz", out / "last.npz", _array("cb/BestModel/state.0.weight", np.ravel))
    before = (out / "last.npz").read_bytes()
    assert main([*TRAIN, "--epochs", "3", "--out", str(out), "--resume"]) == 1
    err = capsys.readouterr().err
    assert "cb/BestModel/state.0.weight: expected float32 of shape (32, 1, 3, 3)" in err, err
    assert (out / "last.npz").read_bytes() == before, "a refused resume wrote a checkpoint"


def test_an_optimiser_that_does_not_fit_changes_nothing(run):
    path = run / "last.npz"
    model = trained_model(path)
    before = model.state_dict()
    sgd = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    with pytest.raises(ValueError, match=r"last.npz: its state does not fit the SGD given"):
        load_checkpoint(path, model, sgd)
    assert all(np.array_equal(model.state_dict()[k], v) for k, v in before.items())
    assert sgd.lr == 0.5


def test_a_model_of_another_dtype_is_refused_even_non_strict(run):
    model = trained_model(run / "last.npz").to(np.float64)
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"dtype mismatches: 0.weight \(checkpoint float32, "
                                         r"model float64\).*never cast"):  # fmt: skip
        load_checkpoint(run / "last.npz", model, strict=False)
    assert all(np.array_equal(model.state_dict()[k], v) for k, v in before.items())


def test_save_refuses_what_load_would_refuse(run, tmp_path):
    model = trained_model(run / "last.npz")
    model.parameters()[0].data[0] = np.nan
    path = tmp_path / "nan.npz"
    with pytest.raises(ValueError, match=r"refusing to write .*model/0.weight: expected finite"):
        save_checkpoint(path, model=model, epoch=1, history={}, rng_states={})
    with pytest.raises(ValueError, match=r"meta.epoch: expected an integer >= 0, got -1"):
        save_checkpoint(path, model=trained_model(run / "last.npz"), epoch=-1, history={},
                        rng_states={})  # fmt: skip
    assert not path.exists()

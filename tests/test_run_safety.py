"""Nothing lost, nothing silent: ``cnnumpy train`` never overwrites a run, resumes the run it
recorded, stops a diverging run, checks its set-up before training, writes strict JSON, and
ends on Ctrl-C, a full disk or a bad option with a message that says what is intact and what
to do. Runs are short (the digits, 64-600 training images, 1-2 epochs); those that need a real
process (a signal, a file-size limit) are subprocesses, the others call ``main`` in-process."""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnnumpy import optim
from cnnumpy.checkpoint import load_checkpoint
from cnnumpy.cli import _train_report, _train_run, main
from cnnumpy.data import Dataset, digits
from cnnumpy.nn.parameter import Parameter
from cnnumpy.train import Divergence, DivergenceError, run_dir, strict_json
from cnnumpy.train.resume import change_lr

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--epochs", "1", "--train-size", "64"]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Each test in its own directory; the in-process runs skip drawing the learning curves
    (most of a short run's time; tests/test_cli.py checks the real figure)."""
    monkeypatch.chdir(tmp_path)

    def placeholder(history, path, **kwargs) -> Path:
        Path(path).write_bytes(b"\x89PNG placeholder")
        return Path(path)

    monkeypatch.setattr(_train_report, "plot_learning_curves", placeholder)


def train(capsys, *args: str) -> tuple[int, str, str]:
    """``cnnumpy train --no-progress ARGS`` in this process: (exit status, stdout, stderr)."""
    status = main(["train", "--no-progress", *args])
    out, err = capsys.readouterr()
    return status, out, err


def process(*args: str, limit_bytes: int | None = None, **kwargs) -> subprocess.Popen:
    """``python -m cnnumpy train --no-progress ARGS`` as a real process (text pipes)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)

    def limit() -> None:  # applied in the child only
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.Popen(
        [sys.executable, "-m", "cnnumpy", "train", "--no-progress", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ | {"PYTHONPATH": path}, preexec_fn=limit if limit_bytes else None,
        **kwargs,
    )  # fmt: skip


def sha256s(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def strict_load(text: str):
    """json.loads that refuses NaN and Infinity, as every JSON reader but Python's does."""
    return json.loads(text, parse_constant=lambda word: pytest.fail(f"not JSON: {word}"))


# -- a run is never overwritten -----------------------------------------------------------------
def test_a_new_run_never_replaces_another(capsys):
    status, out, _ = train(capsys, *QUICK)
    first = Path("runs/convnet-digits")
    assert status == 0 and out.count(f"run directory: {first}") == 2, "printed at start and end"
    before = sha256s(first)
    status, out, _ = train(capsys, *QUICK, "--seed", "1")
    assert status == 0 and "run directory: runs/convnet-digits-2" in out
    status, out, err = train(capsys, *QUICK, "--seed", "1", "--out", str(first))
    assert status == 1 and "epoch 1/" not in out
    assert f"{first} holds a run already (last.npz, best.npz" in err
    assert "Continue it with --resume, replace it with --overwrite, or choose another --out" in err
    assert sha256s(first) == before, "the first run's files are untouched"
    status, _, err = train(capsys, "--resume", "--overwrite", "--out", str(first))
    assert status == 1 and "give one" in err and sha256s(first) == before
    status, out, _ = train(capsys, *QUICK, "--seed", "3", "--out", str(first), "--overwrite")
    assert status == 0 and "--overwrite: removed last.npz, best.npz" in out
    assert load_checkpoint(first / "last.npz")["extra"]["seed"] == 3


# -- divergence ---------------------------------------------------------------------------------
def test_a_diverging_run_stops_with_an_error_and_no_checkpoint(capsys):
    status, out, err = train(capsys, "--lr", "1e6", "--epochs", "3", "--train-size", "128",
                             "--out", "run")  # fmt: skip
    assert status == 1 and "(best)" not in out
    first, second = err.strip().splitlines()[-2:]
    assert re.fullmatch(
        r"cnnumpy train: error: training diverged in epoch 1: its mean loss \S+ is more than 10 "
        r"times the starting loss [\d.]+ \(the first mini-batch's, before any step\); no "
        r"checkpoint has been written yet", first), first  # fmt: skip
    assert second.startswith("to start again with smaller steps: cnnumpy train --no-progress")
    assert second.endswith("--out run --lr 100000 --overwrite")
    assert not {"best.npz", "last.npz", "result.json"} & set(os.listdir("run"))


def test_divergence_in_a_resumed_leg_keeps_the_last_checkpoint(capsys):
    assert train(capsys, *QUICK, "--out", "run")[0] == 0
    before = sha256s(Path("run"))["last.npz"]
    status, _, err = train(capsys, "--resume", "--out", "run", "--lr", "1e6", "--epochs", "3")
    assert status == 1
    assert "the last good checkpoint is run/last.npz (after epoch 1), left untouched" in err
    assert "to continue with smaller steps: cnnumpy train --resume --out run --lr 100000" in err
    assert sha256s(Path("run"))["last.npz"] == before


class Scripted:
    """What the Divergence callback reads of a trainer."""

    def __init__(self, first_loss: float, weight: float = 1.0) -> None:
        self.history = {"loss": [first_loss, 0.5]}
        self.model = type("M", (), {})()
        self.model.named_parameters = lambda: [("0.weight", Parameter(np.full(3, weight)))]
        self.checkpoint_note = lambda: "NOTE"


@pytest.mark.parametrize(
    ("factor", "first", "mean", "weight", "message"),
    [
        (10, 2.0, 19.9, 1.0, None),
        (
            10,
            2.0,
            20.1,
            1.0,
            "its mean loss 20.1 is more than 10 times the starting loss 2 (the first",
        ),
        (3, 2.0, 6.5, 1.0, "more than 3 times"),
        (None, 2.0, 1e30, 1.0, None),
        (0, 2.0, 1e30, 1.0, None),
        (0, 2.0, 1.0, math.nan, "the parameters 0.weight hold NaN or infinite values; NOTE"),
        (10, 2.0, 1.0, math.inf, "0.weight hold NaN or infinite"),
    ],
)
def test_the_divergence_rule(factor, first, mean, weight, message):
    """Stop when an epoch's mean loss exceeds factor x the first mini-batch's loss, or a weight
    is not finite; factor None or 0 checks the weights only."""
    check = Divergence(factor)
    check.trainer = Scripted(first, weight)
    if message is None:
        check.on_epoch_end(4, {"loss": mean})
    else:
        with pytest.raises(DivergenceError, match=re.escape(message)):
            check.on_epoch_end(4, {"loss": mean})


def test_divergence_factor_is_explained_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--divergence-factor F stop the run, with an error and the last checkpoint" in text
    assert "exceeds F times the starting loss" in text


# -- resume: what may change, what may not ------------------------------------------------------
def test_resume_applies_what_may_change_and_refuses_another_run(capsys):
    assert train(capsys, *QUICK, "--seed", "1", "--out", "run")[0] == 0
    before = sha256s(Path("run"))
    status, _, err = train(capsys, "--resume", "--out", "run", "--seed", "0")
    assert status == 1 and "--seed 0 (the run has 1)" in err, "0 given is not 0 by default"
    status, _, err = train(capsys, "--resume", "--out", "run", "--batch-size", "7",
                           "--model-option", "hidden_dim=20", "--optimizer", "sgd")  # fmt: skip
    assert (
        status == 1
        and "would make it another run: --model-option hidden_dim=20 (the run "
        "has none); --batch-size 7 (the run has 32); --optimizer sgd (the run has adam)"
        in err
    )
    assert sha256s(Path("run")) == before
    status, out, _ = train(capsys, "--resume", "--out", "run", "--lr", "0.002", "--epochs", "2")
    assert status == 0
    assert "from epoch 2: --lr 0.001 -> 0.002\nfrom epoch 2: --epochs 1 -> 2\n" in out
    changes = [{"epoch": 2, "option": "lr", "from": 0.001, "to": 0.002},
               {"epoch": 2, "option": "epochs", "from": 1, "to": 2}]  # fmt: skip
    last = load_checkpoint(Path("run/last.npz"))
    assert last["extra"]["seed"] == 1 and last["extra"]["config"]["lr"] == 0.002
    assert last["extra"]["changes"] == changes and last["history"]["lr"] == [0.001, 0.002]
    records = [strict_load(line) for line in Path("run/metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in records] == [0.001, 0.002] and records[1]["changes"] == changes
    assert strict_load(Path("run/history.json").read_text())["changes"] == changes
    assert strict_load(Path("run/result.json").read_text())["changes"] == changes


def test_a_new_learning_rate_continues_the_schedule_from_it():
    params = [Parameter(np.zeros(2))]
    opt = optim.SGD(params, lr=0.1)
    sched = optim.CosineAnnealingLR(opt, T_max=4)
    sched.step(), sched.step()  # epoch 2 of 4: 0.1 * (1 + cos(pi / 2)) / 2
    assert change_lr(opt, sched, 0.1, 0.02) == pytest.approx(0.01)
    sched.step()
    assert opt.lr == pytest.approx(0.02 * (1 + math.cos(3 * math.pi / 4)) / 2)
    constant = optim.SGD(params, lr=0.1)
    assert change_lr(constant, None, 0.1, 0.5) == 0.5


# -- checks before training ---------------------------------------------------------------------
def test_an_unwritable_out_fails_in_seconds_before_training(capsys):
    Path("file").write_text("not a directory")
    start = time.perf_counter()
    proc = process("--out", "file/sub")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and time.perf_counter() - start < 30
    assert (
        err == "cnnumpy train: error: cannot create the run directory file/sub: Not a directory\n"
    )
    assert out == ""
    status, out, err = train(capsys, "--out", "/proc")  # exists, but no file can be made there
    assert status == 1 and "cannot write into the run directory /proc: creating a file" in err
    assert "epoch" not in out


def test_free_space_is_checked():
    with pytest.raises(ValueError, match=r"has [\d.]+ MiB free, and its checkpoints need about"):
        run_dir.check_free_space(Path("."), 2**62)


def no_space_for(name: str, monkeypatch) -> None:
    """Make the fsync of ``name``'s temporary file fail as a full disk does."""
    fsync = os.fsync

    def full(fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name.startswith(f".{name}."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", full)


def test_a_full_disk_names_the_file_and_what_is_intact(capsys, monkeypatch):
    assert train(capsys, *QUICK, "--out", "run")[0] == 0
    before = sha256s(Path("run"))["last.npz"]
    no_space_for("last.npz", monkeypatch)
    status, _, err = train(capsys, "--resume", "--out", "run", "--epochs", "2")
    assert status == 1
    assert err.splitlines()[-2:] == [
        "cnnumpy train: error: could not write run/last.npz (No space left on device); the last "
        "good checkpoint is run/last.npz (after epoch 1), left untouched (each file is replaced "
        "only once a complete new one is written)",
        "once the problem is fixed, continue: cnnumpy train --resume --out run",
    ]
    assert sha256s(Path("run"))["last.npz"] == before
    assert not list(Path("run").glob(".*.tmp"))


def test_a_real_write_failure_keeps_the_last_checkpoint(capsys):
    """A file-size limit below a checkpoint's size: the system refuses the write (EFBIG)."""
    assert train(capsys, *QUICK, "--out", "run")[0] == 0
    before, size = sha256s(Path("run"))["last.npz"], Path("run/last.npz").stat().st_size
    proc = process("--resume", "--out", "run", "--epochs", "2", limit_bytes=size // 2)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Traceback" not in err
    expected = (
        r"could not write run/(best|last)\.npz \(File too large\); the last good checkpoint is "
        r"run/last\.npz \(after epoch 1\), left untouched"
    )
    assert re.search(expected, err), err
    assert sha256s(Path("run"))["last.npz"] == before


def test_an_empty_test_set_is_an_error_before_training(capsys, monkeypatch):
    data = digits()
    empty = Dataset("digits", data.train, data.val, (data.test[0][:0], data.test[1][:0]),
                    data.classes)  # fmt: skip
    monkeypatch.setattr(_train_run, "load_data", lambda *a, **k: empty)
    status, out, err = train(capsys, *QUICK, "--out", "run")
    assert status == 1 and "epoch" not in out
    assert "the digits test set has no images: there would be no test accuracy" in err
    assert not Path("run").exists(), "the directory made for the run is removed again"


def test_json_is_strict():
    text = strict_json.dumps({"a": math.nan, "b": [math.inf, 1.0], "c": np.float32("nan")})
    assert text == '{"a": null, "b": [null, 1.0], "c": null}'


# -- Ctrl-C, interrupted writes, bad options ----------------------------------------------------
def test_ctrl_c_prints_two_lines_and_exits_130(capsys):
    proc = process("--epochs", "50", "--train-size", "600", "--out", "run")
    for line in proc.stdout:
        if line.startswith("epoch 2/50"):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    first, second = err.splitlines()
    where = r"(in epoch \d+ \(batch \d+ of 19\)|after epoch \d+)"
    match = re.fullmatch(
        rf"cnnumpy train: interrupted {where}; run/last\.npz \(after epoch (\d+)\) is intact", first
    )
    assert match, first
    assert second == "to continue: cnnumpy train --resume --out run"
    done, command = int(match.group(2)), shlex.split(second.removeprefix("to continue: "))
    assert command[:2] == ["cnnumpy", "train"]
    status, _, _ = train(capsys, *command[2:], "--epochs", str(done + 1))
    assert status == 0 and load_checkpoint(Path("run/last.npz"))["epoch"] == done + 1


def test_resume_without_last_npz_says_what_to_do(capsys):
    """The state a kill in the first write of last.npz leaves: best.npz, and last.npz's
    temporary file (tests/test_solver.py kills a real run there)."""
    assert train(capsys, *QUICK, "--out", "run")[0] == 0
    Path("run/last.npz").unlink()
    Path("run/.last.npz.k3j_x9.tmp").write_bytes(b"PK\x03\x04 half a zip")
    status, _, err = train(capsys, "--resume", "--out", "run", "--epochs", "2")
    assert status == 1
    assert "run has no last.npz but has best.npz (epoch 1)" in err
    assert "copy it (cp run/best.npz run/last.npz) and resume again" in err
    assert not list(Path("run").glob(".*.tmp")), "the orphaned temporary file is removed"
    shutil.copy("run/best.npz", "run/last.npz")
    assert train(capsys, "--resume", "--out", "run", "--epochs", "2")[0] == 0
    os.mkdir("empty")
    status, _, err = train(capsys, "--resume", "--out", "empty")
    assert status == 1 and "--resume: no checkpoint in empty (no last.npz)" in err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ('hidden_dim="abc"', 'hidden_dim="abc": convnet\'s hidden_dim expects int, got str "abc"'),
        ("hidden_dim=2.5", "convnet's hidden_dim expects int, got float 2.5"),
        ("rng=1", "--model-option rng=1: the model's random generator is seeded by --seed"),
        ("input_size=4", "--model-option cannot set input_size: the data set fixes it"),
        ("hidden_dim=-3", "--model-option hidden_dim=-3: building convnet failed: "),
    ],
)
def test_model_options_name_the_option(capsys, option, message):
    status, _, err = train(capsys, *QUICK, "--model-option", option, "--out", "run")
    assert status == 1 and message in err
    assert not Path("run").exists()

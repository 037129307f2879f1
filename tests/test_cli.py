"""The real ``cnnumpy`` command, run in a subprocess as a user would."""

import json
import math
import os
import re
import subprocess
import sys

import pytest

from cnnumpy.checkpoint import load_checkpoint


def cnnumpy(*args, cwd, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "cnnumpy", *args], cwd=cwd, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``cnnumpy train`` with no arguments, as the README runs it."""
    cwd = tmp_path_factory.mktemp("train")
    proc = cnnumpy("train", "--no-progress", cwd=cwd)
    return cwd, proc.stdout


def test_default_train_reaches_97_percent_and_writes_outputs(trained):
    cwd, out = trained
    acc = float(re.search(r"test accuracy: ([\d.]+)%", out).group(1))
    assert acc >= 97.0, out
    run = cwd / "runs" / "convnet-digits"
    for name in ("best.npz", "last.npz", "history.json", "learning_curves.png", "result.json",
                 "metrics.jsonl"):  # fmt: skip
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text())
    assert len(history["val_acc"]) == 20
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert [r["epoch"] for r in records] == list(range(1, 21))
    assert [r["val_acc"] for r in records] == history["val_acc"]
    assert history["loss"][-1] < history["loss"][0]
    assert (run / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_reproduces_the_test_accuracy(trained):
    cwd, out = trained
    acc = re.search(r"test accuracy: ([\d.]+)%", out).group(1)
    proc = cnnumpy("eval", "runs/convnet-digits/best.npz", cwd=cwd)
    assert f"{acc}%" in proc.stdout


def test_eval_refuses_a_corrupt_checkpoint(trained, tmp_path):
    cwd, _ = trained
    bad = tmp_path / "bad.npz"
    data = (cwd / "runs" / "convnet-digits" / "best.npz").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    proc = cnnumpy("eval", str(bad), cwd=cwd, check=False)
    assert proc.returncode == 1
    assert "corrupt" in proc.stderr and "Traceback" not in proc.stderr


def test_resume_continues_a_finished_run(trained):
    cwd, _ = trained
    proc = cnnumpy("train", "--no-progress", "--resume", "--epochs", "22", cwd=cwd)
    history = json.loads((cwd / "runs" / "convnet-digits" / "history.json").read_text())
    assert len(history["val_acc"]) == 22
    assert "test accuracy" in proc.stdout
    assert "run directory: runs/convnet-digits (resumed after epoch 20)" in proc.stdout
    assert "from epoch 21: --epochs 20 -> 22" in proc.stdout
    assert history["changes"] == [{"epoch": 21, "option": "epochs", "from": 20, "to": 22}]


def test_threads_reach_the_backend(tmp_path, monkeypatch):
    from cnnumpy import backend
    from cnnumpy.cli import main

    calls = []
    monkeypatch.setattr(backend, "set_num_threads", calls.append)
    args = ["train", "--threads", "3", "--epochs", "1", "--train-size", "64", "--no-progress",
            "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 0 and calls == [3]
    proc = cnnumpy("train", "--threads", "0", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "expected a positive integer, got '0'" in proc.stderr


def test_summary_lists_models_and_counts(tmp_path):
    listing = cnnumpy("summary", "--list", cwd=tmp_path).stdout
    assert "convnet" in listing and "fc" in listing
    table = cnnumpy("summary", "convnet", "--input-size", "28", cwd=tmp_path).stdout
    # conv 1->32 7x7 on 28x28: 32*49 + 32 parameters, 28*28*32*(49+1) connections
    assert re.search(r"Conv2d\s+32x28x28\s+1,600\s+1,254,400\s+1,229,312", table), table


# One of each family; `cnnumpy gradcheck NAME` for every registered name is in the README.
GRADCHECKED = [
    "convnet", "fc", "lenet5", "lenet5_modern", "lenet_theano", "alexnet", "vgg11", "googlenet",
    "resnet20", "plain20", "resnet18", "resnet50", "preact_resnet20", "wrn16_4",
]  # fmt: skip


@pytest.mark.parametrize("model", GRADCHECKED)
def test_gradcheck_command_passes(tmp_path, model):
    proc = cnnumpy("gradcheck", model, cwd=tmp_path)
    assert "gradcheck passed" in proc.stdout


@pytest.mark.parametrize("command", ["train", "eval", "summary", "gradcheck"])
def test_help_is_complete(tmp_path, command):
    text = cnnumpy(command, "--help", cwd=tmp_path).stdout
    assert "usage: cnnumpy " + command in text
    assert len(text.splitlines()) > 5


def test_version(tmp_path):
    from cnnumpy import __version__

    assert cnnumpy("--version", cwd=tmp_path).stdout == f"cnnumpy {__version__}\n"


def test_unknown_model_is_a_clear_error(tmp_path):
    proc = cnnumpy("summary", "nosuchnet", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "unknown model 'nosuchnet'" in proc.stderr


def test_cosine_schedule_anneals_the_learning_rate(tmp_path):
    cnnumpy("train", "--no-progress", "--epochs", "4", "--lr-schedule", "cosine", "--out", "run",
            cwd=tmp_path)  # fmt: skip
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    expected = [1e-3 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(4)]
    assert history["lr"] == pytest.approx(expected)


def test_model_options_reach_the_builder_and_eval(tmp_path):
    """--model-option widens the net; eval rebuilds the same net from the checkpoint's config."""
    proc = cnnumpy("train", "--no-progress", "--epochs", "1", "--model-option", "num_filters=5",
                   "--model-option", "hidden_dim=17", "--out", "run", cwd=tmp_path)  # fmt: skip
    acc = re.search(r"test accuracy: ([\d.]+)%", proc.stdout).group(1)
    summary = cnnumpy("eval", "run/best.npz", cwd=tmp_path).stdout
    assert f"{acc}%" in summary
    config = load_checkpoint(tmp_path / "run" / "best.npz")["extra"]["config"]
    assert config["model_kwargs"]["num_filters"] == 5
    assert config["model_kwargs"]["hidden_dim"] == 17


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("widths=[1,2]x", "must be JSON"),
        ("nosuch=1", "takes no argument 'nosuch'"),
        ("num_classes=3", "cannot set num_classes"),
        ("=3", "expected KEY=VALUE"),
    ],
)
def test_bad_model_options_are_clear_errors(tmp_path, option, message):
    proc = cnnumpy("train", "--epochs", "1", "--model-option", option, cwd=tmp_path, check=False)
    assert proc.returncode != 0 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_summary_defaults_to_the_models_own_input_channels(tmp_path):
    assert "input: 3x32x32" in cnnumpy("summary", "resnet20", cwd=tmp_path).stdout
    assert "input: 1x32x32" in cnnumpy("summary", "lenet5", cwd=tmp_path).stdout
    given = cnnumpy("summary", "resnet20", "--in-channels", "1", cwd=tmp_path).stdout
    assert "input: 1x32x32" in given


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    proc = subprocess.run(f"'{sys.executable}' -m cnnumpy summary resnet110 | head -1",
                          shell=True, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.stdout == "resnet110\n"
    assert proc.stderr == ""
    # A reader gone before the first write: the writer must not print a traceback either.
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run([sys.executable, "-m", "cnnumpy", "summary", "lenet5"], stdout=write,
                          stderr=subprocess.PIPE, cwd=tmp_path, text=True, timeout=300)  # fmt: skip
    os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")


def test_help_shows_the_defaults(tmp_path):
    gradcheck = cnnumpy("gradcheck", "--help", cwd=tmp_path).stdout
    assert "(default 10)" in gradcheck and "(default 1e-06)" in gradcheck
    assert "issue" not in cnnumpy("bench", "--help", cwd=tmp_path).stdout


def test_epoch_line_says_what_the_train_accuracy_is_measured_on():
    from cnnumpy.train.callbacks.progress import epoch_line

    logs = {"loss": 0.5, "train_acc": 0.9, "val_loss": 0.4, "val_acc": 0.88, "lr": 0.01}
    assert "train acc 0.9000 (1000-image subset)" in epoch_line(1, 2, logs, False, 1000)


def test_the_report_says_the_time_is_training_and_the_train_subset(trained):
    _, out = trained
    assert re.search(r"test accuracy: .*, [\d.]+ s of training\)", out), out
    assert re.search(r"train accuracy: [\d.]+% \(epoch \d+, measured on a subset of \d+ of the "
                     r"\d+ training images\)", out), out  # fmt: skip
    assert re.search(r"train acc [\d.]+ \(\d+-image subset\)", out), out

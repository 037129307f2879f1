"""Smoke versions of the README's MNIST reproductions: each command exactly as the
README gives it, cut to a few hundred training images and one epoch. The full runs take
minutes to hours and are documented commands, not tests; this checks that each one starts,
trains (the loss goes down) and writes what the README shows."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"

# The README's reproduction commands, after `cnnumpy train` (the data directory and the
# output directory are the test's; --epochs is overridden below).
REPRODUCTIONS = {
    "lenet5": ["--model", "lenet5", "--optimizer", "sgd", "--lr", "0.0015", "--batch-size", "8",
               "--clip-grad-norm", "20", "--weight-decay", "5e-4", "--epochs", "30",
               "--lr-schedule", "cosine", "--val-size", "0"],
    "lenet5-affine": ["--model", "lenet5", "--augment", "affine", "--optimizer", "sgd",
                      "--lr", "0.0015", "--batch-size", "8", "--clip-grad-norm", "20",
                      "--epochs", "30", "--lr-schedule", "cosine", "--val-size", "0"],
    "lenet_theano": ["--model", "lenet_theano", "--epochs", "15", "--lr-schedule", "cosine"],
    "lenet5_modern": ["--model", "lenet5_modern", "--model-option", "batch_norm=true",
                      "--augment", "affine", "--epochs", "20", "--lr-schedule", "cosine"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(REPRODUCTIONS))
def test_reproduction_command_trains_on_a_few_hundred_images(tmp_path, name):
    args = [*REPRODUCTIONS[name], "--dataset", "mnist", "--data-dir", str(MNIST),
            "--train-size", "640", "--epochs", "1", "--no-progress", "--out", "run"]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "cnnumpy", "train", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout
    run = tmp_path / "run"
    history = json.loads((run / "history.json").read_text())
    loss = np.asarray(history["loss"])
    batch = int(args[args.index("--batch-size") + 1]) if "--batch-size" in args else 32
    assert len(loss) == 640 // batch
    assert loss[-5:].mean() < loss[:5].mean()
    result = json.loads((run / "result.json").read_text())
    assert result["epochs_run"] == 1
    assert (run / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_train_size_must_fit_the_split(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cnnumpy", "train", "--train-size", "0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 1
    assert "--train-size must be between 1 and" in proc.stderr


def test_val_size_zero_trains_on_every_image_and_keeps_the_last_epoch(tmp_path):
    args = ["--model", "lenet5", "--dataset", "mnist", "--data-dir", str(MNIST), "--val-size", "0",
            "--optimizer", "sgd", "--lr", "0.003", "--epochs", "2", "--train-size", "96",
            "--no-progress", "--out", "run"]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "cnnumpy", "train", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "last epoch 2 of 2" in proc.stdout
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["best_val_accuracy"] is None and result["best_epoch"] == 2
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["val_acc"] == [None, None], "not measured: null (strict JSON), never NaN"
    assert (tmp_path / "run" / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_val_size_must_leave_training_images(tmp_path):
    args = ["--dataset", "mnist", "--data-dir", str(MNIST), "--val-size", "60000"]
    proc = subprocess.run([sys.executable, "-m", "cnnumpy", "train", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 1
    assert "cannot hold out 60000 of the 60000 training images of mnist" in proc.stderr

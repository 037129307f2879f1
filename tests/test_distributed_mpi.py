"""``mpirun -n 2 cnnumpy train`` for real: Open MPI's launcher and mpi4py (the ``mpi`` extra,
in the test extras). Two ranks at global batch B train to the weights of one process at B;
a rank that fails ends the job with its message; a killed rank's run resumes bit-identically.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mpi4py  # noqa: F401 - the extra these tests need: a clear ImportError without it
import numpy as np
import pytest
from helpers import assert_close

ROOT = Path(__file__).resolve().parents[1]
TRIPWIRE = ROOT / "tests" / "fixtures" / "mpi" / "tripwire_model.py"
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
MPIRUN = shutil.which("mpirun", path=f"{Path(sys.executable).parent}{os.pathsep}"
                      f"{os.environ.get('PATH', '')}")  # fmt: skip


def environment(**extra: str) -> dict[str, str]:
    # CI runs as root, which Open MPI refuses unless told twice
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    env.pop("CNNUMPY_TEST_TRIPWIRE", None)
    env.update(extra)
    return env


def train(k: int, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``cnnumpy train ARGS`` on ``k`` processes (``k`` = 1: no mpirun)."""
    command = [sys.executable, "-m", "cnnumpy", "train", "--no-progress", *args]
    if k > 1:
        assert MPIRUN is not None, "mpirun not found: pip install 'cnnumpy[mpi]'"
        command = [MPIRUN, "--oversubscribe", "-n", str(k), *command]
    return subprocess.run(command, cwd=cwd, env=environment(**env), capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def weights(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files if k.startswith("model/")}


CASES = {
    "convnet": ["--train-size", "300", "--epochs", "2", "--model-option", "num_filters=4",
                "--model-option", "hidden_dim=16", "--optimizer", "sgd", "--lr", "0.05"],
    "lenet5": ["--model", "lenet5", "--dataset", "mnist", "--data-dir", str(SHARED_MNIST),
               "--train-size", "256", "--val-size", "256", "--epochs", "1", "--batch-size",
               "32", "--optimizer", "sgd", "--lr", "0.01"],
    "resnet20-sync-bn": ["--model", "resnet20", "--model-option", "widths=[4,4,8]",
                         "--train-size", "192", "--epochs", "1", "--optimizer", "sgd",
                         "--lr", "0.05", "--sync-bn"],
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_two_ranks_train_to_the_weights_of_one_process(case, tmp_path):
    one = train(1, *CASES[case], "--out", "one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    two = train(2, *CASES[case], "--out", "two", cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("test accuracy:") == 1, "rank 0 alone reports"
    expected, got = weights(tmp_path / "one" / "last.npz"), weights(tmp_path / "two" / "last.npz")
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert_close(got[key], value, rtol=1e-5, name=key)


@pytest.mark.parametrize(
    ("action", "shown"),
    [("raise", "[rank 1 of 2] cnnumpy train: error: tripwire: rank 1 meets bad input"),
     ("bug", "[rank 1 of 2] uncaught exception, ending every rank")],
)  # fmt: skip
def test_a_rank_that_fails_ends_every_rank_with_its_message(action, shown, tmp_path):
    model = f"{TRIPWIRE}:build"
    run = train(2, "--model", model, "--train-size", "200", "--epochs", "5", "--out", "run",
                cwd=tmp_path, CNNUMPY_TEST_TRIPWIRE=f"{action}:1:3")  # fmt: skip
    assert run.returncode != 0
    assert shown in run.stderr
    assert "epoch 1/5" not in run.stdout, "the job ended in the first epoch"


def test_a_killed_rank_resumes_bit_identically(tmp_path):
    common = ["--model", f"{TRIPWIRE}:build", "--train-size", "200", "--epochs", "3",
              "--augment", "crop", "--optimizer", "sgd", "--lr", "0.05"]  # fmt: skip
    whole = train(2, *common, "--out", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    marker = tmp_path / "killed"  # 7 steps an epoch: the kill is in the second
    killed = train(2, *common, "--out", "legs", cwd=tmp_path,
                   CNNUMPY_TEST_TRIPWIRE=f"kill:1:10:{marker}")  # fmt: skip
    assert killed.returncode != 0 and marker.exists()
    assert "epoch 1/3" in killed.stdout and "epoch 2/3" not in killed.stdout
    resumed = train(2, "--resume", "--out", "legs", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after epoch 1" in resumed.stdout
    whole_file, legs_file = tmp_path / "whole" / "last.npz", tmp_path / "legs" / "last.npz"
    with np.load(whole_file) as a, np.load(legs_file) as b:
        assert a.files == b.files
        different = [k for k in a.files if not np.array_equal(a[k], b[k])]
    assert different == [], "every array and the metadata are the same"
    refused = train(1, "--resume", "--out", "legs", cwd=tmp_path)
    assert refused.returncode == 1
    assert "written by a run on 2 processes, this one has 1" in refused.stderr

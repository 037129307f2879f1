"""``cnnumpy show-data`` and the data options of ``train`` / ``eval``: once in a subprocess as a
user runs it, otherwise through ``cnnumpy.cli.main`` in process (same code, faster); the
image-grid plot and the choice of samples."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from cnnumpy.checkpoint import load_checkpoint
from cnnumpy.cli import main
from cnnumpy.cli.show_data import sample_grids, samples_per_class
from cnnumpy.data import digits
from cnnumpy.inspect import plot_image_grid

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cnnumpy(capsys, monkeypatch):
    """Run ``cnnumpy ARGS`` in process in ``cwd``; argparse's exits become return codes."""

    def run(*args, cwd, check=True) -> Result:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:
            code = e.code
        out, err = capsys.readouterr()
        if check:
            assert code == 0, err
        return Result(code, out, err)

    return run


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file of uint8 (official layout, test-only writer)."""
    shape = b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(bytes([0, 0, 8, array.ndim]) + shape + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory) -> Path:
    """Fashion-MNIST-format files: 6,000 training images (5,000 of them validation), 200 test;
    the class is the grey level of a central square, which crops and flips keep."""
    root = tmp_path_factory.mktemp("data")
    directory = root / "fashion-mnist"
    directory.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6000), ("t10k", 200)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 20, (n, 28, 28)).astype(np.uint8)
        images[:, 9:19, 9:19] = 40 + 20 * labels[:, None, None]
        write_idx(directory / f"{prefix}-images-idx3-ubyte", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def png_shape(path: Path) -> tuple[int, ...]:
    assert path.read_bytes()[:4] == b"\x89PNG"
    return imread(path).shape


def test_show_data_digits_with_augmentation_in_a_subprocess(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "cnnumpy", "show-data", "digits", "--augment", "affine"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    # Written under runs/show-data/, not loose in the current directory.
    assert "wrote runs/show-data/digits-affine.png" in proc.stdout
    assert not (tmp_path / "digits-affine.png").exists()
    h, w, _ = png_shape(tmp_path / "runs" / "show-data" / "digits-affine.png")
    assert w > 1.4 * h > 500, "two panels side by side"


def test_show_data_mnist_from_the_shared_files(cnnumpy, tmp_path):
    out = tmp_path / "m.png"
    cnnumpy("show-data", "mnist", "--data-dir", SHARED_DATA, "--augment", "elastic",
            "--per-class", 4, "--split", "test", "--out", out, cwd=tmp_path)  # fmt: skip
    assert png_shape(out)[0] > 300


def test_show_data_errors(cnnumpy, tmp_path):
    proc = cnnumpy("show-data", "cifar10", "--data-dir", tmp_path / "none", cwd=tmp_path,
                   check=False)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "data_batch_1.bin" in proc.stderr and "cs.toronto.edu" in proc.stderr
    proc = cnnumpy("show-data", "digits", "--augment", "crop+flip", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "mirrored digit" in proc.stderr
    proc = cnnumpy("show-data", "digits", "--augment", "twist", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "'twist': use none or crop, flip, affine, elastic" in proc.stderr
    help_text = cnnumpy("show-data", "--help", cwd=tmp_path).stdout
    assert "usage: cnnumpy show-data" in help_text and "--data-dir" in help_text


def test_train_and_eval_on_files_with_augmentation(cnnumpy, tmp_path, fashion_dir):
    proc = cnnumpy("train", "--dataset", "fashion-mnist", "--data-dir", fashion_dir,
                   "--model", "fc", "--epochs", 2, "--augment", "crop+flip", "--no-progress",
                   "--out", "run", cwd=tmp_path)  # fmt: skip
    acc = re.search(r"test accuracy: ([\d.]+)% \(200 fashion-mnist images", proc.stdout).group(1)
    assert float(acc) > 50, proc.stdout
    config = load_checkpoint(tmp_path / "run" / "best.npz")["extra"]["config"]
    assert config["data_dir"] == str(fashion_dir.resolve()) and config["augment"] == "crop+flip"
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["augment"] == "crop+flip" and result["dataset"] == "fashion-mnist"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = cnnumpy("eval", tmp_path / "run" / "best.npz", cwd=elsewhere)  # the recorded dir
    assert f"{acc}%" in proc.stdout
    proc = cnnumpy("eval", tmp_path / "run" / "best.npz", "--data-dir", elsewhere, cwd=elsewhere,
                   check=False)  # fmt: skip
    assert proc.returncode == 1 and "t10k-images-idx3-ubyte" not in proc.stdout
    assert "train-images-idx3-ubyte" in proc.stderr and str(elsewhere) in proc.stderr


def test_show_data_fashion_rgb_plot_and_sample_choice(cnnumpy, tmp_path, fashion_dir):
    out = tmp_path / "f.png"
    cnnumpy("show-data", "fashion-mnist", "--data-dir", fashion_dir, "--out", out,
            "--split", "val", "--augment", "crop+flip", cwd=tmp_path)  # fmt: skip
    assert png_shape(out)[1] > 600
    rgb = np.random.default_rng(0).uniform(0, 1, (3, 5, 3, 32, 32))
    path = plot_image_grid([("a", rgb), ("b", rgb[:, :2])], ["x", "y", "z"], tmp_path / "g.png",
                           title="t")  # fmt: skip
    assert png_shape(path)[2] in (3, 4)
    with pytest.raises(ValueError, match="every panel needs"):
        plot_image_grid([("a", rgb)], ["x"], tmp_path / "h.png")


def test_samples_per_class_and_grids():
    labels = np.array([3, 1, 3, 0, 1, 3, 0, 1, 2, 2])
    assert samples_per_class(labels, 4, 2).tolist() == [[3, 6], [1, 4], [8, 9], [0, 2]]
    with pytest.raises(ValueError, match="class 0 has only 2 images"):
        samples_per_class(labels, 4, 3)
    data = digits()
    panels = sample_grids(data, "digits", "val", 3, "affine", seed=0)
    assert [name for name, _ in panels] == ["original", "augmented: affine"]
    original, distorted = panels[0][1], panels[1][1]
    assert original.shape == distorted.shape == (10, 3, 1, 8, 8)
    assert original.min() >= 0 and original.max() == 1.0  # 16 is the brightest digits value
    assert distorted.min() >= -1e-6 and distorted.max() <= 1 + 1e-6
    index = samples_per_class(data.val[1], 10, 3)
    assert np.array_equal(original[4, 2, 0] * 16, data.val[0][index[4, 2], 0])

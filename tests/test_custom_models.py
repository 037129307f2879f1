"""``--model FILE.py:function`` and ``package.module:function``: training, evaluating and
predicting with a model from the user's own code."""

from __future__ import annotations

import numpy as np
import pytest

import cnnumpy as cn
from cnnumpy.cli import main
from cnnumpy.data import digits
from cnnumpy.predict import ModelSourceChangedWarning

MODEL_FILE = """
from cnnumpy import nn


def build(in_channels, input_size, num_classes, rng, width=4):
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(width * input_size * input_size, num_classes),
    )
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``(model file, run directory)`` after one epoch of ``build`` with ``width=3``."""
    root = tmp_path_factory.mktemp("custom")
    source = root / "my_model.py"
    source.write_text(MODEL_FILE)
    out = root / "run"
    assert main(["train", "--model", f"{source}:build", "--model-option", "width=3",
                 "--epochs", "1", "--train-size", "300", "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    return source, out


def test_the_checkpoint_records_the_builder_and_its_file(run):
    source, out = run
    predictor = cn.load(out / "best.npz")
    assert predictor.config["model"] == f"{source.resolve()}:build"
    assert predictor.config["model_kwargs"]["width"] == 3
    assert len(predictor.config["model_sha256"]) == 64
    conv = predictor.model[0]
    assert conv.weight.shape == (3, 1, 3, 3)  # the recorded option, not the default 4
    classes, probs = predictor.predict(digits().test[0][:5])
    assert classes.shape == (5,) and np.allclose(probs.sum(axis=1), 1)


def test_eval_and_predict_work_on_its_checkpoint(run, tmp_path, capsys):
    from PIL import Image as image

    _, out = run
    png = tmp_path / "blob.png"
    img = image.new("L", (16, 16), 0)
    img.paste(255, (5, 3, 11, 13))
    img.save(png)
    capsys.readouterr()
    assert main(["eval", str(out / "best.npz")]) == 0
    assert "on digits test:" in capsys.readouterr().out
    assert main(["predict", str(out / "best.npz"), str(png), "--top", "2"]) == 0
    captured = capsys.readouterr()
    assert len([line for line in captured.out.splitlines() if line.startswith("  ")]) == 2
    assert "has changed" not in captured.err


def test_a_changed_file_is_reported(run, tmp_path, capsys):
    source, out = run
    original = source.read_text()
    try:
        source.write_text(original + "\n# tuned later\n")
        capsys.readouterr()
        assert main(["eval", str(out / "best.npz")]) == 0
        assert f"{source.resolve()} has changed since checkpoint" in capsys.readouterr().err
        with pytest.warns(ModelSourceChangedWarning, match="has changed"):
            cn.load(out / "best.npz")
    finally:
        source.write_text(original)


def test_a_module_spec_trains_from_the_python_path(tmp_path, monkeypatch):
    package = tmp_path / "userpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(MODEL_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    assert main(["train", "--model", "userpkg.nets:build", "--epochs", "1", "--train-size",
                 "64", "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    predictor = cn.load(out / "last.npz")
    assert predictor.config["model"] == "userpkg.nets:build"
    assert predictor.model[0].weight.shape == (4, 1, 3, 3)


@pytest.mark.parametrize(
    ("spec", "words"),
    [("{file}:missing", "defines no function 'missing'"),
     ("{dir}/absent.py:build", "no such file"),
     ("no_such_package_xyz.nets:build", "no module named 'no_such_package_xyz'")],
)  # fmt: skip
def test_a_builder_that_cannot_be_loaded_is_a_clear_error(run, tmp_path, capsys, spec, words):
    source, _ = run
    spec = spec.format(file=source, dir=tmp_path)
    capsys.readouterr()
    assert main(["train", "--model", spec, "--epochs", "1", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert words in err.lower() and "Traceback" not in err
    assert not (tmp_path / "r" / "last.npz").exists()

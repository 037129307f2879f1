"""``cn.load`` and ``cnnumpy predict``: a trained convnet classifying image files and arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import cnnumpy as cn
from cnnumpy.checkpoint import load_checkpoint
from cnnumpy.cli import main
from cnnumpy.data import digits
from cnnumpy.models import three_layer_convnet
from cnnumpy.solver import Solver


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("predict") / "run"
    argv = ["train", "--train-size", "300", "--epochs", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    return out / "best.npz"


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory) -> Path:
    """A dark 7 drawn on white paper, as a photo of a handwritten digit would be."""
    path = tmp_path_factory.mktemp("images") / "seven.png"
    img = Image.new("L", (60, 80), 255)
    ImageDraw.Draw(img).line([(10, 12), (50, 12), (25, 70)], fill=20, width=7)
    img.save(path)
    return path


def _ranked_lines(text: str) -> list[tuple[str, float]]:
    return [(line.split()[0], float(line.split()[1])) for line in text.splitlines()
            if line.startswith("  ")]  # fmt: skip


def test_predict_prints_the_top_classes_with_probabilities(checkpoint, digit_png, capsys):
    capsys.readouterr()
    assert main(["predict", str(checkpoint), str(digit_png), "--top", "4"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == str(digit_png)
    ranked = _ranked_lines(out)
    assert len(ranked) == 4
    probs = [p for _, p in ranked]
    assert all(0 <= p <= 1 for p in probs) and probs == sorted(probs, reverse=True)
    assert sum(probs) <= 1 + 4 * 0.5e-4  # each printed to 4 decimals
    assert {c for c, _ in ranked} <= {str(d) for d in range(10)}


def test_predict_json_is_one_strict_object_per_file(checkpoint, digit_png, capsys):
    capsys.readouterr()
    assert main(["predict", str(checkpoint), str(digit_png), str(digit_png), "--json",
                 "--top", "10"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for line in lines:
        record = json.loads(line, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
        assert record["file"] == str(digit_png)
        probs = [t["probability"] for t in record["top"]]
        assert len(probs) == 10 and abs(sum(probs) - 1) < 1e-9
        assert record["prediction"] == record["top"][0]["class"]


def test_load_predicts_the_argmax_of_the_models_own_outputs(checkpoint):
    predictor = cn.load(checkpoint)
    meta = load_checkpoint(checkpoint)
    kwargs = meta["extra"]["config"]["model_kwargs"]
    assert predictor.input_shape == (1, 8, 8)
    assert predictor.classes == tuple(str(d) for d in range(10))
    images = digits().test[0][:50]
    # the expected values by hand: the same weights in a fresh model, the pixels normalised
    model = three_layer_convnet(rng=np.random.default_rng(1), **kwargs)
    load_checkpoint(checkpoint, model)
    model.eval()
    mean, std = meta["normalization"]["mean"][0], meta["normalization"]["std"][0]
    scores = model(((images.astype(np.float64) - mean) / std).astype(np.float32))
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    expected_probs = exp / exp.sum(axis=1, keepdims=True)

    classes, probs = predictor.predict(images)
    np.testing.assert_array_equal(classes, scores.argmax(axis=1))
    np.testing.assert_allclose(probs, expected_probs, rtol=1e-4, atol=1e-6)
    one_class, _ = predictor.predict(images[0, 0])  # one (H, W) image
    assert one_class.tolist() == [scores[0].argmax()]
    top, top_probs = predictor.top(images, 3)
    np.testing.assert_array_equal(top[:, 0], scores.argmax(axis=1))
    assert top.shape == top_probs.shape == (50, 3)
    assert np.all(np.diff(top_probs, axis=1) <= 0)


def test_a_python_checkpoint_loads_when_it_records_its_config(tmp_path):
    data = cn.data.normalize(digits())
    kwargs = {"in_channels": 1, "input_size": 8, "num_classes": 10, "num_filters": 2,
              "hidden_dim": 5}  # fmt: skip
    config = {"model": "convnet", "model_kwargs": kwargs, "dataset": "digits"}
    for name, cfg in (("with", config), ("without", None)):
        model = three_layer_convnet(rng=np.random.default_rng(0), **kwargs)
        Solver(model, cn.nn.CrossEntropyLoss(), cn.optim.Adam(model.parameters()),
               (data.train[0][:64], data.train[1][:64]), None, epochs=1, progress=False,
               verbose=False, checkpoint_dir=tmp_path / name, config=cfg,
               normalization=data.normalization.to_dict()).train()  # fmt: skip
    predictor = cn.load(tmp_path / "with" / "last.npz")
    assert predictor.predict(digits().test[0][:3])[1].shape == (3, 10)
    with pytest.raises(ValueError, match=r"does not record which model.*extra=\{'config'"):
        cn.load(tmp_path / "without" / "last.npz")


@pytest.mark.parametrize("kind", ["text", "truncated png"])
def test_a_file_that_is_no_image_is_a_clear_error(checkpoint, digit_png, tmp_path, capsys, kind):
    bad = tmp_path / ("notes.txt" if kind == "text" else "cut.png")
    if kind == "text":
        bad.write_text("a seven, I promise\n")
    else:
        raw = digit_png.read_bytes()
        bad.write_bytes(raw[: len(raw) // 2])
    capsys.readouterr()
    assert main(["predict", str(checkpoint), str(digit_png), str(bad)]) == 1
    captured = capsys.readouterr()
    assert str(bad) in captured.err and "Traceback" not in captured.err
    assert captured.out == ""  # nothing printed before the error

"""``cnnumpy visualize``: the five PNGs of a tiny trained run, and the numbers behind them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnumpy import nn
from cnnumpy.cli import main
from cnnumpy.cli.visualize import load_trained, model_outputs, pick_conv
from cnnumpy.data import Normalization
from cnnumpy.inspect import (
    class_probabilities,
    confusion_matrix,
    first_conv,
    most_confident_errors,
    predicts_argmin,
    record_feature_maps,
)
from cnnumpy.models import build_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ("filters", "feature_maps", "confusion", "misclassified", "learning_curves")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A 2-epoch convnet run on the built-in digits (seconds)."""
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--no-progress", "--epochs", "2", "--out", str(out)]) == 0
    return out


def test_visualize_writes_five_pngs(run_dir, tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["visualize", str(run_dir / "best.npz"), "--out", str(out), "--index", "3"]) == 0
    printed = capsys.readouterr().out
    for name in FIGURES:
        path = out / f"{name}.png"
        assert path.is_file(), name
        assert path.read_bytes()[:8] == PNG_MAGIC, name
        assert str(path) in printed


def test_visualize_refuses_a_bad_index_before_writing(run_dir, capsys):
    assert main(["visualize", str(run_dir / "best.npz"), "--index", "100000"]) == 1
    assert "--index 100000 is outside the 270 test images" in capsys.readouterr().err
    assert not (run_dir / "inside").exists()


@pytest.mark.parametrize("name", ["learning_curves.png", "history.json"])
def test_visualize_refuses_a_file_that_is_no_checkpoint_in_one_line(
    run_dir, tmp_path, capsys, name
):
    out = tmp_path / "figs"
    assert main(["visualize", str(run_dir / name), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and f"{run_dir / name} is not a cnnumpy checkpoint (it is a" in lines[0]
    assert captured.out == "" and not out.exists()


def test_confusion_of_the_run_counts_the_split(run_dir):
    model, loss, meta, data = load_trained(run_dir / "best.npz")
    images, labels = data.test
    x = Normalization.from_dict(meta["normalization"])(images)
    predicted = loss.predict(model_outputs(model, x, 100))
    matrix = confusion_matrix(labels, predicted, len(data.classes))
    assert matrix.shape == (10, 10)
    assert matrix.sum() == len(labels)
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(labels, minlength=10))
    assert np.trace(matrix) == np.sum(predicted == labels)


def test_confusion_matrix_hand_example():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 0, 2]
    expected = [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, 3), expected)
    assert confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="predictions"):
        confusion_matrix([0, 1], [0], 3)


def test_feature_maps_in_forward_order_with_shapes():
    model = build_model("convnet", rng=np.random.default_rng(0), in_channels=1, input_size=8,
                        num_classes=10)  # fmt: skip
    model.train()
    image = np.random.default_rng(1).standard_normal((1, 8, 8)).astype(np.float32)
    records = record_feature_maps(model, image)
    assert [(r.name, r.kind, r.maps.shape) for r in records] == [
        ("0", "Conv2d", (32, 8, 8)),
        ("2", "MaxPool2d", (32, 4, 4)),
    ]
    assert model.training  # the mode is restored, and the hooks removed
    assert all(not m._forward_hooks for m in model.modules())
    np.testing.assert_allclose(records[0].maps, model[0](image[None])[0])
    assert first_conv(model)[0] == "0"


def test_probabilities_and_most_confident_errors():
    scores = np.array([[2.0, 0.0], [0.0, 3.0], [0.0, 1.0], [5.0, 0.0]])
    probs = class_probabilities(scores)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert probs[3, 0] > probs[0, 0] > 0.5
    # penalties (lower wins): the softmax of their negation
    np.testing.assert_allclose(class_probabilities(scores, lowest_wins=True),
                               class_probabilities(-scores))  # fmt: skip
    y = np.array([0, 0, 0, 1])  # samples 1, 2 and 3 are wrong; 3 the most confidently
    assert most_confident_errors(probs, y, 2).tolist() == [3, 1]
    assert most_confident_errors(probs, y, 10).tolist() == [3, 1, 2]
    assert predicts_argmin(nn.MAPLoss()) and not predicts_argmin(nn.CrossEntropyLoss())


def test_learning_curves_come_from_the_whole_run(run_dir):
    """best.npz stops at the best epoch; the curves read the same run's last.npz."""
    from cnnumpy.checkpoint import load_checkpoint
    from cnnumpy.cli.visualize import _whole_history

    best = load_checkpoint(run_dir / "best.npz")
    last = load_checkpoint(run_dir / "last.npz")
    assert _whole_history(run_dir / "best.npz", best) == last["history"]
    assert len(last["history"]["val_acc"]) == 2
    assert _whole_history(run_dir / "last.npz", last) == last["history"]


def test_visualize_layer_picks_a_convolution_by_its_dotted_name(run_dir, tmp_path, capsys):
    model = load_trained(str(run_dir / "best.npz"), None, True)[0]
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    out = tmp_path / "figs"
    assert main(["visualize", str(run_dir / "best.npz"), "--out", str(out),
                 "--layer", names[-1]]) == 0  # fmt: skip
    assert (out / "filters.png").is_file()
    capsys.readouterr()
    assert main(["visualize", str(run_dir / "best.npz"), "--out", str(out),
                 "--layer", "no.such.layer"]) == 1  # fmt: skip
    error = capsys.readouterr().err
    assert "no.such.layer" in error
    assert all(name in error for name in names), error


def test_pick_conv_names_every_convolution():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU())
    )
    assert pick_conv(model, None)[0] == "0"
    name, layer, position, count = pick_conv(model, "2.0")
    assert (name, layer.weight.data.shape, position, count) == ("2.0", (4, 2, 3, 3), 2, 2)
    with pytest.raises(ValueError, match=r"0, 2\.0"):
        pick_conv(model, "1")

"""``cnnumpy experiment``: every experiment at its quick sizes on 500 MNIST images, the exact
analytic numbers, and the command line."""

import json

import numpy as np
import pytest

from cnnumpy.cli import main
from cnnumpy.data import Dataset, normalize
from cnnumpy.experiments import EXPERIMENTS, dilation, dropout, inception
from cnnumpy.models.resnet import cifar_resnet

NAMES = {"activations", "init", "dropout", "batchnorm", "depth", "inception-1x1", "dilation"}


@pytest.fixture(scope="module")
def mnist_tiny(mnist_small) -> Dataset:
    """The 500 fixture images as a normalised Dataset: 300 train, 100 val, 100 test."""
    images, labels = mnist_small
    raw = np.round(images * 255).astype(np.uint8)
    parts = {"train": slice(0, 300), "val": slice(300, 400), "test": slice(400, 500)}
    data = Dataset("mnist", **{k: (raw[s], labels[s]) for k, s in parts.items()},
                   classes=tuple(str(d) for d in range(10)))  # fmt: skip
    return normalize(data)


def quick(name, data, out, **overrides):
    spec = EXPERIMENTS[name]
    return spec.run(data if spec.needs_data else None, out, seed=0, **{**spec.quick, **overrides})


def check_files(numbers, name, out):
    """The JSON on disk is what was returned; the PNG is a real, small PNG."""
    js, png = out / f"{name}.json", out / f"{name}.png"
    assert numbers["files"] == {"json": str(js), "png": str(png)}
    assert json.loads(js.read_text()) == numbers
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < len(data) < 300_000


def test_registry_has_the_seven_experiments():
    assert set(EXPERIMENTS) == NAMES
    assert all(spec.description for spec in EXPERIMENTS.values())


# -- analytic numbers --------------------------------------------------------------------------
def test_inception_counts_from_first_principles():
    g = inception.costs(size=28, c_in=192, reduce=16, c_out=32, k=5)
    assert (g["direct_weights"], g["direct_mult_adds"]) == (153_600, 120_422_400)
    assert (g["reduced_weights"], g["reduced_mult_adds"]) == (15_872, 12_443_648)
    s = inception.costs(size=28, c_in=256, reduce=64, c_out=128, k=5)
    assert (s["direct_weights"], s["reduced_kxk_weights"]) == (819_200, 204_800)
    assert (s["reduce_1x1_weights"], s["reduced_weights"]) == (16_384, 221_184)
    assert s["direct_mult_adds"] == 28 * 28 * 819_200


def test_inception_counts_match_the_summary_of_real_layers():
    for cfg in inception.CONFIGS.values():
        expected = inception.costs(**cfg)
        measured = inception.measured_costs(**cfg)
        assert measured == {k: expected[k] for k in measured}


def test_dilation_measured_receptive_field_equals_analytic(tmp_path):
    numbers = quick("dilation", None, tmp_path, layers=5)
    check_files(numbers, "dilation", tmp_path)
    c = numbers["configs"]
    assert c["plain (d=1)"]["measured"] == [3, 5, 7, 9, 11]
    assert c["dilated (d=1,2,4,...)"]["measured"] == [3, 7, 15, 31, 63]
    assert c["constant d=2"]["measured"] == [5, 9, 13, 17, 21]
    assert numbers["all_equal"] and all(r["analytic"] == r["measured"] for r in c.values())
    assert c["plain (d=1)"]["density"] == [1.0] * 5
    assert c["dilated (d=1,2,4,...)"]["density"] == [1.0] * 5
    # one dilated 3x3 sees 9 of the 25 pixels of its 5x5 field; stacking never fills the holes
    assert c["constant d=2"]["density"][0] == pytest.approx(9 / 25)
    assert max(c["constant d=2"]["density"]) < 0.5


def test_dilation_measure_sees_the_field_of_one_layer():
    grad = dilation.input_gradient([3], size=15)
    assert dilation.measure(grad) == (7, pytest.approx(9 / 49))
    assert np.count_nonzero(grad) == 9 and grad[7, 7] == 1.0


# -- experiments at quick sizes ------------------------------------------------------------------
def test_activations(mnist_tiny, tmp_path):
    numbers = quick("activations", mnist_tiny, tmp_path)
    check_files(numbers, "activations", tmp_path)
    depth = numbers["config"]["depth"]
    for init in ("xavier", "msra"):
        grads = numbers["grad_norms"][init]
        assert set(grads) == {"sigmoid", "tanh", "relu", "leaky_relu", "prelu"}
        assert all(len(g) == depth and min(g) > 0 for g in grads.values())
        # sigmoid's derivative is at most 1/4: its first layer gets a far smaller share
        ratios = numbers["first_over_last"][init]
        assert ratios["sigmoid"] < ratios["relu"] / 10
        for hist in numbers["training"][init].values():
            assert len(hist["val_acc"]) == len(hist["loss_per_epoch"]) == 1
            assert 0 <= hist["test_acc"] <= 1


def test_init_variances_follow_he_et_al(mnist_tiny, tmp_path):
    numbers = quick("init", mnist_tiny, tmp_path)
    check_files(numbers, "init", tmp_path)
    depth = numbers["config"]["depth"]
    var, pred = numbers["variance"], numbers["predicted"]
    assert all(len(var[k]) == len(pred[k]) == depth for k in ("xavier", "msra", "gaussian"))
    assert all(var[k][0] == pred[k][0] for k in var)
    last_over_first = numbers["last_over_first"]
    assert 0.1 < last_over_first["msra"] < 10  # kept
    assert 2.0**-depth < last_over_first["xavier"] < 0.2  # roughly halved per layer
    assert last_over_first["gaussian"] < 1e-12  # collapses
    # width 32: the gaussian loses a factor 32 * 1e-4 / 2 per layer, as predicted
    assert abs(np.log10(var["gaussian"][-1] / pred["gaussian"][-1])) < 1


def test_dropout_inverted_and_classic_agree(mnist_tiny, tmp_path):
    numbers = quick("dropout", mnist_tiny, tmp_path)
    check_files(numbers, "dropout", tmp_path)
    assert set(numbers["arms"]) == {"none", "inverted", "classic"}
    for hist in numbers["arms"].values():
        assert len(hist["train_acc"]) == 2 and 0 <= hist["test_acc"] <= 1
    eq = numbers["equivalence"]
    assert eq["eval_predictions_equal"] is True
    assert eq["eval_max_abs_diff"] <= 1e-5 * max(1.0, eq["max_abs_score"])
    assert eq["train_mode_max_abs_diff"] <= 1e-5 * max(1.0, eq["max_abs_score"])
    assert 0 <= eq["monte_carlo"]["agreement"] <= 1


def test_dropout_twin_is_not_the_same_weights_unscaled(mnist_tiny):
    """Without the (1 - p) rescaling the inverted net's scores differ: the twin is needed."""
    classic = dropout.build(mnist_tiny, (16,), 0.5, inverted=False, seed=1)
    twin = dropout.inverted_twin(classic, mnist_tiny, (16,), 0.5)
    same = dropout.set_inverted(dropout.build(mnist_tiny, (16,), 0.5, inverted=True, seed=1),
                                True)  # fmt: skip
    x = mnist_tiny.test[0][:20]
    np.testing.assert_allclose(dropout.scores(classic, x, False), dropout.scores(twin, x, False),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    assert not np.allclose(dropout.scores(classic, x, False), dropout.scores(same, x, False))


def test_batchnorm_runs_every_arm(mnist_tiny, tmp_path):
    numbers = quick("batchnorm", mnist_tiny, tmp_path)
    check_files(numbers, "batchnorm", tmp_path)
    for arm in ("plain", "bn"):
        assert set(numbers["runs"][arm]) == {"0.01", "1.0"}
        for hist in numbers["runs"][arm].values():
            assert isinstance(hist["diverged"], bool)
            assert len(hist["val_acc"]) == (len(hist["val_acc"]) if hist["diverged"] else 2)


def test_depth_runs_plain_and_residual(mnist_tiny, tmp_path):
    numbers = quick("depth", mnist_tiny, tmp_path)
    check_files(numbers, "depth", tmp_path)
    runs = numbers["runs"]
    assert set(runs) == {"plain8", "plain14", "resnet8", "resnet14"}
    for d in (8, 14):  # option-A shortcuts have no parameters: the twins differ only in them
        assert runs[f"plain{d}"]["parameters"] == runs[f"resnet{d}"]["parameters"]
    assert all(len(r["train_acc"]) == 1 and np.isfinite(r["loss"]).all() for r in runs.values())
    assert set(numbers["final_train_error"]) == set(runs)
    assert isinstance(numbers["plain_degrades"], bool)


def test_depth_arms_differ_only_by_the_shortcuts(rng):
    x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    plain = cifar_resnet(8, 1, 10, 8, widths=(2, 2, 4), plain=True, rng=np.random.default_rng(0))
    res = cifar_resnet(8, 1, 10, 8, widths=(2, 2, 4), plain=False, rng=np.random.default_rng(0))
    assert [p.shape for p in plain.parameters()] == [p.shape for p in res.parameters()]
    assert not np.allclose(plain(x), res(x))


def test_inception_quick_trains_both_variants(mnist_tiny, tmp_path):
    numbers = quick("inception-1x1", mnist_tiny, tmp_path, check_summary=False)
    check_files(numbers, "inception-1x1", tmp_path)
    t = numbers["trained"]
    assert t["reduced"]["parameters"] < t["direct"]["parameters"]
    assert t["reduced"]["mult_adds"] < t["direct"]["mult_adds"]
    # 5x5 stage of the small net: 32*16*25 + 16 weights and biases vs 32*8 + 8 + 8*16*25 + 16
    assert t["direct"]["parameters"] - t["reduced"]["parameters"] == 12_816 - 3_480


# -- command line --------------------------------------------------------------------------------
def test_cli_lists_the_experiments(capsys):
    assert main(["experiment", "--list"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert listed == NAMES


def test_cli_runs_a_quick_experiment_on_a_data_set(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default --out is relative: runs/experiments/NAME
    assert main(["experiment", "dropout", "--quick", "--dataset", "digits"]) == 0
    out = tmp_path / "runs" / "experiments" / "dropout"
    assert f"figure:  {out.relative_to(tmp_path) / 'dropout.png'}" in capsys.readouterr().out
    numbers = json.loads((out / "dropout.json").read_text())
    assert numbers["config"]["dataset"] == "digits" and numbers["config"]["n_train"] == 200
    assert (out / "dropout.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_unknown_experiment_is_a_clear_error(capsys):
    assert main(["experiment", "nosuch"]) == 1
    assert "unknown experiment 'nosuch'" in capsys.readouterr().err

"""``cnnumpy experiment``: each experiment's finding asserted on seed 0 at sizes that run in
seconds, against values worked out here by hand (formulas written out below, never taken from
the code under test); where a claim needs more training than a test can afford, the mechanism
it rests on. Also: figures that leave the user's matplotlib backend alone, and the command
line."""

import inspect
import json
import math
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

from cnnumpy import nn
from cnnumpy.cli import main
from cnnumpy.cli.experiment import format_seconds
from cnnumpy.data import Dataset, load_dataset, normalize
from cnnumpy.experiments import EXPERIMENTS, batchnorm, dropout, inception

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
NAMES = {"activations", "init", "dropout", "batchnorm", "depth", "inception-1x1", "dilation"}
LN10 = math.log(10)  # cross-entropy of equal scores for 10 classes: a net that learnt nothing


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    """MNIST normalised by its 55,000 training images; experiments draw small subsets."""
    return normalize(load_dataset("mnist", SHARED_MNIST))


@pytest.fixture(scope="module")
def digits() -> Dataset:
    """The built-in 8x8 digits: 12 times cheaper per image than MNIST."""
    return normalize(load_dataset("digits", None))


def run(name: str, data, out: Path, **sizes) -> dict:
    """Experiment ``name`` on seed 0 at its quick sizes updated by ``sizes``; its files are
    checked: the JSON on disk is what was returned, the PNG a real, small PNG."""
    spec = EXPERIMENTS[name]
    numbers = spec.run(data, out, seed=0, smoke_test=True, **{**spec.quick, **sizes})
    js, png = out / f"{name}.json", out / f"{name}.png"
    assert numbers["files"] == {"json": str(js), "png": str(png)}
    assert json.loads(js.read_text()) == numbers
    image = png.read_bytes()
    assert image[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < len(image) < 300_000
    return numbers


def test_registry_has_the_seven_experiments_and_their_quick_sizes_fit():
    assert set(EXPERIMENTS) == NAMES
    for spec in EXPERIMENTS.values():
        assert spec.description and callable(spec.headline)
        inspect.signature(spec.run).bind(None, "out", seed=0, smoke_test=True, **spec.quick)


# -- inception-1x1 ----------------------------------------------------------------------------
def test_inception_counts_follow_the_formula():
    # a stride-1 same k x k conv on an h x h map: k*k*c_in*c_out weights, one multiply-add per
    # weight per output pixel; the reduction adds a 1x1 conv c_in -> r before a k x k r -> c_out
    for (h, c_in, r, c_out, k), direct, reduced in [
        ((28, 192, 16, 32, 5), (153_600, 120_422_400), (15_872, 12_443_648)),
        ((28, 256, 64, 128, 5), (819_200, 642_252_800), (221_184, 173_408_256)),
    ]:
        assert direct == (k * k * c_in * c_out, h * h * k * k * c_in * c_out)
        assert reduced[0] == c_in * r + k * k * r * c_out
        assert reduced[1] == h * h * (c_in * r + k * k * r * c_out)
        got = inception.costs(size=h, c_in=c_in, reduce=r, c_out=c_out, k=k)
        assert (got["direct_weights"], got["direct_mult_adds"]) == direct
        assert (got["reduced_weights"], got["reduced_mult_adds"]) == reduced
        layers = inception.measured_costs(size=h, c_in=c_in, reduce=r, c_out=c_out, k=k)
        assert (layers["direct_weights"], layers["direct_mult_adds"]) == direct
        assert (layers["reduced_weights"], layers["reduced_mult_adds"]) == reduced


def test_inception_small_nets_have_the_counted_cost_and_both_learn(digits, tmp_path):
    numbers = run("inception-1x1", digits, tmp_path, n_train=1000, n_val=270, n_test=270,
                  epochs=3)  # fmt: skip
    t = numbers["trained"]
    # 8x8 digits: conv3x3 1->32 (+bias), pool to 4x4, [1x1 32->8], 5x5 -> 16, pool to 2x2, linear
    stem, head = 9 * 32 + 32, 16 * 2 * 2 * 10 + 10
    assert t["direct"]["parameters"] == stem + 25 * 32 * 16 + 16 + head == 13_786
    assert t["reduced"]["parameters"] == stem + 32 * 8 + 8 + 25 * 8 * 16 + 16 + head == 4_450
    stem_ma, head_ma = 8 * 8 * 32 * 9, 16 * 2 * 2 * 10
    assert t["direct"]["mult_adds"] == stem_ma + 4 * 4 * 16 * 25 * 32 + head_ma
    assert t["reduced"]["mult_adds"] == stem_ma + 4 * 4 * (8 * 32 + 16 * 25 * 8) + head_ma
    # at this scale the reduced net learns more slowly (see docs/experiments/index.md), but
    # both learn: chance is 10%, and after 3 epochs both are far above it
    assert t["direct"]["test_acc"] > 0.5 and t["reduced"]["test_acc"] > 0.5


# -- dilation ---------------------------------------------------------------------------------
def torch_receptive_field(dilations: list[int], size: int) -> tuple[int, float]:
    """Width of the input region whose gradient w.r.t. the centre output is non-zero, and the
    share of that square that is non-zero, measured with PyTorch (all-ones 3x3 weights)."""
    x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    y = x
    for d in dilations:
        y = torch.nn.functional.conv2d(y, torch.ones(1, 1, 3, 3, dtype=torch.float64),
                                       padding=d, dilation=d)  # fmt: skip
    y[0, 0, size // 2, size // 2].backward()
    seen = x.grad[0, 0].numpy() != 0
    rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
    box = seen[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return int(cols[-1] - cols[0] + 1), float(box.mean())


def test_dilation_receptive_fields_are_the_hand_counts(tmp_path):
    numbers = run("dilation", None, tmp_path, layers=5)
    c = numbers["configs"]
    ls = range(1, 6)
    # each 3x3 layer with dilation d widens the field by 2d
    assert c["plain (d=1)"]["measured"] == [2 * n + 1 for n in ls]
    assert c["dilated (d=1,2,4,...)"]["measured"] == [2 ** (n + 1) - 1 for n in ls]
    assert c["constant d=2"]["measured"] == [4 * n + 1 for n in ls]
    assert all(r["analytic"] == r["measured"] for r in c.values())
    assert c["plain (d=1)"]["density"] == [1.0] * 5
    assert c["dilated (d=1,2,4,...)"]["density"] == [1.0] * 5
    # dilation 2 only reaches even offsets: 2n+1 of the 4n+1 rows and columns
    assert c["constant d=2"]["density"] == pytest.approx([(2 * n + 1) ** 2 / (4 * n + 1) ** 2
                                                          for n in ls])  # fmt: skip
    for name, r in c.items():
        for n in ls:
            field = torch_receptive_field(r["dilations"][:n], numbers["config"]["input_size"])
            assert field == (r["measured"][n - 1], pytest.approx(r["density"][n - 1])), name


# -- activations ------------------------------------------------------------------------------
def test_activations_sigmoid_gradients_vanish_towards_the_input(mnist, tmp_path):
    numbers = run("activations", mnist, tmp_path)
    depth = numbers["config"]["depth"]
    for init in ("xavier", "msra"):
        g = numbers["grad_norms"][init]
        assert all(len(v) == depth and min(v) > 0 for v in g.values())
        # layers 2..depth-1 all have width x width weights, so their norms compare directly
        # (layer 1 reads 784 pixels, the last one writes 10 scores)
        hidden = {name: np.asarray(v[1 : depth - 1]) for name, v in g.items()}
        # sigmoid' <= 1/4 and these weights keep a vector's norm within a factor ~2: each
        # layer back towards the input at least halves the gradient
        assert np.all(np.diff(hidden["sigmoid"]) > 0), hidden["sigmoid"]
        assert hidden["sigmoid"][0] / hidden["sigmoid"][-1] < 0.5 ** (depth - 3)
        # tanh (slope 1 at 0) and the rectifiers pass it on at about the same size
        for name in ("tanh", "relu", "leaky_relu", "prelu"):
            assert 0.25 < hidden[name][0] / hidden[name][-1] < 4, (init, name, hidden[name])
        for hist in numbers["training"][init].values():
            assert len(hist["val_acc"]) == len(hist["loss_per_epoch"]) == 1


# -- init -------------------------------------------------------------------------------------
def test_init_variances_follow_he_et_al(mnist, tmp_path):
    numbers = run("init", mnist, tmp_path)
    depth, width = numbers["config"]["depth"], numbers["config"]["width"]
    ratio = numbers["last_over_first"]
    # Var[y_l] = n Var(w) / 2 * Var[y_(l-1)] over depth - 1 layers of fan-in n = width
    expected = {
        "msra": (width * (2 / width) / 2) ** (depth - 1),  # 1: kept
        "xavier": (width * (1 / width) / 2) ** (depth - 1),  # halved per layer
        "gaussian": (width * 0.01**2 / 2) ** (depth - 1),  # 0.0016 per layer: gone
    }
    for init, value in expected.items():  # random layers compound: a factor 10 either way
        assert value / 10 < ratio[init] < value * 10, (init, ratio[init], value)
    assert ratio["gaussian"] < 1e-15 < ratio["xavier"] < 0.05 < ratio["msra"]
    # with no signal left at the output only the last bias learns: one class for every image
    assert numbers["training"]["gaussian"]["distinct_predictions"] == 1
    assert numbers["training"]["msra"]["distinct_predictions"] > 1


# -- dropout ----------------------------------------------------------------------------------
@pytest.mark.parametrize("inverted", [True, False])
def test_dropout_train_mode_mean_is_the_test_time_output(inverted):
    """Averaged over masks, a dropout layer in training mode gives what it gives at test
    time: ``x`` for inverted dropout (kept units scaled by 1/(1-p)), ``(1-p) x`` for classic."""
    p, n = 0.5, 20_000
    row = np.random.default_rng(0).uniform(1.0, 2.0, size=6)
    layer = nn.Dropout(p, inverted=inverted, rng=np.random.default_rng(1))
    sampled = layer(np.tile(row, (n, 1)))  # every row its own mask
    layer.eval()
    test_time = layer(row[None])[0]
    np.testing.assert_allclose(test_time, row if inverted else (1 - p) * row, rtol=1e-6)
    # per unit: the mean of n draws of (kept ? scale x : 0), standard deviation scale x / 2
    scale = 1 / (1 - p) if inverted else 1.0
    standard_error = scale * row / 2 / np.sqrt(n)
    assert np.all(np.abs(sampled.mean(axis=0) - test_time) < 5 * standard_error)


def test_dropout_classic_equals_its_inverted_twin_by_hand(mnist):
    """The classic net's test-time scores, computed here from its weights, are those of the
    library's classic net and of its inverted twin; without the twin's (1-p) the same weights
    give other scores."""
    p, hidden = 0.5, (16, 12)
    classic = dropout.build(mnist, hidden, p, inverted=False, seed=1)
    x = mnist.test[0][:20]
    w = [(m.weight.data.astype(np.float64), m.bias.data) for m in classic.modules()
         if isinstance(m, nn.Linear)]  # fmt: skip
    h = x.reshape(len(x), -1).astype(np.float64)
    for weight, bias in w[:-1]:
        h = np.maximum(h @ weight.T + bias, 0) * (1 - p)  # classic: scale at test time
    expected = h @ w[-1][0].T + w[-1][1]
    twin = dropout.inverted_twin(classic, mnist, hidden, p)
    unscaled = dropout.set_inverted(dropout.build(mnist, hidden, p, inverted=False, seed=1), True)
    for model in (classic, twin):
        np.testing.assert_allclose(dropout.scores(model, x, False), expected, rtol=1e-5,
                                   atol=1e-6)  # fmt: skip
    assert not np.allclose(dropout.scores(unscaled, x, False), expected, rtol=0.1)


def test_dropout_keeps_the_net_from_memorising(mnist, tmp_path):
    numbers = run("dropout", mnist, tmp_path, hidden=(128, 128), n_train=500, n_val=500,
                  n_test=1000, epochs=20, mc_samples=50)  # fmt: skip
    arms, eq = numbers["arms"], numbers["equivalence"]
    # the test-gap ordering is within the seed-to-seed spread at any size a test affords (see
    # docs/experiments/index.md); what dropout reliably does is keep the training loss up:
    # without it the net memorises its 500 images
    final = {name: arm["loss_per_epoch"][-1] for name, arm in arms.items()}
    assert final["none"] < 0.05
    assert final["inverted"] > 4 * final["none"] and final["classic"] > 4 * final["none"]
    # the classic net and its twin: scaling by 0.5 is exact in floating point
    assert eq["eval_max_abs_diff"] == 0.0 and eq["train_mode_max_abs_diff"] == 0.0
    assert eq["eval_predictions_equal"] and eq["max_abs_score"] > 1
    # the test-time scaling predicts what the average over 50 masks predicts
    assert eq["monte_carlo"]["agreement"] > 0.9


# -- batchnorm --------------------------------------------------------------------------------
def test_batchnorm_trains_where_the_plain_net_does_not(mnist, tmp_path):
    numbers = run("batchnorm", mnist, tmp_path)
    plain, bn = numbers["runs"]["plain"], numbers["runs"]["bn"]
    # PyTorch's default init shrinks the signal about sixfold per ReLU layer: at lr 0.01 the
    # plain net's loss stays at that of equal scores, the BN net's falls
    assert all(abs(loss - LN10) < 0.05 for loss in plain["0.01"]["loss_per_epoch"])
    assert bn["0.01"]["loss_per_epoch"][-1] < LN10 - 0.15
    # at lr 1.0 the plain net learns nothing (its loss jumps about, or blows up); BN learns
    assert plain["1.0"]["diverged"] or plain["1.0"]["loss_per_epoch"][-1] > LN10 - 0.1
    assert not bn["1.0"]["diverged"] and bn["1.0"]["loss_per_epoch"][-1] < LN10 - 0.7


def test_smoke_test_figures_say_so(mnist, tmp_path):
    numbers = run("batchnorm", mnist, tmp_path, lrs=(0.01,), epochs=1)
    assert batchnorm.figure(numbers).get_suptitle().startswith("SMOKE TEST")
    numbers["config"]["smoke_test"] = False
    assert "SMOKE" not in batchnorm.figure(numbers).get_suptitle()


# -- depth ------------------------------------------------------------------------------------
def cifar_parameters(c_in: int, widths: tuple[int, int, int], blocks: int, classes: int) -> int:
    """Parameters of a CIFAR ResNet/plain net: bias-free 3x3 convs each followed by BN (weight
    and bias), ``blocks`` two-conv blocks per stage, a linear head; option-A shortcuts have
    none."""
    total, cin = 9 * c_in * widths[0] + 2 * widths[0], widths[0]
    for w in widths:
        for _ in range(blocks):
            total += 9 * cin * w + 2 * w + 9 * w * w + 2 * w
            cin = w
    return total + widths[-1] * classes + classes


def test_depth_plain_net_degrades_and_residual_does_not(digits, tmp_path):
    numbers = run("depth", digits, tmp_path, depths=(8, 26), widths=(4, 4, 8), n_train=640,
                  n_val=64, n_test=64, epochs=4, lr=0.05)  # fmt: skip
    runs, loss = numbers["runs"], numbers["final_loss"]
    for d in (8, 26):
        expected = cifar_parameters(1, (4, 4, 8), (d - 2) // 6, 10)
        assert runs[f"plain{d}"]["parameters"] == runs[f"resnet{d}"]["parameters"] == expected
    assert loss["plain26"] > loss["plain8"] + 0.5  # deeper plain: worse on its training set
    assert loss["resnet26"] < loss["resnet8"] + 0.3  # deeper residual: about as good
    assert loss["resnet26"] < loss["plain26"] - 0.5


# -- figures and the command line -------------------------------------------------------------
def test_an_experiment_leaves_the_matplotlib_backend_alone(tmp_path):
    before = matplotlib.get_backend()
    matplotlib.use("svg")  # a user's choice that is not Agg, so a switch would show
    try:
        run("dilation", None, tmp_path, layers=2)
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)


def test_format_seconds():
    assert format_seconds(0.0432) == "0.043 s"
    assert format_seconds(1.83) == "1.8 s"
    assert format_seconds(42.4) == "42 s"
    assert format_seconds(445.2) == "7 min 25 s"


def test_cli_lists_the_experiments(capsys):
    assert main(["experiment", "--list"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert listed == NAMES


def test_cli_runs_a_quick_experiment_and_prints_a_readable_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default --out is relative: runs/experiments/NAME
    assert main(["experiment", "dropout", "--quick", "--dataset", "digits"]) == 0
    out = tmp_path / "runs" / "experiments" / "dropout"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "dropout:" and "SMOKE TEST" in lines[1]
    arms = [line for line in lines if "dropout " in line and "gap" in line]
    assert len(arms) == 3 and len({line.index("train") for line in arms}) == 1  # aligned
    assert max(map(len, lines)) < 120
    took = next(line for line in lines if line.startswith("took "))
    assert took != "took 0.0 s" and float(took.split()[1]) > 0
    assert f"figure:  {out.relative_to(tmp_path) / 'dropout.png'}" in lines
    numbers = json.loads((out / "dropout.json").read_text())
    assert numbers["config"]["dataset"] == "digits" and numbers["config"]["n_train"] == 200
    assert numbers["config"]["smoke_test"] is True


def test_cli_unknown_experiment_is_a_clear_error(capsys):
    assert main(["experiment", "nosuch"]) == 1
    assert "unknown experiment 'nosuch'" in capsys.readouterr().err

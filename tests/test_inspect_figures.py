"""``cnnumpy.inspect.figures``: every figure is written as a PNG of the size asked for, with no
display, without pyplot, and without touching the user's matplotlib backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import matplotlib
import numpy as np
import pytest
from matplotlib.image import imread

from cnnumpy.inspect import (
    plot_confusion,
    plot_feature_maps,
    plot_filters,
    plot_image_grid,
    plot_learning_curves,
    plot_misclassified,
)
from cnnumpy.inspect.analysis import FeatureMaps

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def draw_all(out) -> list:
    """One of every figure, into the directory ``out``."""
    rng = np.random.default_rng(0)
    image = rng.standard_normal((1, 12, 12))
    records = [FeatureMaps("0", "Conv2d", rng.standard_normal((20, 12, 12))),
               FeatureMaps("1", "MaxPool2d", rng.standard_normal((4, 3, 3)))]  # fmt: skip
    history = {"loss": list(np.linspace(2, 0.1, 60)), "train_acc": [0.5, 0.8],
               "val_acc": [float("nan")] * 2}  # fmt: skip
    return [
        plot_learning_curves(history, out / "curves.png", title="t", best_epoch=2),
        plot_image_grid([("a", rng.uniform(size=(2, 3, 1, 8, 8)))], ["x", "y"], out / "g.png"),
        plot_filters(rng.standard_normal((6, 1, 5, 5)), out / "f1.png", "grey"),
        plot_filters(rng.standard_normal((6, 3, 3, 3)), out / "f3.png", "rgb"),
        plot_filters(rng.standard_normal((4, 5, 3, 3)), out / "f5.png", "grid"),
        plot_feature_maps(image, records, out / "maps.png", title="maps"),
        plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], out / "c.png"),
        plot_misclassified(
            rng.uniform(size=(3, 1, 8, 8)),
            np.array([0, 1, 0]),
            np.array([1, 0, 1]),
            np.array([0.9, 0.8, 0.6]),
            ["a", "b"],
            out / "m.png",
            ncols=2,
        ),  # fmt: skip
        plot_misclassified(np.zeros((0, 1, 8, 8)), [], [], [], ["a"], out / "none.png"),
    ]


def test_every_figure_is_a_png_and_the_backend_is_unchanged(tmp_path):
    before = matplotlib.get_backend()
    paths = draw_all(tmp_path)
    assert matplotlib.get_backend() == before
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC, path.name
    # 11 x 4 inches at 100 dpi
    assert imread(tmp_path / "curves.png").shape[:2] == (400, 1100)


def test_feature_maps_show_at_most_max_rows_layers(tmp_path):
    records = [FeatureMaps(str(i), "Conv2d", np.full((2, 4, 4), float(i))) for i in range(30)]
    few = plot_feature_maps(np.zeros((1, 4, 4)), records[:3], tmp_path / "few.png", max_rows=5)
    many = plot_feature_maps(np.zeros((1, 4, 4)), records, tmp_path / "many.png", max_rows=5)
    # One row per shown layer plus the input: 4 rows and 6 rows of 1.05 inches.
    height = {p.name: imread(p).shape[0] for p in (few, many)}
    assert height["many.png"] - height["few.png"] == pytest.approx(2 * 105, abs=1)


def test_image_grid_refuses_mismatched_panels(tmp_path):
    with pytest.raises(ValueError, match="no panels"):
        plot_image_grid([], ["x"], tmp_path / "a.png")
    with pytest.raises(ValueError, match="every panel needs"):
        plot_image_grid([("a", np.zeros((3, 2, 1, 4, 4)))], ["x"], tmp_path / "b.png")


SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import matplotlib
    before = matplotlib.get_backend(auto_select=False)
    sys.path.insert(0, {tests!r})
    from test_inspect_figures import draw_all
    paths = draw_all(Path({out!r}))
    print(json.dumps({{
        "before": before,
        "after": matplotlib.get_backend(auto_select=False),
        "pyplot": "matplotlib.pyplot" in sys.modules,
        "sizes": [p.stat().st_size for p in paths],
    }}))
    """
)


@pytest.mark.parametrize("backend", [None, "pdf"])
def test_drawing_needs_no_display_and_selects_no_backend(tmp_path, backend):
    """In a fresh process with no display: the backend the user set (pdf) or none at all stays
    as it was, and pyplot is never imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("MPLBACKEND", None)
    if backend:
        env["MPLBACKEND"] = backend
    tests = os.path.dirname(os.path.abspath(__file__))
    code = SCRIPT.format(tests=tests, out=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["before"] == result["after"] == backend
    assert not result["pyplot"]
    assert all(size > 1000 for size in result["sizes"])


@pytest.fixture
def saved(monkeypatch):
    """The figures the plot functions save, kept for a look at their layout."""
    from cnnumpy.inspect import _draw, figures

    kept = []

    def keep(fig, path, title=""):
        kept.append(fig)
        return _draw.save(fig, path, title)

    monkeypatch.setattr(figures, "save", keep)
    return kept


def inside_figure(fig, text) -> bool:
    box, frame = text.get_window_extent(fig._get_renderer()), fig.bbox
    return frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1


def test_titles_of_narrow_figures_stay_inside_and_above_the_axes(tmp_path, saved):
    from cnnumpy.inspect import plot_filters, plot_misclassified

    long = "lenet5_modern (epoch 2) on mnist test: the 2 most confident of 753 mistakes"
    images = np.random.default_rng(0).random((2, 1, 28, 28))
    plot_misclassified(images, np.array([1, 2]), np.array([2, 1]), np.array([0.9, 0.8]),
                       [str(i) for i in range(10)], tmp_path / "m.png", long)  # fmt: skip
    weight = np.random.default_rng(1).standard_normal((6, 1, 5, 5))
    plot_filters(weight, tmp_path / "f.png", "lenet5_modern: convolution 'features.0' (1 of 3)")
    tall = np.random.default_rng(2).standard_normal((64, 16, 5, 5))
    plot_filters(tall, tmp_path / "t.png", "lenet5: convolution 'c5' (2 of 2), weight 120x16x5x5")
    for fig in saved:
        title = fig._suptitle
        assert inside_figure(fig, title), title.get_text()
        renderer = fig._get_renderer()
        below = title.get_window_extent(renderer).y0
        assert all(ax.get_tightbbox(renderer).y1 <= below + 1 for ax in fig.axes), title
        labels = [ax.yaxis.label for ax in fig.axes] + [ax.xaxis.label for ax in fig.axes]
        assert all(inside_figure(fig, label) for label in labels if label.get_text())


def test_every_feature_map_is_framed_even_a_white_one(tmp_path, saved):
    from cnnumpy.inspect import plot_feature_maps
    from cnnumpy.inspect.analysis import FeatureMaps

    # 20 1x1 maps, one of them the row's maximum (drawn white, as the figure's background).
    maps = np.linspace(-1.0, 0.5, 20).reshape(20, 1, 1)
    maps[4] = 3.0
    record = FeatureMaps(name="c5", kind="Conv2d", maps=maps)
    plot_feature_maps(np.zeros((1, 8, 8)), [record], tmp_path / "fm.png", max_maps=16)
    picture = np.ma.getmaskarray(saved[0].axes[1].get_images()[0].get_array())
    # Masked (NaN) pixels are drawn in the frame colour: a frame all round...
    assert picture[0].all() and picture[-1].all() and picture[:, 0].all() and picture[:, -1].all()
    # ...and 16 separate tiles along the middle row.
    middle = ~picture[picture.shape[0] // 2]
    starts = np.flatnonzero(middle[1:] & ~middle[:-1])
    assert len(starts) == 16


def test_learning_curves_draw_the_validation_loss_at_each_epochs_end(tmp_path, saved):
    history = {"loss": [2.0, 1.5, 1.0, 0.8, 0.7, 0.6], "val_loss": [1.2, 0.9, 0.65],
               "train_acc": [0.5, 0.7, 0.8], "val_acc": [0.5, 0.6, 0.7]}  # fmt: skip
    plot_learning_curves(history, tmp_path / "c.png", best_epoch=3)
    lines = {line.get_label(): line for line in saved[0].axes[0].get_lines()}
    validation = lines["validation, per epoch"]
    assert list(validation.get_xdata()) == [2, 4, 6]  # 2 mini-batches an epoch
    assert list(validation.get_ydata()) == [1.2, 0.9, 0.65]

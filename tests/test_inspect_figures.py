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

"""A folder of image files (drawn here with Pillow) as a data set, and training on it."""

import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnnumpy.data import folder_spec, image_folder, load_dataset

CLASSES = ("circle", "cross", "square")  # sorted, as the labels must be
PER_CLASS = 12


def _draw(shape, k):
    """A 12x12 colour image of ``shape``, its position varying with ``k``."""
    img = Image.new("RGB", (12, 12), (255, 255, 255))
    draw, o = ImageDraw.Draw(img), k % 3
    if shape == "circle":
        draw.ellipse((1 + o, 1, 9 + o, 9), outline=(200, 0, 0), width=2)
    elif shape == "cross":
        draw.line((1 + o, 1, 9 + o, 10), fill=(0, 0, 200), width=2)
        draw.line((9 + o, 1, 1 + o, 10), fill=(0, 0, 200), width=2)
    else:
        draw.rectangle((2 + o, 2, 8 + o, 8), fill=(0, 150, 0))
    return img


def _tree(root, per_class=PER_CLASS):
    for shape in CLASSES:
        (root / shape).mkdir(parents=True)
        for k in range(per_class):
            _draw(shape, k).save(root / shape / f"{k:02d}.png")
    return root


@pytest.fixture
def one_tree(tmp_path):
    return _tree(tmp_path / "shapes")


def test_one_tree_is_split_by_class_and_deterministically(one_tree):
    data = image_folder(one_tree, size=12, channels=3)
    assert data.classes == CLASSES
    assert data.image_shape == (3, 12, 12) and data.train[0].dtype == np.uint8
    n = {p: len(getattr(data, p)[1]) for p in ("train", "val", "test")}
    np.testing.assert_array_equal(np.bincount(data.test[1]), [2, 2, 2])  # a fifth of 12 each
    assert n["val"] == 3  # a tenth of the 30 left
    assert n["train"] + n["val"] + n["test"] == 3 * PER_CLASS
    again = image_folder(one_tree, size=12, channels=3, n_val=0)
    np.testing.assert_array_equal(again.test[0], data.test[0])  # n_val never moves the test split
    grey = image_folder(one_tree, size=6, channels=1)
    assert grey.image_shape == (1, 6, 6)


def test_pixels_and_labels_match_the_files(one_tree):
    data = image_folder(one_tree, size=12, channels=3, n_val=0)
    # a filled green square (class 2) has pure (0, 150, 0) pixels; only squares do
    green = (data.train[0][:, 1] == 150).any(axis=(1, 2)) & (data.train[0][:, 0] == 0).any(
        axis=(1, 2)
    )
    np.testing.assert_array_equal(green, data.train[1] == 2)


def test_train_and_test_folders(tmp_path):
    _tree(tmp_path / "split" / "train")
    _tree(tmp_path / "split" / "test", per_class=4)
    data = image_folder(tmp_path / "split", size=12, channels=1, n_val=3)
    assert data.classes == CLASSES
    assert len(data.test[1]) == 12 and len(data.val[1]) == 3 and len(data.train[1]) == 33
    np.testing.assert_array_equal(np.bincount(data.test[1]), [4, 4, 4])


def test_corrupt_image_is_named_or_skipped_and_counted(one_tree, capsys):
    bad = one_tree / "cross" / "05.png"
    bad.write_bytes(bad.read_bytes()[:60])
    with pytest.raises(ValueError, match=r"cross/05\.png"):
        image_folder(one_tree, size=12, channels=3)
    data = image_folder(one_tree, size=12, channels=3, skip_bad=True)
    total = sum(len(getattr(data, p)[1]) for p in ("train", "val", "test"))
    assert total == 3 * PER_CLASS - 1
    assert "skipped 1 unreadable image" in capsys.readouterr().err


def test_memory_refusal_says_how_much(one_tree):
    with pytest.raises(MemoryError, match=r"36 images .* 0\.0 MiB"):
        image_folder(one_tree, size=12, channels=3, max_bytes=1000)  # needs 36*3*12*12 bytes
    image_folder(one_tree, size=12, channels=3, max_bytes=36 * 3 * 12 * 12)  # exactly enough


def test_load_dataset_reads_the_canonical_name(one_tree):
    name = folder_spec(one_tree, size=8, channels=1)
    assert name == f"folder:{one_tree.resolve()}?size=8&channels=1"
    data = load_dataset(name, n_val=2)
    assert data.image_shape == (1, 8, 8) and len(data.val[1]) == 2


def cnnumpy(*args, cwd, check=True):
    proc = subprocess.run([sys.executable, "-m", "cnnumpy", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_train_resume_and_eval_on_a_folder(one_tree, tmp_path):
    common = ["--no-progress", "--out", "run", "--batch-size", "8"]
    cnnumpy("train", "--dataset", f"folder:{one_tree}", "--image-size", "12", "--epochs", "1",
            *common, cwd=tmp_path)  # fmt: skip
    resumed = cnnumpy("train", "--resume", "--epochs", "2", *common, cwd=tmp_path).stdout
    assert "resumed after epoch 1" in resumed
    out = cnnumpy("eval", "run/best.npz", cwd=tmp_path).stdout
    assert re.search(r"on folder:\S*shapes\?size=12&channels=3 test: [\d.]+%", out), out
    for name in CLASSES:
        assert re.search(rf"^  {name}: [\d.]+% \(\d/2\)$", out, re.M), out


def test_folder_options_need_a_folder(tmp_path):
    proc = cnnumpy("train", "--image-size", "12", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "folder:PATH only" in proc.stderr

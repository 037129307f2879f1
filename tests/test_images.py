"""Decoding image files (written here with Pillow) and preparing a drawn digit as MNIST's were."""

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")

from cnnumpy.data.images import prepare_digit, read_image, to_model_input  # noqa: E402


def _colour_array(rng, h=10, w=14):
    """``uint8 (h, w, 3)`` with distinct channels, so a channel mix-up shows."""
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff", ".gif"])
def test_lossless_formats_round_trip_grey(tmp_path, rng, suffix):
    pixels = rng.integers(0, 256, size=(9, 13), dtype=np.uint8)
    path = tmp_path / f"grey{suffix}"
    Image.fromarray(pixels, mode="L").save(path)
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (1, 9, 13)
    np.testing.assert_array_equal(image[0], pixels)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff"])
def test_lossless_formats_round_trip_colour(tmp_path, rng, suffix):
    pixels = _colour_array(rng)
    path = tmp_path / f"colour{suffix}"
    Image.fromarray(pixels, mode="RGB").save(path)
    np.testing.assert_array_equal(read_image(path), pixels.transpose(2, 0, 1))


def test_jpeg_round_trips_within_compression_error(tmp_path):
    pixels = np.zeros((16, 16, 3), dtype=np.uint8)
    pixels[:, :8] = (200, 40, 90)  # flat blocks: JPEG keeps them close
    path = tmp_path / "photo.jpg"
    Image.fromarray(pixels).save(path, quality=95)
    image = read_image(path)
    assert image.shape == (3, 16, 16)
    error = np.abs(image.astype(int) - pixels.transpose(2, 0, 1))
    assert error[:, :, :6].max() <= 6 and error[:, :, 10:].max() <= 6  # away from the edge


def test_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("L", (6, 5), v) for v in (10, 200)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    image = read_image(path)
    assert image.shape == (1, 5, 6) and (image == 10).all()


def test_transparent_pixels_are_laid_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # transparent black ...
    rgba[0, 0] = (255, 0, 0, 255)  # ... but one opaque red pixel
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    image = read_image(path)
    assert tuple(image[:, 0, 0]) == (255, 0, 0)
    assert (image[:, 1:, :] == 255).all()


def test_text_file_is_a_clear_error_naming_it(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image at all\n")
    with pytest.raises(ValueError, match=r"notes\.png.*expected an image file"):
        read_image(path)


def test_truncated_png_is_a_clear_error_naming_it(tmp_path, rng):
    path = tmp_path / "cut.png"
    Image.fromarray(rng.integers(0, 256, size=(64, 64), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cut\.png.*truncated or corrupt"):
        read_image(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        read_image(tmp_path / "nothing.png")


def test_to_model_input_grey_colour_and_size():
    colour = np.zeros((3, 8, 6), dtype=np.uint8)
    colour[0] = 100  # pure red 100: luma 0.299 * 100 = 29.9
    grey = to_model_input(colour, channels=1, size=4)
    assert grey.shape == (1, 4, 4) and (grey == 30).all()
    back = to_model_input(np.full((1, 5, 5), 77, np.uint8), channels=3, size=5)
    assert back.shape == (3, 5, 5) and (back == 77).all()
    with pytest.raises(ValueError, match="channels must be 1"):
        to_model_input(colour, channels=2, size=4)


def _drawn_three(size=(120, 90), offset=(10, 8)):
    """A dark "3" drawn on white paper, off-centre: ``uint8 (1, H, W)``."""
    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    x, y = offset
    draw.arc((x, y, x + 40, y + 36), start=180, end=90, fill=20, width=6)
    draw.arc((x, y + 30, x + 44, y + 74), start=270, end=180, fill=20, width=6)
    return np.asarray(img)[None]


@pytest.mark.parametrize("offset", [(10, 8), (40, 30)])
def test_prepared_digit_is_bright_boxed_and_centred(offset):
    out = prepare_digit(_drawn_three(offset=offset))
    assert out.shape == (1, 28, 28) and out.dtype == np.uint8
    field = out[0].astype(np.float64)
    assert field.max() == 255 and field[0].max() == 0 and field[:, 0].max() == 0  # bright ink
    rows, cols = np.nonzero(field)
    assert rows.max() - rows.min() + 1 <= 20 and cols.max() - cols.min() + 1 <= 20
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 >= 19  # fills the box
    ys, xs = np.indices(field.shape)
    com = ((ys * field).sum() / field.sum(), (xs * field).sum() / field.sum())
    assert abs(com[0] - 13.5) <= 0.5 and abs(com[1] - 13.5) <= 0.5, com


def test_digit_already_bright_on_black_is_not_inverted():
    light_on_dark = 255 - _drawn_three()
    np.testing.assert_array_equal(prepare_digit(light_on_dark), prepare_digit(_drawn_three()))


def test_prepare_digit_scales_to_other_sizes():
    out = prepare_digit(_drawn_three(), size=56)
    rows, cols = np.nonzero(out[0])
    assert out.shape == (1, 56, 56)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 <= 40


def test_blank_image_is_refused():
    with pytest.raises(ValueError, match="blank"):
        prepare_digit(np.full((1, 10, 10), 255, np.uint8))

"""dlcore.datasets.images: loading photographs, patches, standardisation, reassembly. Oracles:
slices of the image itself, Pillow's own conversions, and the recorded sha256."""
import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dlcore.datasets import ChecksumError, DatasetNotFoundError, images


@settings(max_examples=40, deadline=None)
@given(height=st.integers(1, 30), width=st.integers(1, 30), patch=st.integers(1, 12),
       seed=st.integers(0, 2 ** 32 - 1))
def test_reassembling_an_unmodified_full_patch_set_returns_the_original_exactly(
        height, width, patch, seed):
    patch = min(patch, height, width)
    image = np.random.default_rng(seed).random((height, width), dtype=np.float32)
    patches = images.extract_patches(image, patch)
    np.testing.assert_array_equal(images.reassemble_patches(patches, image.shape, patch), image)


def test_all_patches_are_the_image_windows_in_raster_order_of_their_corners(random_state):
    image = random_state.random((9, 13), dtype=np.float32)
    patches = images.extract_patches(image, 4)
    rows, columns = images.patch_grid(image.shape, 4)
    assert patches.shape == (rows * columns, 16) == (6 * 10, 16)
    for index in (0, 7, 10, 59):
        y, x = divmod(index, columns)
        np.testing.assert_array_equal(patches[index], image[y:y + 4, x:x + 4].ravel())


def test_reassembly_averages_the_patches_that_cover_a_pixel():
    image = np.zeros((3, 3), np.float32)
    patches = images.extract_patches(image, 2)              # 4 patches of 2x2
    patches[0] = 1.0                                        # top-left patch says "1"
    rebuilt = images.reassemble_patches(patches, image.shape, 2)
    # pixel (0, 0) is covered by patch 0 only; (1, 1) by all four; (0, 1) by patches 0 and 1
    assert rebuilt[0, 0] == 1.0 and rebuilt[1, 1] == 0.25 and rebuilt[0, 1] == 0.5


def test_random_patches_are_windows_of_the_image_and_repeat_with_the_seed(random_state):
    image = random_state.random((12, 12), dtype=np.float32)
    windows = {tuple(p) for p in images.extract_patches(image, 5)}
    drawn = images.extract_patches(image, 5, n_patches=30, seed=4)
    assert drawn.shape == (30, 25) and all(tuple(p) in windows for p in drawn)
    np.testing.assert_array_equal(drawn, images.extract_patches(image, 5, n_patches=30, seed=4))
    assert not np.array_equal(drawn, images.extract_patches(image, 5, n_patches=30, seed=5))


@pytest.mark.parametrize("per_patch", [False, True], ids=["global", "per-patch"])
def test_standardised_patches_have_zero_mean_unit_variance_and_undo_exactly(per_patch,
                                                                            random_state):
    patches = random_state.random((50, 16), dtype=np.float32) * 0.3 + 0.2
    z, scale = images.standardize(patches, per_patch=per_patch)
    assert abs(float(z.mean())) < 1e-6 and float(z.std()) == pytest.approx(1.0, rel=1e-5)
    if per_patch:
        np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(scale.undo(z), patches, atol=1e-6)


def test_a_flat_image_standardises_without_dividing_by_zero():
    z, scale = images.standardize(np.full((4, 9), 0.5, np.float32))
    assert np.all(z == 0) and float(scale.std) == pytest.approx(images.MIN_STD)


def test_png_grey_levels_load_divided_by_255(tmp_path, random_state):
    pixels = random_state.integers(0, 256, (7, 5), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "grey.png")
    loaded = images.load_image(tmp_path / "grey.png")
    assert loaded.dtype == np.float32 and loaded.shape == (7, 5)
    np.testing.assert_array_equal(loaded, pixels.astype(np.float32) / 255)


def test_colour_jpeg_becomes_pillow_luma(tmp_path, random_state):
    rgb = random_state.integers(0, 256, (8, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "colour.jpg", quality=95)
    expected = np.asarray(Image.open(tmp_path / "colour.jpg").convert("L"), np.float32) / 255
    np.testing.assert_array_equal(images.load_image(tmp_path / "colour.jpg"), expected)


def test_a_missing_file_and_a_file_that_is_no_image_say_so(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no such image file"):
        images.load_image(tmp_path / "absent.png")
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ValueError, match="not an image"):
        images.load_image(tmp_path / "notes.png")


def _gradient_photograph(path, width, height):
    """A colour photograph of a horizontal gradient (JPEG or PNG by the suffix)."""
    row = np.linspace(0, 255, width).astype(np.uint8)
    grey = np.broadcast_to(row, (height, width))
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(path, quality=95)
    return path


def test_a_jpeg_past_pillows_bomb_limit_is_reduced_while_decoding(tmp_path, monkeypatch):
    """Pillow refuses to open more than 2 * MAX_IMAGE_PIXELS pixels (a 200-megapixel phone
    photograph): with the limit lowered to 1000, a 160 x 100 JPEG stands for one. With
    max_size it opens (in draft mode, at 1/4 of its size) and ends as downscale would make it
    from the whole image."""
    path = _gradient_photograph(tmp_path / "phone.jpg", 160, 100)
    whole = images.downscale(images.load_image(path), 40)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    reduced = images.load_image(path, max_size=40)
    assert reduced.shape == whole.shape == (25, 40) and reduced.dtype == np.float32
    np.testing.assert_allclose(reduced, whole, atol=0.02)
    assert images.image_size(path) == (160, 100)


def test_a_png_past_pillows_bomb_limit_is_refused_in_one_line(tmp_path, monkeypatch):
    path = _gradient_photograph(tmp_path / "scan.png", 160, 100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValueError) as caught:
        images.load_image(path, max_size=40)
    assert str(caught.value) == (f"{path} has more than 2,000 pixels, more than Pillow opens "
                                 f"safely; scale it down first, to at most 8192 pixels a side")


def test_an_image_of_more_pixels_than_dlcore_decodes_is_refused_before_decoding(
        tmp_path, monkeypatch):
    """MAX_DECODED_PIXELS (lowered to 1000 here) bounds what is decoded whole: a PNG cannot be
    reduced while decoding, and a JPEG only when max_size asks for it."""
    png = _gradient_photograph(tmp_path / "scan.png", 60, 40)
    jpeg = _gradient_photograph(tmp_path / "photo.jpg", 60, 40)
    monkeypatch.setattr(images, "MAX_DECODED_PIXELS", 1000, raising=False)
    with pytest.raises(ValueError, match=r"scan.png is 60 x 40 pixels, more than dlcore "
                                         r"decodes \(1,000, 8192 x 8192: PNG cannot be scaled "
                                         r"down while decoding, as JPEG can\)"):
        images.load_image(png, max_size=20)
    with pytest.raises(ValueError, match="give a max_size to scale it down while decoding"):
        images.load_image(jpeg)
    assert images.load_image(jpeg, max_size=20).shape == (13, 20)


@pytest.mark.parametrize("name", sorted(images.BUNDLED_IMAGES))
def test_bundled_photographs_match_their_recorded_sha256_and_are_175_square(name):
    path = images.bundled_image_path(name)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == images.BUNDLED_IMAGES[name]
    image = images.load_bundled_image(name)
    assert image.shape == (175, 175) and 0 <= image.min() and image.max() <= 1
    assert image.std() > 0.1                       # a photograph, not a flat field


def test_a_damaged_bundled_photograph_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "coffee.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(fake)
    monkeypatch.setattr(images, "bundled_image_path", lambda name: fake)
    with pytest.raises(ChecksumError, match="damaged"):
        images.load_bundled_image("coffee")


@pytest.mark.parametrize("call, message", [
    (lambda: images.extract_patches(np.zeros((5, 5)), 6), "larger than the image"),
    (lambda: images.extract_patches(np.zeros((5, 5, 3)), 2), "2-D"),
    (lambda: images.extract_patches(np.zeros((5, 5)), 2, n_patches=0), "n_patches"),
    (lambda: images.reassemble_patches(np.zeros((3, 4)), (5, 5), 2), "all 2 x 2 patches"),
    (lambda: images.bundled_image_path("dog"), "unknown bundled image"),
])
def test_bad_arguments_name_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()

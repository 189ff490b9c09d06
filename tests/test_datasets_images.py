"""dlcore.datasets.images: loading photographs, patches, standardisation, reassembly. Oracles:
slices of the image itself, Pillow's own conversions, and the recorded sha256."""
import hashlib
import os
import re

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


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX's")
def test_a_device_a_named_pipe_or_a_folder_is_no_image_not_a_missing_file(tmp_path):
    """`--train-image /dev/null` said "/dev/null: no such image file", which it is not: it
    exists. A named pipe is refused before it is opened (reading one waits for a writer)."""
    os.mkfifo(tmp_path / "pipe.png")
    for path, kind in [("/dev/null", "is not a regular file (a device or a named pipe)"),
                       (tmp_path / "pipe.png", "is not a regular file (a device or a named pipe)"),
                       (tmp_path, "is a folder, not an image file")]:
        with pytest.raises(ValueError, match=re.escape(f"{path} {kind}")):
            images.load_image(path)


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


# how each refusal of a photograph too large to decode ends
SCALE_IT_DOWN_FIRST = "scale it down first, to at most 8192 pixels a side"


def _refusal_with_a_lowered_limit(monkeypatch, limit, path, max_size):
    """The message of the ValueError that ``load_image(path, max_size=max_size)`` raises with
    the pixel limit ``limit`` (a module and the name of its limit) lowered to 1000."""
    monkeypatch.setattr(*limit, 1000)
    with pytest.raises(ValueError) as caught:
        images.load_image(path, max_size=max_size)
    return str(caught.value)


def test_a_png_past_pillows_bomb_limit_is_refused_in_one_line(tmp_path, monkeypatch):
    path = _gradient_photograph(tmp_path / "scan.png", 160, 100)
    assert _refusal_with_a_lowered_limit(monkeypatch, (Image, "MAX_IMAGE_PIXELS"), path, 40) == (
        f"{path} has more than 2,000 pixels, more than Pillow opens safely (its limit against "
        f"decompression bombs); {SCALE_IT_DOWN_FIRST}, or save it as a JPEG, which is reduced "
        f"while decoding")


def _photograph_in_mode(path, mode, width=60, height=40):
    """A diagonal gradient, saved as a PNG of Pillow's ``mode``."""
    y, x = np.mgrid[0:height, 0:width]
    levels = (x * 3 + y * 2) / (3 * width + 2 * height)
    if mode == "I;16":
        Image.fromarray((levels * 65535).astype(np.uint16)).save(path)
    else:
        grey = Image.fromarray((levels * 255).astype(np.uint8))
        (grey.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE) if mode == "P"
         else grey.convert(mode)).save(path)
    return path


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16"])
def test_an_image_past_what_is_decoded_whole_is_reduced_by_a_whole_factor_with_max_size(
        tmp_path, monkeypatch, mode):
    """MAX_DECODED_PIXELS (lowered to 1000 here: a 12000 x 9000 phone photograph stands past
    the real one) bounds what becomes float grey levels whole: with max_size, a 60 x 40 PNG of
    any mode is decoded in its own mode, reduced to 30 x 20 (Pillow's reduce: means of 2 x 2
    blocks), and ends as downscale makes it from the whole image, to within 0.02 (the 8-bit
    rounding of the reduction and its blocks, which straddle the scaled image's pixels; as
    with a JPEG's draft mode above)."""
    path = _photograph_in_mode(tmp_path / f"photo_{mode.replace(';', '')}.png", mode)
    whole = images.downscale(images.load_image(path), 20)
    monkeypatch.setattr(images, "MAX_DECODED_PIXELS", 1000)
    assert images.reduction_factor(60, 40, 20) == 3 and images.reduction_factor(60, 40, 50) == 2
    reduced = images.load_image(path, max_size=20)
    assert reduced.shape == whole.shape == (13, 20) and reduced.dtype == np.float32
    np.testing.assert_allclose(reduced, whole, atol=0.02)
    with pytest.raises(ValueError) as caught:
        images.load_image(path)
    assert str(caught.value) == (f"{path} is 60 x 40 pixels, more than dlcore decodes whole "
                                 f"(1,000, 8192 x 8192); give a max_size to scale it down "
                                 f"while decoding, or scale it down first, to at most 8192 "
                                 f"pixels a side")


def test_a_jpeg_past_what_is_reduced_even_in_draft_mode_is_refused_in_one_line(
        tmp_path, monkeypatch):
    """MAX_REDUCED_PIXELS (Pillow's limit, lowered to 1000 here) bounds what is decoded at
    all: a JPEG that draft mode reduces too little for it (to 1/2 for a max_size of 40) is
    refused, naming the limit and the fix."""
    path = _gradient_photograph(tmp_path / "phone.jpg", 160, 100)
    refusal = _refusal_with_a_lowered_limit(monkeypatch, (images, "MAX_REDUCED_PIXELS"), path, 60)
    assert refusal == (f"{path} is 160 x 100 pixels, more than dlcore decodes to scale down "
                       f"(1,000, Pillow's limit against decompression bombs, at 1/2 of its "
                       f"size); give a smaller max_size, or {SCALE_IT_DOWN_FIRST}")
    # at 1/8, 20 x 13 pixels are decoded, and scaled to the shape downscale gives the whole
    assert images.load_image(path, max_size=20).shape == (12, 20) == \
        images.downscale(np.zeros((100, 160), np.float32), 20).shape


def test_a_12000_by_9000_png_from_a_phone_is_scaled_down_to_max_size(tmp_path):
    """108 megapixels, past MAX_DECODED_PIXELS (64) and within Pillow's limit (179): a
    horizontal gradient, so each column of the result is the mean of its 12000 / 256 columns
    of the photograph (to within the 8-bit rounding of the reduction and the fraction of a
    column the two steps of area-averaging place apart)."""
    row = np.linspace(0, 255, 12000).astype(np.uint8)
    path = tmp_path / "phone.png"
    Image.fromarray(np.ascontiguousarray(np.broadcast_to(row, (9000, 12000)))).save(
        path, compress_level=1)
    assert 12000 * 9000 > images.MAX_DECODED_PIXELS
    scaled = images.load_image(path, max_size=256)
    assert scaled.shape == (192, 256)
    expected = row.astype(np.float64).reshape(256, -1).mean(axis=1) / 255 \
        if 12000 % 256 == 0 else np.array([row[round(j * 12000 / 256):
                                               round((j + 1) * 12000 / 256)].mean() / 255
                                           for j in range(256)])
    np.testing.assert_allclose(scaled, np.broadcast_to(expected, (192, 256)), atol=0.01)


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


def photograph_with_orientation(path, orientation, size=(30, 20), seed=0):
    """A ``size`` (width, height) grey image saved with EXIF orientation tag ``orientation``,
    as a phone stores a portrait photograph (landscape pixels, orientation 6)."""
    pixels = np.random.default_rng(seed).integers(0, 256, size[::-1], dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels, mode="L").save(path, exif=exif)
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_an_exif_orientation_is_applied_as_pillows_exif_transpose_does(tmp_path, orientation,
                                                                       suffix):
    from PIL import ImageOps
    path = photograph_with_orientation(tmp_path / f"photo{suffix}", orientation)
    with Image.open(path) as stored:
        upright = ImageOps.exif_transpose(stored).convert("L")
    expected = np.asarray(upright, dtype=np.float32) / 255
    np.testing.assert_array_equal(images.load_image(path), expected)
    assert images.image_size(path) == upright.size


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_a_turned_photograph_scaled_to_max_size_is_the_upright_one_scaled(tmp_path,
                                                                          orientation):
    from PIL import ImageOps
    path = photograph_with_orientation(tmp_path / "phone.png", orientation, size=(90, 60))
    with Image.open(path) as stored:
        upright = np.asarray(ImageOps.exif_transpose(stored).convert("L"),
                             dtype=np.float32) / 255
    loaded = images.load_image(path, max_size=30)
    np.testing.assert_allclose(loaded, images.downscale(upright, 30), atol=1e-6)
    assert loaded.shape == images.scaled_shape(upright.shape, 30)

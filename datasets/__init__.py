"""Data for dlcore: IDX files, MNIST and Fashion-MNIST, the bundled 5,000 digits.

Import it as ``dlcore.datasets`` (the folder is ``datasets/`` at the top of the repository,
mapped under the dlcore name so that it never shadows another ``datasets`` package).

Loading
-------
``load_mnist_5k()``
    5,000 real MNIST training digits (500 per class) shipped inside the package: works
    offline, right after ``pip install``. Sorted by class; there is no test split, use
    ``holdout_split``.
``load_mnist(split)``, ``load_fashion_mnist(split)``
    The full data sets, ``split="train"`` (60,000) or ``"test"`` (10,000), as
    ``(images (n, 28, 28) uint8, labels (n,) uint8)``.
``load_dataset(name, split)``
    The command line's entry: ``"mnist-5k"``, ``"mnist"``, ``"fashion-mnist"`` or a
    directory of IDX files.
``lazy=True`` (every loader), ``open_idx(path)``, ``open_hdf5(path, dataset)``
    The images as :class:`dlcore.lazy_rows.LazyRows`: left on disk (an IDX file
    memory-mapped, an HDF5 dataset) and read a mini-batch at a time by training; each rank
    of a data-parallel run reads only its rows (docs/distributed.md).

Where the files are looked for
------------------------------
The two files of a split (``train-images-idx3-ubyte.gz`` and ``train-labels-idx1-ubyte.gz``,
or ``t10k-...`` for the test split; the names without ``.gz`` are accepted too) are taken
from the first of these directories that holds both:

1. ``path=``, when given;
2. ``$DLCORE_DATA`` (MNIST only) and ``$DLCORE_DATA/mnist`` or ``$DLCORE_DATA/fashion-mnist``;
3. the cache, ``$XDG_CACHE_HOME/dlcore/<name>``, by default ``~/.cache/dlcore/<name>``;
4. for Fashion-MNIST, Debian's ``/usr/share/datasets/fashion-mnist``
   (``apt-get install dataset-fashion-mnist``).

If none does and ``download=True``, the four files are downloaded into ``path`` (when given),
else ``$DLCORE_DATA/<name>`` (when set), else the cache, from the mirrors given, or those in
``$DLCORE_MNIST_MIRROR`` / ``$DLCORE_FASHION_MNIST_MIRROR``, or the official ones. Each file
is verified against its pinned sha256 before it is kept, and a failed download leaves
nothing behind. Offline, one :class:`DatasetNotFoundError` lists the missing files, the
directories searched and where to put the files.

Preparing
---------
``parse_classes``, ``select_classes``, ``to_unit_interval``, ``binarize``, ``holdout_split``.

Class names
-----------
``class_names(name)``: what the labels mean (Fashion-MNIST's "T-shirt/top", "Trouser", ...;
MNIST's digits), from ``CLASS_NAMES``; ``class_noun(name)``: "digit" or "class".

Photographs (:mod:`dlcore.datasets.images`)
-------------------------------------------
``load_image``, ``load_bundled_image`` (two CC0 photographs), ``extract_patches``,
``standardize``, ``reassemble_patches``: the patches of homework Task 2.
"""
from dlcore.datasets.download import download_files, sha256_of_file
from dlcore.datasets.errors import ChecksumError, DatasetNotFoundError, DownloadError
from dlcore.datasets.idx import open_idx, read_idx, write_idx
from dlcore.datasets.images import (
    extract_patches,
    load_bundled_image,
    load_image,
    reassemble_patches,
    standardize,
)
from dlcore.datasets.mnist import (
    CLASS_NAMES,
    DATASET_NAMES,
    FASHION_MNIST_FILES,
    MNIST_5K_SHA256,
    MNIST_FILES,
    SPLITS,
    class_names,
    class_noun,
    dataset_key,
    load_dataset,
    load_fashion_mnist,
    load_idx_directory,
    load_mnist,
    load_mnist_5k,
)
from dlcore.datasets.preprocess import (
    binarize,
    holdout_split,
    parse_classes,
    select_classes,
    to_unit_interval,
)
from dlcore.lazy_rows import open_hdf5

__all__ = [
    "CLASS_NAMES",
    "ChecksumError",
    "DATASET_NAMES",
    "DatasetNotFoundError",
    "DownloadError",
    "FASHION_MNIST_FILES",
    "MNIST_5K_SHA256",
    "MNIST_FILES",
    "SPLITS",
    "binarize",
    "class_names",
    "class_noun",
    "dataset_key",
    "download_files",
    "extract_patches",
    "holdout_split",
    "load_bundled_image",
    "load_dataset",
    "load_fashion_mnist",
    "load_idx_directory",
    "load_image",
    "load_mnist",
    "load_mnist_5k",
    "open_hdf5",
    "open_idx",
    "parse_classes",
    "read_idx",
    "reassemble_patches",
    "select_classes",
    "sha256_of_file",
    "standardize",
    "to_unit_interval",
    "write_idx",
]

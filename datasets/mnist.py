"""MNIST, Fashion-MNIST and the bundled 5,000 digits: find the IDX files, or fetch them.

Both data sets ship as the same four gzipped IDX files (``train-images-idx3-ubyte.gz``,
``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``).
A loader looks for the two files of the requested split (gzipped or not) in each directory
of the search order (see :func:`search_directories`), and takes the first directory that
holds both. When none does and ``download=True``, it fetches the four files into the first
writable place of that order and verifies each against the sha256 pinned below; offline it
raises one :class:`DatasetNotFoundError` that says what is missing, where it looked, and
where to put the files.

Provenance of the pinned digests (see also ``datasets/README.md``):

* MNIST: the sha256 of the four archives as published on the official mirrors, as pinned by
  TensorFlow Datasets (with their sizes) and many other projects; the MD5s are torchvision's.
  No MNIST file was available to check them here.
* Fashion-MNIST: the sha256 of the archives on the official S3 mirror. Debian's package
  ``dataset-fashion-mnist`` holds the same deflate streams with a rewritten gzip header (no
  file name, a 2020 mtime), so its ``.gz`` files hash differently; restoring the original
  header (name, mtime 2017-08-31) reproduces these digests and the official MD5s byte for
  byte, which ``tests/test_datasets_loaders.py`` checks when the package is installed.
"""
import difflib
import hashlib
import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcore.datasets.download import DEFAULT_TIMEOUT_S, download_files
from dlcore.datasets.errors import ChecksumError, DatasetNotFoundError, DownloadError
from dlcore.datasets.idx import decode_idx, open_idx, read_idx

SPLITS = ("train", "test")
SPLIT_PREFIXES = {"train": "train", "test": "t10k"}
DATASET_NAMES = ("mnist-5k", "mnist", "fashion-mnist")
DATA_VARIABLE = "DLCORE_DATA"
#: What the labels 0-9 of each named data set mean (Fashion-MNIST: Xiao, Rasul & Vollgraf 2017).
CLASS_NAMES = {
    "mnist-5k": tuple(str(digit) for digit in range(10)),
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
}
#: The data sets whose classes are handwritten digits (the word tables and figures use).
DIGIT_DATASETS = ("mnist-5k", "mnist")


@dataclass(frozen=True)
class OfficialFile:
    """One published file: its name, size and digests."""

    name: str
    size: int             # bytes of the .gz archive
    sha256: str           # of the .gz archive, as published
    md5: str              # of the .gz archive (the digest most projects quote)
    content_sha256: str   # of the decompressed IDX bytes (independent of the gzip header)


MNIST_FILES = {f.name: f for f in (
    OfficialFile("train-images-idx3-ubyte.gz", 9_912_422,
                 "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                 "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                 "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    OfficialFile("train-labels-idx1-ubyte.gz", 28_881,
                 "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                 "d53e105ee54ea40749a09fcbcd1e9432",
                 "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    OfficialFile("t10k-images-idx3-ubyte.gz", 1_648_877,
                 "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                 "9fb629c4189551a2d022fa330f9573f3",
                 "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    OfficialFile("t10k-labels-idx1-ubyte.gz", 4_542,
                 "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                 "ec29112dd5afa0611ce80d1b7f02629c",
                 "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
)}

FASHION_MNIST_FILES = {f.name: f for f in (
    OfficialFile("train-images-idx3-ubyte.gz", 26_421_880,
                 "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                 "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                 "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    OfficialFile("train-labels-idx1-ubyte.gz", 29_515,
                 "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                 "25c81989df183df01b3e8a0aad5dffbe",
                 "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    OfficialFile("t10k-images-idx3-ubyte.gz", 4_422_102,
                 "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                 "bef4ecab320f06d8554ea6380940ec79",
                 "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    OfficialFile("t10k-labels-idx1-ubyte.gz", 5_148,
                 "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                 "bb300cfdad3c16e7a12a480ee83cd310",
                 "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
)}

# The bundled digits (datasets/mnist-5k, made by make_mnist_5k.py; see datasets/README.md).
MNIST_5K_DIRECTORY = "mnist-5k"
MNIST_5K_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "66f9ac540966baaec46dc847ef780170f83ff188761931c0115f3f60497c4797",
    "train-labels-idx1-ubyte.gz":
        "0bd1c3ebe2126da16fe15ba87422f75d0a4b37066970e0e29aa16577a2857965",
}


@dataclass(frozen=True)
class DatasetSpec:
    """Where a downloadable data set lives and how to describe it."""

    title: str                    # "MNIST", for messages
    subfolder: str                # under $DLCORE_DATA and the cache
    files: dict                   # name -> OfficialFile
    mirrors: tuple                # default base URLs, tried in order
    mirror_variable: str          # environment variable that replaces the default mirrors
    search_data_root: bool        # also look in $DLCORE_DATA itself (MNIST only: the file
                                  # names are the same, so only one data set can live there)
    system_directories: tuple = ()
    install_hint: str = ""


MNIST = DatasetSpec(
    title="MNIST", subfolder="mnist", files=MNIST_FILES,
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "http://yann.lecun.com/exdb/mnist/"),
    mirror_variable="DLCORE_MNIST_MIRROR", search_data_root=True)

FASHION_MNIST = DatasetSpec(
    title="Fashion-MNIST", subfolder="fashion-mnist", files=FASHION_MNIST_FILES,
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    mirror_variable="DLCORE_FASHION_MNIST_MIRROR", search_data_root=False,
    system_directories=("/usr/share/datasets/fashion-mnist",),
    install_hint="on Debian or Ubuntu, `sudo apt-get install dataset-fashion-mnist` puts "
                 "them in /usr/share/datasets/fashion-mnist")


def check_split(split):
    """``split`` when it is 'train' or 'test', else a ValueError; a folder given there (Keras's
    ``mnist.load_data(path)`` takes the path first) is told to go to ``path=``."""
    if split not in SPLITS:
        message = f"split must be 'train' or 'test', got {split!r}"
        if isinstance(split, os.PathLike) or (
                isinstance(split, str) and (os.sep in split or os.path.exists(split))):
            folder = os.fspath(split)
            message += (f"; {folder!r} is a path: give it as path={folder!r} (the split "
                        f"comes first: split='train', path={folder!r})")
        raise ValueError(message)
    return split


def split_file_names(split):
    """The official (gzipped) image and label file names of a split."""
    prefix = SPLIT_PREFIXES[check_split(split)]
    return f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"


def find_file(directory, name):
    """``directory/name``, else the same name without ``.gz``, else None."""
    for candidate in (name, name.removesuffix(".gz")):
        path = Path(directory) / candidate
        if path.is_file():
            return path
    return None


def find_split_files(directory, split):
    """(images path, labels path) of ``split`` in ``directory``, or None if either lacks."""
    paths = [find_file(directory, name) for name in split_file_names(split)]
    return None if None in paths else tuple(paths)


def cache_directory(subfolder):
    """``$XDG_CACHE_HOME/dlcore/<subfolder>``, by default ``~/.cache/dlcore/<subfolder>``; a
    relative ``$XDG_CACHE_HOME`` is ignored, as the XDG specification asks (and as the kernel
    cache ignores it: a download's folder does not follow the folder a program starts in).

    Raises
    ------
    OSError
        Where the user has no home folder and ``$XDG_CACHE_HOME`` names none (a container
        started with ``--user <number>``): :class:`dlcore.backend.cache.NoHomeFolderError`.
    """
    from dlcore.backend.cache import home_folder
    cache_home = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache_home):
        cache_home = home_folder() / ".cache"
    return Path(cache_home) / "dlcore" / subfolder


def search_directories(spec, path=None):
    """The directories a loader searches, in order, each with why it is searched.

    1. ``path``, when given;
    2. ``$DLCORE_DATA`` (MNIST only) and ``$DLCORE_DATA/<subfolder>``, when set;
    3. the cache, ``$XDG_CACHE_HOME/dlcore/<subfolder>`` (default ``~/.cache/dlcore/...``);
    4. system directories (Fashion-MNIST: Debian's ``/usr/share/datasets/fashion-mnist``).

    Returns
    -------
    list of (pathlib.Path, str)
        Directory and a short description of its role, duplicates removed.
    """
    found = []
    if path is not None:
        found.append((Path(path).expanduser(), "path="))
    data_root = os.environ.get(DATA_VARIABLE)
    if data_root:
        if spec.search_data_root:
            found.append((home_expanded(Path(data_root)), f"${DATA_VARIABLE}"))
        found.append((home_expanded(Path(data_root)) / spec.subfolder,
                      f"${DATA_VARIABLE}/{spec.subfolder}"))
    try:
        found.append((cache_directory(spec.subfolder), "cache"))
    except OSError:   # no home folder: no cache to search, the system folders still are
        pass
    found.extend((Path(directory), "system") for directory in spec.system_directories)
    unique = {}
    for directory, role in found:
        unique.setdefault(directory, role)
    return list(unique.items())


def download_directory(spec, path=None):
    """Where downloads go: ``path``, else ``$DLCORE_DATA/<subfolder>``, else the cache."""
    if path is not None:
        return Path(path).expanduser()
    data_root = os.environ.get(DATA_VARIABLE)
    if data_root:
        return home_expanded(Path(data_root)) / spec.subfolder
    return cache_directory(spec.subfolder)


def resolve_mirrors(spec, mirrors=None):
    """``mirrors`` if given, else the environment variable's URLs (comma or space separated;
    they replace the defaults, so an air-gapped site never reaches out), else the defaults."""
    if mirrors is not None:
        return [mirrors] if isinstance(mirrors, str) else list(mirrors)
    configured = os.environ.get(spec.mirror_variable, "").replace(",", " ").split()
    return configured or list(spec.mirrors)


def read_split(images_path, labels_path, image_shape=None, lazy=False):
    """Read and cross-check an images file and a labels file.

    Returns
    -------
    images : (n, height, width) uint8, or with ``lazy`` the same as
        :class:`dlcore.lazy_rows.LazyRows` (:func:`dlcore.datasets.open_idx`: read a batch
        at a time)
    labels : (n,) uint8
    """
    images = open_idx(images_path) if lazy else read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected (n, height, width) uint8 images, got "
                         f"{images.shape} {images.dtype}")
    if image_shape is not None and images.shape[1:] != tuple(image_shape):
        raise ValueError(f"{images_path}: expected images of {image_shape[0]}x"
                         f"{image_shape[1]} pixels, got {images.shape[1]}x{images.shape[2]}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{labels_path}: expected (n,) uint8 labels, got "
                         f"{labels.shape} {labels.dtype}")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                         f"{len(labels)} labels")
    return images, labels


def missing_message(spec, split, searched, download_failure=None, target=None,
                    mirrors=()):
    """The text of the one error a loader raises when it cannot find a split."""
    images_name, labels_name = split_file_names(split)
    lines = [f"{spec.title} {split} split not found: {images_name} and {labels_name} (or the "
             "same names without .gz) are not together in any of:" if searched else
             f"{spec.title} {split} split not found: no folder to look in for {images_name} "
             f"and {labels_name} (no path=, no ${DATA_VARIABLE}, no home folder for the cache)"]
    lines += [f"  {directory}  ({role})" for directory, role in searched]
    if download_failure is not None:
        lines.append(f"Downloading failed: {download_failure}")
    else:
        lines.append("Downloading is off (download=False); with download=True they would "
                     f"be fetched from {', '.join(mirrors)}")
    files = f"the four files ({', '.join(spec.files)}, from {spec.mirrors[0]})"
    # no target: no home folder for the cache, so the two other ways
    lines.append((f"To fix: put {files} in {target}, or set ${DATA_VARIABLE} to a folder whose "
                  f"{spec.subfolder}/ subfolder holds them" if target is not None else
                  f"To fix: set ${DATA_VARIABLE} to a folder whose {spec.subfolder}/ subfolder "
                  f"holds {files} (or gets them)")
                 + ", or pass their folder as path= (on the command line: --dataset FOLDER).")
    if spec.install_hint:
        lines.append(f"Or: {spec.install_hint}.")
    return "\n".join(lines)


def load_official(spec, split="train", path=None, download=True, progress=True,
                  mirrors=None, checksums=None, timeout=DEFAULT_TIMEOUT_S, lazy=False):
    """Find (or download) and read one split of MNIST or Fashion-MNIST; see
    :func:`load_mnist` for the parameters."""
    check_split(split)
    searched = search_directories(spec, path)
    for directory, _ in searched:
        found = find_split_files(directory, split)
        if found is not None:
            return read_split(*found, image_shape=(28, 28), lazy=lazy)
    try:
        target = download_directory(spec, path)
    except OSError as error:   # no home folder, so no cache to download into
        raise DatasetNotFoundError(missing_message(
            spec, split, searched, f"nowhere to download to: {error}")) from error
    mirrors = resolve_mirrors(spec, mirrors)
    if not download:
        raise DatasetNotFoundError(missing_message(spec, split, searched, target=target,
                                                   mirrors=mirrors))
    if checksums is None:
        checksums = {name: official.sha256 for name, official in spec.files.items()}
    wanted = [name for name in split_file_names(split) if find_file(target, name) is None]
    # The other split too, so that a machine that was online once can work offline.
    wanted += [name for name in spec.files
               if name not in wanted and find_file(target, name) is None]
    try:
        download_files(wanted, target, mirrors, checksums, progress=progress, timeout=timeout)
    except DownloadError as error:
        raise DatasetNotFoundError(missing_message(spec, split, searched, error,
                                                   target=target)) from error
    except PermissionError as error:
        raise DatasetNotFoundError(missing_message(
            spec, split, searched, f"cannot write to {target}: {error}",
            target=target)) from error
    return read_split(*find_split_files(target, split), image_shape=(28, 28), lazy=lazy)


def load_mnist(split="train", path=None, download=True, progress=True, mirrors=None, *,
               checksums=None, lazy=False):
    """The MNIST handwritten digits (LeCun, Cortes & Burges): 60,000 training and 10,000
    test images of 28x28 pixels.

    Parameters
    ----------
    split : {"train", "test"}
        ``train-*`` (60,000) or ``t10k-*`` (10,000) files.
    path : str or os.PathLike, optional
        A directory searched first, and where downloads go when given.
    download : bool
        Fetch the four files when no searched directory holds the split.
    progress : bool
        Show a progress bar on stderr while downloading.
    mirrors : sequence of str, optional
        Base URLs to download from, in order; default ``$DLCORE_MNIST_MIRROR`` if set, else
        the official mirrors (``MNIST.mirrors``).
    checksums : mapping of str to str, optional
        ``{file name: sha256}`` replacing the pinned official digests (for a private mirror
        of other files, and for tests).
    lazy : bool
        The images as :class:`dlcore.lazy_rows.LazyRows`, read a mini-batch at a time
        (:func:`dlcore.datasets.open_idx`).

    Returns
    -------
    images : (n, 28, 28) uint8, 0 = background, 255 = ink
    labels : (n,) uint8, digits 0-9

    Raises
    ------
    DatasetNotFoundError
        Not found and not downloadable; the message lists the missing files, the
        directories searched, each mirror's failure and where to put the files.
    ChecksumError
        A mirror delivered a file with the wrong sha256 (it was not kept).
    ValueError
        A found file is not valid IDX, or images and labels do not match.
    """
    return load_official(MNIST, split, path, download, progress, mirrors, checksums,
                         lazy=lazy)


def load_fashion_mnist(split="train", path=None, download=True, progress=True, mirrors=None,
                       *, checksums=None, lazy=False):
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): Zalando's 28x28 article images in ten
    classes (0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt,
    7 sneaker, 8 bag, 9 ankle boot), 60,000 for training and 10,000 for testing.

    As :func:`load_mnist`, with subfolder ``fashion-mnist``, mirror variable
    ``$DLCORE_FASHION_MNIST_MIRROR``, and Debian's ``/usr/share/datasets/fashion-mnist``
    searched last. ``$DLCORE_DATA`` itself is not searched (the file names are MNIST's).
    """
    return load_official(FASHION_MNIST, split, path, download, progress, mirrors, checksums,
                         lazy=lazy)


def bundled_file(name, lazy=False):
    """The array of a bundled mnist-5k file, after checking its sha256 (with ``lazy``, its
    :class:`dlcore.lazy_rows.LazyRows`)."""
    resource = importlib.resources.files("dlcore.datasets") / MNIST_5K_DIRECTORY / name
    try:
        content = resource.read_bytes()
    except FileNotFoundError:
        raise DatasetNotFoundError(
            f"{resource}: the bundled mnist-5k file is missing from this installation "
            "(package data not installed?); reinstall dlcore") from None
    actual = hashlib.sha256(content).hexdigest()
    if actual != MNIST_5K_SHA256[name]:
        raise ChecksumError(
            f"{resource}: the bundled mnist-5k file is damaged: sha256 {actual}, expected "
            f"{MNIST_5K_SHA256[name]}; reinstall dlcore, or in a checkout rebuild it with "
            "`python -m dlcore.datasets.make_mnist_5k`")
    if lazy:
        with importlib.resources.as_file(resource) as path:
            return open_idx(path)
    return decode_idx(content, str(resource))


def load_mnist_5k(lazy=False):
    """The 5,000 MNIST training digits bundled with dlcore (500 per class), no download.

    They are sorted by class (all 0s, then all 1s, ...): shuffle before mini-batch
    training, and use :func:`holdout_split` for a test set (there is no test split).

    Returns
    -------
    images : (5000, 28, 28) uint8
    labels : (5000,) uint8

    With ``lazy``, the images are :class:`dlcore.lazy_rows.LazyRows` (read a batch at a
    time, :func:`dlcore.datasets.open_idx`).

    Raises
    ------
    ChecksumError
        If a bundled file does not have the sha256 recorded in ``datasets/README.md``.
    """
    images_name, labels_name = split_file_names("train")
    images, labels = bundled_file(images_name, lazy), bundled_file(labels_name)
    if images.shape != (5000, 28, 28) or labels.shape != (5000,):
        raise ValueError(f"bundled mnist-5k has shapes {images.shape} and {labels.shape}, "
                         "expected (5000, 28, 28) and (5000,)")
    return images, labels


def load_idx_directory(directory, split="train", lazy=False):
    """The images and labels of ``split`` from a directory holding MNIST-style IDX files
    (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``, ``t10k-...``).

    Returns
    -------
    images : (n, height, width) uint8
    labels : (n,) uint8
    """
    directory = home_expanded(directory)
    found = find_split_files(directory, split)
    if found is None:
        images_name, labels_name = split_file_names(split)
        raise DatasetNotFoundError(f"{directory}: no {split} split here: need {images_name} "
                                   f"and {labels_name} (or the same names without .gz)")
    return read_split(*found, lazy=lazy)


def home_expanded(path):
    """``path`` (text or a path object) with a leading ``~`` or ``~user`` expanded, as a
    shell expands it where it is not quoted, and as ``path=`` and the command line's
    ``--dataset`` expand it: ``load_dataset("~/idx")`` and ``DLCORE_DATA="~/data"`` (quoted
    in a shell profile) looked for a folder named ``~`` in the current one. Anything else
    stays as given (``./~`` names a folder called ``~``)."""
    if isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith("~"):
        expanded = os.path.expanduser(os.fspath(path))
        return expanded if isinstance(path, str) else Path(expanded)
    return path


def dataset_key(name):
    """The canonical name of a named data set (``"Fashion_MNIST"`` -> ``"fashion-mnist"``),
    or None for anything else (a folder of IDX files)."""
    if not isinstance(name, str):
        return None
    key = name.strip().lower().replace("_", "-")
    return key if key in DATASET_NAMES else None


def class_names(name, n_classes=10):
    """The names of classes 0 .. n_classes - 1 of a data set, for tables and figures:
    Fashion-MNIST's garment names, the digits "0" .. "9" of MNIST, and the label numbers
    themselves for a folder of IDX files (whose meaning dlcore cannot know).

    Returns
    -------
    list of n_classes str
    """
    known = CLASS_NAMES.get(dataset_key(name), ())
    return [known[label] if label < len(known) else str(label) for label in range(n_classes)]


def class_noun(name):
    """``"digit"`` for the handwritten-digit data sets, else ``"class"``."""
    return "digit" if dataset_key(name) in DIGIT_DATASETS else "class"


def load_dataset(name, split="train", path=None, download=True, progress=True,
                 mirrors=None, lazy=False):
    """Load a data set by the name the command line uses.

    Parameters
    ----------
    name : str or os.PathLike
        ``"mnist-5k"`` (bundled, train split only), ``"mnist"``, ``"fashion-mnist"``, or a
        directory holding IDX files in MNIST's naming (write ``./mnist`` for a directory
        that happens to be called like a data set; a leading ``~`` is the home folder).
    split : {"train", "test"}
    path, download, progress, mirrors
        Passed to :func:`load_mnist` / :func:`load_fashion_mnist`.
    lazy : bool
        Return the images as :class:`dlcore.lazy_rows.LazyRows`, read from the file a
        mini-batch at a time (what each rank of a data-parallel run does: it reads only
        its rows; docs/distributed.md), instead of an array in memory.

    Returns
    -------
    images : (n, height, width) uint8
    labels : (n,) uint8
    """
    check_split(split)
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else None
    if key == "mnist-5k":
        if split != "train":
            raise ValueError("mnist-5k has only a train split (5,000 digits); hold out a "
                             "test set with holdout_split(labels, n_per_class, seed)")
        return load_mnist_5k(lazy)
    if key == "mnist":
        return load_mnist(split, path, download, progress, mirrors, lazy=lazy)
    if key == "fashion-mnist":
        return load_fashion_mnist(split, path, download, progress, mirrors, lazy=lazy)
    name = home_expanded(name)
    if Path(name).is_dir():
        return load_idx_directory(name, split, lazy)
    if Path(name).is_file() and _is_model_file(name):
        # runs/x/model.h5 given for the data: its folder, advised below, holds no IDX files
        raise ValueError(f"{str(name)!r} is a model file, not a data set: a data set is one of "
                         f"{', '.join(DATASET_NAMES)}, or a folder holding IDX files (images "
                         f"and labels)")
    if Path(name).is_file():
        # one IDX file (train-images-idx3-ubyte.gz) names its folder, which holds its labels
        raise ValueError(f"{str(name)!r} is a file; a data set is read from the folder that "
                         f"holds its IDX files (images and labels): give that folder, "
                         f"{str(Path(name).parent)!r}, or one of {', '.join(DATASET_NAMES)}")
    if _names_a_path(name):
        # a folder's name (/data/mnist, ./idx, ~/idx): "unknown data set" sent the user
        # looking for a name to choose where the folder was mistyped or not made
        raise ValueError(f"the folder {str(name)!r} does not exist: give a folder holding "
                         f"IDX files (MNIST's names), or one of {', '.join(DATASET_NAMES)}")
    close = close_dataset_names(name)
    meant = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    raise ValueError(f"unknown data set {str(name)!r}{meant}: choose one of "
                     f"{', '.join(DATASET_NAMES)}, or a folder holding IDX files")


def close_dataset_names(name):
    """The names of :data:`DATASET_NAMES` close to ``name``, a misspelling of one (``mnsit``,
    ``fashion``), closest first: those about as close as the closest (``mnist5``: mnist-5k
    and mnist), as Click lists the options close to a misspelt one; empty when none is."""
    if not isinstance(name, str):
        return []
    typed = name.strip().lower().replace("_", "-")
    likeness = {known: difflib.SequenceMatcher(None, typed, known).ratio()
                for known in DATASET_NAMES}
    best = max(likeness.values())
    return sorted((known for known, ratio in likeness.items()
                   if ratio >= max(0.6, best - 0.1)), key=likeness.get, reverse=True)


#: How the model files dlcore writes and reads begin: HDF5 (.h5) and zip (Keras's .keras).
MODEL_FILE_SIGNATURES = (b"\x89HDF\r\n\x1a\n", b"PK\x03\x04")
MODEL_FILE_SUFFIXES = (".h5", ".hdf5", ".keras")


def _is_model_file(path):
    """Whether ``path``, a file, is a model file by its name or its first bytes (an IDX file
    begins with two zero bytes, or gzip's)."""
    if Path(path).suffix.lower() in MODEL_FILE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as stream:
            return stream.read(8).startswith(MODEL_FILE_SIGNATURES)
    except OSError:
        return False


def _names_a_path(name):
    """Whether ``name`` can only be a path: a path object, or text with a folder separator or
    that starts as relative and home paths do (``.``, ``~``); a data set's name has none."""
    if not isinstance(name, str):
        return True
    separators = (os.sep, os.altsep) if os.altsep else (os.sep,)
    return name.startswith((".", "~")) or any(sep in name for sep in ("/", *separators))

"""From uint8 images to what the models eat: class subsets, [0, 1] rows, binary data, splits.

Randomness (stochastic binarisation, hold-out splits) comes from :mod:`dlcore.backend.rng`,
a pure function of (seed, stream, step, index): the same seed gives the same samples on every
machine, and nothing here touches global random state.
"""
import re

import numpy as np

from dlcore.backend import rng
from dlcore.lazy_rows import LazyRows

CLASSES_FORMS = "a digit '3', a range '1-5', or a comma list of those like '0,2,4' or '1-3,7'"


def _classes_forms(noun):
    """The accepted forms of a class selection, naming each item a ``noun`` ('digit', 'class')."""
    return CLASSES_FORMS.replace("a digit", f"a {noun}", 1)
_CLASS_ITEM = re.compile(r"^(\d+)(?:\s*-\s*(\d+))?$")


def _class_error(text, problem, noun):
    return ValueError(f"classes {text!r}: {problem}; write {_classes_forms(noun)} "
                      f"({_plural(noun)} 0-9)")


def _plural(noun):
    """'digit' -> 'digits', 'class' -> 'classes'."""
    return noun + ("es" if noun.endswith("s") else "s")


def parse_classes(text, noun="digit"):
    """Parse the command line's class selection: ``"1-5"``, ``"0,2,4"``, ``"1-3,7"``, ``"3"``.

    Parameters
    ----------
    text : str
        Comma-separated items, each a digit 0-9 or a rising range ``a-b`` of them; spaces
        around items are ignored.
    noun : str, default "digit"
        What the error message calls an item: ``"class"`` for a data set whose classes are
        not digits (Fashion-MNIST's garments).

    Returns
    -------
    list of int
        The classes, sorted, without repeats: ``"1-3,7"`` gives ``[1, 2, 3, 7]``.

    Raises
    ------
    ValueError
        For empty text, a non-digit (``"a-b"``), a number above 9 (``"12"``), a falling
        range (``"5-1"``) or an empty item (``"1,,2"``); the message shows the text and the
        accepted forms.
    """
    if not isinstance(text, str):
        raise TypeError(f"classes must be text such as '1-5', got {type(text).__name__}")
    if not text.strip():
        raise _class_error(text, "empty", noun)
    classes = set()
    for item in text.split(","):
        match = _CLASS_ITEM.match(item.strip())
        if match is None:
            raise _class_error(text, f"cannot read {item.strip()!r}", noun)
        first = int(match.group(1))
        last = first if match.group(2) is None else int(match.group(2))
        if last > 9:
            raise _class_error(text, f"{last} is not a {noun} 0-9", noun)
        if last < first:
            raise _class_error(text, f"the range {first}-{last} runs backwards", noun)
        classes.update(range(first, last + 1))
    return sorted(classes)


def select_classes(images, labels, classes):
    """Keep only the samples whose label is in ``classes`` (labels are not renumbered).

    Parameters
    ----------
    images : (n, ...) array
    labels : (n,) integer array
    classes : iterable of int, or str
        The classes to keep; text is read by :func:`parse_classes`.

    Returns
    -------
    images : (m, ...) array, labels : (m,) array
        The selected samples in their original order.

    Raises
    ------
    ValueError
        If lengths differ, ``classes`` is empty, or a requested class has no sample.
    """
    labels = np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"select_classes: {len(images)} images but {len(labels)} labels")
    wanted = parse_classes(classes) if isinstance(classes, str) else sorted(set(classes))
    if not wanted:
        raise ValueError("select_classes: classes is empty; name at least one class")
    absent = [c for c in wanted if not np.any(labels == c)]
    if absent:
        raise ValueError(f"select_classes: no sample of class {absent} (labels present: "
                         f"{np.unique(labels).tolist()})")
    keep = np.isin(labels, wanted)
    return images[keep], labels[keep]


def to_unit_interval(images):
    """Flatten images to rows of float32 values in [0, 1].

    Parameters
    ----------
    images : (n, height, width) or (n, channels, height, width) or (n, d) array
        uint8 pixels (divided by 255), bool pixels (binarised images: 0 and 1), or floats
        already in [0, 1] (kept).
        Or :class:`dlcore.lazy_rows.LazyRows`: its converted view is returned, read and
        converted a batch at a time (floats checked as they are read).

    Returns
    -------
    (n, h*w) float32
        One sample per row, as the RBMs and dense layers expect.

    Raises
    ------
    ValueError
        For fewer than 2 dimensions, no image (or no pixel), or floats outside [0, 1] or NaN.
    TypeError
        For integer types other than uint8 (their scale is unknown).
    """
    if isinstance(images, LazyRows):   # converted as each batch is read
        return images.unit_interval()
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"to_unit_interval: expected (n, ...) images, got shape "
                         f"{images.shape}")
    if images.size == 0:   # NumPy's reshape said "cannot reshape array of size 0"
        raise ValueError(f"to_unit_interval: the images are empty (shape {images.shape}): "
                         f"give at least one image of at least one pixel")
    rows = images.reshape(len(images), -1)
    if images.dtype == np.uint8:
        return rows.astype(np.float32) / np.float32(255.0)
    if images.dtype == np.bool_:
        return rows.astype(np.float32)
    if not np.issubdtype(images.dtype, np.floating):
        raise TypeError(f"to_unit_interval: expected uint8 or bool pixels or "
                        f"floats in [0, 1], got dtype {images.dtype}")
    missing = int(np.count_nonzero(np.isnan(rows)))
    if missing:   # NaN compares false: the range below read [0.0027, 0.9972] as outside
        raise ValueError(f"to_unit_interval: the images contain {missing} NaN values: clean "
                         f"or impute them first, e.g. np.nan_to_num(images, nan=0.0)")
    if not (np.all(rows >= 0) and np.all(rows <= 1)):
        raise ValueError(f"to_unit_interval: float values must lie in [0, 1], got "
                         f"[{np.nanmin(rows)}, {np.nanmax(rows)}]")
    return rows.astype(np.float32)


def binarize(X, threshold=0.5, mode="threshold", seed=None, step=0):
    """Turn intensities into 0/1 data, deterministically or by sampling.

    ``mode="threshold"``:  x_ij -> 1 if x_ij > threshold else 0.
    ``mode="stochastic"``: x_ij -> 1 if x_ij > u_ij else 0 with u_ij ~ U[0, 1), so that
    P(1) = x_ij (the Bernoulli sample of the pixel, as in Salakhutdinov & Murray 2008).
    The uniforms are ``rng.uniform(n, d, seed, stream=STREAM_BINARIZE, step=step)``: the
    same seed and step give the same sample on every machine; a new step (e.g. the epoch)
    gives a fresh one.

    Parameters
    ----------
    X : (n, ...) array of floats in [0, 1]
    threshold : float         for ``mode="threshold"``
    mode : {"threshold", "stochastic"}
    seed : int or None        for ``mode="stochastic"``; None draws a fresh one (not
                              reproducible)
    step : int                the Philox step, for a fresh sample from the same seed

    Returns
    -------
    float32 array, shape of ``X``, values 0 and 1
    """
    X = np.asarray(X)
    if mode == "threshold":
        return (X > threshold).astype(np.float32)
    if mode != "stochastic":
        raise ValueError(f"binarize: mode must be 'threshold' or 'stochastic', got {mode!r}")
    if X.ndim < 1:
        raise ValueError("binarize: stochastic mode needs an (n, ...) array, got a scalar")
    if X.size == 0:
        return np.zeros(X.shape, dtype=np.float32)
    if not np.issubdtype(X.dtype, np.floating) or not (np.all(X >= 0) and np.all(X <= 1)):
        raise ValueError("binarize: stochastic mode needs probabilities: floats in [0, 1] "
                         "(use to_unit_interval on uint8 images first)")
    rows = X.reshape(len(X), -1)
    uniforms = rng.uniform(rows.shape[0], rows.shape[1], rng.check_seed(seed),
                           stream=rng.STREAM_BINARIZE, step=step)
    return (rows > uniforms).astype(np.float32).reshape(X.shape)


def holdout_split(labels, n_per_class, seed=0):
    """Hold out ``n_per_class`` samples of every class as a test set, deterministically.

    One permutation of all indices, ``rng.permutation(n, seed, stream=STREAM_SPLIT)``, is
    walked in order and the first ``n_per_class`` samples of each class go to the test set;
    the rest is the training set. The same labels and seed give the same split everywhere.

    Parameters
    ----------
    labels : (n,) integer array
    n_per_class : int >= 1
    seed : int

    Returns
    -------
    train_indices : (n - k * n_per_class,) int64, ascending
    test_indices : (k * n_per_class,) int64, ascending
        with k the number of distinct labels; together they cover range(n) once.

    Raises
    ------
    ValueError
        If ``n_per_class`` is not a positive integer, or a class has fewer samples than
        ``n_per_class`` (the message names the class and its count).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"holdout_split: labels must be 1-D, got shape {labels.shape}")
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) \
            or n_per_class < 1:
        raise ValueError(f"holdout_split: n_per_class must be a positive integer, got "
                         f"{n_per_class!r}")
    classes, counts = np.unique(labels, return_counts=True)
    short = [f"class {c} has {k}" for c, k in zip(classes.tolist(), counts.tolist())
             if k < n_per_class]
    if short:
        raise ValueError(f"holdout_split: cannot hold out {n_per_class} per class: "
                         f"{', '.join(short)}")
    order = rng.permutation(len(labels), seed, stream=rng.STREAM_SPLIT)
    shuffled = labels[order]
    # rank of each position among the positions of its class, in permutation order
    rank = np.empty(len(labels), dtype=np.int64)
    for c in classes:
        positions = np.flatnonzero(shuffled == c)
        rank[positions] = np.arange(len(positions))
    held_out = np.zeros(len(labels), dtype=bool)
    held_out[order[rank < n_per_class]] = True
    return np.flatnonzero(~held_out), np.flatnonzero(held_out)

"""Input checks that fail early with one sentence naming the problem and the fix."""
import math
import numbers
import warnings

import numpy as np
from numba import njit, prange

from dlcore.lazy_rows import LazyRows
from dlcore.wording import as_typed, count, with_article

#: arrays from this many values (64 MB of float32) on are scanned by all of Numba's threads:
#: measured on 2 cores (Intel Xeon), 60,000 MNIST digits (47 million values) in 5.5 ms
#: instead of 10.3 on one thread (NumPy's min and max and isfinite took 23 ms). Smaller ones,
#: the bundled data of the homework included, do without: the parallel scan compiles in
#: ~1.3 s the first time
PARALLEL_SCAN_FROM = 1 << 24

#: How far beyond [0, 1] training data for units of [0, 1] may lie and still be taken, clipped
#: into [0, 1]: float32 rounding, not a wrong scaling. scikit-learn's MinMaxScaler computes
#: X * scale_ + min_ in the data's type, and on float32 data its extremes often come out a
#: rounding step beyond (1.0000001: float32's spacing at 1 is 2**-23 = 1.2e-7; measured, 58 of
#: 200 tables of normal values, each one step). 1e-6 is eight such steps. A wrong scaling
#: (1.001, -0.01) lies far beyond and is refused with the fix, as is the larger rounding of
#: data far from 0 (around 1000: up to 1.5e-5), which MinMaxScaler(clip=True) keeps inside.
UNIT_INTERVAL_ROUNDING = 1e-6


def check_data(X, name="X", n_columns=None, unit_interval=False, columns_meaning="features",
               unit_interval_reason="for binary (Bernoulli) units", held_out=False):
    """Return ``X`` as a C-contiguous float32 (n_samples, n_columns) array, or raise.

    Checks, in order: numeric, 2-D, not empty, the expected width, finite, and (for Bernoulli
    visible units, or ``unit_interval_reason``) every value in [0, 1]; values at most
    :data:`UNIT_INTERVAL_ROUNDING` beyond (float32 rounding in a scaler) are clipped into it,
    in a copy (``X`` itself is never changed). :class:`LazyRows` are returned as the view that
    makes the value checks on every batch it reads.

    ``held_out`` (with ``unit_interval``): rows a fitted model is only applied to, where values
    outside [0, 1] pass (a scaler fitted on other rows maps held-out ones a little beyond, and
    the sigmoid and the free energy take any real value), but for unscaled 8-bit pixels (whole
    numbers up to 255, some above 1), still refused with the fix.
    """
    array = _numbers(X, name, f"(n_samples, n_{columns_meaning})")
    if array.ndim != 2:
        hint = (f"; flatten images with {name}.reshape(len({name}), -1)" if array.ndim > 2 else "")
        raise ValueError(f"{name} must be 2-D (n_samples, n_{columns_meaning}), "
                         f"got shape {array.shape}{hint}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}): it needs at least one sample "
                         f"and one column")
    if n_columns is not None and array.shape[1] != n_columns:
        raise ValueError(f"{name} has {array.shape[1]} columns but the model expects "
                         f"{n_columns} {columns_meaning}")
    if isinstance(array, LazyRows):
        return array.checked(name, unit_interval, held_out=held_out)
    given, array = array, _cast(array, np.float32)
    if not unit_interval:
        return _finite(array, name, given)
    if _all_within(array, 1.0):
        return array
    # only to word the error (or to pass a -0.0, which the scan of the bits counts as < 0)
    low, high = array.min(), array.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        _finite(array, name, given)
    if -UNIT_INTERVAL_ROUNDING <= low and high <= 1.0 + UNIT_INTERVAL_ROUNDING:
        if held_out or not (low < 0.0 or high > 1.0):
            return array   # held-out rows pass as they are, a little outside or not
        return np.clip(array, np.float32(0.0), np.float32(1.0))   # a copy, never X itself
    if low < 0.0 or high > 1.0:
        hint = ""
        eight_bit = (low >= 0.0 and high <= 255.0 and bool(np.all(array == np.round(array))))
        if held_out and not eight_bit:
            return array
        if high > 1.0 and low >= 0.0:
            # whole numbers up to 255 are pixels; anything else came from a scaling, and a
            # scikit-learn MinMaxScaler fitted on other rows maps held-out ones beyond 1
            hint = (": divide 8-bit images by 255 (dlcore.datasets.to_unit_interval)"
                    if eight_bit else
                    ": scale it into [0, 1] (scikit-learn's MinMaxScaler(clip=True) keeps "
                    "rows it was not fitted on inside too)")
        elif low < 0.0:
            # negative values: standardised or real-valued data
            hint = (": scale it into [0, 1] (scikit-learn's MinMaxScaler(clip=True), not "
                    "StandardScaler, whose values are negative too)"
                    + (", or model real values with dlcore.GaussianBernoulliRBM"
                       if "Bernoulli" in unit_interval_reason else ""))
        # scikit-learn's words for negative data (MultinomialNB's), which its check of the
        # positive_only tag looks for
        negative = "Negative values in data: " if low < 0.0 else ""
        # float32's shortest round-trip text: 1.0000153 is never printed as a 1 that would
        # look inside [0, 1]
        raise ValueError(f"{negative}{name} must lie in [0, 1] {unit_interval_reason}, got "
                         f"values in [{low!s}, {high!s}]{hint}")
    return array


def check_matrix(X, name, model):
    """``X`` as a 2-D NumPy array with rows and columns, or one sentence saying what it is
    instead (the words scikit-learn's checks look for: sparse, complex, ``Reshape your data``,
    ``0 feature(s)``), naming the estimator ``model``; :func:`check_data` checks the values
    after. None passes through."""
    if hasattr(X, "tocsr") and hasattr(X, "nnz"):
        raise TypeError(f"{name} is a sparse matrix and {model} does not support sparse "
                        f"input: pass a dense array ({name}.toarray())")
    if X is None or isinstance(X, LazyRows):   # check_data checks the shape of lazy rows
        return X
    array = as_array(X, name)
    if np.iscomplexobj(array):
        raise ValueError(f"Complex data not supported: {name} holds complex numbers; "
                         f"{model} needs real ones")
    if array.dtype == object:
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as error:
            missing = int(np.count_nonzero(_missing(array)))
            if missing:   # a pandas table of nullable columns ("Int64") with gaps
                raise ValueError(f"{name} contains {missing} missing values (pandas NA): "
                                 "clean or impute them first") from None
            raise type(error)(f"{name} must hold numbers: {error}") from None
    if array.ndim == 1:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got a 1-D array of "
                         f"shape {array.shape}: Reshape your data with "
                         f"{name}.reshape(-1, 1) if it has a single feature or "
                         f"{name}.reshape(1, -1) if it is a single sample")
    if array.ndim == 2 and 0 in array.shape:
        what = "sample" if array.shape[0] == 0 else "feature"
        raise ValueError(f"{name} is empty: found 0 {what}(s) (shape={array.shape}) while a "
                         "minimum of 1 is required.")
    return array


#: whether each item of an object array is pandas's missing value NA (matched by its type's
#: name, so that dlcore needs no pandas; None already reads as NaN)
_missing = np.frompyfunc(lambda item: type(item).__name__ == "NAType", 1, 1)


def check_width(X, name, model, width):
    """Refuse a 2-D ``X`` whose number of columns is not the ``width`` that the estimator
    named ``model`` was fitted on, in scikit-learn's words; None checks nothing."""
    if width is not None and np.ndim(X) == 2 and X.shape[1] != width:
        raise ValueError(f"{name} has {X.shape[1]} features, but {model} is expecting {width} "
                         f"features as input")


def _one_hot(labels):
    """Whether the 2-D ``labels`` are one-hot rows (Keras's targets): 0s and a single 1."""
    if labels.dtype.kind not in "biuf":
        return False
    return bool(np.isin(labels, (0, 1)).all() and (labels.sum(axis=1) == 1).all())


def data_conversion_warning():
    """scikit-learn's DataConversionWarning when scikit-learn is installed (a UserWarning),
    else UserWarning: imported only on the path that warns."""
    try:
        from sklearn.exceptions import DataConversionWarning
    except ImportError:
        return UserWarning
    return DataConversionWarning


def check_same_classes(classes, fitted, model):
    """Refuse in one line the ``classes`` (sorted distinct labels) that a later
    ``partial_fit`` call of ``model`` gives unlike the first call's, ``fitted`` (its
    ``classes_``), as scikit-learn's ``partial_fit`` refuses them: the first call fixed the
    outputs (label units) that the labels are learnt on."""
    if not np.array_equal(classes, fitted):
        listed = [value.item() if isinstance(value, np.generic) else value for value in classes]
        known = [value.item() if isinstance(value, np.generic) else value for value in fitted]
        raise ValueError(f"classes={listed!r:.200} are not the first call's {known!r:.200} "
                         f"(classes_): {model}'s outputs were made for those; give the same "
                         "classes, or leave classes out after the first call")


def check_class_labels(y, model, conversion_warning=UserWarning):
    """``(classes, targets)``: the sorted distinct labels of ``y`` (any labels: numbers,
    strings) and each row's index among them, int64 (n,), for a classifier named ``model``; a
    column vector is read as 1-D with a ``conversion_warning`` (scikit-learn's
    DataConversionWarning), and anything not a set of two or more class labels (None, empty,
    2-D, complex, continuous, non-finite, a single class) is refused in one line, in the words
    scikit-learn's checks look for."""
    if y is None:
        raise ValueError(f"{model} requires y to be passed, but the target y is None: a "
                         "classifier is fitted on (X, y)")
    labels = as_array(y, "y")
    if labels.ndim == 2 and labels.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected: y is "
                      "read as y.ravel()", conversion_warning, stacklevel=4)
        labels = labels.ravel()
    if labels.ndim == 2 and labels.shape[1] > 1 and _one_hot(labels):
        raise ValueError(f"y is one-hot, shape {labels.shape}, but {model} takes one class label "
                         f"per sample (n_samples,): pass y.argmax(axis=1)")
    if labels.ndim != 1:
        raise ValueError(f"y must be 1-D (n_samples,), got shape {labels.shape}")
    if labels.dtype.kind == "c":
        raise ValueError("Complex data not supported: y holds complex numbers")
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all():
            raise ValueError("y contains NaN or infinite values: a classifier needs class "
                             "labels")
        if not np.all(np.mod(labels, 1) == 0):
            raise ValueError("Unknown label type: y holds continuous values (not whole "
                             "numbers); a classifier needs class labels")
    if labels.size == 0:
        raise ValueError("y is empty: found 0 sample(s) while a minimum of 1 is required.")
    try:
        classes, targets = np.unique(labels, return_inverse=True)
    except TypeError:   # labels that do not compare: NumPy said "'<' not supported between ..."
        kinds = sorted({type(label).__name__ for label in labels})
        raise ValueError(f"y mixes labels of the types {', '.join(kinds)}: give labels of one "
                         "type, all numbers or all strings (a None or NA is a missing label: "
                         "drop its row or give it a class)") from None
    if len(classes) < 2:
        raise ValueError(f"y holds 1 class ({as_typed(classes[0])} only): a classifier needs "
                         "at least 2 classes")
    return classes, targets.astype(np.int64)


def check_batch(x, name="x", sample_shape=None, dtype=np.float32):
    """Return ``x`` as a C-contiguous (n, *sample_shape) array of ``dtype``, or raise: the
    inputs of a network, whose samples are rows or images.

    Checks, in order: numeric, a batch of n >= 1 samples (at least 2-D), samples of
    ``sample_shape`` (any shape when None; the message shows the reshape when only the layout
    differs), finite.
    """
    array = _numbers(x, name, "(n, ...)" if sample_shape is None
                     else "(n, " + ", ".join(map(str, sample_shape)) + ")")
    # one sample given alone (model.predict(x[0]), one image (28, 28)), as Keras refuses it too
    one_sample = (sample_shape is not None and array.ndim <= len(sample_shape)
                  and _without_ones(array.shape) == _without_ones(sample_shape))
    one_sample_hint = (f"; for one sample pass a batch of one, {name}.reshape(1, "
                       f"{', '.join(map(str, sample_shape))})" if one_sample else "")
    if array.ndim < 2 or array.shape[0] == 0:
        raise ValueError(f"{name} must be a batch (n, ...) with n >= 1, got shape "
                         f"{array.shape}{one_sample_hint}")
    if sample_shape is not None and tuple(array.shape[1:]) != tuple(sample_shape):
        hint = one_sample_hint
        given, expected = tuple(array.shape[1:]), tuple(sample_shape)
        if len(given) == len(expected) == 3 and given == expected[1:] + expected[:1]:
            # Keras's channels-last images (n, H, W, C): a reshape would scramble the
            # channels (but for one channel, where it happens to agree); a transpose moves them
            hint = (f"; images are channels-first here (n, C, H, W), as PyTorch has them; "
                    f"move Keras's channels-last axis with {name}.transpose(0, 3, 1, 2)")
        elif given == expected[2:] + expected[:2] and given[0] > 1 and _channels_last(expected):
            # the network was built for Keras's (H, W, C): reshaping channels-first images
            # into it would scramble them; the network's input shape is what needs the fix
            hint = (f"; the network was built for channels-last images {expected}, but "
                    f"dlcore's images are channels-first, as x is: build it with "
                    f"input_shape={given}")
        elif int(np.prod(given)) == int(np.prod(expected)) and not one_sample:
            hint = f"; reshape it with {name}.reshape(-1, {', '.join(map(str, expected))})"
        raise ValueError(f"{name} has samples of shape {tuple(array.shape[1:])}; the network "
                         f"expects {tuple(sample_shape)}{hint}")
    if isinstance(array, LazyRows):   # values checked as each batch is read
        return array.checked(name)
    return as_finite(array, dtype, name, FLOAT64_NETWORK)


def _without_ones(shape):
    """``shape`` without its axes of length 1: (28, 28) for an image's (1, 28, 28)."""
    return tuple(size for size in shape if size != 1)


def _channels_last(shape):
    """Whether a network's input shape looks like Keras's (H, W, C) images."""
    # imported here: dlcore.layers imports this module
    from dlcore.layers.geometry import looks_channels_last
    return looks_channels_last(shape)


def _numbers(X, name, shape):
    """``X`` as a NumPy array of numbers (bool included), or ValueError."""
    if X is None:
        raise ValueError(f"{name} is None: pass an array of shape {shape}")
    array = X if isinstance(X, LazyRows) else as_array(X, name)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number)
                                     or array.dtype == bool):
        raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}")
    refuse_complex(array, name)
    return array


def refuse_complex(array, name):
    """ValueError in one line when ``array`` holds complex numbers, in the words scikit-learn's
    checks look for: cast to a real type, they lost their imaginary parts with only NumPy's
    ComplexWarning."""
    if array.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} holds complex numbers and dlcore "
                         f"computes with real ones: pass {name}.real or np.abs({name}), "
                         f"whichever you mean")


def as_array(X, name):
    """``np.asarray(X)``, or one line saying that the rows of a ragged list are of different
    lengths, where NumPy said "setting an array element with a sequence. The requested array
    has an inhomogeneous shape after 1 dimensions ..." without naming ``name``."""
    try:
        return np.asarray(X)
    except ValueError as error:
        if "inhomogeneous" not in str(error):
            raise
        lengths = sorted({len(row) for row in X if hasattr(row, "__len__")})
        shown = ", ".join(map(str, lengths[:5])) + (", ..." if len(lengths) > 5 else "")
        raise ValueError(f"{name} is ragged: its rows have different lengths ({shown}); give "
                         f"every row the same number of values") from None


#: How a network takes values beyond float32's range, as a fix that ends a message.
FLOAT64_NETWORK = "or compute in float64 (dtype='float64' on every layer)"


def as_finite(array, dtype, name, wider_type_fix=""):
    """``array`` as a C-contiguous array of ``dtype`` (itself when it is one) whose values are
    all finite, else ValueError in one line: the count of NaN and infinite values, or of
    finite values beyond ``dtype``'s range (1e39 in float64 data cast to float32), which the
    cast made infinite; ``wider_type_fix`` ends the latter's fix ("or compute in float64")
    where the caller can take a wider type."""
    return _finite(_cast(array, dtype), name, array, wider_type_fix)


def _cast(array, dtype):
    """``array`` as a C-contiguous ``dtype`` array, without NumPy's overflow warning for
    values beyond its range (they turn infinite, and :func:`_finite` names them)."""
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(array, dtype=dtype)


def _finite(array, name, given=None, wider_type_fix=""):
    """``array`` when every value is finite, else ValueError with the count; ``given``: the
    array ``array`` was cast from, whose finite values beyond ``array``'s type are named as
    such, not as the infinities the cast made of them."""
    if _all_within(array):
        return array
    if given is not None and given.dtype != array.dtype and given.dtype.kind == "f":
        beyond = np.isfinite(given) & ~np.isfinite(array)
        if beyond.any():
            largest = float(np.abs(given[beyond]).max())
            fix = f", {wider_type_fix}" if wider_type_fix and array.dtype != np.float64 else ""
            raise ValueError(f"{name} holds {count(int(beyond.sum()), 'value')} beyond "
                             f"{array.dtype.name}'s range (largest magnitude {largest:.3g}; "
                             f"{array.dtype.name} reaches {np.finfo(array.dtype).max:.3g}), "
                             f"which would be infinite: scale the data (standardise it, or "
                             f"divide it by its largest magnitude){fix}")
    finite = np.isfinite(array)
    if not finite.all():
        raise ValueError(f"{name} contains {int((~finite).sum())} NaN or infinite values: "
                         "clean or impute them first")
    return array


#: The most rungs a parallel-tempering ladder may have: what a dlcore model file holds
#: (dlcore.load refuses more), so that no model is trained with more and then saved to a file
#: that no load takes.
MAX_TEMPERATURES = 1000

#: The longest name of a network: what its model file keeps (dlcore.io reads at most this).
MAX_MODEL_NAME = 256


def check_model_name(name, default):
    """A network's ``name``: ``default`` for None or ``""``, else a string of at most
    :data:`MAX_MODEL_NAME` characters (its model file keeps it, and a file whose name could not
    be read back could not be loaded)."""
    if name is None or name == "":
        return default
    if not isinstance(name, str) or len(name) > MAX_MODEL_NAME:
        raise ValueError(f"name must be a string of at most {MAX_MODEL_NAME} characters, got "
                         f"{name!r:.60}")
    return name


def is_integer(value):
    """Whether ``value`` is a whole number of an integer type: Python's ``int``, NumPy's
    (``np.int64(2)``, as a grid of values or an array's item gives) or any other
    ``numbers.Integral``; never a bool (True is not a count). Every check of a count, a size,
    an axis or an index asks this, so that a value one accepts the others accept too."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_int(value, name, minimum=None):
    """An integer >= minimum (bools are refused: True is not a batch size)."""
    if not is_integer(value):
        raise ValueError(f"{name} must be an integer, got {as_typed(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_bool(value, name, allow_none=False):
    """``value`` as a bool when it is True or False (NumPy's too), or None where
    ``allow_none``; else a ValueError naming ``name``."""
    if allow_none and value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False{' (or None)' if allow_none else ''}, "
                         f"got {value!r:.40}")
    return bool(value)


def check_estimator_verbose(verbose):
    """Whether an estimator's ``verbose`` (the RBMs', DBNs', autoencoders') asks for output:
    True or False, or scikit-learn's integer level (``verbose=1``, which its estimators take);
    anything else ("yes", -1, None) is a ValueError, where its truth value was taken without a
    word."""
    if isinstance(verbose, (bool, np.bool_)) or (is_integer(verbose) and verbose >= 0):
        return bool(verbose)
    raise ValueError(f"verbose must be True or False (or scikit-learn's level: 0, 1, 2...), "
                     f"got {as_typed(verbose)}")


def check_verbose(verbose):
    """Whether Keras's ``verbose`` (0, 1, 2 or "auto"; a bool too) asks for output."""
    if verbose == "auto" or (isinstance(verbose, (bool, np.bool_, numbers.Integral))
                             and 0 <= verbose <= 2):
        return bool(verbose)
    raise ValueError(f"verbose must be 0 (silent), 1, 2 or 'auto' (as Keras), got "
                     f"{as_typed(verbose)}")


def check_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """A finite real number in the interval given by low/high (open ends when asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number, got {as_typed(value)}")
    try:
        finite = math.isfinite(value)
    except OverflowError:   # an integer beyond any float (10**400 from a JSON file)
        text = str(value)
        raise ValueError(f"{name} must be a finite number, got an integer of {len(text)} "
                         f"digits ({text[:12]}...)") from None
    if not finite:
        raise ValueError(f"{name} must be a finite number, got {as_typed(value)}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        # an unbounded end is open: infinities are refused above as not finite
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        lower, upper = "-inf" if low is None else low, "inf" if high is None else high
        interval = f"{left}{lower}, {upper}{right}"
        raise ValueError(f"{name} must be in {interval}, got {as_typed(value)}")
    return float(value)


#: {float dtype: (its bits as unsigned integers, the mask of all but the sign bit, the bits of
#: +inf)}
_FLOAT_BITS = {np.dtype(np.float32): (np.uint32, np.uint32(0x7FFFFFFF), np.uint32(0x7F800000)),
               np.dtype(np.float64): (np.uint64, np.uint64(0x7FFFFFFFFFFFFFFF),
                                      np.uint64(0x7FF0000000000000))}


def _all_within(array, highest=None):
    """Whether every value of the C-contiguous float32 or float64 ``array`` is finite
    (``highest`` None), or lies in [+0, ``highest``] (``highest`` finite, >= 0), in one pass
    over its bits read as unsigned integers: a finite x has |x|'s bits below +inf's, and
    0 <= x <= highest holds exactly when x's bits (sign bit included) are at most highest's,
    since the bits of non-negative floats are ordered as the floats are. A -0.0, NaN or a
    negative number sets the sign bit, or exceeds, and answers False (the caller then looks
    closer). One pass that the CPU vectorises, where NumPy's min, max and isfinite are three.
    False for other dtypes (the caller's NumPy checks decide)."""
    if array.dtype not in _FLOAT_BITS:
        return False
    unsigned, magnitude, infinity = _FLOAT_BITS[array.dtype]
    words = array.reshape(-1).view(unsigned)
    if highest is None:
        mask, limit = magnitude, infinity - unsigned(1)
    else:
        mask, limit = ~unsigned(0), np.asarray(highest, array.dtype).view(unsigned)
    scan = _largest_masked_parallel if words.shape[0] >= PARALLEL_SCAN_FROM else _largest_masked
    return scan(words, mask) <= limit


@njit(cache=True, nogil=True)
def _largest_masked(words, mask):
    """max_i (words[i] & mask), 0 for no words (unsigned integers)."""
    largest = words.dtype.type(0)
    for i in range(words.shape[0]):
        largest = max(largest, words[i] & mask)
    return largest


@njit(parallel=True, cache=True, nogil=True)
def _largest_masked_parallel(words, mask):
    """:func:`_largest_masked` of a large array, its 64 chunks spread over Numba's threads."""
    chunks = 64
    n = words.shape[0]
    size = -(-n // chunks)
    largest = np.zeros(chunks, words.dtype)
    for chunk in prange(chunks):
        largest[chunk] = _largest_masked(words[chunk * size:min(n, (chunk + 1) * size)], mask)
    return largest.max()


def check_network(model, function):
    """``model`` if it is a dlcore network (a Sequential or a functional Model): the functions
    that take one (:func:`dlcore.receptive_fields`, :func:`dlcore.gradcheck`,
    :func:`dlcore.adversarial.fgsm`) refuse anything else in one line, not with an
    AttributeError from deep inside. A DBN or an autoencoder is told of its ``to_network()``."""
    from dlcore.functional import Model
    if isinstance(model, Model):
        return model
    given = "None" if model is None else with_article(type(model).__name__)
    hint = ("; use its network, model.to_network(...)" if hasattr(model, "to_network")
            else "; load a saved one with dlcore.load(path)" if isinstance(model, str) else "")
    raise TypeError(f"{function} takes a dlcore network (Sequential or Model), got "
                    f"{given}{hint}")

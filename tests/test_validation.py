"""The value checks of dlcore.validation: its one-pass scan of the bits agrees with NumPy's
definitions (finite; within [0, 1]) on the values where bit tricks go wrong, serial and
parallel, float32 and float64."""
import re

import numpy as np
import pytest

from dlcore import validation
from dlcore.validation import check_batch, check_data

EDGE_VALUES = [0.0, -0.0, 1.0, np.nextafter(np.float32(1), np.float32(2)), 1e-45, -1e-45,
               0.5, -0.5, 3.0e38, -3.0e38, np.inf, -np.inf, np.nan, -np.nan, 1e300]


@pytest.fixture(params=["serial", "parallel"])
def scan(request, monkeypatch):
    """Both scans: the parallel one from the first value on."""
    if request.param == "parallel":
        monkeypatch.setattr(validation, "PARALLEL_SCAN_FROM", 1)
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", EDGE_VALUES)
def test_the_scan_of_the_bits_answers_as_numpy_does(scan, dtype, value):
    with np.errstate(over="ignore"):
        array = np.full((7, 131), 0.25, dtype)
        array[5, 77] = value           # one value among many, not at a chunk's edge
    finite = bool(np.isfinite(array).all())
    in_unit_interval = finite and bool(array.min() >= 0 and array.max() <= 1)
    assert validation._all_within(array) == finite
    # -0.0 is in [0, 1] but carries the sign bit: the scan says no and check_data looks closer
    assert validation._all_within(array, 1.0) == (in_unit_interval and not
                                                  np.signbit(array).any())
    within_rounding = finite and bool(array.min() >= -validation.UNIT_INTERVAL_ROUNDING
                                      and array.max() <= 1 + validation.UNIT_INTERVAL_ROUNDING)
    if dtype is np.float32:
        if in_unit_interval:
            assert check_data(array, unit_interval=True) is array
        elif within_rounding:   # 1.0000001, -1e-45: float32 rounding, clipped into [0, 1]
            np.testing.assert_array_equal(check_data(array, unit_interval=True),
                                          np.clip(array, 0, 1))
        else:
            with pytest.raises(ValueError, match="NaN or infinite|must lie in"):
                check_data(array, unit_interval=True)
    if finite:
        assert check_batch(array, dtype=dtype) is array
    else:
        with pytest.raises(ValueError, match="contains 1 NaN or infinite values"):
            check_batch(array, dtype=dtype)


def test_every_chunk_of_the_parallel_scan_is_read(monkeypatch):
    monkeypatch.setattr(validation, "PARALLEL_SCAN_FROM", 1)
    for position in (0, 63, 64, 999, 1000, 4094, 4095):
        array = np.zeros(4096, np.float32)
        array[position] = 1.5
        assert not validation._all_within(array, 1.0), position
        assert validation._all_within(array[:position]) and validation._all_within(array[:0])


def test_training_data_within_float32_rounding_of_the_unit_interval_is_clipped_in_a_copy():
    # scikit-learn's MinMaxScaler on float32 data leaves its extremes a rounding step outside
    X = np.full((4, 3), 0.5, np.float32)
    X[0, 0], X[1, 1] = np.nextafter(np.float32(1), np.float32(2)), np.float32(-6e-8)
    given = X.copy()
    checked = check_data(X, unit_interval=True)
    assert checked.dtype == np.float32 and checked.flags.c_contiguous
    assert checked[0, 0] == 1 and checked[1, 1] == 0 and checked.min() >= 0 and checked.max() <= 1
    np.testing.assert_array_equal(X, given)   # the caller's array is left as it was
    assert check_data(X, unit_interval=True, held_out=True) is X   # held-out rows pass as given


@pytest.mark.parametrize("value, shown", [(1.0000153, "1.0000153"), (-2e-6, "-2e-06")])
def test_training_data_beyond_the_rounding_allowance_is_still_refused(value, shown):
    X = np.full((4, 3), 0.5, np.float32)
    X[2, 2] = value
    with pytest.raises(ValueError, match=f"must lie in .*, got values in .*{shown}"):
        check_data(X, unit_interval=True)


def test_negative_training_data_is_refused_in_scikit_learns_words_and_other_data_not():
    # scikit-learn's check_positive_only_tag_during_fit looks for MultinomialNB's words
    with pytest.raises(ValueError, match=r"^Negative values in data: X must lie in \[0, 1\] "
                                         r"for binary \(Bernoulli\) units, got values in "
                                         r"\[-0.5, 0.5\]: scale it into \[0, 1\]"):
        check_data(np.array([[-0.5, 0.5]]), unit_interval=True)
    with pytest.raises(ValueError, match=r"^X must lie in \[0, 1\]") as above_one:
        check_data(np.array([[0.5, 1.5]]), unit_interval=True)
    assert "Negative" not in str(above_one.value)


@pytest.mark.filterwarnings("error")   # and no NumPy overflow warning before it
@pytest.mark.parametrize("unit_interval", [False, True])
def test_training_data_beyond_float32s_range_is_named_so_not_nan_or_infinite(unit_interval):
    X = np.full((3, 4), 0.5)
    X[1, 2], X[2, 0] = 1e39, -3e40   # finite in float64; an estimator computes in float32
    with pytest.raises(ValueError, match=r"^X holds 2 values beyond float32's range \(largest "
                                         r"magnitude 3e\+40; float32 reaches 3.4e\+38\), which "
                                         r"would be infinite: scale the data \(standardise it, "
                                         r"or divide it by its largest magnitude\)$"):
        check_data(X, unit_interval=unit_interval)
    X[0, 0] = np.nan   # NaN and infinities are still counted as such
    with pytest.raises(ValueError, match="contains 1 NaN or infinite values"):
        check_data(np.where(np.abs(X) > 1, 0.5, X), unit_interval=unit_interval)


def test_other_dtypes_are_checked_by_numpy():
    assert check_batch(np.ones((3, 2), np.int64), dtype=np.int64).dtype == np.int64
    with pytest.raises(ValueError, match="contains 1 NaN"):
        check_batch(np.array([[1.0, np.nan]], np.float16), dtype=np.float16)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8, bool])
def test_one_hot_labels_given_to_a_classifier_are_told_to_be_argmaxed(dtype):
    # Keras's one-hot targets were refused as "y must be 1-D (n_samples,), got shape (6, 3)"
    one_hot = np.eye(3, dtype=dtype)[[0, 1, 2, 0, 1, 2]]
    with pytest.raises(ValueError, match=r"y is one-hot, shape \(6, 3\), but DBNClassifier "
                       r"takes one class label per sample \(n_samples,\): pass "
                       r"y.argmax\(axis=1\)"):
        validation.check_class_labels(one_hot, "DBNClassifier")


def test_two_columns_that_are_not_one_hot_keep_the_shape_message():
    with pytest.raises(ValueError, match=r"y must be 1-D \(n_samples,\), got shape \(2, 2\)"):
        validation.check_class_labels(np.array([[1, 1], [0, 1]]), "DBNClassifier")


@pytest.mark.parametrize("check", [
    lambda X: validation.check_matrix(X, "X", "BernoulliRBM"), lambda X: check_data(X)])
def test_ragged_rows_are_named_ragged_with_their_lengths(check):
    # NumPy said "setting an array element with a sequence. The requested array has an
    # inhomogeneous shape after 1 dimensions...", naming neither X nor the fix
    with pytest.raises(ValueError, match=r"^X is ragged: its rows have different lengths "
                                         r"\(1, 2, 3\); give every row the same number of "
                                         r"values$"):
        check([[0, 1], [1], [1, 0, 1]])


@pytest.mark.parametrize("labels, kinds", [
    (np.array(["a", 1, "a", 1], dtype=object), "int, str"), ([None, 1, 0, 1], "NoneType, int")])
def test_labels_of_mixed_types_are_refused_naming_the_types(labels, kinds):
    # np.unique's "'<' not supported between instances of 'int' and 'str'" (a TypeError)
    with pytest.raises(ValueError, match=f"^y mixes labels of the types {kinds}: give labels "
                                         f"of one type"):
        validation.check_class_labels(labels, "DBNClassifier")


def test_ragged_labels_are_named_ragged():
    with pytest.raises(ValueError, match=r"^y is ragged: its rows have different lengths"):
        validation.check_class_labels([[0], [1, 2], [0]], "DBNClassifier")


@pytest.mark.parametrize("labels, shown", [
    (np.zeros(4), "(0.0 only)"), (np.array(["cat"] * 4), "('cat' only)")])
def test_a_single_class_is_named_as_the_user_wrote_it(labels, shown):
    # NumPy 2's repr said "y holds 1 class (np.float64(0.0) only)", "(np.str_('cat') only)"
    with pytest.raises(ValueError, match="y holds 1 class ") as caught:
        validation.check_class_labels(labels, "DBNClassifier")
    assert shown in str(caught.value) and "np." not in str(caught.value)


@pytest.mark.parametrize("shape, sample_shape, fix", [
    ((784,), (784,), "x.reshape(1, 784)"),
    ((28, 28), (1, 28, 28), "x.reshape(1, 1, 28, 28)")])
def test_one_sample_given_to_a_network_is_told_to_be_a_batch_of_one(shape, sample_shape, fix):
    # model.predict(x[0]) said "x must be a batch (n, ...) with n >= 1, got shape (784,)", or
    # of one image "x has samples of shape (28,); the network expects (1, 28, 28)", alone
    with pytest.raises(ValueError, match=r"; for one sample pass a batch of one, "
                       + re.escape(fix) + "$"):
        check_batch(np.zeros(shape, np.float32), "x", sample_shape)


def test_a_batch_of_the_wrong_width_is_not_taken_for_one_sample():
    with pytest.raises(ValueError) as refusal:
        check_batch(np.zeros((2, 392), np.float32), "x", (784,))
    assert "one sample" not in str(refusal.value)


@pytest.mark.parametrize("options, said", [
    ({"learning_rate": np.float64(-1.0)}, "learning_rate must be in (0.0, inf), got -1.0"),
    ({"momentum": np.float32(1.5)}, "momentum must be in [0.0, 1.0), got 1.5"),
    ({"epochs": np.float64(2.0)}, "epochs must be an integer, got 2.0"),
    ({"learning_rate": np.float64("nan")}, "learning_rate must be a finite number, got nan"),
    ({"sampler": "pt", "temperatures": np.array([1.0, 0.5])},
     "temperatures must be 'geometric' or an increasing list starting at 1.0 with from 2 to "
     "1000 entries (e.g. [1, 2, 4, 8]), got [1.0, 0.5]")])
def test_a_bad_numpy_setting_is_shown_as_the_number_it_holds(options, said):
    """A grid's values are NumPy numbers (np.linspace, a ParameterGrid over an array): the
    refusal said 'got np.float64(-1.0)', NumPy 2's repr, not what anyone typed."""
    import dlcore
    with pytest.raises(ValueError) as refused:
        dlcore.BernoulliRBM(n_hidden=3, backend="cpu", **options).fit(
            np.zeros((4, 5), np.float32))
    assert str(refused.value) == said


def test_other_refusals_show_a_numpy_number_as_typed_too():
    from dlcore import viz
    from dlcore.rbm.chains import temperature_ladder
    images = np.zeros((4, 3, 3), np.float32)
    for refused, said in [
            (lambda: viz.tile_images(images, n_columns=np.float64(2.0)),
             "n_columns must be a positive integer or None; got 2.0"),
            (lambda: viz.tile_images(images, padding=np.float64(1.0)),
             "padding must be an integer >= 0; got 1.0"),
            (lambda: validation.check_verbose(np.int64(3)),
             "verbose must be 0 (silent), 1, 2 or 'auto' (as Keras), got 3"),
            (lambda: temperature_ladder(np.int64(1)),
             "n_temperatures must be from 2 to 1000 (the rungs a dlcore model file holds), "
             "got 1")]:
        with pytest.raises(ValueError) as error:
            refused()
        assert str(error.value) == said

"""Class selection, scaling, binarisation and hold-out splits. Oracles: hand-written cases,
the definition (threshold), Bernoulli statistics (stochastic binarisation: mean and
reproducibility), and set identities (splits)."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcore.backend import rng
from dlcore.datasets import (
    binarize,
    holdout_split,
    parse_classes,
    select_classes,
    to_unit_interval,
)

# --- parse_classes -----------------------------------------------------------------------


@pytest.mark.parametrize("text, classes", [
    ("1-5", [1, 2, 3, 4, 5]),
    ("0,2,4", [0, 2, 4]),
    ("1-3,7", [1, 2, 3, 7]),
    ("7", [7]),
    ("0-9", list(range(10))),
    (" 3 , 1 - 2 ", [1, 2, 3]),
    ("4,4,2-4", [2, 3, 4]),
])
def test_class_text_gives_the_sorted_classes(text, classes):
    assert parse_classes(text) == classes


@pytest.mark.parametrize("text, problem", [
    ("a-b", "cannot read 'a-b'"),
    ("5-1", "runs backwards"),
    ("12", "12 is not a digit 0-9"),
    ("3-10", "10 is not a digit 0-9"),
    ("", "empty"),
    ("   ", "empty"),
    ("1,,2", "cannot read ''"),
    ("-3", "cannot read '-3'"),
])
def test_bad_class_text_names_the_text_and_the_accepted_forms(text, problem):
    with pytest.raises(ValueError) as caught:
        parse_classes(text)
    message = str(caught.value)
    assert repr(text) in message and problem in message
    assert "'1-5'" in message and "'0,2,4'" in message and "0-9" in message


def test_classes_must_be_text():
    with pytest.raises(TypeError, match="text"):
        parse_classes([1, 2])


# --- select_classes ----------------------------------------------------------------------

def test_select_classes_keeps_the_chosen_samples_in_order():
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.uint8)
    images = np.arange(8)[:, None, None] * np.ones((8, 2, 2), dtype=np.int64)
    kept_images, kept_labels = select_classes(images, labels, [1, 9])
    assert kept_labels.tolist() == [1, 1, 9]
    assert kept_images[:, 0, 0].tolist() == [1, 3, 5]


def test_select_classes_reads_class_text():
    labels = np.array([0, 1, 2, 3, 4])
    assert select_classes(np.arange(5), labels, "1-3")[1].tolist() == [1, 2, 3]


def test_selecting_an_absent_class_names_it():
    with pytest.raises(ValueError, match=r"no sample of class \[7\]"):
        select_classes(np.zeros((3, 2)), np.array([0, 1, 2]), [1, 7])


def test_select_classes_refuses_images_and_labels_of_different_lengths():
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        select_classes(np.zeros((3, 2)), np.array([0, 1]), [0])


# --- to_unit_interval --------------------------------------------------------------------

def test_uint8_images_become_float32_rows_in_the_unit_interval():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    rows = to_unit_interval(images)
    assert rows.dtype == np.float32 and rows.shape == (1, 4)
    assert np.allclose(rows, [[0.0, 1.0, 0.2, 0.4]])


def test_floats_already_in_the_unit_interval_are_only_flattened():
    images = np.random.default_rng(0).random((3, 2, 5))
    assert np.allclose(to_unit_interval(images), images.reshape(3, 10))


def test_floats_outside_the_unit_interval_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        to_unit_interval(np.array([[0.5, 1.5]]))


def test_nan_pixels_are_named_not_called_outside_the_unit_interval():
    images = np.random.default_rng(0).random((4, 3, 3)).astype(np.float32)
    images[0, 0, 0] = images[2, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"^to_unit_interval: the images contain 2 NaN values: "
                                         r"clean or impute them first"):
        to_unit_interval(images)


@pytest.mark.parametrize("shape, dtype", [((0, 28, 28), np.uint8), ((3, 0), np.float32),
                                          ((0, 4), bool)])
def test_empty_images_are_refused_as_empty(shape, dtype):
    with pytest.raises(ValueError, match=r"^to_unit_interval: the images are empty \(shape "
                                         + re.escape(str(shape))):
        to_unit_interval(np.zeros(shape, dtype))


def test_integer_pixels_of_unknown_scale_are_refused():
    with pytest.raises(TypeError, match="uint8"):
        to_unit_interval(np.array([[0, 1000]], dtype=np.int32))


# --- binarize ----------------------------------------------------------------------------

def test_threshold_binarisation_is_strictly_greater_than_the_threshold():
    X = np.array([[0.0, 0.5, 0.51, 1.0]], dtype=np.float32)
    assert binarize(X).tolist() == [[0, 0, 1, 1]]
    assert binarize(X, threshold=0.2).dtype == np.float32


def test_stochastic_binarisation_is_reproducible_with_the_seed():
    X = np.random.default_rng(1).random((50, 30)).astype(np.float32)
    first = binarize(X, mode="stochastic", seed=42)
    assert np.array_equal(first, binarize(X, mode="stochastic", seed=42))
    assert not np.array_equal(first, binarize(X, mode="stochastic", seed=43))
    assert not np.array_equal(first, binarize(X, mode="stochastic", seed=42, step=1))


def test_stochastic_binarisation_draws_x_greater_than_the_rng_uniforms():
    X = np.random.default_rng(2).random((7, 9)).astype(np.float32)
    uniforms = rng.uniform(7, 9, 5, stream=rng.STREAM_BINARIZE, step=0)
    assert np.array_equal(binarize(X, mode="stochastic", seed=5), (X > uniforms))


@settings(max_examples=20, deadline=None)
@given(intensity=st.floats(0.0, 1.0, width=32))
def test_stochastic_binarisation_mean_matches_the_intensity(intensity):
    X = np.full((200, 100), intensity, dtype=np.float32)
    sample = binarize(X, mode="stochastic", seed=7)
    assert set(np.unique(sample)) <= {0.0, 1.0} and sample.dtype == np.float32
    # 20,000 Bernoulli(p) draws: five standard deviations of the mean
    assert abs(sample.mean() - intensity) <= 5 * np.sqrt(0.25 / X.size) + 1e-6


def test_stochastic_binarisation_keeps_the_shape_of_images():
    X = np.full((4, 3, 5), 0.5, dtype=np.float32)
    assert binarize(X, mode="stochastic", seed=0).shape == (4, 3, 5)


def test_stochastic_binarisation_refuses_values_that_are_not_probabilities():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binarize(np.array([[0, 255]], dtype=np.uint8), mode="stochastic", seed=0)


def test_an_unknown_binarisation_mode_is_named():
    with pytest.raises(ValueError, match="'random'"):
        binarize(np.zeros((1, 1)), mode="random")


# --- holdout_split -----------------------------------------------------------------------

LABELS = np.repeat(np.arange(10), 50)[np.random.default_rng(3).permutation(500)]


def test_holdout_split_holds_out_n_per_class():
    train, test = holdout_split(LABELS, 7, seed=0)
    assert np.bincount(LABELS[test]).tolist() == [7] * 10
    assert np.bincount(LABELS[train]).tolist() == [43] * 10


def test_holdout_split_partitions_the_indices():
    train, test = holdout_split(LABELS, 5, seed=1)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(500))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)


def test_holdout_split_is_deterministic_for_a_seed_and_varies_with_it():
    first = holdout_split(LABELS, 5, seed=11)
    again = holdout_split(LABELS, 5, seed=11)
    other = holdout_split(LABELS, 5, seed=12)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[1], other[1])


def test_holdout_split_follows_the_split_stream_permutation():
    labels = np.array([0, 1, 0, 1, 0, 1])
    order = rng.permutation(6, 9, stream=rng.STREAM_SPLIT)
    first_of_each = sorted(next(i for i in order if labels[i] == c) for c in (0, 1))
    assert holdout_split(labels, 1, seed=9)[1].tolist() == first_of_each


def test_a_class_with_too_few_samples_is_named_with_its_count():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 5)
    with pytest.raises(ValueError, match="class 1 has 2"):
        holdout_split(labels, 3)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_n_per_class_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="positive integer"):
        holdout_split(LABELS, bad)

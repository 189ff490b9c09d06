"""A DBN's and a StackedAutoencoder's sizes: ``hidden`` (the width comes from the data ``fit``
is given, as scikit-learn's estimators take it) and the older ``layers`` (the width first),
which code, model files and command lines written before ``hidden`` keep giving.

Oracles: the same stack fitted in both forms (equal weights and features, bit for bit), and
model files written by dlcore before ``hidden`` existed (tests/fixtures/dlcore_*_layers_2026_12.h5,
with their outputs then in dlcore_layers_2026_12.npz).
"""
import functools
from pathlib import Path

import h5py
import numpy as np
import pytest

import dlcore

FIXTURES = Path(__file__).parent / "fixtures"
STACKS = [dlcore.DBN, dlcore.StackedAutoencoder]


def rows(width, n=30, seed=0):
    return (np.random.default_rng(seed).uniform(size=(n, width)) < 0.4).astype(np.float32)


@pytest.mark.parametrize("stack", STACKS)
def test_hidden_takes_the_width_from_the_data_as_layers_gave_it(stack):
    # layers=[784, 500, 500] fixed the input width in a hyperparameter: one estimator could
    # not fit data of another width (a grid search over feature selectors, scikit-learn's
    # estimator checks)
    options = {"epochs": 1, "batch_size": 10, "seed": 0, "backend": "cpu"}
    for width in (5, 9):
        X = rows(width)
        model = stack(hidden=[4, 3], **options).fit(X)
        older = stack(layers=[width, 4, 3], **options).fit(X)
        assert model.n_features_in_ == width and model.layers_ == [width, 4, 3]
        assert older.layers_ == [width, 4, 3]
        np.testing.assert_array_equal(model.transform(X), older.transform(X))
        assert model.get_params()["hidden"] == [4, 3] and model.get_params()["layers"] is None
    with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 9 features"):
        model.transform(rows(3))


@pytest.mark.parametrize("stack", STACKS)
def test_neither_size_given_is_two_hidden_layers_of_500(stack):
    assert stack()._hidden_sizes() == [500, 500]
    assert repr(stack()) == f"{stack.__name__}()"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("options, message", [
    ({"hidden": [4], "layers": [6, 4]}, r"^give hidden=\[4\] \(the hidden layers; the width "
                                        r"comes from X\) or layers=\[6, 4\] \(the width "
                                        r"first\), not both$"),
    ({"hidden": []}, r"hidden must list at least one size \[n_hidden, ...\], got \[\]"),
    ({"hidden": [4, 0]}, r"^every entry of hidden must be >= 1, got 0 in hidden=\[4, 0\]: give "
                         r"every layer at least one unit$"),
    ({"hidden": [4, -3]}, r"^every entry of hidden must be >= 1, got -3"),
    ({"hidden": np.array([4.0, 3.0])}, r"^every entry of hidden must be a whole number of "
                                       r"units, got 4\.0 in hidden=\[4\.0, 3\.0\]: give "
                                       r"hidden=\[4, 3\]$"),
    ({"hidden": [4, 2.5]}, r"got 2\.5 in hidden=\[4, 2\.5\]: give whole numbers of units"),
    ({"hidden": np.array([[4, 3]])}, r"^hidden must be one size per layer \[n_hidden, ...\], "
                                     r"got an array of shape \(1, 2\): give a flat list"),
    ({"hidden": "4-3"}, r"^hidden must be a whole number of units .* got '4-3': give "
                        r"hidden=\[4, 3\]$"),
    ({"layers": np.array([6.0, 4.0])}, r"^every entry of layers .* give layers=\[6, 4\]$"),
    ({"layers": [6]}, r"layers must list at least two sizes \[n_visible, n_hidden, ...\]")])
def test_sizes_that_cannot_be_used_are_refused_at_fit_in_one_line(stack, options, message):
    model = stack(**options)                   # scikit-learn's rule: __init__ only stores
    with pytest.raises(ValueError, match=message) as refusal:
        model.fit(rows(6))
    assert "\n" not in str(refusal.value)


@pytest.mark.parametrize("stack", STACKS + [dlcore.DBNClassifier])
@pytest.mark.parametrize("hidden", [np.array([4, 3]), np.array([4, 3], np.uint16),
                                    [np.int64(4), np.int32(3)], (4, 3), range(4, 2, -1)])
def test_any_sequence_of_whole_sizes_is_taken_as_the_list_it_stands_for(
        stack, hidden, tmp_path):
    # DBN and StackedAutoencoder refused a NumPy array ("pass hidden.tolist()") where
    # DBNClassifier, models.mlp and scikit-learn's hidden_layer_sizes take one
    X, y = rows(6), np.arange(30) % 2
    options = ({"pretrain_epochs": 1, "epochs": 0, "pretrain_batch_size": 10,
                "validation_split": 0.0} if stack is dlcore.DBNClassifier else
               {"epochs": 1, "batch_size": 10})
    model = stack(hidden=hidden, seed=0, backend="cpu", **options).fit(X, y)
    listed = stack(hidden=[4, 3], seed=0, backend="cpu", **options).fit(X, y)
    assert model.get_params()["hidden"] is hidden    # kept as given (scikit-learn's clone)
    if stack is dlcore.DBNClassifier:
        np.testing.assert_array_equal(model.predict_proba(X), listed.predict_proba(X))
        return
    assert model.layers_ == [6, 4, 3]
    assert all(type(size) is int for size in model.layers_)
    np.testing.assert_array_equal(model.transform(X), listed.transform(X))
    dlcore.save(model, tmp_path / "model.h5")   # the file's JSON holds the list of ints
    loaded = dlcore.load(tmp_path / "model.h5")
    assert loaded.get_params()["hidden"] == [4, 3]
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))


def test_mlp_takes_the_sizes_the_stacks_take_and_refuses_them_in_the_same_words():
    sizes = [layer.units for layer in dlcore.models.mlp(input_shape=(6,), hidden=np.array(
        [4, 3]), n_classes=2).layers]
    assert sizes == [4, 3, 2]
    with pytest.raises(ValueError, match=r"^every entry of hidden must be a whole number of "
                                         r"units, got 4\.0 .*: give hidden=\[4, 3\]$"):
        dlcore.models.mlp(input_shape=(6,), hidden=np.linspace(4, 3, 2))


def test_supervised_pretraining_takes_layers_as_dbn_takes_them():
    from dlcore.pretraining import supervised_greedy
    X, y = rows(6, n=8), np.arange(8) % 2
    network = supervised_greedy(np.array([6, 4]), X, y, epochs=1, backend="reference")
    assert network.get_layer("supervised1").units == 4
    with pytest.raises(ValueError, match=r"^every entry of layers must be >= 1, got 0"):
        supervised_greedy([6, 0], X, y)


@pytest.mark.parametrize("stack", STACKS)
def test_scikit_learns_name_of_the_hidden_sizes_is_answered_with_ours(stack):
    with pytest.raises(TypeError, match=f"{stack.__name__} has no parameter "
                                        "'hidden_layer_sizes' .*dlcore calls it hidden"):
        stack(hidden_layer_sizes=(4,))


@pytest.mark.parametrize("stack", STACKS)
def test_a_stack_given_hidden_round_trips_through_its_file_and_pickle(stack, tmp_path):
    import pickle
    X = rows(7)
    model = stack(hidden=[4, 3], epochs=1, batch_size=10, seed=0, backend="cpu").fit(X)
    dlcore.save(model, tmp_path / "model.h5")
    for loaded in (dlcore.load(tmp_path / "model.h5"), pickle.loads(pickle.dumps(model))):
        assert loaded.get_params() == model.get_params() | {"hidden": [4, 3]}
        assert loaded.layers_ == [7, 4, 3] and loaded.n_features_in_ == 7
        np.testing.assert_array_equal(loaded.transform(X), model.transform(X))


@pytest.mark.parametrize("stack, group", [(dlcore.DBN, "rbms/rbm_0"),
                                          (dlcore.StackedAutoencoder, "autoencoders/ae_0")])
def test_a_file_giving_both_sizes_or_sizes_its_layers_lack_is_refused(stack, group, tmp_path):
    import json
    model = stack(hidden=[4, 3], epochs=1, batch_size=10, seed=0, backend="cpu").fit(rows(7))
    path = tmp_path / "model.h5"
    dlcore.save(model, path)
    with h5py.File(path, "a") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        h5file.attrs["hyperparameters"] = json.dumps({**config, "layers": [7, 4, 3]})
    with pytest.raises(dlcore.io.ModelFileError, match="or hidden = .*not both"):
        dlcore.load(path)
    dlcore.save(model, path)
    with h5py.File(path, "a") as h5file:   # the second layer's weights, for 4 inputs, bottom
        config = json.loads(h5file.attrs["hyperparameters"])
        h5file.attrs["hyperparameters"] = json.dumps({**config, "hidden": [5, 3]})
    with pytest.raises(dlcore.io.ModelFileError, match=f"{group}"):
        dlcore.load(path)


def test_files_written_with_layers_before_hidden_existed_load_and_answer_as_then():
    then = np.load(FIXTURES / "dlcore_layers_2026_12.npz")
    dbn = dlcore.load(FIXTURES / "dlcore_dbn_layers_2026_12.h5")
    assert dbn.layers == [6, 4, 3] and dbn.hidden is None and dbn.layers_ == [6, 4, 3]
    assert dbn.generative_ is not None and dbn.n_labels == 2
    # as then to float64 rounding: the fixture's machine (AVX-512) and an AVX2 one differ in
    # the last bit of a product or an exp (seen: 1.1e-16); another layer order misses by far
    answers_as_then = functools.partial(np.testing.assert_allclose, rtol=1e-12, atol=0)
    answers_as_then(dbn.transform(then["X"]), then["dbn_transform"])
    answers_as_then(dbn.predict_proba(then["X"]), then["dbn_proba"])
    stack = dlcore.load(FIXTURES / "dlcore_stacked_autoencoder_layers_2026_12.h5")
    assert stack.layers == [6, 4, 3] and stack.layers_ == [6, 4, 3]
    answers_as_then(stack.transform(then["X"]), then["sae_transform"])
    answers_as_then(stack.reconstruct(then["X"]), then["sae_reconstruct"])
    # fitted again, it stays the older form: data of another width is refused as it was
    with pytest.raises(ValueError, match=r"layers\[0\] is 6.*or give hidden=\[4, 3\] alone"):
        stack.fit(rows(5))


def test_a_dbn_without_label_units_has_no_classifier_methods_as_scikit_learns_available_if():
    # hasattr(dbn, "predict") was True and calling it a RuntimeError: scikit-learn (its
    # checks, cross_val_predict) asks hasattr before calling
    dbn = dlcore.DBN(hidden=[3], epochs=1, batch_size=10, backend="cpu").fit(rows(5))
    for name in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        assert not hasattr(dbn, name)
        with pytest.raises(RuntimeError, match=rf"^{name} needs a DBN trained with label "
                                               r"units: .*to_network\(n_classes=10\)"):
            getattr(dbn, name)(rows(5))
    labelled = dlcore.DBN(hidden=[3], n_labels=2, epochs=1, batch_size=10, backend="cpu")
    labelled.fit(rows(5), np.arange(30) % 2)
    assert labelled.predict(rows(5)).shape == (30,)


def test_the_stacks_fit_adds_only_trailing_underscore_attributes():
    for stack in STACKS:
        model = stack(hidden=[3], epochs=1, batch_size=10, backend="cpu")
        before = dict(vars(model))
        model.fit(rows(5))
        added = set(vars(model)) - set(before)
        assert all(name.endswith("_") or name.startswith("_") for name in added), added
        assert model.history is model.history_ and "history" not in vars(model)


@pytest.mark.parametrize("stack", STACKS)
def test_one_number_for_hidden_is_one_hidden_layer_as_scikit_learn_takes_it(stack, tmp_path):
    # hidden_layer_sizes=100 (MLPClassifier's int) was answered with "dlcore calls it hidden,
    # e.g. hidden=100", which was then refused: "hidden must list at least one size"
    with pytest.raises(TypeError, match=r"dlcore calls it hidden, e\.g\. .*\(hidden=4\)"):
        stack(hidden_layer_sizes=4)
    options = {"epochs": 1, "batch_size": 10, "seed": 0, "backend": "cpu"}
    X = rows(6)
    model = stack(hidden=4, **options).fit(X)
    listed = stack(hidden=[4], **options).fit(X)
    assert model.layers_ == [6, 4] and model.get_params()["hidden"] == 4
    np.testing.assert_array_equal(model.transform(X), listed.transform(X))
    dlcore.save(model, tmp_path / "model.h5")
    loaded = dlcore.load(tmp_path / "model.h5")
    assert loaded.get_params()["hidden"] == [4]       # the file holds the list it stands for
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    with pytest.raises(ValueError, match=r"^give hidden=\[4\] .* or layers=\[6, 4\]"):
        stack(hidden=4, layers=[6, 4]).fit(X)


def test_one_number_for_a_dbn_classifiers_hidden_is_one_hidden_layer():
    X, y = rows(6, n=20), np.arange(20) % 2
    options = {"pretrain_epochs": 1, "epochs": 0, "pretrain_batch_size": 10, "batch_size": 10,
               "validation_split": 0.0, "seed": 0, "backend": "reference"}
    model = dlcore.DBNClassifier(hidden=3, **options).fit(X, y)
    listed = dlcore.DBNClassifier(hidden=[3], **options).fit(X, y)
    np.testing.assert_array_equal(model.predict_proba(X), listed.predict_proba(X))


@pytest.mark.parametrize("make", [dlcore.DBN, dlcore.StackedAutoencoder, dlcore.DBNClassifier])
@pytest.mark.parametrize("hidden, fix", [(100.0, r"got 100\.0: give hidden=100$"),
                                         (np.float64(8.0), r"got .*8\.0\)?: give hidden=8$"),
                                         (2.5, r"got 2\.5$"), (True, "got True$")])
def test_a_number_for_hidden_that_is_not_whole_is_refused_as_such(make, hidden, fix):
    # one whole number is one layer: 100.0 (a grid's np.linspace value) was told "hidden must
    # list at least one size [n_hidden, ...]", a list, where hidden=100 does
    model = make(hidden=hidden)
    assert model.get_params()["hidden"] is hidden   # stored, refused at fit (scikit-learn)
    with pytest.raises(ValueError, match=r"^hidden must be a whole number of units \(one "
                                         r"hidden layer, as hidden=100\) or a list of them "
                                         + r"\[n_hidden, \.\.\.\], " + fix):
        model.fit(rows(6, n=10), np.arange(10) % 2)

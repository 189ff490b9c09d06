"""DBNClassifier.partial_fit (dlcore/dbn/classifier.py): MLPClassifier's partial_fit for a
pretrained network: the first call pretrains one pass and fine-tunes one epoch, later calls
fine-tune one epoch each.

Oracles: fit where both are the same steps (pretrain_epochs=1, epochs=k, no validation split),
bit for bit on cpu; scikit-learn's rules for ``classes`` and n_features_in_.
"""
import warnings

import numpy as np
import pytest

import dlcore

X = np.random.default_rng(0).random((40, 9)).astype(np.float32)
NAMES = np.array(["cat", "dog", "owl"])[np.random.default_rng(1).integers(0, 3, 40)]
OPTIONS = {"hidden": (6,), "pretrain_batch_size": 10, "batch_size": 8, "dropout": 0.0,
           "input_dropout": 0.0, "shift": 0, "seed": 2, "backend": "cpu"}


def test_calls_on_one_batch_are_the_fit_of_as_many_fine_tuning_epochs():
    steps = dlcore.DBNClassifier(**OPTIONS)
    steps.partial_fit(X, NAMES).partial_fit(X, NAMES)
    whole = dlcore.DBNClassifier(**OPTIONS, pretrain_epochs=1, epochs=2,
                                 validation_split=0.0).fit(X, NAMES)
    np.testing.assert_array_equal(steps.predict_proba(X), whole.predict_proba(X))
    assert steps.n_iter_ == 2 and steps.loss_curve_ == whole.loss_curve_


def test_the_first_calls_classes_name_the_labels_to_come_and_the_width_is_kept():
    model = dlcore.DBNClassifier(**OPTIONS)
    model.partial_fit(X[:6], np.array(["cat"] * 6), classes=["owl", "dog", "cat"])
    model.partial_fit(X[6:], NAMES[6:])
    assert model.classes_.tolist() == ["cat", "dog", "owl"] and model.n_features_in_ == 9
    assert model.predict_proba(X).shape == (40, 3)
    with pytest.raises(ValueError, match="y holds 'emu', which is not one of the classes"):
        model.partial_fit(X[:2], ["emu", "cat"])
    with pytest.raises(ValueError, match="X has 4 features, but DBNClassifier is expecting 9"):
        model.partial_fit(X[:2, :4], ["dog", "cat"])
    # scikit-learn's partial_fit refuses other classes after the first call (they were
    # silently ignored: the network's three outputs stayed, a fourth label went unlearnt)
    model.partial_fit(X[:2], ["dog", "cat"], classes=["owl", "cat", "dog"])   # the same
    with pytest.raises(ValueError, match=r"classes=\['cat', 'dog', 'emu', 'owl'\] are not "
                                         "the first call's"):
        model.partial_fit(X[:2], ["dog", "cat"], classes=["cat", "dog", "owl", "emu"])


def test_a_refit_stopped_by_ctrl_c_keeps_the_feature_names_of_the_network_it_keeps(
        monkeypatch):
    pandas = pytest.importorskip("pandas")
    from dlcore.training import TrainingLoop
    rows = np.random.default_rng(0).random((24, 6)).astype(np.float32)
    labels = np.arange(24) % 2
    clf = dlcore.DBNClassifier(hidden=[4], pretrain_epochs=1, epochs=1, seed=0, backend="cpu")
    clf.fit(pandas.DataFrame(rows, columns=list("abcdef")), labels)

    def press(*arguments, **options):
        raise KeyboardInterrupt
    monkeypatch.setattr(TrainingLoop, "fit", press)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(pandas.DataFrame(rows, columns=list("uvwxyz")), labels)
    monkeypatch.undo()
    # the names of the refit's columns with the network of the first fit: predict on the
    # first fit's own columns was refused, on the refit's it used the old network
    assert list(clf.feature_names_in_) == list("abcdef")
    clf.predict(pandas.DataFrame(rows, columns=list("abcdef")))


@pytest.mark.parametrize("weights", [np.ones(40), np.linspace(0.5, 2.0, 40)])
def test_weights_given_third_as_mlp_classifier_takes_them_are_told_to_go_by_name(weights):
    # MLPClassifier.partial_fit(X, y, sample_weight, classes); DBNClassifier keeps
    # SGDClassifier's (X, y, classes, sample_weight): the weights were checked as classes and
    # the line blamed y ("y holds continuous values", "y holds 1 class")
    X = (np.random.default_rng(0).random((40, 6)) < 0.5).astype(np.float32)
    y = np.arange(40) % 2
    with pytest.raises(ValueError, match=r"^classes .*sample_weight=") as error:
        dlcore.DBNClassifier(hidden=(4,), backend="cpu").partial_fit(X, y, weights)
    assert "y holds" not in str(error.value) and "\n" not in str(error.value)


def test_count_weights_given_third_whose_values_are_labels_are_not_taken_as_classes():
    # bagging-like counts 0, 1, 2 with y in {0, 1}, given where MLPClassifier takes them:
    # they passed as classes (0, 1, 2), the weights were ignored and a third class learnt
    X = (np.random.default_rng(0).random((12, 6)) < 0.5).astype(np.float32)
    y = np.arange(12) % 2
    counts = np.arange(12) % 3
    model = dlcore.DBNClassifier(hidden=(4,), backend="cpu")
    with pytest.raises(ValueError, match=r"^classes \[0, 1, 2, \.\.\.\] \(12 values\) repeat "
                                         r"labels \(3 distinct\): .*sample_weight=w") as error:
        model.partial_fit(X, y, counts)
    assert "\n" not in str(error.value) and not hasattr(model, "classes_")


def test_classes_that_repeat_labels_are_taken_once_where_they_cannot_be_weights():
    # partial_fit(X, y, classes=y), scikit-learn's habit (it takes np.unique(classes)), was
    # refused as "repeat labels"; so was classes=y_all, the labels of every batch to come
    first = dlcore.DBNClassifier(**OPTIONS).partial_fit(X[:20], NAMES[:20], classes=NAMES[:20])
    once = dlcore.DBNClassifier(**OPTIONS).partial_fit(X[:20], NAMES[:20],
                                                       classes=np.unique(NAMES[:20]))
    assert first.classes_.tolist() == once.classes_.tolist() == sorted(set(NAMES[:20]))
    np.testing.assert_array_equal(first.predict_proba(X), once.predict_proba(X))
    first.partial_fit(X[20:], NAMES[20:], classes=NAMES[20:])   # the same classes, repeated
    with pytest.warns(UserWarning, match="repeat labels, taken once"):
        streamed = dlcore.DBNClassifier(**OPTIONS).partial_fit(X[:6], NAMES[:6], classes=NAMES)
    assert streamed.classes_.tolist() == ["cat", "dog", "owl"]


def test_unsliced_weights_given_third_are_taken_as_classes_with_a_warning():
    # partial_fit(X_batch, y_batch, w_all): count weights of every row (0, 1, 2), y in {0, 1},
    # cannot be told from classes=y_all by their values; scikit-learn takes them silently,
    # which trained a phantom third class with the weights ignored and nothing said
    X = (np.random.default_rng(0).random((12, 6)) < 0.5).astype(np.float32)
    y = np.arange(12) % 2
    w_all = np.arange(30) % 3
    with pytest.warns(UserWarning) as caught:
        model = dlcore.DBNClassifier(hidden=(4,), backend="cpu").partial_fit(X, y, w_all)
    (warning,) = [item for item in caught if "classes" in str(item.message)]
    assert str(warning.message).startswith(
        "classes [0, 1, 2, ...] (30 values) repeat labels, taken once (np.unique(classes): "
        "3 classes); if these are sample weights, pass them by name: ")
    assert "sample_weight=w" in str(warning.message) and "\n" not in str(warning.message)
    assert warning.filename == __file__ and model.classes_.tolist() == [0, 1, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # y itself, and labels given once, say nothing
        model.partial_fit(X, y, classes=[0, 1, 2])
        dlcore.DBNClassifier(hidden=(4,), backend="cpu").partial_fit(X, y, classes=y)


def test_classes_y_all_given_at_every_call_warn_once_per_estimator():
    # a stream passing classes=y_all at every call, as scikit-learn's examples do, was warned
    # at every call under warnings "always" (and from each line of a loop's calls)
    model = dlcore.DBNClassifier(**OPTIONS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for batch in range(3):
            rows = slice(10 * batch, 10 * batch + 10)
            model.partial_fit(X[rows], NAMES[rows], classes=NAMES)
        dlcore.DBNClassifier(**OPTIONS).partial_fit(X[:6], NAMES[:6], classes=NAMES)
    said = [str(item.message) for item in caught if "repeat labels" in str(item.message)]
    assert len(said) == 2, said   # the first estimator's first call, the second's


def test_a_repeated_classes_warning_made_an_error_stops_the_same_call_again():
    # the estimator noted the warning as said before saying it: under -W error the first
    # call raised and the same call again went through without a word
    model = dlcore.DBNClassifier(**OPTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            with pytest.raises(UserWarning, match="repeat labels"):
                model.partial_fit(X[:10], NAMES[:10], classes=NAMES)


def test_sample_weights_reach_a_dbn_classifier_and_a_wrapper_under_metadata_routing():
    # with sklearn.set_config(enable_metadata_routing=True) a Pipeline or a search refused
    # the weights ("not routed to any object"): set_fit_request did not exist to ask for them
    import pickle

    import sklearn
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline

    from dlcore.wrappers import SKLearnClassifier
    weights = np.linspace(0.5, 2.0, 40)
    rows, labels = X[:40], NAMES[:40]
    options = {**OPTIONS, "epochs": 1, "pretrain_epochs": 1}
    with pytest.raises(RuntimeError, match="only available when metadata routing is enabled"):
        dlcore.DBNClassifier(**options).set_fit_request(sample_weight=True)
    unrouted = make_pipeline(dlcore.BernoulliRBM(n_hidden=4, epochs=1, backend="cpu", seed=0),
                             dlcore.DBNClassifier(**options)).fit(
        rows, labels, dbnclassifier__sample_weight=weights).predict_proba(rows)
    scores = cross_val_score(dlcore.DBNClassifier(**options), rows, labels, cv=2,
                             params={"sample_weight": weights})
    with sklearn.config_context(enable_metadata_routing=True):
        classifier = dlcore.DBNClassifier(**options).set_fit_request(
            sample_weight=True).set_score_request(sample_weight=False)
        routed = make_pipeline(dlcore.BernoulliRBM(n_hidden=4, epochs=1, backend="cpu", seed=0),
                               classifier).fit(rows, labels, sample_weight=weights)
        np.testing.assert_array_equal(routed.predict_proba(rows), unrouted)
        np.testing.assert_array_equal(cross_val_score(
            classifier, rows, labels, cv=2, params={"sample_weight": weights}), scores)
        for copy in (clone(classifier), pickle.loads(pickle.dumps(classifier))):
            assert copy.get_metadata_routing().fit.requests == {"sample_weight": True}
            assert copy.get_metadata_routing().score.requests == {"sample_weight": False}
        assert dlcore.DBNClassifier().set_partial_fit_request(
            sample_weight="w").get_metadata_routing().partial_fit.requests == {
                "sample_weight": "w"}
        wrapper = SKLearnClassifier(lambda X, y: None).set_fit_request(sample_weight=True)
        assert wrapper.get_metadata_routing().fit.requests == {"sample_weight": True}
        assert wrapper.get_metadata_routing().score.requests == {"sample_weight": None}


def test_the_metadata_routing_given_is_a_copy_that_leaves_the_estimator_s_choices():
    # get_metadata_routing returned the estimator's own MetadataRequest once a
    # set_fit_request had been made: what a caller did to it (scikit-learn's is a copy)
    # changed which weights the estimator asked for
    import sklearn
    with sklearn.config_context(enable_metadata_routing=True):
        classifier = dlcore.DBNClassifier().set_fit_request(sample_weight=True)
        classifier.get_metadata_routing().fit.add_request(param="sample_weight", alias=False)
        assert classifier.get_metadata_routing().fit.requests == {"sample_weight": True}
        assert classifier.get_metadata_routing() is not classifier.get_metadata_routing()


def test_a_refused_first_call_leaves_the_model_unfitted_for_scikit_learn_too():
    # the first call took the table's names before its values were refused: the unfitted
    # model had a feature_names_in_, and scikit-learn's check_is_fitted (a Pipeline's, a
    # FrozenEstimator's) took it for fitted while predict said it was not
    pandas = pytest.importorskip("pandas")
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted
    columns = [f"pixel{i}" for i in range(9)]
    refused = pandas.DataFrame(np.where(X > 0.5, np.nan, X), columns=columns)
    model = dlcore.DBNClassifier(**OPTIONS)
    with pytest.raises(ValueError, match="NaN"):
        model.partial_fit(refused, NAMES, classes=["cat", "dog", "owl"])
    assert not hasattr(model, "feature_names_in_")
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    # a first call that goes through takes them
    model.partial_fit(pandas.DataFrame(X, columns=columns), NAMES)
    assert list(model.feature_names_in_) == columns

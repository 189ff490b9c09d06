"""dlcore networks as scikit-learn estimators (dlcore.wrappers, Keras 3's keras.wrappers API).

Oracles: scikit-learn's own estimator checks (every one of the installed scikit-learn, on the
three wrappers); a grid search with two worker processes; Keras's wrapper behaviour (one-hot targets
for the model function, a fresh network at each fit, labels mapped back); the network the
wrapper fits against the same network fitted by hand.
"""
import pickle
import re

import numpy as np
import pytest

import dlcore
from dlcore.layers import Dense
from dlcore.wrappers import SKLearnClassifier, SKLearnRegressor, SKLearnTransformer

sklearn = pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import _get_check_estimator_ids, parametrize_with_checks  # noqa: E402


def mlp(X, y, hidden=16, loss="categorical_crossentropy", output="softmax", seed=0):
    """Keras's example model function, in dlcore: sizes read from the data."""
    network = dlcore.Sequential([Dense(hidden, activation="relu"),
                                 Dense(y.shape[1], activation=output)],
                                input_shape=(X.shape[1],), backend="cpu", seed=seed)
    network.compile(loss, dlcore.optimizers.Adam(0.01))
    return network


def classifier(**options):
    return SKLearnClassifier(mlp, fit_kwargs={"epochs": 30, "batch_size": 16}, **options)


def regressor(**options):
    return SKLearnRegressor(mlp, model_kwargs={"loss": "mse", "output": "linear"},
                            fit_kwargs={"epochs": 30, "batch_size": 16}, **options)


def transformer(**options):
    return SKLearnTransformer(mlp, model_kwargs={"loss": "mse", "output": "linear"},
                              fit_kwargs={"epochs": 30, "batch_size": 16}, **options)


def address_free_id(value):
    """scikit-learn's test id of an estimator or check without the model function's memory
    address, which differs between pytest-xdist's worker processes (they must collect the same
    test names)."""
    return re.sub(r"at0x[0-9a-f]+", "", _get_check_estimator_ids(value))


ESTIMATOR_CHECKS = parametrize_with_checks(
    [classifier(), regressor(), transformer(), transformer(target="X")]).mark


@pytest.mark.parametrize(*ESTIMATOR_CHECKS.args, ids=address_free_id)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def blobs(n=120, seed=0):
    rs = np.random.default_rng(seed)
    labels = rs.integers(0, 3, n)
    return (rs.standard_normal((n, 4)) + 3 * np.eye(3, 4)[labels]).astype(np.float32), labels


def test_the_model_function_gets_one_hot_targets_and_labels_come_back():
    X, labels = blobs()
    names = np.array(["cat", "dog", "emu"])[labels]
    seen = {}

    def model(X, y, **kwargs):
        seen["X"], seen["y"] = X, y
        return mlp(X, y, **kwargs)
    clf = SKLearnClassifier(model, model_kwargs={"hidden": 8},
                            fit_kwargs={"epochs": 40}).fit(X, names)
    assert seen["X"].shape == (120, 4) and seen["y"].shape == (120, 3)
    np.testing.assert_array_equal(seen["y"].argmax(axis=1), labels)
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    assert clf.score(X, names) > 0.9
    assert set(clf.predict(X)) <= {"cat", "dog", "emu"}
    assert clf.decision_function(X).shape == (120, 3)
    assert len(clf.history_["loss"]) == 40 and clf.model_.layers[0].units == 8


def test_the_wrapper_fits_the_network_a_hand_fit_gives():
    X, labels = blobs()
    clf = classifier().fit(X, labels)
    by_hand = mlp(X, np.eye(3)[labels])
    by_hand.fit(X, np.eye(3, dtype=np.float32)[labels], epochs=30, batch_size=16, verbose=0)
    np.testing.assert_array_equal(clf.decision_function(X), by_hand.predict(X))


def test_two_classes_give_scikit_learns_one_score_per_row():
    X, labels = blobs()
    binary = labels % 2
    clf = classifier().fit(X, binary)
    scores = clf.decision_function(X)
    outputs = clf.model_.predict(X)
    np.testing.assert_allclose(scores, outputs[:, 1] - outputs[:, 0])
    np.testing.assert_array_equal(clf.predict(X), (scores > 0).astype(int))


def test_a_compiled_network_is_rebuilt_fresh_at_each_fit_and_left_as_it_was():
    X, labels = blobs()
    network = mlp(X, np.eye(3)[labels], hidden=6)
    before = network.get_config()
    clf = SKLearnClassifier(network, fit_kwargs={"epochs": 5}).fit(X, labels)
    assert clf.model_ is not network and not network.history
    assert network.get_config() == before
    first = clf.decision_function(X)
    np.testing.assert_array_equal(clf.fit(X, labels).decision_function(X), first)


def test_warm_start_trains_the_fitted_network_on():
    X, labels = blobs()
    clf = classifier(warm_start=True).fit(X, labels)
    network = clf.model_
    clf.fit(X, labels, epochs=3)           # fit's own keyword arguments take precedence
    assert clf.model_ is network and network.epochs_done == 33
    with pytest.raises(ValueError, match="X has 3 features; the network fitted before"):
        clf.fit(X[:, :3], labels)
    with pytest.raises(ValueError, match="y holds the classes \\[0, 1\\], the network fitted "
                                         "before \\(warm start\\) \\[0, 1, 2\\]"):
        clf.fit(X[labels < 2], labels[labels < 2])
    assert clf.model_ is network and network.epochs_done == 33


def test_a_regressor_gives_back_the_shape_of_its_targets():
    rs = np.random.default_rng(1)
    X = rs.standard_normal((150, 5)).astype(np.float32)
    y = X @ np.linspace(-1, 1, 5)
    model = regressor().fit(X, y)
    assert model.predict(X).shape == (150,) and model.score(X, y) > 0.9
    two = np.stack([y, -y], axis=1)
    assert regressor().fit(X, two).predict(X).shape == (150, 2)
    # R^2 as scikit-learn computes it, weights too
    from sklearn.metrics import r2_score
    weights = rs.random(150)
    assert model.score(X, y, weights) == pytest.approx(
        r2_score(y, model.predict(X), sample_weight=weights), rel=1e-9)


def test_grid_search_with_two_workers_reaches_inside_model_kwargs():
    from sklearn.model_selection import GridSearchCV
    X, labels = blobs()
    search = GridSearchCV(SKLearnClassifier(mlp, fit_kwargs={"epochs": 20}),
                          {"model_kwargs": [{"hidden": 2}, {"hidden": 16}]}, cv=3, n_jobs=2)
    search.fit(X, labels)
    assert search.best_params_ == {"model_kwargs": {"hidden": 16}}
    assert search.best_estimator_.model_.layers[0].units == 16


def test_a_refit_that_ends_in_an_exception_leaves_the_fitted_wrapper_as_it_was():
    from dlcore.callbacks import LambdaCallback
    X, labels = blobs(n=48)
    clf = SKLearnClassifier(mlp, fit_kwargs={"epochs": 2, "batch_size": 16})
    clf.fit(X, np.array(["cat", "dog", "emu"])[labels])
    before = clf.predict(X)

    def press(epoch, logs):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):   # a refit on other labels, Ctrl-C in its epoch
        clf.fit(X, labels % 2, callbacks=[LambdaCallback(on_epoch_begin=press)])
    with pytest.raises(ValueError, match="epochs"):
        clf.fit(X, labels % 2, epochs=-1)
    # the labels of the refit were mapped onto the network fitted before: ['0' '1' ...]
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    np.testing.assert_array_equal(clf.predict(X), before)


def test_fitted_wrappers_pickle_as_their_networks_files_do():
    X, labels = blobs()
    clf = classifier().fit(X, labels)
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.decision_function(X), clf.decision_function(X))
    assert copy.history_ == clf.history_ and list(copy.classes_) == list(clf.classes_)
    assert b"__dict__" not in pickle.dumps(clf)


def test_misuse_is_refused_in_one_line():
    X, labels = blobs()
    with pytest.raises(TypeError, match="model must be a compiled dlcore network or a function"):
        SKLearnClassifier("mlp").fit(X, labels)
    with pytest.raises(TypeError, match="must return a dlcore network"):
        SKLearnClassifier(lambda X, y: "not a network").fit(X, labels)

    def uncompiled(X, y):
        return dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(4,))
    with pytest.raises(RuntimeError, match="the network must be compiled"):
        SKLearnClassifier(uncompiled).fit(X, labels)
    with pytest.raises(ValueError, match="the network gives 2 outputs for 3 classes: its last "
                                         "layer needs one unit per class"):
        SKLearnClassifier(lambda X, y: mlp(X, y[:, :2])).fit(X, labels)

    def unbuilt(X, y):      # no input shape: built on X, then its width checked
        network = dlcore.Sequential([Dense(2, activation="softmax")])
        network.compile("categorical_crossentropy", "sgd")
        return network
    with pytest.raises(ValueError, match="the network gives 2 outputs for 3 classes"):
        SKLearnClassifier(unbuilt).fit(X, labels)
    assert SKLearnClassifier(unbuilt).fit(X, labels % 2).model_.input_shape == (4,)
    with pytest.raises(TypeError, match="fit_kwargs must be a dict"):
        SKLearnClassifier(mlp, fit_kwargs=[("epochs", 3)]).fit(X, labels)
    # the network's fit said "TrainingLoop.fit() got an unexpected keyword argument 'epochz'"
    with pytest.raises(TypeError, match=r"^fit_kwargs gives 'epochz', which a network's fit "
                                        r"does not take: did you mean 'epochs'\? it takes "
                                        r"batch_size, epochs, "):
        SKLearnClassifier(mlp, fit_kwargs={"epochz": 3}).fit(X, labels)
    with pytest.raises(TypeError, match=r"^SKLearnClassifier.fit gives 'batchsize', .* did "
                                        r"you mean 'batch_size'\?"):
        SKLearnClassifier(mlp).fit(X, labels, batchsize=4)
    with pytest.raises(TypeError, match="^fit_kwargs gives 'y': SKLearnClassifier hands"):
        SKLearnClassifier(mlp, fit_kwargs={"y": labels}).fit(X, labels)
    with pytest.raises(ValueError, match="Unknown label type"):
        classifier().fit(X, X[:, 0])
    with pytest.raises(dlcore.NotFittedError, match="not fitted yet"):
        classifier().predict(X)
    clf = classifier().fit(X, labels)
    with pytest.raises(ValueError, match="X has 3 features, but SKLearnClassifier is "
                                         "expecting 4 features as input"):
        clf.predict(X[:, :3])


def test_a_transformer_gives_the_networks_outputs_in_a_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    X, labels = blobs()
    pipe = make_pipeline(transformer(), LogisticRegression())
    pipe.fit(X, labels.astype(np.float32))        # the network learns the labels as a target
    embedding = pipe[0]
    np.testing.assert_array_equal(embedding.transform(X), embedding.model_.predict(X))
    assert embedding.transform(X).dtype == np.float32 and pipe.score(X, labels) > 0.9
    assert list(embedding.get_feature_names_out()) == ["sklearntransformer0"]
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(X, columns=list("abcd"), index=np.arange(120) + 1000)
    fitted = transformer().set_output(transform="pandas").fit(frame, labels.astype(float))
    table = fitted.transform(frame)
    assert list(table.columns) == ["sklearntransformer0"] and table.index[0] == 1000
    assert list(fitted.feature_names_in_) == list("abcd")


def test_without_targets_a_transformer_learns_to_reproduce_its_inputs():
    """y None: an autoencoder, whose code is read from a hidden layer afterwards."""
    X, _ = blobs()

    def autoencoder(X, y, code=2):
        network = dlcore.Sequential([Dense(code, activation="linear", name="code"),
                                     Dense(y.shape[1], activation="linear")],
                                    input_shape=(X.shape[1],), seed=0)
        network.compile("mse", dlcore.optimizers.Adam(0.02))
        return network
    fitted = SKLearnTransformer(autoencoder, fit_kwargs={"epochs": 60}).fit(X)
    assert fitted.transform(X).shape == X.shape
    loss = fitted.history_["loss"]
    assert loss[-1] < 0.5 * loss[0]


def code_autoencoder(X, y, code=3):
    """The Keras tutorial's autoencoder, small: a relu code layer named "code", a sigmoid
    reconstruction."""
    network = dlcore.Sequential([Dense(code, activation="relu", name="code"),
                                 Dense(y.shape[1], activation="sigmoid")],
                                input_shape=(X.shape[1],), backend="cpu", seed=0)
    network.compile("binary_crossentropy", dlcore.optimizers.Adam(0.01))
    return network


@pytest.mark.parametrize("output_layer", ["code", 0])
def test_output_layer_makes_an_autoencoders_code_the_features(output_layer):
    # the Keras tutorial's encoder = Model(input, code_layer.output): its code relu(x W + b),
    # by hand from the code layer's weights, not the reconstruction of X
    X, _ = blobs()
    X = (X - X.min()) / (X.max() - X.min())
    encoder = SKLearnTransformer(code_autoencoder, output_layer=output_layer,
                                 fit_kwargs={"epochs": 5}).fit(X)
    W, b = (w.astype(np.float64) for w in encoder.model_.get_layer("code").get_weights())
    codes = encoder.transform(X)
    assert codes.shape == (120, 3) and codes.dtype == np.float32
    np.testing.assert_allclose(codes, np.maximum(X @ W + b, 0), rtol=1e-5, atol=1e-6)
    assert list(encoder.get_feature_names_out()) == [f"sklearntransformer{k}" for k in range(3)]
    reconstruction = SKLearnTransformer(code_autoencoder, fit_kwargs={"epochs": 5}).fit(X)
    assert reconstruction.transform(X).shape == X.shape     # the default: Keras's outputs
    copy = pickle.loads(pickle.dumps(encoder))
    np.testing.assert_array_equal(copy.transform(X), codes)


def test_in_a_pipeline_an_autoencoder_transformer_learns_x_and_ignores_the_labels():
    """scikit-learn's rule: an unsupervised transformer's fit(X, y) ignores y, and a Pipeline
    (like cross_val_score through it) hands every step the labels. With target="X" the
    autoencoder inside learns X, as fitted on X alone, and never sees y; with the default
    (Keras's) its model function is handed the labels as the target."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import Pipeline
    X, labels = blobs()
    X = (X - X.min()) / (X.max() - X.min())
    seen = []

    def spied(X, y, code=3):
        seen.append((X.copy(), y.copy()))
        return code_autoencoder(X, y, code)

    def pipeline(**options):
        return Pipeline([("ae", SKLearnTransformer(spied, output_layer="code",
                                                   fit_kwargs={"epochs": 20}, **options)),
                         ("clf", LogisticRegression())])
    fitted = pipeline(target="X").fit(X, labels)
    alone = SKLearnTransformer(code_autoencoder, output_layer="code",
                               fit_kwargs={"epochs": 20}).fit(X)
    autoencoder = fitted.named_steps["ae"]
    np.testing.assert_array_equal(seen[-1][1], X)
    assert autoencoder.model_.output_shape == (4,)
    np.testing.assert_array_equal(autoencoder.transform(X), alone.transform(X))
    assert autoencoder.history_["loss"] == alone.history_["loss"]
    seen.clear()
    scores = cross_val_score(pipeline(target="X"), X, labels, cv=3)
    assert len(seen) == 3 and all(np.array_equal(rows, y) for rows, y in seen)
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))
    seen.clear()
    with pytest.raises(ValueError, match="binary cross-entropy takes targets in"):
        pipeline().fit(X, labels)      # Keras's default: y is the target, here the labels
    np.testing.assert_array_equal(seen[-1][1].ravel(), labels)


def test_a_target_other_than_y_or_x_is_refused_in_one_line():
    X, _ = blobs()
    with pytest.raises(ValueError, match=r"^target must be 'y' .* or 'X' .*, got 'x'$"):
        SKLearnTransformer(code_autoencoder, target="x").fit(X)


def test_an_output_layer_the_network_lacks_is_refused_before_training():
    X, _ = blobs()
    with pytest.raises(ValueError, match="output_layer='bottleneck': no layer named "
                                         "'bottleneck'; the layers are: code, "):
        SKLearnTransformer(code_autoencoder, output_layer="bottleneck").fit(X)
    with pytest.raises(TypeError, match="output_layer must be a layer's name, its index"):
        SKLearnTransformer(code_autoencoder, output_layer=1.5).fit(X)


def test_class_probabilities_for_soft_voting_and_roc_auc():
    """predict_proba: the softmax outputs, rows summing to 1, argmax = predict; logits
    (from_logits) go through a softmax; a network of neither kind is refused in one line."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.metrics import roc_auc_score
    X, y = blobs()
    fitted = classifier().fit(X, y)
    probabilities = fitted.predict_proba(X)
    assert probabilities.shape == (len(X), 3) and probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(probabilities, fitted.model_.predict(X), atol=1e-6)
    np.testing.assert_array_equal(fitted.classes_[probabilities.argmax(axis=1)],
                                  fitted.predict(X))
    assert roc_auc_score(y, probabilities, multi_class="ovr") > 0.9
    voting = VotingClassifier([("a", classifier()), ("b", classifier(model_kwargs={
        "seed": 1}))], voting="soft").fit(X, y)
    assert voting.score(X, y) > 0.9
    logits = classifier(model_kwargs={"loss": dlcore.losses.CrossEntropy(from_logits=True),
                                      "output": "linear"}).fit(X, y)
    outputs = logits.model_.predict(X).astype(np.float64)
    expected = np.exp(outputs) / np.exp(outputs).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(logits.predict_proba(X), expected, rtol=1e-10)
    relu = classifier(model_kwargs={"loss": "mse", "output": "relu"}).fit(X, y)
    with pytest.raises(ValueError, match="predict_proba needs a network whose outputs are "
                                         "probabilities .* ends in relu"):
        relu.predict_proba(X)


def test_the_classifier_gives_log_probabilities_as_mlp_classifier_does():
    X, labels = blobs(60)
    model = SKLearnClassifier(mlp, fit_kwargs={"epochs": 2, "batch_size": 16}).fit(X, labels)
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(model.predict_proba(X)))


def lenet5_on_flat_rows(X, y):
    """LeNet-5 taking the flattened rows scikit-learn's contract asks for: Reshape first."""
    lenet = dlcore.models.lenet5(n_classes=y.shape[1], backend="reference")
    network = dlcore.Sequential([dlcore.layers.Reshape((1, 28, 28)), *lenet.layers],
                                input_shape=(X.shape[1],), backend="reference")
    network.compile("categorical_crossentropy", "adam")
    return network


def lenet5(X, y):
    """LeNet-5 taking images (n, 1, 28, 28), as a CNN user's model function builds it."""
    network = dlcore.models.lenet5(n_classes=y.shape[1], backend="reference")
    network.compile("categorical_crossentropy", "adam")
    return network


def test_a_network_that_takes_images_is_fitted_on_images_and_cross_validated():
    # scikit-learn's splitters and cross_val_score index only the first axis of X
    from sklearn.model_selection import cross_val_score
    images = np.random.default_rng(0).random((12, 1, 28, 28), dtype=np.float32)
    labels = np.arange(12) % 3
    fitted = SKLearnClassifier(lenet5, fit_kwargs={"epochs": 1}).fit(images, labels)
    assert fitted.input_shape_ == (1, 28, 28) and fitted.n_features_in_ == 784
    np.testing.assert_allclose(fitted.predict_proba(images), fitted.model_.predict(images),
                               rtol=1e-6)
    copy = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(copy.predict(images), fitted.predict(images))
    scores = cross_val_score(SKLearnClassifier(lenet5, fit_kwargs={"epochs": 1}), images,
                             labels, cv=2)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


def test_images_of_another_shape_than_the_networks_are_refused_with_the_fix():
    images = np.random.default_rng(0).random((6, 1, 28, 28), dtype=np.float32)
    labels = np.arange(6) % 3
    channels_last = images.transpose(0, 2, 3, 1)
    with pytest.raises(ValueError, match=r"X has samples of shape \(28, 28, 1\), but the "
                                         r"network takes \(1, 28, 28\): these are "
                                         r"channels-last images; transpose them with "
                                         r"X\.transpose\(0, 3, 1, 2\)"):
        SKLearnClassifier(lenet5, fit_kwargs={"epochs": 1}).fit(channels_last, labels)
    with pytest.raises(ValueError, match=r"X has samples of shape \(1, 28, 28\), but the "
                                         r"network takes \(784,\): give it samples"):
        SKLearnClassifier(lenet5_on_flat_rows(images.reshape(6, -1), np.eye(3)),
                          fit_kwargs={"epochs": 1}).fit(images, labels)
    fitted = SKLearnClassifier(lenet5, fit_kwargs={"epochs": 1}).fit(images, labels)
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(1, 28, 28\): these "
                                         r"are channels-last images"):
        fitted.predict(channels_last)
    with pytest.raises(ValueError, match=r"X has shape \(6, 784\), but SKLearnClassifier was "
                                         r"fitted on samples of shape \(1, 28, 28\)"):
        fitted.predict(images.reshape(6, -1))
    rows = images.reshape(len(images), -1)
    flat = SKLearnClassifier(lenet5_on_flat_rows, fit_kwargs={"epochs": 1}).fit(rows, labels)
    assert flat.predict(rows).shape == (6,) and set(flat.predict(rows)) <= {0, 1, 2}


def convolutional_autoencoder(X, y):
    """Two same-padded convolutions: images in, images of the same shape out."""
    network = dlcore.Sequential([dlcore.layers.Conv2D(2, 3, padding="same", activation="relu"),
                                 dlcore.layers.Conv2D(1, 3, padding="same",
                                                      activation="sigmoid")],
                                input_shape=X.shape[1:], backend="reference")
    network.compile("mse", "adam")
    return network


def test_the_transformer_trains_a_convolutional_autoencoder_to_reproduce_its_images():
    # its target is X itself, images: refused before as "y must be 2-D"
    images = np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32)
    features = SKLearnTransformer(convolutional_autoencoder,
                                  fit_kwargs={"epochs": 1}).fit_transform(images)
    direct = convolutional_autoencoder(images, None)
    direct.fit(images, images, epochs=1, verbose=0)
    np.testing.assert_array_equal(features, direct.predict(images).reshape(8, 64))


def test_a_transformer_asks_for_the_weights_of_fit_only_as_scikit_learn_s_do():
    """SKLearnTransformer had set_score_request and a 'score' in its routing, but no score:
    scikit-learn's own transformer (TransformerMixin, a fit that takes sample_weight) has
    set_fit_request alone."""
    import sklearn
    from sklearn.base import BaseEstimator, TransformerMixin, clone

    class Reference(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None, sample_weight=None):
            return self

        def transform(self, X):
            return X

    def requests(estimator):
        return sorted(name for name in dir(estimator)
                      if re.fullmatch(r"set_\w+_request", name) and hasattr(estimator, name))

    unfitted = transformer()
    assert requests(unfitted) == requests(Reference()) == ["set_fit_request"]
    assert not hasattr(SKLearnTransformer, "set_score_request")
    assert requests(regressor()) == ["set_fit_request", "set_score_request"]
    with sklearn.config_context(enable_metadata_routing=True):
        unfitted.set_fit_request(sample_weight=True)
        for copy in (unfitted, clone(unfitted), pickle.loads(pickle.dumps(unfitted))):
            routing = copy.get_metadata_routing()
            assert routing.fit.requests == {"sample_weight": True}
            assert not routing.score.requests

"""``dlcore.DBNClassifier`` (issue 10): greedy pretraining then fine-tuning in one ``fit``, with
the command line's defaults, scikit-learn style (fit/predict/predict_proba/score, classes_ of
any labels, hyperparameters stored by __init__ and checked by fit), and it pickles."""
import copy
import pickle

import numpy as np
import pytest

import dlcore
from dlcore.dbn import classifier


def two_classes(n=200, width=16, seed=0):
    """Binary rows: class 0 turns on the left half more often, class 1 the right half."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    on = np.where((np.arange(width) < width // 2) ^ y[:, None].astype(bool), 0.7, 0.15)
    return (rng.uniform(size=(n, width)) < on).astype(np.float32), y


# shift=0: the two classes' rows are no images (a shift would move a left half to the right)
SMALL = {"hidden": (12, 8), "pretrain_epochs": 20, "batch_size": 16, "shift": 0,
         "backend": "cpu"}


@pytest.fixture(scope="module")
def fitted():
    X, y = two_classes()
    labels = np.array(["left", "right"])[y]
    return dlcore.DBNClassifier(**SMALL).fit(X[:150], labels[:150]), X[150:], labels[150:]


def test_it_learns_two_classes_and_answers_in_their_labels(fitted):
    model, X_test, y_test = fitted
    assert list(model.classes_) == ["left", "right"] and model.n_features_in_ == 16
    assert model.score(X_test, y_test) >= 0.9
    predicted = model.predict(X_test)
    assert set(predicted) <= {"left", "right"}
    proba = model.predict_proba(X_test)
    assert proba.shape == (50, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(predicted, model.classes_[proba.argmax(axis=1)])
    weights = np.r_[np.ones(25), np.zeros(25)]
    assert model.score(X_test, y_test, sample_weight=weights) == \
        np.mean(predicted[:25] == y_test[:25])
    assert [weights.shape for weights in model.network_.get_weights()] == \
        [(16, 12), (12,), (12, 8), (8,), (8, 2), (2,)]
    assert len(model.dbn_.rbms_) == 2


def test_held_out_rows_a_little_outside_the_unit_interval_are_classified(fitted):
    # a MinMaxScaler fitted on the training rows maps test rows a little beyond [0, 1]; the
    # network computes its sigmoids of them as of any rows (only pretraining refuses them)
    model, X_test, _ = fitted
    beyond = X_test * 1.25 - 0.1
    np.testing.assert_array_equal(model.predict_proba(beyond),
                                  model.network_.predict(beyond.astype(np.float32)))


def test_pretraining_starts_the_fine_tuned_network(fitted):
    """The network's first layer starts as the pretrained RBM (fine-tuning moves it a little)."""
    model, _, _ = fitted
    first = model.network_.get_weights()[0]
    assert first.shape == model.dbn_.rbms_[0].W.shape


@pytest.mark.parametrize("duplicate", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy])
def test_it_pickles_and_deep_copies(fitted, duplicate):
    model, X_test, _ = fitted
    twin = duplicate(model)
    np.testing.assert_array_equal(twin.predict_proba(X_test), model.predict_proba(X_test))
    np.testing.assert_array_equal(twin.predict(X_test), model.predict(X_test))
    assert twin.get_params() == model.get_params()


def test_the_fine_tunings_learning_curves_are_mlp_classifiers_attributes(fitted):
    # MLPClassifier has loss_curve_, n_iter_, validation_scores_ and best_validation_score_
    # (best_loss_ None under early stopping); a DBNClassifier had none of them
    model, _, _ = fitted
    history = model.network_.history
    assert model.loss_curve_ == [float(value) for value in history["loss"]]
    assert model.n_iter_ == len(model.loss_curve_) == len(history["val_loss"])
    assert model.validation_scores_ == [float(value) for value in history["val_accuracy"]]
    kept = int(np.argmin(history["val_loss"]))      # the epoch EarlyStopping restores
    assert model.best_validation_score_ == model.validation_scores_[kept]
    assert model.best_loss_ is None
    twin = pickle.loads(pickle.dumps(model))
    assert (twin.loss_curve_, twin.n_iter_, twin.validation_scores_,
            twin.best_validation_score_) == (model.loss_curve_, model.n_iter_,
                                             model.validation_scores_,
                                             model.best_validation_score_)


def test_without_a_validation_split_the_best_loss_is_the_lowest_training_loss():
    X, y = two_classes(60)
    model = dlcore.DBNClassifier(**{**SMALL, "pretrain_epochs": 1, "epochs": 4,
                                    "validation_split": 0.0}).fit(X, y)
    assert model.n_iter_ == 4 and len(model.loss_curve_) == 4
    assert model.best_loss_ == min(model.loss_curve_)
    assert model.validation_scores_ is None and model.best_validation_score_ is None


def test_hyperparameters_are_stored_then_checked_at_fit():
    model = dlcore.DBNClassifier(hidden=(), learning_rate=-1)
    assert model.get_params()["learning_rate"] == -1
    X, y = two_classes(20)
    with pytest.raises(ValueError, match="hidden"):
        model.fit(X, y)
    with pytest.raises(ValueError, match="optimizer"):
        dlcore.DBNClassifier(optimizer="lbfgs").fit(X, y)


def test_unfitted_use_and_bad_data_are_refused_with_one_line():
    X, y = two_classes(20)
    with pytest.raises(dlcore.NotFittedError, match="fit"):
        dlcore.DBNClassifier().predict(X)
    with pytest.raises(ValueError, match="2 classes"):
        dlcore.DBNClassifier(**SMALL).fit(X, np.zeros(20))
    with pytest.raises(ValueError, match="19 labels"):
        dlcore.DBNClassifier(**SMALL).fit(X, y[:19])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dlcore.DBNClassifier(**SMALL).fit(X * 5, y)


def test_the_defaults_are_the_command_lines():
    """The class's defaults against what `dlcore dbn pretrain` and `dlcore dbn finetune` train
    with below 10,000 images, read from the commands' own options and default rules (not from
    an intermediate constant, which is how 60 epochs and patience 9 outlived the command's 100
    and 16 and its 2-pixel shifts)."""
    from dlcore.cli import dbn
    finetune = {param.name: param.default for param in dbn.finetune_command.params}
    n_rows = 3_600   # mnist-5k's fine-tuning rows
    dropout, input_dropout, lr_decay = dbn.size_defaults(n_rows, finetune["epochs"], None,
                                                         None, None)
    shifts = dbn.image_shifts(784, None, "mnist-5k", n_rows)
    assert lr_decay == 1.0 and set(shifts) == {"max_shift", "horizontal_flip", "image_shape"}
    command = {name: finetune[name] for name in ("optimizer", "learning_rate", "momentum",
                                                 "batch_size", "epochs", "patience",
                                                 "validation_split")}
    command.update(dropout=dropout, input_dropout=input_dropout, shift=shifts["max_shift"])
    assert classifier.FINETUNE_DEFAULTS == command
    assert "-".join(map(str, (784, *classifier.PRETRAIN_DEFAULTS["hidden"]))) == \
        dbn.DEFAULT_LAYERS
    # the library's defaults are the command line's below 10,000 training images
    assert (classifier.PRETRAIN_DEFAULTS["pretrain_epochs"],
            classifier.PRETRAIN_DEFAULTS["pretrain_batch_size"]) == \
        dbn.pretrain_size_defaults(4_000, None, None)
    pretrain = {param.name: param.default for param in dbn.pretrain_command.params}
    assert pretrain["learning_rate"] == classifier.PRETRAIN_DEFAULTS["pretrain_learning_rate"]
    assert pretrain["propagate"] == classifier.PRETRAIN_DEFAULTS["propagate"]
    model = dlcore.DBNClassifier()
    for name, value in {**classifier.PRETRAIN_DEFAULTS, **classifier.FINETUNE_DEFAULTS}.items():
        # shift "auto" is the command's shift on 28 x 28 images (the test below)
        assert getattr(model, name) == ("auto" if name == "shift" else value), name


def test_the_default_shifts_are_the_commands_augmentation_layer():
    """The network fine-tuned on 28 x 28 images starts with the ImageAugmentation layer that
    `dlcore dbn finetune` puts first on mnist-5k (the same layer and config, the maths once),
    which moves training rows only; shift=0 leaves it out."""
    from dlcore.cli import dbn
    from dlcore.layers import ImageAugmentation
    X, y = two_classes(40, width=784)
    model = dlcore.DBNClassifier(hidden=(4,), pretrain_epochs=1, epochs=1, backend="cpu")
    first = model.fit(X, y).network_.layers[0]
    assert isinstance(first, ImageAugmentation)
    command = ImageAugmentation(**dbn.image_shifts(784, None, "mnist-5k", 3_600))
    assert first.get_config() | {"name": None} == command.get_config() | {"name": None}
    assert first.get_config()["max_shift"] == 2 and first.get_config()["image_shape"] == \
        [1, 28, 28]
    np.testing.assert_array_equal(first.forward(X[:5].copy()), X[:5])   # outside training
    unshifted = dlcore.DBNClassifier(hidden=(4,), pretrain_epochs=1, epochs=1, shift=0,
                                     backend="cpu").fit(X, y)
    assert not any(isinstance(layer, ImageAugmentation)
                   for layer in unshifted.network_.layers)


@pytest.mark.parametrize("width", [10, 64])
def test_the_default_shifts_no_rows_but_images_of_28_x_28_pixels_or_more(width):
    """shift="auto" leaves tables of features and small images (8 x 8 digits) unshifted, so
    that a scikit-learn user's fit(X, y) takes any rows in [0, 1] as scikit-learn's do."""
    from dlcore.layers import ImageAugmentation
    X, y = two_classes(20, width=width)
    model = dlcore.DBNClassifier(hidden=(4,), pretrain_epochs=1, epochs=1, backend="cpu")
    assert not any(isinstance(layer, ImageAugmentation)
                   for layer in model.fit(X, y).network_.layers)


def test_shifts_of_rows_that_are_no_square_images_are_refused_with_the_fix():
    X, y = two_classes(20, width=10)
    with pytest.raises(ValueError, match="rows of 10 values are not one.*pass shift=0") as error:
        dlcore.DBNClassifier(**{**SMALL, "shift": 2}).fit(X, y)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="shift"):
        dlcore.DBNClassifier(**{**SMALL, "shift": -1}).fit(X, y)
    # 2x2 images: refused before pretraining, in the estimator's own terms (not max_shift)
    X, y = two_classes(20, width=4)
    with pytest.raises(ValueError, match="shift=2 can move the 2x2 images .*a shift below 2"):
        dlcore.DBNClassifier(**{**SMALL, "shift": 2}).fit(X, y)
    assert dlcore.DBNClassifier(**SMALL).set_params(shift=1).get_params()["shift"] == 1


def test_scikit_learn_clone_and_cross_validation():
    pytest.importorskip("sklearn")
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import cross_val_score
    model = dlcore.DBNClassifier(**SMALL)
    assert is_classifier(model) and clone(model).get_params() == model.get_params()
    X, y = two_classes(120)
    assert cross_val_score(model, X, y, cv=2).mean() >= 0.85


@pytest.mark.slow
def test_it_learns_the_bundled_digits():
    """mnist-5k with the command line's split (100 held-out digits per class): one hidden layer
    of 100, 3 epochs of pretraining, 15 of fine-tuning: 93 % measured (about 12 s)."""
    from dlcore import datasets
    images, labels = datasets.load_mnist_5k()
    train, test = datasets.holdout_split(labels, 100, seed=0)
    X = datasets.to_unit_interval(images).reshape(len(images), -1)
    model = dlcore.DBNClassifier(hidden=(100,), pretrain_epochs=3, epochs=15, backend="cpu")
    model.fit(X[train], labels[train])
    assert model.score(X[test], labels[test]) >= 0.88


@pytest.mark.parametrize("optimizer, name", [("adamw", "AdamW"), ("nadam", "Nadam")])
def test_fine_tuning_takes_adamw_and_nadam(optimizer, name):
    """optimizer="adamw" / "nadam" fine-tune with them (they were refused)."""
    X, y = two_classes(60)
    classifier = dlcore.DBNClassifier(**{**SMALL, "pretrain_epochs": 1, "epochs": 1},
                                      optimizer=optimizer, learning_rate=0.01).fit(X, y)
    assert type(classifier.network_.optimizer).__name__ == name
    assert classifier.network_.optimizer.iterations > 0


def test_sample_weight_weighs_the_fine_tuning_as_mlp_classifiers():
    # MLPClassifier.fit and partial_fit take sample_weight; DBNClassifier refused it
    X, y = two_classes(60)
    weights = np.random.default_rng(3).uniform(0.2, 3.0, 60)
    quick = {**SMALL, "hidden": (6,), "pretrain_epochs": 1, "epochs": 2, "validation_split": 0.25}

    def fitted(sample_weight, **settings):
        model = dlcore.DBNClassifier(**{**quick, **settings})
        return model.fit(X, y, sample_weight=sample_weight).network_

    unweighted, weighted = fitted(None), fitted(weights)
    for one, other in zip(fitted(np.ones(60)).get_weights(), unweighted.get_weights()):
        np.testing.assert_array_equal(one, other)
    assert weighted.history["loss"][0] != unweighted.history["loss"][0]
    # the held-out rows' weights weigh the validation loss only
    _, held_out = dlcore.DBNClassifier(**quick)._split_rows(60, seed=0)
    only_held_out = np.ones(60)
    only_held_out[held_out] = weights[held_out]
    held_out_weighted = fitted(only_held_out)
    assert held_out_weighted.history["loss"][0] == unweighted.history["loss"][0]
    assert held_out_weighted.history["val_loss"][0] != unweighted.history["val_loss"][0]
    # a first partial_fit is fit with one pass, one epoch and no split: weights included
    stepped = dlcore.DBNClassifier(**quick).partial_fit(X, y, sample_weight=weights).network_
    for one, other in zip(stepped.get_weights(), fitted(weights, pretrain_epochs=1, epochs=1,
                                                        validation_split=0).get_weights()):
        np.testing.assert_array_equal(one, other)
    with pytest.raises(ValueError, match=r"one weight per sample, shape \(60,\)"):
        dlcore.DBNClassifier(**quick).fit(X, y, sample_weight=weights[:5])


def test_sample_weight_scaled_as_a_whole_trains_the_same_model_as_mlp_classifiers():
    # MLPClassifier's loss is the weighted mean (np.average): weights given as counts (all 40s)
    # are its weights of 1; the sum over the batch size made them a 40 times larger step
    X, y = two_classes(32)
    weights = np.random.default_rng(4).uniform(0.2, 3.0, 32)
    quick = {**SMALL, "hidden": (6,), "pretrain_epochs": 1, "epochs": 1, "validation_split": 0.25}
    for call in ("fit", "partial_fit"):
        one, scaled = (getattr(dlcore.DBNClassifier(**quick), call)(
            X, y, sample_weight=scale * weights).network_ for scale in (1, 40))
        for mine, theirs in zip(one.get_weights(), scaled.get_weights()):
            np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6, err_msg=call)
        assert one.history["loss"] == pytest.approx(scaled.history["loss"], rel=1e-5)


def test_sample_weight_leaving_the_fit_or_its_held_out_rows_nothing_is_refused_in_one_line():
    # all-zero weights on the held-out rows gave a validation loss of 0 every epoch: early
    # stopping kept the first epoch's weights, silently; on the rows it trains on, nothing learnt
    X, y = two_classes(40)
    quick = {**SMALL, "hidden": (6,), "pretrain_epochs": 1, "epochs": 2, "validation_split": 0.25}
    _, held_out = dlcore.DBNClassifier(**quick)._split_rows(40, seed=0)
    trained_on = np.setdiff1d(np.arange(40), held_out)
    for zero, which in ((held_out, "holds out"), (trained_on, "trains on")):
        weights = np.ones(40)
        weights[zero] = 0
        pattern = rf"sample_weight is zero for every row .*{which}.*validation_split"
        with pytest.raises(ValueError, match=pattern) as error:
            dlcore.DBNClassifier(**quick).fit(X, y, sample_weight=weights)
        assert "\n" not in str(error.value)


def test_a_label_short_of_the_rows_is_named_before_their_weights():
    # X's 40 rows and 40 weights with 39 labels: the line blamed sample_weight ("shape (39,)")
    X, y = two_classes(40)
    with pytest.raises(ValueError, match=r"^X has 40 rows but y has 39 labels"):
        dlcore.DBNClassifier(**SMALL).fit(X, y[:39], sample_weight=np.ones(40))


@pytest.mark.parametrize("call", ["fit", "partial_fit"])
def test_seed_none_draws_one_seed_kept_in_seed_that_fits_the_same_model_again(call):
    # seed=None drew the DBN's seed and, apart, another for the validation split from the
    # operating system, and kept neither on the classifier: the fit could not be repeated
    X, y = two_classes(60)
    quick = {**SMALL, "hidden": (6,), "pretrain_epochs": 1, "epochs": 2,
             "validation_split": 0.25}
    drawn = getattr(dlcore.DBNClassifier(**quick, seed=None), call)(X, y)
    assert isinstance(drawn.seed_, int) and drawn.dbn_.seed_ == drawn.seed_
    again = getattr(dlcore.DBNClassifier(**quick, seed=drawn.seed_), call)(X, y)
    assert again.seed_ == drawn.seed_
    for mine, theirs in zip(drawn.network_.get_weights(), again.network_.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert drawn.network_.history["loss"] == again.network_.history["loss"]
    assert pickle.loads(pickle.dumps(drawn)).seed_ == drawn.seed_
    assert dlcore.DBNClassifier(**quick, seed=7).fit(X, y).seed_ == 7

"""Decoupled weight decay on every optimiser (``weight_decay``, as Keras 3's base optimiser
gives it to all of them), its import from and export to Keras (dlcore/optimizers.py,
dlcore/io/keras_training.py).

Oracles: the rule worked by hand (theta <- (1 - eta lambda) theta, then the step with the
gradient of the weights before the decay); AdamW computed by Adam with the same decay; and
Keras 3.15 itself (torch backend), skipped where Keras is not installed: on the same weights
and batches both report the same losses and weights, within 1e-6.
"""
import warnings

import numpy as np
import pytest

import dlcore
from conftest import assert_fits_as_keras
from dlcore.layers import Dense
from dlcore.optimizers import SGD, Adam, AdamW, get_optimizer
from test_io_keras import real_keras
from test_optimizers import run

X = np.random.default_rng(0).random((12, 5)).astype(np.float32)
LABELS = np.random.default_rng(1).integers(0, 3, 12)

#: Keras's optimisers with weight decay (session 25's dlcore refused all but Adam's)
DECAYING = {"sgd": ("SGD", {"learning_rate": 0.2, "momentum": 0.9, "weight_decay": 0.3}),
            "rmsprop": ("RMSprop", {"learning_rate": 0.02, "weight_decay": 0.3}),
            "nadam": ("Nadam", {"learning_rate": 0.02, "weight_decay": 0.3}),
            "adam": ("Adam", {"learning_rate": 0.02, "weight_decay": 0.3}),
            # Keras's Adagrad (its accumulator from 0.1, eps inside the root) was refused
            "adagrad": ("Adagrad", {"learning_rate": 0.05, "weight_decay": 0.3}),
            # Keras's Adamax and Adadelta: dlcore had neither
            "adamax": ("Adamax", {"learning_rate": 0.02, "weight_decay": 0.3}),
            "adadelta": ("Adadelta", {"learning_rate": 1.0, "weight_decay": 0.3}),
            "lion": ("Lion", {"learning_rate": 0.005, "weight_decay": 0.3}),
            "ftrl": ("Ftrl", {"learning_rate": 0.1, "weight_decay": 0.3,
                              "l1_regularization_strength": 0.01, "beta": 0.2})}


def test_weight_decay_shrinks_the_weights_before_the_step_worked_by_hand():
    """SGD, eta 0.1, lambda 0.5, theta 2, g 1: theta <- 2 (1 - 0.05) - 0.1 = 1.8; then g 3:
    1.8 * 0.95 - 0.3 = 1.41 (the gradient is the one given, not one of the decayed weight)."""
    theta, _ = run(SGD(0.1, weight_decay=0.5), [[1.0], [3.0]], [2.0])
    np.testing.assert_allclose(theta, [1.41], rtol=1e-6)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_adam_with_weight_decay_is_adamw(backend, random_state):
    """One computation under two names: the same weights, bit for bit, and AdamW's config
    reads back as Adam's with the decay."""
    gradients = random_state.standard_normal((3, 4, 3))
    theta0 = random_state.standard_normal((4, 3))
    adam, _ = run(Adam(0.05, weight_decay=0.1), gradients, theta0, backend, l2=0.1)
    adamw, _ = run(AdamW(0.05, weight_decay=0.1), gradients, theta0, backend, l2=0.1)
    np.testing.assert_array_equal(adam, adamw)
    assert get_optimizer({"class_name": "adam", "config": AdamW(
        0.05, weight_decay=0.1).get_config()}).weight_decay == 0.1


def test_weight_decay_is_checked_in_one_line():
    with pytest.raises(ValueError, match="weight_decay"):
        SGD(0.1, weight_decay=-1.0)


def keras_network(keras, case):
    name, settings = DECAYING[case]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="tanh"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(getattr(keras.optimizers, name)(**settings),
                  "sparse_categorical_crossentropy")
    return model


def dlcore_network():
    return dlcore.Sequential([Dense(4, activation="tanh", input_shape=(5,)),
                              Dense(3, activation="softmax")], backend="cpu")


@pytest.mark.parametrize("case", list(DECAYING))
def test_every_optimizer_with_weight_decay_fits_as_kerass(case):
    """compile takes Keras's optimiser with weight_decay (refused but for Adam's); from the
    same weights, 2 epochs of 3 batches: Keras's losses and weights."""
    keras = real_keras()
    in_keras = keras_network(keras, case)
    model = dlcore_network()
    model.compile(optimizer=in_keras.optimizer, loss="sparse_categorical_crossentropy")
    assert model.optimizer.weight_decay == pytest.approx(0.3)
    # rtol: Adam's Keras form reorders its epsilon, ~1e-6 apart without any decay too
    assert_fits_as_keras(model, in_keras, X, LABELS, epochs=2, batch_size=4,
                         loss_tolerance={"atol": 1e-6},
                         weight_tolerance={"rtol": 1e-5, "atol": 1e-6})


@pytest.mark.parametrize("case", ["sgd", "nadam"])
def test_a_keras_file_with_weight_decay_loads_compiled_and_exports_it_back(case, tmp_path):
    """A Keras file whose optimiser decays loads compiled (it loaded uncompiled, warning),
    with the decay; dlcore's Keras file of it compiles in Keras with the same optimiser and
    decay."""
    keras = real_keras()
    keras_network(keras, case).save(tmp_path / "keras.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = dlcore.load(tmp_path / "keras.keras")
    assert model.optimizer.weight_decay == pytest.approx(0.3)
    model.save(tmp_path / "dlcore.keras")
    back = keras.models.load_model(tmp_path / "dlcore.keras")
    assert type(back.optimizer).__name__ == DECAYING[case][0]
    assert back.optimizer.get_config()["weight_decay"] == pytest.approx(0.3)


@pytest.mark.parametrize("case", ["adagrad", "adamax", "adadelta", "lion", "ftrl"])
def test_a_keras_optimizer_dlcore_lacked_crosses_both_ways_with_its_state(case, tmp_path):
    """Keras's Adagrad, Adamax, Adadelta and Lion loaded the model uncompiled; now dlcore goes
    on from Keras's accumulators (Adamax's momentum and norm, Adadelta's two running means,
    Lion's momentum) as Keras does, and Keras from dlcore's archive."""
    keras = real_keras()
    in_keras = keras_network(keras, case)
    in_keras.fit(X, LABELS, epochs=1, batch_size=4, shuffle=False, verbose=0)
    in_keras.save(tmp_path / "keras.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = dlcore.load(tmp_path / "keras.keras")
    assert model.optimizer.name == case and model.optimizer.weight_decay == pytest.approx(0.3)
    if case in ("adagrad", "ftrl"):
        assert model.optimizer.initial_accumulator_value == pytest.approx(0.1)
    theirs = in_keras.fit(X, LABELS, epochs=1, batch_size=4, shuffle=False, verbose=0)
    mine = model.fit(X, LABELS, epochs=1, batch_size=4, shuffle=False, verbose=0)
    np.testing.assert_allclose(mine.history["loss"], theirs.history["loss"], atol=1e-6)
    model.save(tmp_path / "dlcore.keras")
    back = keras.models.load_model(tmp_path / "dlcore.keras")
    assert type(back.optimizer).__name__ == DECAYING[case][0] \
        and int(back.optimizer.iterations) == 6
    theirs = in_keras.fit(X, LABELS, epochs=1, batch_size=4, shuffle=False, verbose=0)
    again = back.fit(X, LABELS, epochs=1, batch_size=4, shuffle=False, verbose=0)
    np.testing.assert_allclose(again.history["loss"], theirs.history["loss"], atol=1e-6)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_excluded_parameters_keep_their_values_under_weight_decay(backend):
    """exclude_from_weight_decay (Keras 3's; dlcore refused it): a zero gradient leaves an
    excluded parameter as it was and shrinks the others by 1 - eta lambda, by weight name
    (a regular expression searched in it, as Keras's var_names) or by key (var_list)."""
    model = dlcore_network().compile("cross_entropy", SGD(0.1, weight_decay=0.5))
    model.optimizer.exclude_from_weight_decay(var_list=[model.parameters[0]],
                                              var_names=["^b"])
    model.build((5,))
    model = model.clone(backend=backend) if backend != "cpu" else model
    before = [np.array(p.value) for p in model.parameters]
    for parameter in model.parameters:
        parameter.grad[...] = 0
    model.optimizer.build(model.parameters, model.backend)
    model.optimizer.apply(model.parameters)
    kept = {p.key: np.array_equal(p.value, old) for p, old in zip(model.parameters, before)}
    assert kept == {"dense/kernel": True, "dense/bias": True, "dense_1/kernel": False,
                    "dense_1/bias": True}
    np.testing.assert_allclose(model.parameters[2].value, 0.95 * before[2], rtol=1e-6)


def test_the_exclusion_is_checked_in_one_line():
    optimizer = AdamW()
    for arguments, message in [({"var_names": "bias"}, r"takes a list.*var_names=\['bias'\]"),
                               ({"var_names": ["(bias"]}, "not a regular expression"),
                               ({"var_names": [3]}, "names of weights"),
                               ({"var_list": ["bias"]}, "layer_name/weight_name"),
                               # Keras's way, the arrays of model.trainable_weights: their
                               # repr ran over several lines, and said nothing of a name
                               ({"var_list": [np.zeros((4, 3))]},
                                r"array of shape \(4, 3\).*no name.*'dense/bias'"),
                               ({"var_list": np.zeros((2, 2))},
                                r"takes a list, got an array of shape \(2, 2\)")]:
        with pytest.raises(ValueError, match=message) as raised:
            optimizer.exclude_from_weight_decay(**arguments)
        assert "\n" not in str(raised.value)
    optimizer.exclude_from_weight_decay(var_list=["dense_9/bias"])
    with pytest.raises(ValueError, match="names dense_9/bias, which the model has not"):
        dlcore_network().compile("cross_entropy", optimizer).build((5,))


def test_the_exclusion_is_kept_in_dlcore_files_and_in_the_keras_files_dlcore_writes(tmp_path):
    """dlcore's file and its Keras files (legacy and archive) keep var_list and var_names;
    Keras's optimiser config (which has no place for them) is left as Keras reads it."""
    model = dlcore_network().compile("cross_entropy", AdamW(0.01, weight_decay=0.1))
    model.optimizer.exclude_from_weight_decay(var_list=["dense/kernel"],
                                              var_names=["bias", "gamma"])
    model.build((5,))
    dlcore.save(model, tmp_path / "model.dlcore")
    excluded = {"var_list": ["dense/kernel"], "var_names": ["bias", "gamma"]}
    assert dlcore.load(tmp_path / "model.dlcore").optimizer.get_config()[
        "exclude_from_weight_decay"] == excluded
    for name in ("model.h5", "model.keras"):
        with pytest.warns(UserWarning, match="exclude_from_weight_decay is kept for dlcore"):
            model.save(tmp_path / name)
        assert dlcore.load(tmp_path / name).optimizer.get_config()[
            "exclude_from_weight_decay"] == excluded
    from dlcore.io.keras_training import keras_training_config
    assert "exclude_from_weight_decay" not in \
        keras_training_config(model)["optimizer_config"]["config"]


def test_a_keras_optimizer_excluding_biases_from_weight_decay_fits_as_kerass():
    """A Keras AdamW whose exclude_from_weight_decay leaves out the biases was refused by
    compile; now the same losses and weights as Keras's fit."""
    keras = real_keras()
    keras.utils.set_random_seed(0)
    in_keras = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="tanh"),
                                 keras.layers.Dense(3, activation="softmax")])
    optimizer = keras.optimizers.AdamW(0.02, weight_decay=0.5)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    in_keras.compile(optimizer, "sparse_categorical_crossentropy")
    model = dlcore_network()
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    assert_fits_as_keras(model, in_keras, X, LABELS, epochs=2, batch_size=4,
                         loss_tolerance={"atol": 1e-6},
                         weight_tolerance={"rtol": 1e-5, "atol": 1e-6})
    by_list = keras.optimizers.AdamW(0.02, weight_decay=0.5)
    by_list.exclude_from_weight_decay(var_list=in_keras.layers[0].trainable_variables)
    with pytest.raises(ValueError, match="var_list, Keras's variables.*var_names") as raised:
        dlcore_network().compile(optimizer=by_list, loss="sparse_categorical_crossentropy")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("targets", ["labels", "sparse-loss"])
def test_a_smoothed_cross_entropy_trained_on_labels_is_not_exported_as_kerass_categorical(
        targets, tmp_path):
    """Keras 3's SparseCategoricalCrossentropy does not smooth and its categorical one takes
    one-hot rows: a model that smoothed integer labels was exported compiled with the
    categorical one, on which Keras's fit of the same labels fails. Its compile settings are
    now left out, with one note naming the fix; trained on one-hot rows it keeps them."""
    from dlcore.losses import CrossEntropy, SparseCategoricalCrossentropy
    loss = SparseCategoricalCrossentropy(label_smoothing=0.1) if targets == "sparse-loss" \
        else CrossEntropy(label_smoothing=0.1)
    model = dlcore_network().compile(loss, "sgd")
    model.fit(X, LABELS, epochs=1, batch_size=6, verbose=0)
    with pytest.warns(UserWarning) as caught:
        model.save(tmp_path / "labels.keras")
    notes = [str(item.message) for item in caught]
    assert len(notes) == 1 and "keras.utils.to_categorical(y)" in notes[0] \
        and "\n" not in notes[0], notes
    rows = dlcore_network().compile(CrossEntropy(label_smoothing=0.1), "sgd")
    rows.fit(X, np.eye(3, dtype=np.float32)[LABELS], epochs=1, batch_size=6, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows.save(tmp_path / "rows.keras")
    assert dlcore.load(tmp_path / "rows.keras").loss.label_smoothing == pytest.approx(0.1)

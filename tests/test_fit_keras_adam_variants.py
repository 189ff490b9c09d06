"""Keras's AdamW, Nadam, Adam(amsgrad=True), RMSprop(momentum=, centered=) and its
cross-entropies' label_smoothing in dlcore (dlcore/optimizers.py, dlcore/losses.py,
dlcore/io/keras_training.py, dlcore/io/keras_optimizer.py).

Oracles: dlcore's own training uninterrupted (a model saved and loaded mid-way goes on with
the same numbers); and Keras 3.15 itself (torch backend), skipped where Keras is not
installed: on the same weights and batches both report the same losses, within 1e-5, and
a model crosses between the two libraries compiled, its optimiser's state with it.
"""
import warnings

import numpy as np
import pytest

import dlcore
from conftest import assert_fits_as_keras
from dlcore.layers import Dense
from dlcore.losses import BinaryCrossEntropy, CategoricalCrossentropy
from dlcore.optimizers import Adam, AdamW, Nadam, RMSProp
from test_io_keras import real_keras

X = np.random.default_rng(0).random((20, 5)).astype(np.float32)
LABELS = np.random.default_rng(1).integers(0, 3, 20)
ROWS = np.eye(3, dtype=np.float32)[LABELS]

#: (Keras's optimiser class and settings, Keras's loss class and settings or a name, targets,
#: output activation)
CASES = {
    "adamw": (("AdamW", {"learning_rate": 0.05, "weight_decay": 0.1}),
              "sparse_categorical_crossentropy", LABELS, "softmax"),
    "nadam": (("Nadam", {"learning_rate": 0.05}), "sparse_categorical_crossentropy", LABELS,
              "softmax"),
    "amsgrad": (("Adam", {"learning_rate": 0.05, "amsgrad": True, "beta_2": 0.9}),
                "sparse_categorical_crossentropy", LABELS, "softmax"),
    "categorical-smoothing": (("SGD", {"learning_rate": 0.5}),
                              ("CategoricalCrossentropy", {"label_smoothing": 0.2}), ROWS,
                              "softmax"),
    "binary-smoothing": (("SGD", {"learning_rate": 0.5}),
                         ("BinaryCrossentropy", {"label_smoothing": 0.3}), ROWS, "sigmoid"),
    "rmsprop-momentum-centred": (("RMSprop", {"learning_rate": 0.01, "momentum": 0.9,
                                              "centered": True}),
                                 "sparse_categorical_crossentropy", LABELS, "softmax"),
}


def keras_model(keras, case):
    (optimizer, settings), loss, _, activation = CASES[case]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(3, activation=activation)])
    if isinstance(loss, tuple):
        loss = getattr(keras.losses, loss[0])(**loss[1])
    model.compile(getattr(keras.optimizers, optimizer)(**settings), loss)
    return model


@pytest.mark.parametrize("case", list(CASES))
def test_dlcore_fits_as_keras_with_kerass_optimizer_and_loss(case):
    """compile takes Keras's objects; from the same weights, 4 epochs of 3 batches: the
    losses Keras reports, and its weights (dlcore refused these objects in one line)."""
    keras = real_keras()
    in_keras = keras_model(keras, case)
    targets, activation = CASES[case][2], CASES[case][3]
    model = dlcore.Sequential([Dense(4, activation="relu", input_shape=(5,)),
                               Dense(3, activation=activation)], backend="cpu")
    model.compile(optimizer=in_keras.optimizer, loss=in_keras.loss)
    assert_fits_as_keras(model, in_keras, X, targets, epochs=4, batch_size=8,
                         loss_tolerance={"atol": 1e-5}, weight_tolerance={"atol": 1e-5})


@pytest.mark.parametrize("case", list(CASES))
def test_a_keras_model_compiled_so_crosses_both_ways_compiled(case, tmp_path):
    """Keras trains 2 epochs and saves; dlcore loads it compiled, without a warning (it
    loaded uncompiled, warning), with the optimiser's state, and trains on as Keras does;
    dlcore's .keras file of it loads in Keras compiled, with the same optimiser, settings
    and update count, and trains on as Keras does."""
    keras = real_keras()
    targets = CASES[case][2]
    in_keras = keras_model(keras, case)
    in_keras.fit(X, targets, epochs=2, batch_size=8, shuffle=False, verbose=0)
    in_keras.save(tmp_path / "keras.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = dlcore.load(tmp_path / "keras.keras")
    assert model.optimizer is not None and model.optimizer.iterations == 6
    theirs = in_keras.fit(X, targets, epochs=2, batch_size=8, shuffle=False, verbose=0)
    mine = model.fit(X, targets, epochs=2, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(mine.history["loss"], theirs.history["loss"], atol=1e-5)
    model.save(tmp_path / "dlcore.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = keras.models.load_model(tmp_path / "dlcore.keras")
    expected_config = in_keras.optimizer.get_config()
    got_config = back.optimizer.get_config()
    assert type(back.optimizer) is type(in_keras.optimizer)
    for key in ("weight_decay", "amsgrad", "beta_1", "beta_2", "epsilon", "rho", "momentum",
                "centered"):
        assert got_config.get(key) == pytest.approx(expected_config.get(key)), key
    assert int(back.optimizer.iterations) == 12
    assert back.loss.get_config().get("label_smoothing") if case.endswith("smoothing") \
        else True
    theirs = in_keras.fit(X, targets, epochs=1, batch_size=8, shuffle=False, verbose=0)
    again = back.fit(X, targets, epochs=1, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(again.history["loss"], theirs.history["loss"], atol=1e-5)


@pytest.mark.parametrize("optimizer, loss", [
    (lambda: AdamW(0.05, weight_decay=0.1), lambda: "cross_entropy"),
    (lambda: Nadam(0.05), lambda: "cross_entropy"),
    (lambda: Adam(0.05, amsgrad=True, beta_2=0.9), lambda: "cross_entropy"),
    (lambda: "sgd", lambda: CategoricalCrossentropy(label_smoothing=0.2)),
    (lambda: "sgd", lambda: BinaryCrossEntropy(label_smoothing=0.3)),
    # Keras's form, which a .keras archive holds as it is (dlcore's own momentum b crosses as
    # Keras's eta b, and back, each a float32 rounding)
    (lambda: RMSProp(0.01, momentum=0.9, centered=True, epsilon_form="keras"),
     lambda: "cross_entropy"),
], ids=list(CASES))
@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_a_model_saved_mid_training_goes_on_as_one_that_was_not(optimizer, loss, suffix,
                                                                tmp_path):
    """No Keras needed: 2 epochs, saved (dlcore's file or a Keras archive), loaded, 2 more
    equal 4 epochs straight, bit for bit: the optimiser's settings, state (m, v, AMSGrad's
    v_max, the update count Nadam's schedule and AdamW's decay follow) and the loss's
    smoothing all cross."""
    def network():
        chosen = loss()
        activation = "sigmoid" if isinstance(chosen, BinaryCrossEntropy) else "softmax"
        model = dlcore.Sequential([Dense(4, activation="relu", input_shape=(5,)),
                                   Dense(3, activation=activation)], backend="cpu", seed=2)
        return model.compile(chosen, optimizer())

    straight = network()
    straight.fit(X, ROWS, epochs=4, batch_size=8, shuffle=False, verbose=0)
    part = network()
    part.fit(X, ROWS, epochs=2, batch_size=8, shuffle=False, verbose=0)
    # dlcore's own file; the Keras archive that model.save writes for .keras
    dlcore.save(part, tmp_path / f"model{suffix}", format="keras" if suffix == ".keras"
                else "dlcore")
    resumed = dlcore.load(tmp_path / f"model{suffix}")
    assert resumed.optimizer.get_config() == part.optimizer.get_config()
    assert resumed.loss.label_smoothing == part.loss.label_smoothing
    resumed.fit(X, ROWS, epochs=2, batch_size=8, shuffle=False, verbose=0)
    for got, expected in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(got, expected)

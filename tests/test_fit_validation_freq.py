"""fit's ``validation_freq`` as Keras 3 has it (dlcore/training.py, dlcore/callbacks.py).

Oracles: Keras's rule written out (an int k: validate after epochs k, 2k, ... counted from 1;
a list: after the epochs listed), the history of a fit that validates every epoch (the same
numbers at the epochs validated), Keras's callbacks' counting as its source has it
(keras/src/callbacks: an epoch without the monitored number is passed over); and Keras 3.15
itself (torch backend), skipped where Keras is not installed.
"""
import csv
import math

import numpy as np
import pytest

import dlcore
from dlcore.callbacks import (
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from dlcore.layers import Dense
from dlcore.optimizers import SGD
from test_io_keras import real_keras

X = np.random.default_rng(0).random((24, 5)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, 24)
X_VALID = np.random.default_rng(2).random((10, 5)).astype(np.float32)
Y_VALID = np.random.default_rng(3).integers(0, 3, 10)


def network(seed=3):
    model = dlcore.Sequential([Dense(4, activation="relu", input_shape=(5,)),
                               Dense(3, activation="softmax")], backend="cpu", seed=seed)
    return model.compile("cross_entropy", SGD(0.5), ["accuracy"])


@pytest.mark.parametrize("validation_freq, validated", [
    (2, [1, 3, 5]), (3, [2, 5]), ([1, 4, 5], [0, 3, 4]), (range(2, 7, 2), [1, 3, 5]),
    (1, [0, 1, 2, 3, 4, 5])])
def test_fit_validates_after_the_epochs_validation_freq_names(validation_freq, validated):
    """The History has the val_ numbers of those epochs only, the numbers of a fit that
    validates every epoch; the callbacks see them at those epochs; the model's own history
    has NaN at the others, one number an epoch (fit refused any validation_freq but 1)."""
    seen = []
    history = network().fit(X, Y, epochs=6, batch_size=8, verbose=0,
                            validation_data=(X_VALID, Y_VALID), validation_freq=validation_freq,
                            callbacks=[LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(
                                (epoch, "val_loss" in logs)))])
    every = network().fit(X, Y, epochs=6, batch_size=8, verbose=0,
                          validation_data=(X_VALID, Y_VALID))
    assert seen == [(epoch, epoch in validated) for epoch in range(6)]
    for name in ("val_loss", "val_accuracy"):
        assert history.history[name] == [every.history[name][epoch] for epoch in validated]
    assert history.history["loss"] == every.history["loss"]
    model = history.model
    assert len(model.history["val_loss"]) == 6
    assert [not math.isnan(value) for value in model.history["val_loss"]] == [
        epoch in validated for epoch in range(6)]


def test_validation_freq_counts_epochs_as_the_callbacks_number_them(tmp_path):
    """From initial_epoch when given (Keras's fit(epochs=6, initial_epoch=2,
    validation_freq=2) validates after its epochs 3 and 5, counted from 0); a model saved
    and loaded keeps the NaN of its unvalidated epochs."""
    model = network()
    history = model.fit(X, Y, epochs=6, initial_epoch=2, batch_size=8, verbose=0,
                        validation_data=(X_VALID, Y_VALID), validation_freq=2)
    assert history.epoch == [2, 3, 4, 5] and len(history.history["val_loss"]) == 2
    dlcore.save(model, tmp_path / "model.h5")
    loaded = dlcore.load(tmp_path / "model.h5").history["val_loss"]
    assert [math.isnan(value) for value in loaded] == [True, False, True, False]


def test_a_csv_logger_has_the_val_columns_though_the_first_epoch_was_not_validated(tmp_path):
    """Oracle: the History of the same fit (Keras 3's CSVLogger, csv_logger.py, adds the val_
    twins when the first epoch's logs lack them, "NA" until validated; dlcore leaves those
    cells empty). The columns came from the first epoch's logs: validation_freq=2 lost the
    validation curve from the file."""
    path = tmp_path / "log.csv"
    history = network().fit(X, Y, epochs=4, batch_size=8, verbose=0,
                            validation_data=(X_VALID, Y_VALID), validation_freq=2,
                            callbacks=[CSVLogger(path)])
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    for name in ("val_accuracy", "val_loss"):
        assert [row[name] for row in rows[0::2]] == ["", ""]
        np.testing.assert_allclose([float(row[name]) for row in rows[1::2]],
                                   history.history[name])
    network().fit(X, Y, epochs=1, verbose=0, callbacks=[CSVLogger(path)])
    with open(path, newline="") as file:   # a fit that does not validate has no val_ column
        assert next(csv.reader(file)) == ["epoch", "accuracy", "loss"]


def test_a_csv_loggers_late_val_columns_follow_the_others_as_in_keras(tmp_path):
    """Oracle: Keras 3.15's CSVLogger on the same two-output model (outputs "digit" and
    "yes_no") under validation_freq=2: it appends the val_ columns after the first epoch's
    names, so yes_no_loss comes before val_digit_loss; dlcore sorted them all together."""
    keras = real_keras()
    headers = []
    for library, layers in ((keras, keras.layers), (dlcore, dlcore.layers)):
        image = library.Input((5,))
        model = library.Model(image, [layers.Dense(3, activation="softmax", name=name)(image)
                                      for name in ("digit", "yes_no")])
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=[["accuracy"]] * 2)
        path = tmp_path / f"{library.__name__}.csv"
        model.fit(X, [Y, Y], epochs=2, batch_size=8, verbose=0, validation_freq=2,
                  validation_data=(X_VALID, [Y_VALID, Y_VALID]),
                  callbacks=[library.callbacks.CSVLogger(str(path))])
        with open(path, newline="") as file:
            headers.append(next(csv.reader(file)))
    assert headers[1] == headers[0]
    assert headers[0].index("yes_no_loss") < headers[0].index("val_digit_loss")


@pytest.mark.parametrize("validation_freq", [0, -2, 1.5, "2", True, [0, 2], [1.0], None])
def test_a_validation_freq_keras_does_not_take_is_refused_in_one_line(validation_freq):
    with pytest.raises(ValueError, match="validation_freq must be") as error:
        network().fit(X, Y, epochs=1, verbose=0, validation_data=(X_VALID, Y_VALID),
                      validation_freq=validation_freq)
    assert "\n" not in str(error.value)


class _Model:
    """What the watching callbacks read of a model: whether the epoch validated."""

    def __init__(self):
        self.epoch_without_validation = False
        self.stop_training = False
        self.optimizer = SGD(1.0)

    def get_weights(self):
        return []


def run_callback(callback, values):
    """``callback``'s on_epoch_end over epochs whose val_loss is ``values`` (None: an epoch
    without validation, its logs the loss only); the model."""
    model = _Model()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        model.epoch_without_validation = value is None
        callback.on_epoch_end(epoch, {"loss": 1.0} if value is None
                              else {"loss": 1.0, "val_loss": value})
        if model.stop_training:
            return model, epoch
    return model, None


def test_early_stopping_passes_over_an_epoch_without_validation_as_kerass():
    """Keras's EarlyStopping returns at once when the monitored number is missing: its wait
    does not grow. Patience 2: worse at epochs 3 and 5 stops at 5, the epochs between not
    counted (they would have stopped it at 3; a missing val_loss raised)."""
    stopper = EarlyStopping(patience=2)
    _, stopped = run_callback(stopper, [None, 1.0, None, 1.1, None, 1.2])
    assert stopped == 5 and stopper.best == 1.0 and stopper.best_epoch == 1


def test_reduce_lr_on_plateau_passes_over_an_epoch_without_validation_as_kerass():
    """No wait and no cooldown step on an epoch without val_loss (Keras's: it warns and
    does nothing else): patience 2 halves the rate at the second worse validated epoch."""
    reducer = ReduceLROnPlateau(patience=2, factor=0.5, cooldown=1)
    model, _ = run_callback(reducer, [1.0, None, 1.1, None, None, 1.2, None])
    assert model.optimizer.learning_rate == 0.5 and reducer.cooldown_counter == 1
    assert reducer.wait == 0


def test_a_best_only_checkpoint_does_not_save_an_epoch_without_validation(tmp_path):
    """The file of the best epoch stays (Keras 3 saves it over with the unvalidated one)."""
    path = tmp_path / "best.h5"
    model = network()
    model.fit(X, Y, epochs=4, batch_size=8, verbose=0, validation_data=(X_VALID, Y_VALID),
              validation_freq=[1],
              callbacks=[ModelCheckpoint(str(path), monitor="val_loss", save_best_only=True)])
    first = network()
    first.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    for saved, expected in zip(dlcore.load(path).get_weights(), first.get_weights()):
        np.testing.assert_array_equal(saved, expected)


def test_validation_freq_with_kerass_callbacks_is_kerass():
    """The same weights, batches and validation data in Keras 3.15: validation_freq=2 with
    EarlyStopping and ReduceLROnPlateau on val_loss gives Keras's History (keys, epochs,
    numbers, learning rates): Keras stops after 6 of the 8 epochs, counting 3 validated
    ones, the learning rate halved once. Both start from the seeded dlcore network's weights:
    Keras's own unseeded initial weights made the run stop early or not by chance (about
    one start in five trained all 8 epochs)."""
    keras = real_keras()
    in_keras = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="relu"),
                                 keras.layers.Dense(3, activation="softmax")])
    in_keras.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy",
                     metrics=["accuracy"])
    model = network(seed=3)
    model.build((5,))
    in_keras.set_weights(model.get_weights())

    def fit(fitted, library):
        return fitted.fit(X, Y, epochs=8, batch_size=8, shuffle=False, verbose=0,
                          validation_data=(X_VALID, Y_VALID), validation_freq=2,
                          callbacks=[library.callbacks.EarlyStopping(patience=2, min_delta=0.02),
                                     library.callbacks.ReduceLROnPlateau(patience=1,
                                                                         factor=0.5)])
    theirs, mine = fit(in_keras, keras), fit(model, dlcore)
    assert mine.epoch == theirs.epoch and len(mine.epoch) < 8     # the early stop counted
    assert min(theirs.history["learning_rate"]) < 0.5             # and the plateau's halving
    assert set(mine.history) == set(theirs.history)
    for name, values in theirs.history.items():
        np.testing.assert_allclose(mine.history[name], values, rtol=1e-5, err_msg=name)

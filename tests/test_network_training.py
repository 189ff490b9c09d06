"""Training behaviour of Sequential: it learns, each optimiser lowers the loss, the Keras API.

Oracles: lecture "Supervised learning"'s practical tip ("Test on a small subset of the data and
check the error -> 0"), and the loss before versus after training."""
import numpy as np
import pytest

import dlcore
from dlcore.callbacks import Callback, EarlyStopping
from dlcore.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
from dlcore.optimizers import SGD, AdaGrad, Adam, ExponentialDecay, RMSProp, StepDecay


def blobs(n=60, n_classes=3, features=8, seed=0):
    rs = np.random.default_rng(seed)
    centres = rs.standard_normal((n_classes, features)) * 3
    y = rs.integers(0, n_classes, n)
    return (centres[y] + rs.standard_normal((n, features))).astype(np.float32), y


def small_images(n=40, seed=0):
    rs = np.random.default_rng(seed)
    y = rs.integers(0, 2, n)
    x = rs.random((n, 1, 8, 8)).astype(np.float32) * 0.2
    x[y == 1, :, :, :4] += 0.8   # class 1: bright left half
    return x, y


def test_a_small_convnet_reaches_zero_training_error_on_a_tiny_subset():
    x, y = small_images()
    model = dlcore.Sequential([Conv2D(4, 3, activation="relu"), MaxPool2D(2), Flatten(),
                               Dense(2, activation="softmax")], input_shape=(1, 8, 8),
                              backend="reference", seed=0)
    model.compile("cross_entropy", SGD(0.1, momentum=0.9), ["accuracy"])
    model.fit(x, y, epochs=30, batch_size=8, verbose=0)
    assert model.evaluate(x, y)["accuracy"] == 1.0


@pytest.mark.parametrize("optimizer", [SGD(0.05), SGD(0.05, momentum=0.9),
                                       SGD(0.05, momentum=0.9, nesterov=True),
                                       AdaGrad(0.1), RMSProp(0.01), Adam(0.01)],
                         ids=["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_each_optimizer_lowers_the_loss(optimizer):
    x, y = blobs()
    model = dlcore.Sequential([Dense(8, activation="tanh"), Dense(3, activation="softmax")],
                              input_shape=(8,), backend="reference", seed=1)
    model.compile("cross_entropy", optimizer)
    before = model.evaluate(x, y)[0]
    history = model.fit(x, y, epochs=5, batch_size=10, verbose=0)
    assert model.evaluate(x, y)[0] < 0.7 * before
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_fit_returns_a_history_with_validation_monitors():
    x, y = blobs()
    model = dlcore.models.mlp(input_shape=(8,), hidden=(6,), n_classes=3, backend="reference")
    model.compile("cross_entropy", "adam", ["accuracy"])
    history = model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    assert len(history.history["val_loss"]) == 2 and history.epoch == [0, 1]   # Keras's
    assert model.history["loss"] == history.history["loss"]


def test_validation_split_holds_out_what_keras_does():
    """Keras 3 holds out n - floor(n (1 - split)), at least one sample; round(0.1 n) held out
    none of 5 samples, and the fit trained without validation, silently."""
    keras_split = pytest.importorskip("keras.src.trainers.data_adapters.array_slicing")
    from dlcore.training import split_validation
    for n in (2, 3, 5, 7, 10, 64, 101):
        for split in (0.01, 0.1, 0.15, 0.2, 0.25, 1 / 3, 0.5):
            rows = np.arange(n, dtype=np.float32)[:, None]
            _, theirs = keras_split.train_validation_split((rows,), split)
            _, _, (ours, _) = split_validation(rows, rows, split, seed=0)
            assert len(ours) == len(theirs[0]), (n, split)


def test_validation_split_of_five_samples_validates_on_one():
    """The report's case, without Keras: 0.1 of 5 samples holds out 1 (round gave 0), the
    History has val_loss and a val_loss EarlyStopping runs; 1 sample is refused in one line."""
    x, y = blobs(n=5)
    model = dlcore.models.mlp(input_shape=(8,), hidden=(4,), n_classes=3, backend="reference")
    model.compile("cross_entropy", "adam", ["accuracy"])
    history = model.fit(x, y, epochs=3, validation_split=0.1, verbose=0,
                        callbacks=[EarlyStopping(monitor="val_loss", patience=5)])
    assert len(history.history["val_loss"]) == 3
    with pytest.raises(ValueError, match=r"^validation_split=0.1 of 1 samples leaves no "
                                         r"training samples \(Keras's rule holds out n - "
                                         r"floor\(n \(1 - validation_split\)\)\): give more "
                                         r"data, another validation_split, or validation_data$"):
        model.fit(x[:1], y[:1], validation_split=0.1, verbose=0)


def test_predict_returns_probabilities_and_predict_classes_their_argmax():
    x, y = blobs(n=10)
    model = dlcore.models.mlp(input_shape=(8,), hidden=(4,), n_classes=3, backend="reference")
    p = model.predict(x)
    assert p.shape == (10, 3) and isinstance(p, np.ndarray)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(model.predict_classes(x), p.argmax(axis=1))


def test_evaluate_unpacks_as_loss_and_accuracy_and_answers_to_names():
    x, y = blobs(n=10)
    model = dlcore.models.mlp(input_shape=(8,), hidden=(4,), n_classes=3, backend="reference")
    model.compile("cross_entropy", "sgd", ["accuracy"])
    loss, accuracy = model.evaluate(x, y)
    scores = model.evaluate(x, y)
    assert scores["loss"] == loss and dict(scores) == {"loss": loss, "accuracy": accuracy}


def test_early_stopping_stops_and_restores_the_best_weights():
    x, y = blobs()
    model = dlcore.models.mlp(input_shape=(8,), hidden=(6,), n_classes=3, backend="reference")
    model.compile("cross_entropy", SGD(5.0), ["accuracy"])   # too large: the loss bounces
    seen = []

    class Keep(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((logs["val_loss"], self.model.get_weights()))

    stopper = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    model.fit(x, y, epochs=30, batch_size=10, validation_split=0.3, callbacks=[Keep(), stopper],
              verbose=0)
    assert stopper.stopped_epoch is not None and len(seen) < 30
    best_loss, best_weights = min(seen, key=lambda item: item[0])
    for current, best in zip(model.get_weights(), best_weights):
        np.testing.assert_array_equal(current, best)


def test_dropout_is_the_identity_in_evaluation():
    layer = Dropout(0.5)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(layer(x), x)


def test_dropout_keeps_units_with_probability_one_minus_rate():
    layer = Dropout(0.25)
    y = layer(np.ones((400, 250), dtype=np.float32), training=True, step=3)
    kept = y > 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)


def test_learning_rate_schedules_follow_their_formulas():
    assert ExponentialDecay(0.1, 10, 0.5)(20) == pytest.approx(0.025)
    assert ExponentialDecay(0.1, 10, 0.5, staircase=True)(19) == pytest.approx(0.05)
    assert StepDecay(0.1, 100, 0.1)(250) == pytest.approx(0.001)


def test_scheduled_learning_rate_is_recorded_per_epoch():
    x, y = blobs(n=20)
    model = dlcore.models.mlp(input_shape=(8,), hidden=(4,), n_classes=3, backend="reference")
    model.compile("cross_entropy", SGD(StepDecay(0.1, step_size=2, drop=0.5)))
    model.fit(x, y, epochs=2, batch_size=10, verbose=0)
    assert model.history["learning_rate"] == [0.1, 0.05]


def test_fit_accepts_flat_rows_for_dense_networks():
    x, y = blobs(n=12)
    model = dlcore.Sequential([Dense(3, activation="softmax")], backend="reference")
    model.compile("cross_entropy", "sgd")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert model.input_shape == (8,)


def test_wrong_input_shape_is_an_error_that_says_how_to_reshape():
    model = dlcore.models.lenet5(backend="reference")
    with pytest.raises(ValueError, match=r"reshape it with x.reshape\(-1, 1, 28, 28\)"):
        model.predict(np.zeros((2, 784), dtype=np.float32))


@pytest.mark.parametrize("channels", [1, 3])
def test_channels_last_images_are_told_to_transpose_not_to_reshape(channels):
    # x.reshape(-1, 3, 28, 28) of Keras's (n, 28, 28, 3) images scrambles their channels
    model = dlcore.Sequential([dlcore.layers.Flatten(), Dense(2, activation="softmax")],
                              input_shape=(channels, 28, 28), backend="reference")
    with pytest.raises(ValueError, match=r"channels-first .* x\.transpose\(0, 3, 1, 2\)"):
        model.predict(np.zeros((2, 28, 28, channels), dtype=np.float32))


def test_labels_out_of_range_are_an_error():
    model = dlcore.models.mlp(input_shape=(8,), hidden=(4,), n_classes=3, backend="reference")
    model.compile("cross_entropy", "sgd")
    with pytest.raises(ValueError, match="labels 0..2"):
        model.fit(np.zeros((2, 8)), [0, 5], verbose=0)


def test_uint8_labels_that_wrapped_around_are_named_as_such():
    # the loaders give uint8 labels (as Keras's mnist.load_data does): y - 1 turns 0 into 255
    model = dlcore.models.mlp(input_shape=(8,), hidden=(4,), n_classes=3, backend="reference")
    model.compile("cross_entropy", "sgd")
    wrapped = np.array([1, 2, 0], dtype=np.uint8) - np.uint8(1)
    with pytest.raises(ValueError, match=r"uint8, whose arithmetic wraps around \(0 - 1 gives "
                                         r"255\); convert first, y = y\.astype\(np\.int64\)"):
        model.fit(np.zeros((3, 8)), wrapped, verbose=0)
    with pytest.raises(ValueError, match="labels 0..2") as caught:
        model.fit(np.zeros((2, 8)), np.array([0, 5], dtype=np.uint8), verbose=0)
    assert "wraps" not in str(caught.value)   # 5 is merely out of range, not wrapped


def test_fit_before_compile_is_an_error():
    model = dlcore.models.mlp(input_shape=(8,), hidden=(4,), backend="reference")
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.zeros((2, 8)), [0, 1], verbose=0)


def test_progress_bar_shows_loss_and_metrics_on_stderr(capsys):
    x, y = blobs(n=20)
    model = dlcore.models.mlp(input_shape=(8,), hidden=(4,), n_classes=3, backend="reference")
    model.compile("cross_entropy", "sgd", ["accuracy"])
    model.fit(x, y, epochs=1, batch_size=5, verbose=1)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss" in err and "accuracy" in err


def test_max_norm_constraint_bounds_every_unit():
    from dlcore.regularizers import MaxNorm
    x, y = blobs()
    model = dlcore.Sequential([Dense(5, kernel_constraint=MaxNorm(0.5)),
                               Dense(3, activation="softmax")], input_shape=(8,),
                              backend="reference")
    model.compile("cross_entropy", SGD(1.0))
    model.fit(x, y, epochs=2, batch_size=10, verbose=0)
    norms = np.linalg.norm(model.layers[0].get_weights()[0], axis=0)
    assert norms.max() <= 0.5 + 1e-6


def test_l1_weight_decay_drives_weights_towards_zero():
    from dlcore.regularizers import L1
    x, y = blobs()
    sizes = []
    for regularizer in (None, L1(0.05)):
        model = dlcore.Sequential([Dense(3, activation="softmax",
                                         kernel_regularizer=regularizer)], input_shape=(8,),
                                  backend="reference")
        model.compile("cross_entropy", SGD(0.1))
        model.fit(x, y, epochs=10, batch_size=10, verbose=0)
        sizes.append(np.abs(model.get_weights()[0]).sum())
    assert sizes[1] < sizes[0]


def test_gradient_clipping_limits_the_step():
    x, y = blobs(n=10)
    steps = []
    for clip in (None, 1e-3):
        model = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(8,),
                                  backend="reference")
        model.compile("cross_entropy", SGD(1.0, global_clipnorm=clip))
        before = model.get_weights()[0]
        model.train_on_batch(x, y)
        steps.append(np.linalg.norm(model.get_weights()[0] - before))
    assert steps[1] <= 1e-3 + 1e-9 < steps[0]


def test_progress_off_a_terminal_is_one_line_per_epoch(capsys):
    """Off a terminal (a log file, CI) click's bar would print each epoch's label once more."""
    x, y = np.zeros((10, 4), np.float32), np.arange(10) % 2
    model = dlcore.Sequential([dlcore.layers.Dense(2, activation="softmax")], seed=0)
    model.compile(loss="cross_entropy", optimizer="sgd")
    model.fit(x, y, epochs=2, batch_size=5, verbose=1)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]

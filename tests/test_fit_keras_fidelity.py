"""``fit``'s numbers as Keras 3 reports them (dlcore/training.py, dlcore/callbacks.py).

Oracles: the epoch's loss is the mean over samples of each batch's cost, the cost of a batch
being what ``train_on_batch`` reports for it (its loss plus the weight decay of the weights it
was computed with, which already agrees with Keras); and Keras 3.15 itself (torch backend),
skipped where Keras is not installed, on the same weights and batches.
"""
import numpy as np
import pytest

import dlcore
from dlcore.layers import Dense
from dlcore.optimizers import SGD
from dlcore.regularizers import L1L2, l2
from test_io_keras import real_keras

X = np.random.default_rng(0).random((20, 5)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, 20)


def regularised_network(backend="cpu", seed=3):
    model = dlcore.Sequential([
        Dense(4, activation="relu", input_shape=(5,), kernel_regularizer=l2(0.05),
              bias_regularizer=L1L2(0.01, 0.02)),
        Dense(3, activation="softmax", kernel_regularizer=l2(0.05))], backend=backend,
        seed=seed)
    model.compile("cross_entropy", SGD(0.5))
    return model


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_fits_epoch_loss_is_the_mean_of_each_batchs_cost_before_its_update(backend):
    """20 samples in batches of 8, 8 and 4: each batch's cost weighs by its samples, and its
    weight decay is that of the weights before its update (the penalty of the weights at the
    epoch's end was added before: 1.572 where Keras reports 1.663)."""
    by_hand = regularised_network(backend)
    costs = [by_hand.train_on_batch(X[start:start + 8], Y[start:start + 8])
             for start in (0, 8, 16)]
    expected = (8 * costs[0] + 8 * costs[1] + 4 * costs[2]) / 20
    model = regularised_network(backend)
    history = model.fit(X, Y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-6)
    assert type(history.history["loss"][0]) is float
    for mine, theirs in zip(model.get_weights(), by_hand.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6)


def test_the_penalty_on_the_backend_is_the_models_penalty_over_many_blocks():
    """A kernel of 80 x 130 = 10,400 weights spans three blocks of the reduction."""
    from dlcore.training import BatchPenalty
    model = dlcore.Sequential([Dense(130, input_shape=(80,), kernel_regularizer=L1L2(0.003, 0.2),
                                     bias_regularizer=l2(0.1))], backend="cpu", seed=1)
    model.compile("mse", "sgd")
    model.build((80,))
    kernel, _ = model.layers[0].get_weights()
    model.layers[0].set_weights([kernel, np.linspace(-1, 1, 130, dtype=np.float32)])
    totals = model.backend.zeros((3,), np.float64)
    BatchPenalty.of(model).add(7, totals)
    assert model.backend.to_numpy(totals)[0] == pytest.approx(7 * model.penalty(), rel=1e-9)
    model.layers[0].trainable = False          # a frozen layer's weights are not penalised
    assert BatchPenalty.of(model) is None and model.penalty() == 0


def test_fits_loss_with_a_regulariser_is_kerass():
    """Keras 3.15: loss [1.66344, 1.41401, 1.29252] for this model and data."""
    keras = real_keras()
    keras.utils.set_random_seed(0)
    in_keras = keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(4, activation="relu", kernel_regularizer=keras.regularizers.l2(0.05)),
        keras.layers.Dense(3, activation="softmax",
                           kernel_regularizer=keras.regularizers.l2(0.05))])
    in_keras.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
    model = dlcore.Sequential([
        Dense(4, activation="relu", input_shape=(5,), kernel_regularizer=l2(0.05)),
        Dense(3, activation="softmax", kernel_regularizer=l2(0.05))], backend="cpu")
    model.compile("cross_entropy", SGD(0.5))
    model.build((5,))
    model.set_weights(in_keras.get_weights())
    theirs = in_keras.fit(X, Y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    mine = model.fit(X, Y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(mine.history["loss"], theirs.history["loss"], rtol=1e-6)


def test_initial_epoch_numbers_the_epochs_of_a_new_model_as_keras():
    """Keras 3.15: fit(epochs=4, initial_epoch=2) on a new model runs 2 epochs, History.epoch
    [2, 3], and the callbacks see epochs 2 and 3 (dlcore numbered them 0 and 1)."""
    from dlcore.callbacks import LambdaCallback
    model = regularised_network()
    seen = []
    history = model.fit(X, Y, epochs=4, initial_epoch=2, batch_size=8, verbose=0,
                        callbacks=[LambdaCallback(
                            on_epoch_begin=lambda epoch, logs: seen.append(epoch))])
    assert history.epoch == [2, 3] and seen == [2, 3] and model.epochs_done == 4
    assert len(history.history["loss"]) == 2
    # on a model that has trained further, too, the epochs are numbered from initial_epoch (as
    # Keras's); its own count, which seeds the batch order, goes on
    assert model.fit(X, Y, epochs=3, initial_epoch=2, verbose=0).epoch == [2]
    assert model.epochs_done == 5
    # without initial_epoch, the model's own count over its life (Keras starts again at 0)
    assert model.fit(X, Y, epochs=1, verbose=0).epoch == [5]
    assert regularised_network().fit(X, Y, epochs=2, initial_epoch=2, verbose=0).epoch == []


def test_initial_epoch_of_a_new_model_is_kerass_history_epoch():
    keras = real_keras()
    in_keras = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax")])
    in_keras.compile("sgd", "sparse_categorical_crossentropy")
    theirs = in_keras.fit(X, Y, epochs=4, initial_epoch=2, verbose=0)
    mine = regularised_network().fit(X, Y, epochs=4, initial_epoch=2, verbose=0)
    assert mine.epoch == theirs.epoch == [2, 3]


def test_a_second_fit_from_initial_epoch_numbers_its_epochs_as_keras():
    """The fine-tuning recipe of Keras's transfer-learning guide: fit(epochs=3), then
    fit(epochs=5, initial_epoch=history.epoch[-1]) runs 3 epochs that Keras numbers 2, 3, 4
    (History.epoch and every callback's epoch, so a LearningRateScheduler's rates); dlcore
    numbered them 3, 4, 5 from its own count."""
    from dlcore.callbacks import LearningRateScheduler
    keras = real_keras()

    def schedule(epoch, rate):
        return 0.1 / (1 + epoch)

    in_keras = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax")])
    in_keras.compile("sgd", "sparse_categorical_crossentropy")
    first = in_keras.fit(X, Y, epochs=3, verbose=0)
    theirs = in_keras.fit(X, Y, epochs=5, initial_epoch=first.epoch[-1], verbose=0,
                          callbacks=[keras.callbacks.LearningRateScheduler(schedule)])
    model = regularised_network()
    first = model.fit(X, Y, epochs=3, verbose=0)
    mine = model.fit(X, Y, epochs=5, initial_epoch=first.epoch[-1], verbose=0,
                     callbacks=[LearningRateScheduler(schedule)])
    assert mine.epoch == theirs.epoch == [2, 3, 4]
    np.testing.assert_allclose(mine.history["learning_rate"], theirs.history["learning_rate"],
                               rtol=1e-6)


def test_early_stopping_keeps_the_last_epochs_weights_by_default_as_keras():
    """Keras's restore_best_weights is False: the fit ends with the weights of the epoch it
    stopped after (dlcore's default put the best epoch's back)."""
    from dlcore.callbacks import Callback, EarlyStopping
    last = []

    class Last(Callback):
        def on_epoch_end(self, epoch, logs=None):
            last[:] = self.model.get_weights()

    model = regularised_network()
    model.compile("cross_entropy", SGD(5.0))        # too large: the loss bounces
    stopper = EarlyStopping(monitor="loss", patience=1)
    model.fit(X, Y, epochs=30, batch_size=4, verbose=0, callbacks=[Last(), stopper])
    assert stopper.stopped_epoch is not None and stopper.best_epoch < stopper.stopped_epoch
    for mine, expected in zip(model.get_weights(), last):
        np.testing.assert_array_equal(mine, expected)


def test_early_stoppings_defaults_are_kerass():
    import inspect
    keras = real_keras()
    from dlcore.callbacks import EarlyStopping

    def defaults(cls):
        return {name: parameter.default
                for name, parameter in inspect.signature(cls).parameters.items()}
    assert defaults(EarlyStopping) == defaults(keras.callbacks.EarlyStopping)


def test_keras_epsilon_forms_worked_by_hand():
    """RMSprop: g / sqrt(s + eps); Adam's first step: eta sqrt(1 - b2) / (1 - b1) m /
    (sqrt(v) + eps) with m = 0.1 g, v = 0.001 g^2: for g = 3 and eps = sqrt(v) half the rate
    (dlcore's form: eta g / (|g| + eps), 0.969 of it)."""
    from dlcore.optimizers import Adam, RMSProp
    from test_optimizers import run
    theta, _ = run(RMSProp(0.1, rho=0.5, epsilon=2.0, epsilon_form="keras"), [[2.0]], [1.0])
    np.testing.assert_allclose(theta, [1.0 - 0.1 * 2.0 / np.sqrt(2.0 + 2.0)], rtol=1e-6)
    epsilon = np.sqrt(0.009)
    for backend in ("reference", "cpu"):
        theta, _ = run(Adam(0.01, epsilon=epsilon, epsilon_form="keras"), [[3.0]], [0.0],
                       backend)
        np.testing.assert_allclose(theta, [-0.005], rtol=1e-5)
    theta, _ = run(Adam(0.01, epsilon=epsilon), [[3.0]], [0.0])
    np.testing.assert_allclose(theta, [-0.01 * 3 / (3 + epsilon)], rtol=1e-5)
    with pytest.raises(ValueError, match="epsilon_form must be 'dlcore'"):
        Adam(epsilon_form="pytorch")


def keras_trained(keras, optimizer, x, labels, epochs):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)),
                              keras.layers.Conv2D(3, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer, "sparse_categorical_crossentropy")
    for _ in range(epochs):
        model.fit(x, labels, epochs=1, batch_size=8, shuffle=False, verbose=0)
    return model


def assert_both_train_alike(in_keras, model, x, labels, tmp_path):
    """Three more epochs in Keras and in dlcore (channels-first), then the same weights."""
    for _ in range(3):
        in_keras.fit(x, labels, epochs=1, batch_size=8, shuffle=False, verbose=0)
        model.fit(x.transpose(0, 3, 1, 2), labels, epochs=1, batch_size=8, shuffle=False,
                  verbose=0)
    in_keras.save(tmp_path / "after.keras")
    for mine, theirs in zip(model.get_weights(), dlcore.load(tmp_path / "after.keras")
                            .get_weights()):
        np.testing.assert_allclose(mine, theirs, atol=1e-5)


def imported_from_keras_and_trained_alike(keras, optimizer, form, tmp_path):
    """A model Keras trained 2 epochs (4 batches each) with ``optimizer``, saved and imported:
    its optimiser takes Keras's ``form`` (``"epsilon_form"`` or ``"momentum_form"``), it and
    Keras's model train 3 more epochs alike, and dlcore's file of it keeps the form. The
    imported model."""
    rng = np.random.default_rng(0)
    x = rng.random((32, 6, 6, 1)).astype(np.float32)
    labels = rng.integers(0, 3, 32)
    in_keras = keras_trained(keras, optimizer, x, labels, 2)
    in_keras.save(tmp_path / "keras.keras")
    model = dlcore.load(tmp_path / "keras.keras")
    assert getattr(model.optimizer, form) == "keras"
    assert_both_train_alike(in_keras, model, x, labels, tmp_path)
    dlcore.save(model, tmp_path / "model.h5")
    assert getattr(dlcore.load(tmp_path / "model.h5").optimizer, form) == "keras"
    return model


@pytest.mark.parametrize("settings", [
    ("Adam", {"learning_rate": 0.01, "epsilon": 1e-3}),
    ("Adam", {"learning_rate": 0.01, "clipnorm": 0.01}),
    ("Adam", {"learning_rate": 0.01, "global_clipnorm": 0.001}),
    ("RMSprop", {"learning_rate": 0.01}),
    ("RMSprop", {"learning_rate": 0.01, "clipnorm": 0.01}),
], ids=["adam-epsilon", "adam-clipnorm", "adam-global-clipnorm", "rmsprop", "rmsprop-clipnorm"])
def test_an_imported_keras_optimizer_steps_as_keras(tmp_path, settings):
    """A model Keras trained 2 epochs (4 batches each), saved and imported, then trained 3 more
    epochs on both sides: the weights agree within 1e-5 (dlcore's placement of epsilon moved
    them by 2e-4 with Adam's clipnorm, 6e-2 with RMSprop's, 2e-2 with Adam's epsilon 1e-3)."""
    keras = real_keras()
    name, config = settings
    model = imported_from_keras_and_trained_alike(
        keras, getattr(keras.optimizers, name)(**config), "epsilon_form", tmp_path)
    # Keras's file gets its own settings only
    model.save(tmp_path / "back.keras")
    assert type(keras.models.load_model(tmp_path / "back.keras").optimizer).__name__ == name


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_keras_file_dlcore_wrote_keeps_its_optimisers_epsilon_form_and_keras_reads_it(
        tmp_path, suffix):
    """dlcore's form crosses its own Keras files (beside Keras's settings: Keras's optimisers
    take no such argument), so that a model saved and loaded back steps as before; Keras
    loads the file compiled, with its own Adam."""
    from dlcore.optimizers import Adam, RMSProp
    for optimizer, form in ((Adam(0.01), "dlcore"), (RMSProp(epsilon_form="keras"), "keras")):
        model = regularised_network()
        model.compile("cross_entropy", optimizer)
        model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
        model.save(tmp_path / f"model{suffix}")
        assert dlcore.load(tmp_path / f"model{suffix}").optimizer.epsilon_form == form
    keras = real_keras()
    model = regularised_network()
    model.compile("cross_entropy", Adam(0.01))
    model.save(tmp_path / f"adam{suffix}")
    in_keras = keras.models.load_model(tmp_path / f"adam{suffix}")
    assert type(in_keras.optimizer).__name__ == "Adam"
    assert float(in_keras.optimizer.learning_rate) == pytest.approx(0.01)


def test_keras_momentum_form_worked_by_hand():
    """With eta_0 = 0.1, eta_1 = 0.05 (ExponentialDecay halving each step), g = 1 then 2:
    Keras's v_1 = -0.1, v_2 = 0.9 v_1 - 0.05 * 2 = -0.19, theta_2 = v_1 + v_2 = -0.29, where
    the lecture's Delta_2 = 2.9 steps to -0.1 - 0.05 * 2.9 = -0.245; Nesterov's theta_1 =
    0.9 v_1 - 0.1 = -0.19, theta_2 = -0.19 + 0.9 v_2 - 0.05 * 2 = -0.461. At a constant rate
    both forms take the same steps."""
    from dlcore.optimizers import ExponentialDecay
    from test_optimizers import run

    def halving(**options):
        return SGD(ExponentialDecay(0.1, 1, 0.5), momentum=0.9, **options)

    for backend in ("reference", "cpu"):
        theta, slots = run(halving(momentum_form="keras"), [[1.0], [2.0]], [0.0], backend)
        np.testing.assert_allclose(theta, [-0.29], rtol=1e-6)
        np.testing.assert_allclose(slots["velocity"], [-0.19], rtol=1e-6)
        theta, _ = run(halving(nesterov=True, momentum_form="keras"), [[1.0], [2.0]], [0.0],
                       backend)
        np.testing.assert_allclose(theta, [-0.461], rtol=1e-6)
        theta, _ = run(halving(), [[1.0], [2.0]], [0.0], backend)
        np.testing.assert_allclose(theta, [-0.245], rtol=1e-6)
    constant = [run(SGD(0.1, momentum=0.9, momentum_form=form), [[1.0], [2.0], [-1.0]],
                    [0.0])[0] for form in ("dlcore", "keras")]
    np.testing.assert_allclose(constant[0], constant[1], rtol=1e-6)
    with pytest.raises(ValueError, match="momentum_form must be 'dlcore'"):
        SGD(momentum=0.9, momentum_form="pytorch")


@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_an_imported_keras_sgd_with_a_decaying_rate_steps_as_keras(tmp_path, nesterov):
    """A model Keras trained 2 epochs (4 batches each) with SGD momentum 0.9 under an
    ExponentialDecay, saved and imported (with its velocity), then trained 3 more epochs on
    both sides: the weights agree within 1e-5 (the lecture's momentum, with Keras's velocity
    converted at the current rate, moved them by 0.5). dlcore's files and its Keras files
    keep the form; Keras reads its own SGD."""
    keras = real_keras()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.2, decay_steps=3, decay_rate=0.5)
    model = imported_from_keras_and_trained_alike(
        keras, keras.optimizers.SGD(schedule, momentum=0.9, nesterov=nesterov), "momentum_form",
        tmp_path)
    for suffix in (".keras", ".h5"):
        model.save(tmp_path / f"back{suffix}")
        assert dlcore.load(tmp_path / f"back{suffix}").optimizer.momentum_form == "keras"
        assert type(keras.models.load_model(tmp_path / f"back{suffix}").optimizer).__name__ \
            == "SGD"
    own = regularised_network()
    own.compile("cross_entropy", SGD(0.1, momentum=0.9))
    own.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    own.save(tmp_path / "own.keras")
    again = dlcore.load(tmp_path / "own.keras")
    assert again.optimizer.momentum_form == "dlcore"
    for before, after in zip(own.optimizer.get_state(own.parameters)["slots"].values(),
                             again.optimizer.get_state(again.parameters)["slots"].values()):
        for weight in before:
            np.testing.assert_allclose(after[weight]["velocity"], before[weight]["velocity"],
                                       rtol=1e-6)


def test_an_imported_keras_inverse_time_decay_steps_as_keras_and_goes_back(tmp_path):
    """Keras's InverseTimeDecay (Keras 2's ``decay=`` as a schedule) was refused as 'not one
    dlcore has': a model Keras trained with it imports with dlcore's, both train 3 more
    epochs alike, and Keras reads it back as its own."""
    keras = real_keras()
    schedule = keras.optimizers.schedules.InverseTimeDecay(0.2, decay_steps=3, decay_rate=0.5)
    model = imported_from_keras_and_trained_alike(
        keras, keras.optimizers.SGD(schedule, momentum=0.9), "momentum_form", tmp_path)
    assert type(model.optimizer.learning_rate).__name__ == "InverseTimeDecay"
    model.save(tmp_path / "back.keras")
    rate = keras.models.load_model(tmp_path / "back.keras").optimizer.get_config()[
        "learning_rate"]
    assert rate["class_name"] == "InverseTimeDecay" and rate["config"]["decay_rate"] == 0.5

"""Keras 3's settings of every optimiser: clipvalue, use_ema (ema_momentum,
ema_overwrite_frequency), gradient_accumulation_steps, name; loss_scale_factor refused.

Oracles: Keras's own optimisers applied to the same gradients (``optimizer.apply``), and a
model trained in Keras, carried to dlcore and back through ``.keras`` archives, whose next
steps match (skipped where Keras is not installed)."""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import Dense
from dlcore.optimizers import SGD, AdaGrad, Adam, RMSProp, get_optimizer
from dlcore.regularizers import MaxNorm
from test_io_keras import real_keras
from test_io_keras_real import predict_nchw
from test_optimizers import run

GRADIENTS = [[0.5, -3.0, 0.2], [2.0, 0.1, -0.4], [-1.0, 0.3, 0.9], [0.2, -0.2, 5.0],
             [1.0, 1.0, 1.0], [0.3, -2.0, 0.1]]
THETA0 = [1.0, -2.0, 0.5]
SETTINGS = [{"clipvalue": 0.5},
            {"use_ema": True, "ema_momentum": 0.7, "ema_overwrite_frequency": 2},
            {"gradient_accumulation_steps": 3, "use_ema": True, "ema_momentum": 0.6},
            {"gradient_accumulation_steps": 2, "clipvalue": 0.3}]
RULES = [("SGD", {"learning_rate": 0.1, "momentum": 0.9}, {"momentum_form": "keras"}),
         ("Adam", {"learning_rate": 0.1}, {"epsilon_form": "keras"})]


def by_keras(keras, optimizer):
    """Keras's variable after ``optimizer`` applied GRADIENTS, then finalised (fit's end)."""
    variable = keras.Variable(np.array(THETA0, np.float32))
    for gradient in GRADIENTS:
        optimizer.apply([keras.ops.convert_to_tensor(np.array(gradient, np.float32))],
                        [variable])
    optimizer.finalize_variable_values([variable])
    return keras.ops.convert_to_numpy(variable)


@pytest.mark.parametrize("backend", ["reference", "cpu",
                                     pytest.param("cuda", marks=requires_cuda)])
@pytest.mark.parametrize("settings", SETTINGS, ids=["clipvalue", "ema-overwrite",
                                                    "accumulation-ema", "accumulation-clip"])
def test_kerass_base_settings_take_kerass_steps(settings, backend):
    """Python's "unexpected keyword argument" for each before: now Keras's steps, on the
    reference and the kernels, to float32 rounding."""
    keras = real_keras()
    for keras_name, common, form in RULES:
        expected = by_keras(keras, getattr(keras.optimizers, keras_name)(**common, **settings))
        optimizer = get_optimizer({"class_name": keras_name.lower(),
                                   "config": {**common, **form, **settings}})
        theta, slots = run(optimizer, GRADIENTS, THETA0, backend)
        if optimizer.use_ema:   # what fit's end gives the weights
            theta = slots["average"]
        np.testing.assert_allclose(theta, expected, rtol=1e-5, atol=1e-5)
        plain, _ = run(get_optimizer({"class_name": keras_name.lower(),
                                      "config": {**common, **form}}), GRADIENTS, THETA0,
                       backend)
        assert np.abs(plain - theta).max() > 1e-3        # the setting changed the steps


def test_kerass_base_settings_are_checked_and_saved():
    optimizer = Adam(0.01, clipvalue=0.5, use_ema=True, ema_momentum=0.9,
                     ema_overwrite_frequency=5, gradient_accumulation_steps=4, name="head")
    config = optimizer.get_config()
    again = get_optimizer({"class_name": "adam", "config": config})
    assert again.get_config() == config and again.given_name == "head"
    assert again.state_slot_names == ("m", "v", "average", "gradient_accumulator")
    assert "use_ema" not in Adam().get_config()     # files without them read as before
    for bad, words in [({"loss_scale_factor": 128.0}, "float16"),
                       ({"clipvalue": 0.5, "clipnorm": 1.0}, "not both"),
                       ({"ema_overwrite_frequency": 3}, "use_ema=True"),
                       ({"gradient_accumulation_steps": 1}, ">= 2"),
                       ({"use_ema": True, "ema_momentum": 1.5}, "ema_momentum"),
                       ({"name": 3}, "name")]:
        with pytest.raises(ValueError, match=words):
            RMSProp(**bad)


def test_ema_and_accumulation_cross_keras_archives_both_ways(tmp_path):
    """Keras trains with use_ema, gradient accumulation and clipvalue, saves; dlcore loads
    the settings and the averages and accumulators with the state, takes Keras's next
    epoch (its end finalising the weights to their averages), and writes an archive that
    Keras loads without a warning and trains on as dlcore does."""
    import warnings
    keras = real_keras()
    rng = np.random.default_rng(0)
    x = rng.random((24, 1, 1, 6)).astype(np.float32)
    labels = rng.integers(0, 3, 24)
    x_nchw = x.transpose(0, 3, 1, 2)
    keras.utils.set_random_seed(0)
    in_keras = keras.Sequential([keras.Input((1, 1, 6)), keras.layers.Flatten(),
                                 keras.layers.Dense(5, activation="relu"),
                                 keras.layers.Dense(3, activation="softmax")])
    settings = {"use_ema": True, "ema_momentum": 0.8, "gradient_accumulation_steps": 2,
                "clipvalue": 0.05}
    in_keras.compile(keras.optimizers.Adam(0.05, **settings), "sparse_categorical_crossentropy")
    # 3 batches an epoch: an accumulator left half full at the epoch's end crosses too
    step = {"epochs": 1, "batch_size": 8, "shuffle": False, "verbose": 0}
    in_keras.fit(x, labels, **step)
    in_keras.save(tmp_path / "keras.keras")
    model = dlcore.load(tmp_path / "keras.keras")
    assert {key: model.optimizer.get_config()[key] for key in settings} == settings
    model.fit(x_nchw, labels, **step)
    in_keras.fit(x, labels, **step)
    np.testing.assert_allclose(model.predict(x_nchw), predict_nchw(in_keras, x_nchw),
                               atol=2e-6)
    model.save(tmp_path / "dlcore.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        back = keras.models.load_model(tmp_path / "dlcore.keras")
    back.fit(x, labels, **step)
    model.fit(x_nchw, labels, **step)
    np.testing.assert_allclose(model.predict(x_nchw), predict_nchw(back, x_nchw), atol=2e-6)
    # and dlcore's own file keeps them, state included
    dlcore.save(model, tmp_path / "dlcore.h5")
    again = dlcore.load(tmp_path / "dlcore.h5")
    assert again.optimizer.get_config() == model.optimizer.get_config()
    again.fit(x_nchw, labels, **step)
    model.fit(x_nchw, labels, **step)
    np.testing.assert_allclose(again.predict(x_nchw), model.predict(x_nchw), atol=1e-7)


def test_fit_ends_with_the_moving_averages_as_keras_does():
    """use_ema: the weights after fit are the averages (Keras's finalize_variable_values),
    which differ from the last step's."""
    rng = np.random.default_rng(1)
    x, labels = rng.random((16, 4)).astype(np.float32), rng.integers(0, 2, 16)

    def trained(optimizer):
        model = dlcore.Sequential([Dense(2, activation="softmax", input_shape=(4,))],
                                  seed=0, backend="reference")
        model.compile("cross_entropy", optimizer)
        model.fit(x, labels, epochs=2, batch_size=4, verbose=0, shuffle=False)
        return model

    averaged = trained(SGD(0.5, use_ema=True, ema_momentum=0.5))
    plain = trained(SGD(0.5))
    parameter = averaged.trainable_parameters[0]
    np.testing.assert_array_equal(parameter.value, parameter.slots["average"])
    assert np.abs(averaged.get_weights()[0] - plain.get_weights()[0]).max() > 1e-4


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_adagrads_gradient_accumulator_starts_at_zero(backend):
    """AdaGrad's initial_accumulator_value (Keras's 0.1) is where its sum of squares starts,
    not the gradient accumulator's: two accumulated batches step as one batch of their mean
    gradient (the accumulator started at 0.1 put 0.05 into the first step's gradient)."""
    gradients = [[0.2, -0.1], [0.4, 0.05]]
    accumulated, slots = run(AdaGrad(0.1, initial_accumulator_value=0.1,
                                     gradient_accumulation_steps=2), gradients, [1.0, -1.0],
                             backend)
    mean, _ = run(AdaGrad(0.1, initial_accumulator_value=0.1), [np.mean(gradients, axis=0)],
                  [1.0, -1.0], backend)
    np.testing.assert_allclose(accumulated, mean, rtol=1e-6)
    np.testing.assert_allclose(slots["accumulator"], 0.1 + np.mean(gradients, axis=0) ** 2,
                               rtol=1e-6)
    np.testing.assert_array_equal(slots["gradient_accumulator"], 0)


@pytest.mark.parametrize("backend", ["reference", "cpu",
                                     pytest.param("cuda", marks=requires_cuda)])
def test_accumulated_gradients_hold_each_batchs_penalty(backend):
    """Keras sums each batch's gradient of the cost, its regulariser's at that batch's
    weights: the max-norm constraint applied after the first batch (which takes no step)
    moves the weights the second batch's penalty is taken at. dlcore added the penalty of
    the step's weights to the mean instead (6e-4 off a Keras Dense after one step)."""
    # a Dense kernel (2 inputs, 1 unit) of norm 5, constrained to 1
    theta0, l2, rate = np.array([[3.0], [-4.0]]), 0.5, 0.1
    gradients = [[[0.2], [-0.1]], [[0.4], [0.05]]]
    theta, _ = run(SGD(rate, gradient_accumulation_steps=2), gradients, theta0, backend,
                   l2=l2, constraint=MaxNorm(1.0), units_axis=1)
    constrained = theta0 / 5
    mean = (np.add(gradients[0], l2 * theta0) + np.add(gradients[1], l2 * constrained)) / 2
    stepped = constrained - rate * mean
    np.testing.assert_allclose(theta, stepped * min(1.0, 1 / np.linalg.norm(stepped)),
                               rtol=1e-6)


def test_compile_with_another_optimizer_starts_its_state_afresh():
    """Keras's compile gives a new optimiser fresh variables. dlcore's parameters kept the
    last optimiser's slots: a new Adam stepped the old moments with its count from 0, and a
    new accumulator started half full. The same optimiser object keeps its state."""
    rng = np.random.default_rng(2)
    x, labels = rng.random((12, 4)).astype(np.float32), rng.integers(0, 2, 12)
    step = {"epochs": 1, "batch_size": 4, "verbose": 0, "shuffle": False}

    def network():
        return dlcore.Sequential([Dense(2, activation="softmax", input_shape=(4,))], seed=0,
                                 backend="reference")

    trained = network().compile("cross_entropy", Adam(0.1, gradient_accumulation_steps=2))
    trained.fit(x, labels, **step)      # 3 batches: the accumulator holds the third's
    weights = trained.get_weights()
    trained.compile("cross_entropy", Adam(0.1, gradient_accumulation_steps=2))
    trained.fit(x, labels, **step)
    fresh = network().compile("cross_entropy", Adam(0.1, gradient_accumulation_steps=2))
    fresh.build((4,))
    fresh.set_weights(weights)
    fresh.fit(x, labels, **step)
    for got, expected in zip(trained.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(got, expected)
    kept = trained.optimizer
    moments = trained.parameters[0].slots["m"].copy()
    trained.compile("cross_entropy", kept)
    np.testing.assert_array_equal(trained.parameters[0].slots["m"], moments)


def test_an_optimizer_clipping_by_both_norms_is_left_out_of_keras_files(tmp_path):
    """dlcore's optimisers may clip by clipnorm and global_clipnorm together, Keras's refuse
    the pair: the archive dlcore wrote made Keras's load_model fail on the whole file ("Only
    one of clipnorm, clipvalue and global_clipnorm"). The compile settings are left out with
    a note, and the model loads (uncompiled) in Keras."""
    import json
    import zipfile
    model = dlcore.Sequential([Dense(2, activation="softmax", input_shape=(4,))], seed=0,
                              backend="reference")
    model.compile("cross_entropy", Adam(0.01, clipnorm=1.0, global_clipnorm=2.0))
    with pytest.warns(UserWarning, match="both clipnorm and global_clipnorm"):
        model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        assert json.loads(archive.read("config.json")).get("compile_config") is None
    np.testing.assert_array_equal(dlcore.load(tmp_path / "m.keras").get_weights()[0],
                                  model.get_weights()[0])


def test_a_fit_left_no_epoch_by_initial_epoch_still_takes_the_averages(tmp_path):
    """Keras's fit(epochs=2, initial_epoch=2) runs no epoch and still ends with
    finalize_variable_values: a model loaded from the checkpoint of its last epoch (saved
    before fit's end, with the last step's weights) takes its moving averages. dlcore's fit
    finalised only after an epoch it ran, leaving the last step's weights."""
    from dlcore.callbacks import ModelCheckpoint
    rng = np.random.default_rng(3)
    x, labels = rng.random((12, 4)).astype(np.float32), rng.integers(0, 2, 12)
    model = dlcore.Sequential([Dense(2, activation="softmax", input_shape=(4,))], seed=0,
                              backend="reference")
    model.compile("cross_entropy", SGD(0.5, use_ema=True, ema_momentum=0.5))
    model.fit(x, labels, epochs=2, batch_size=4, verbose=0,
              callbacks=[ModelCheckpoint(str(tmp_path / "epoch{epoch}.h5"))])
    loaded = dlcore.load(tmp_path / "epoch2.h5")
    parameter = loaded.trainable_parameters[0]
    assert np.abs(parameter.value - parameter.slots["average"]).max() > 1e-4
    loaded.fit(x, labels, epochs=2, initial_epoch=2, batch_size=4, verbose=0)
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])


def test_finalize_variable_values_names_what_it_takes():
    """Keras's finalize_variable_values(model.trainable_weights), a Keras user's call after a
    custom loop, raised AttributeError ('numpy.ndarray' object has no attribute 'value') from
    dlcore: one line now names model.trainable_parameters, and no weight changed."""
    rng = np.random.default_rng(4)
    x, labels = rng.random((8, 4)).astype(np.float32), rng.integers(0, 2, 8)
    model = dlcore.Sequential([Dense(2, activation="softmax", input_shape=(4,))], seed=0,
                              backend="reference")
    model.compile("cross_entropy", SGD(0.5, use_ema=True, ema_momentum=0.5))
    for start in (0, 4):
        model.train_on_batch(x[start:start + 4], labels[start:start + 4])
    before = model.get_weights()
    with pytest.raises(ValueError, match="pass model.trainable_parameters"):
        model.optimizer.finalize_variable_values(model.trainable_weights)
    for got, kept in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, kept)
    model.optimizer.finalize_variable_values(model.trainable_parameters)
    np.testing.assert_array_equal(model.get_weights()[0],
                                  model.trainable_parameters[0].slots["average"])
    assert np.abs(model.get_weights()[0] - before[0]).max() > 1e-4


def test_iterations_counts_steps_with_accumulation_as_kerass(tmp_path):
    """Keras 3's ``optimizer.iterations`` is the steps taken (its ``_iterations``, which its
    archives store as ``iteration``, the batches): dlcore's counted the batches. Files keep
    the batches, a loaded model resumes as the uninterrupted one, and a Keras archive's Nadam
    product of momenta is that of the steps (Keras multiplies it once a step)."""
    import io
    import pickle
    import zipfile

    import h5py

    from dlcore.optimizers import Nadam
    rng = np.random.default_rng(2)
    x, labels = rng.random((12, 4)).astype(np.float32), rng.integers(0, 2, 12)
    step = {"batch_size": 3, "verbose": 0, "shuffle": False}
    model = dlcore.Sequential([Dense(2, activation="softmax", input_shape=(4,))], seed=0,
                              backend="reference")
    model.compile("cross_entropy", Nadam(0.1, gradient_accumulation_steps=2))
    model.fit(x, labels, epochs=2, **step)           # 8 batches, 4 steps
    assert model.optimizer.iterations == 4
    dlcore.save(model, tmp_path / "model.h5")
    loaded = dlcore.load(tmp_path / "model.h5")
    assert loaded.optimizer.iterations == 4
    assert pickle.loads(pickle.dumps(model.optimizer)).iterations == 4
    model.save(tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
            variables = weights["optimizer/vars"]
            stored_batches = int(variables["0"][()])
            product = float(variables[str(len(variables) - 1)][()])
    assert stored_batches == 8
    np.testing.assert_allclose(product, model.optimizer.momentum_schedule(4)[1], rtol=1e-6)
    loaded.fit(x, labels, epochs=1, **step)
    model.fit(x, labels, epochs=1, **step)
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    for got, expected in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, expected)


def test_rmsprop_takes_kerass_momentum_and_centered_and_refuses_bad_values_in_one_line():
    """Keras's RMSprop(momentum=0.0, centered=False), even at those defaults, raised Python's
    "unexpected keyword argument" TypeError; later any other momentum or centring was
    refused. Both are built now (their steps: tests/test_optimizers_rmsprop.py): the
    defaults take the plain steps, and a value outside the rule is one line naming it."""
    gradients, theta0 = [[0.5, -2.0], [1.0, 0.25]], [0.3, -0.1]
    as_keras_writes_it = run(RMSProp(0.01, momentum=0.0, centered=False), gradients, theta0)[0]
    np.testing.assert_array_equal(as_keras_writes_it, run(RMSProp(0.01), gradients, theta0)[0])
    assert RMSProp(momentum=0.9, centered=True).slot_names == (
        "mean_square", "momentum", "average_gradient")
    with pytest.raises(ValueError, match=r"^momentum must be .*got 1\.0"):
        RMSProp(momentum=1.0)
    with pytest.raises(TypeError, match=r"^centered must be True or False, got 'yes'"):
        RMSProp(centered="yes")


@pytest.mark.parametrize("name", sorted(dlcore.optimizers.OPTIMIZERS))
def test_kerass_2_decay_is_refused_in_one_line_naming_its_schedule(name):
    """Keras 2's ``decay=`` (``Adam(lr=0.001, decay=1e-6)`` of older tutorials), which Keras 3
    ignores, raised Python's "unexpected keyword argument" TypeError; its default 0 changes
    nothing and is taken."""
    make = dlcore.optimizers.OPTIMIZERS[name]
    assert make(decay=0.0).get_config() == make().get_config()
    with pytest.raises(ValueError, match=r"^decay=1e-06 is Keras 2's decay of the learning "
                                         r"rate.*learning_rate=dlcore\.optimizers\."
                                         r"InverseTimeDecay\(lr, 1, decay\)") as refused:
        make(lr=0.001, decay=1e-6)
    assert "\n" not in str(refused.value)

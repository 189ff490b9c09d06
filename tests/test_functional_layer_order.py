"""A functional model's ``layers`` (and so ``get_weights``, ``set_weights`` and ``summary``) in
Keras's ``model.layers`` order for the same graph, and dlcore's files written before that order
still loading exactly. The oracle is Keras itself (skipped where it is not installed; run with
``KERAS_BACKEND=torch``) and, for the old files, a file the previous dlcore wrote
(tests/fixtures/make_dlcore_fixtures.py) with the predictions it made."""
import os

import numpy as np

import dlcore
from dlcore.layers import Add, Conv2D, Dense, Flatten, ReLU
from test_io_keras import real_keras

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def dense_residual_block(library):
    """A residual block with a projection shortcut made after the main path and given to Add
    first, in dlcore or in Keras (Dense layers: the same kernel layout in both)."""
    inputs = library.Input(shape=(6,))
    stem = library.layers.Dense(5, activation="relu", name="stem")(inputs)
    main = library.layers.Dense(4, activation="relu", name="a")(stem)
    main = library.layers.Dense(4, name="b")(main)
    shortcut = library.layers.Dense(4, name="proj")(stem)
    hidden = library.layers.ReLU(name="join_relu")(library.layers.Add(name="join")([shortcut,
                                                                                   main]))
    outputs = library.layers.Dense(3, activation="softmax", name="out")(hidden)
    if library is dlcore:
        return dlcore.Model(inputs, outputs, seed=4)
    return library.Model(inputs, outputs)


def test_layers_of_a_projection_shortcut_block_are_in_keras_order():
    keras = real_keras()
    ours, theirs = dense_residual_block(dlcore), dense_residual_block(keras)
    keras_names = [layer.name for layer in theirs.layers if type(layer).__name__ != "InputLayer"]
    assert keras_names == ["stem", "a", "proj", "b", "join", "join_relu", "out"]
    assert [layer.name for layer in ours.layers] == keras_names
    assert [row.name for row in ours.summary(print_fn=None).rows] == keras_names


def test_keras_set_weights_of_dlcore_get_weights_predicts_alike_both_ways():
    keras = real_keras()
    ours, theirs = dense_residual_block(dlcore), dense_residual_block(keras)
    x = np.random.default_rng(0).random((5, 6)).astype(np.float32)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(theirs(x)), ours.predict(x),
                               atol=1e-6)
    other = dense_residual_block(keras)
    ours.set_weights([keras.ops.convert_to_numpy(w) for w in other.get_weights()])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(other(x)), ours.predict(x),
                               atol=1e-6)


def test_initial_weights_and_default_names_are_those_of_the_first_calls_order():
    # the seed gives layer i of the graph's first calls the key layer_seed(seed, i), as before
    inputs = dlcore.Input(shape=(6,))
    stem = Dense(5)(inputs)
    model = dlcore.Model(inputs, Add()([Dense(4)(stem), Dense(4)(Dense(4)(stem))]), seed=9)
    first_calls = ["dense", "dense_1", "dense_2", "dense_3", "add"]
    assert [layer.name for layer in model._first_called] == first_calls
    assert [layer.name for layer in model.layers] == ["dense", "dense_2", "dense_1", "dense_3",
                                                      "add"]
    for index, layer in enumerate(model._first_called[:-1]):
        alone = Dense(layer.units)
        alone.build(layer.input_shape, model.backend, np.float32,
                    seed=dlcore.backend.rng.layer_seed(9, index))
        np.testing.assert_array_equal(alone.get_weights()[0], layer.get_weights()[0])


def test_a_file_written_before_the_keras_order_loads_and_resumes_as_before():
    expected = np.load(os.path.join(FIXTURES, "dlcore_residual_2026_12.npz"))
    path = os.path.join(FIXTURES, "dlcore_residual_2026_12.h5")
    model = dlcore.load(path)
    # the old file lists the shortcut (conv2d_1) before the main path; Keras's order does not
    assert [layer.name for layer in model.layers][:4] == ["conv2d", "conv2d_2", "conv2d_3",
                                                          "conv2d_1"]
    # the convolutions' products are summed in the order of this machine's BLAS kernels (MKL on
    # Intel, OpenBLAS elsewhere: a Zen 4 differed from the fixture's Xeon by 1 in the last bit)
    np.testing.assert_allclose(model.predict(expected["x"]), expected["p"], rtol=1e-6, atol=0)
    best = model.callback_state["EarlyStopping"]["best_weights"]
    names = [f"best:{layer.name}/{array}" for layer in model.layers
             for array in layer.array_names]
    assert len(best) == len(names)
    for index, name in enumerate(names):
        np.testing.assert_array_equal(best[str(index)], expected[name])
    model.fit(expected["x"], expected["y"], epochs=4, initial_epoch=3, batch_size=8, verbose=0)
    # training's gradient products are summed in the order of this machine's BLAS kernels
    # (AVX2 and AVX-512 differ in the last bits; the fixture was made on AVX-512): a resume
    # that gave a layer another's weights or velocity would miss by far more than rounding
    assert_resumed_as_before(model.predict(expected["x"]), expected["p_next"])
    stopped = dlcore.load(path)
    stopped.fit(expected["x"], expected["y"], epochs=4, initial_epoch=3, batch_size=8,
                verbose=0, callbacks=[dlcore.callbacks.EarlyStopping(
                    "loss", patience=10, restore_best_weights=True)])
    assert_resumed_as_before(stopped.predict(expected["x"]), expected["p_early"])


def assert_resumed_as_before(predicted, expected):
    """Equal to float32 rounding of a few updates: bit for bit on the machine that wrote the
    fixture, within 1e-5 on another ISA (the differences seen: up to 9e-8)."""
    np.testing.assert_allclose(predicted, expected, rtol=1e-5, atol=1e-6)


def test_a_file_written_now_lists_the_keras_order_and_loads_the_same(tmp_path):
    inputs = dlcore.Input(shape=(1, 6, 6))
    stem = Conv2D(2, 3, padding="same", activation="relu")(inputs)
    main = Conv2D(3, 3, padding="same")(Conv2D(3, 3, padding="same", activation="relu")(stem))
    hidden = Flatten()(ReLU()(Add()([Conv2D(3, 1)(stem), main])))
    model = dlcore.Model(inputs, Dense(4, activation="softmax")(hidden), seed=1)
    dlcore.save(model, str(tmp_path / "m.h5"))
    again = dlcore.load(str(tmp_path / "m.h5"))
    assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]
    x = np.random.default_rng(1).random((3, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))

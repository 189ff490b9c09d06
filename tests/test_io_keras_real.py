"""Round trips through real Keras (skipped where Keras is not installed: Keras is no test
dependency, it pulls PyTorch or JAX). Run them with Keras 3 and its CPU backend, e.g.::

    pip install torch==2.13.0 keras        # pin a CPU build of torch
    KERAS_BACKEND=torch python -m pytest tests/test_io_keras_real.py

Each test writes a model with one library and reads it with the other, comparing predictions on
the same images (NCHW for dlcore, NHWC for Keras): LeNet-5 with its augmentation, a residual net
and a U-Net exported from dlcore; a model trained in Keras, imported compiled, fine-tuned in
dlcore and read back by Keras, which trains on (legacy ``.h5`` and Keras 3's ``.keras``
archive); a model with a frozen layer, trained on across the seam both ways; Keras's unequal
'same' geometry; Keras 3's ``.weights.h5`` both ways; the other activations (the smooth ones
too) and LayerNormalization, trained on in Keras after dlcore wrote them.
"""
import json
import warnings

import numpy as np
import pytest

import dlcore
from dlcore.layers import Conv2D
from dlcore.models import lenet5, resnet_small, unet_small
from test_io_keras import images, real_keras


def predict_nchw(keras_model, x):
    """Keras's predictions on NCHW images, as dlcore lays out its outputs."""
    import keras
    y = keras.ops.convert_to_numpy(keras_model.predict(x.transpose(0, 2, 3, 1), verbose=0))
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y


def input_shape(model):
    return tuple(model.input_shape if isinstance(model, dlcore.Sequential)
                 else model.inputs[0].shape)


@pytest.mark.slow
@pytest.mark.parametrize("build", [
    lambda: lenet5(augment={"max_shift": 2, "horizontal_flip": True}, backend="reference",
                   seed=1),
    lambda: resnet_small(input_shape=(1, 12, 12), backend="reference", seed=2),
    lambda: unet_small(input_shape=(1, 12, 12), backend="reference", seed=3),
], ids=["lenet5", "resnet_small", "unet_small"])
def test_dlcore_models_round_trip_through_keras_files_and_weights(tmp_path, build):
    keras = real_keras()
    model = build()
    model.compile("binary_cross_entropy" if model.name == "unet_small" else "cross_entropy",
                  dlcore.optimizers.Adam(1e-3), ["accuracy"])
    x = images(3, input_shape(model))
    path = str(tmp_path / "model.h5")
    dlcore.save(model, path, format="keras")
    in_keras = keras.models.load_model(path)
    assert in_keras.compiled
    np.testing.assert_allclose(predict_nchw(in_keras, x), model.predict(x), atol=1e-5)
    back = str(tmp_path / "from_keras.h5")
    in_keras.save(back)
    again = dlcore.load(back)
    assert again.optimizer.name == "adam"
    np.testing.assert_allclose(again.predict(x), model.predict(x), atol=1e-5)
    # Keras 3's archives, both ways
    archive, back = str(tmp_path / "model.keras"), str(tmp_path / "from_keras.keras")
    model.save(archive)
    with warnings.catch_warnings():     # e.g. "Skipping variable loading for optimizer"
        warnings.simplefilter("error", UserWarning)
        in_keras = keras.models.load_model(archive)
    assert in_keras.compiled
    np.testing.assert_allclose(predict_nchw(in_keras, x), model.predict(x), atol=1e-5)
    in_keras.save(back)
    np.testing.assert_allclose(dlcore.load(back).predict(x), model.predict(x), atol=1e-5)
    # Keras 3's weights-only files, both ways
    ours, theirs = str(tmp_path / "ours.weights.h5"), str(tmp_path / "theirs.weights.h5")
    model.save_weights(ours)
    twin = keras.models.model_from_json(in_keras.to_json())
    twin.load_weights(ours)
    np.testing.assert_allclose(predict_nchw(twin, x), model.predict(x), atol=1e-5)
    in_keras.save_weights(theirs)
    np.testing.assert_allclose(dlcore.load(theirs, architecture=model).predict(x),
                               model.predict(x), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".h5", ".keras"])   # legacy HDF5, Keras 3's archive
def test_a_keras_trained_model_is_fine_tuned_in_dlcore_and_trains_on_in_keras(tmp_path, suffix):
    keras = real_keras()
    rng = np.random.default_rng(0)
    x = rng.random((64, 12, 12, 1)).astype(np.float32)
    labels = (x[:, :6].mean(axis=(1, 2, 3)) > x[:, 6:].mean(axis=(1, 2, 3))).astype(int)
    layers = keras.layers
    trained = keras.Sequential([keras.Input((12, 12, 1)),
                                layers.Conv2D(4, 3, strides=2, padding="same",
                                              activation="relu"),
                                layers.MaxPooling2D(2, padding="same"), layers.Flatten(),
                                layers.Dense(8, activation="tanh"),
                                layers.Dense(2, activation="softmax")])
    trained.compile(keras.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy",
                    metrics=["accuracy"])
    trained.fit(x, labels, epochs=3, batch_size=16, verbose=0)
    path = str(tmp_path / f"trained{suffix}")
    trained.save(path)
    model = dlcore.load(path)        # compiled as Keras was: fit continues
    x_nchw = x.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(model.predict(x_nchw), predict_nchw(trained, x_nchw), atol=1e-4)
    assert model.optimizer.name == "sgd" and model.optimizer.momentum == pytest.approx(0.9)
    before = model.evaluate(x_nchw, labels, verbose=0)
    model.fit(x_nchw, labels, epochs=3, batch_size=16, verbose=0)
    after = model.evaluate(x_nchw, labels, verbose=0)
    loss = lambda r: r["loss"] if isinstance(r, dict) else np.ravel(r)[0]  # noqa: E731
    assert loss(after) < loss(before)
    tuned = str(tmp_path / f"tuned{suffix}")
    model.save(tuned)                # as Keras's model.save: the format the suffix names
    in_keras = keras.models.load_model(tuned)
    np.testing.assert_allclose(predict_nchw(in_keras, x_nchw), model.predict(x_nchw), atol=1e-4)
    in_keras.fit(x, labels, epochs=1, batch_size=16, verbose=0)     # compiled from the file


@pytest.mark.slow
def test_keras_unequal_same_geometry_round_trips(tmp_path):
    """Stride-2 'same' on odd and even sizes, an even kernel, 'same' pools. Keras 3.15's torch
    backend averages repeated edge pixels in an unequal 'same' average pool
    (keras-team/keras#18452): that pool is compared on the other backends only."""
    keras = real_keras()
    layers = keras.layers
    average = keras.backend.backend() != "torch"
    model = keras.Sequential([
        keras.Input((11, 10, 2)),
        layers.Conv2D(3, 3, strides=2, padding="same", activation="relu"),    # 11x10 -> 6x5
        layers.Conv2D(4, 2, padding="same", activation="tanh"),                # even kernel
        layers.MaxPooling2D(2, padding="same"),                                # -> 3x3
        *([layers.AveragePooling2D(2, strides=1, padding="same")] if average else []),
        layers.Conv2D(2, 4, strides=3, padding="same"),                        # -> 1x1
        layers.Flatten(), layers.Dense(3, activation="softmax")])
    path = str(tmp_path / "same.h5")
    model.save(path)
    imported = dlcore.load(path)
    x = images(4, (2, 11, 10))
    np.testing.assert_allclose(imported.predict(x), predict_nchw(model, x), atol=1e-4)
    back = str(tmp_path / "back.h5")
    dlcore.save(imported, back, format="keras")
    np.testing.assert_allclose(predict_nchw(keras.models.load_model(back), x),
                               predict_nchw(model, x), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "functional"])
def test_training_crosses_between_keras_and_dlcore_with_its_optimizer_state(
        tmp_path, optimizer, suffix):
    """Keras trains, saves; dlcore loads it and both take the same next step (the momenta
    crossed: without them the step differs by ~0.05); and, through an archive, back from dlcore
    to Keras, which loads the state without a warning (a legacy file goes back without it:
    Keras 3.15 cannot train a model it loaded with one). The imported Adam adds eps where Keras's
    does."""
    keras = real_keras()
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1)).astype(np.float32)
    labels = rng.integers(0, 3, 32)
    x_nchw = x.transpose(0, 3, 1, 2)
    keras.utils.set_random_seed(0)
    layers = keras.layers
    if optimizer == "functional":     # a residual graph, Adam
        inputs = keras.Input((8, 8, 1))
        a = layers.Conv2D(3, 3, padding="same", activation="relu")(inputs)
        joined = layers.Concatenate()([layers.Add()([a, layers.Conv2D(3, 3, padding="same")(a)]),
                                       a])
        in_keras = keras.Model(inputs, layers.Dense(3, activation="softmax")(
            layers.Flatten()(layers.MaxPooling2D(2)(joined))))
    else:
        in_keras = keras.Sequential([keras.Input((8, 8, 1)),
                                     layers.Conv2D(3, 3, activation="relu"), layers.Flatten(),
                                     layers.Dense(3, activation="softmax")])
    in_keras.compile(keras.optimizers.SGD(0.05, momentum=0.9) if optimizer == "sgd"
                     else keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    step = {"epochs": 1, "batch_size": 32, "shuffle": False, "verbose": 0}
    for _ in range(3):
        in_keras.fit(x, labels, **step)
    in_keras.save(tmp_path / f"keras{suffix}")
    model = dlcore.load(tmp_path / f"keras{suffix}")
    assert model.optimizer.iterations == 3
    model.fit(x_nchw, labels, **step)
    in_keras.fit(x, labels, **step)
    tolerance = 1e-6 if optimizer == "sgd" else 2e-6   # Adam: float32 rounding of its moments
    np.testing.assert_allclose(model.predict(x_nchw), predict_nchw(in_keras, x_nchw),
                               atol=tolerance)
    if suffix == ".h5":
        return
    model.save(tmp_path / "dlcore.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        back = keras.models.load_model(tmp_path / "dlcore.keras")
    back.fit(x, labels, **step)
    model.fit(x_nchw, labels, **step)
    np.testing.assert_allclose(model.predict(x_nchw), predict_nchw(back, x_nchw), atol=tolerance)


@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
def test_frozen_layers_cross_between_keras_and_dlcore_and_training_goes_on(
        tmp_path, functional):
    """Transfer learning across the seam: Keras freezes its first convolution and trains; dlcore
    loads it frozen with the optimiser's state of the layers that train (Keras keeps none for a
    frozen layer) and takes Keras's next step; dlcore unfreezes nothing, saves, and Keras loads
    the layer frozen, reads every optimiser variable without a warning and takes dlcore's next
    step."""
    keras = real_keras()
    rng = np.random.default_rng(1)
    x = rng.random((32, 8, 8, 1)).astype(np.float32)
    labels = rng.integers(0, 3, 32)
    x_nchw = x.transpose(0, 3, 1, 2)
    keras.utils.set_random_seed(1)
    layers = keras.layers
    base = layers.Conv2D(3, 3, activation="relu", name="base", trainable=False)
    if functional:
        inputs = keras.Input((8, 8, 1))
        a = base(inputs)
        joined = layers.Add()([a, layers.Conv2D(3, 3, padding="same", name="branch")(a)])
        in_keras = keras.Model(inputs, layers.Dense(3, activation="softmax", name="out")(
            layers.Flatten()(joined)))
    else:
        in_keras = keras.Sequential([keras.Input((8, 8, 1)), base, layers.Flatten(),
                                     layers.Dense(4, activation="relu", name="hidden"),
                                     layers.Dense(3, activation="softmax", name="out")])
    in_keras.compile(keras.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy")
    step = {"epochs": 1, "batch_size": 32, "shuffle": False, "verbose": 0}
    for _ in range(3):
        in_keras.fit(x, labels, **step)
    in_keras.save(tmp_path / "keras.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model = dlcore.load(tmp_path / "keras.keras")
    assert model.get_layer("base").trainable is False
    frozen = model.get_layer("base").get_weights()
    model.fit(x_nchw, labels, **step)
    in_keras.fit(x, labels, **step)
    np.testing.assert_allclose(model.predict(x_nchw), predict_nchw(in_keras, x_nchw), atol=1e-6)
    model.save(tmp_path / "dlcore.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        back = keras.models.load_model(tmp_path / "dlcore.keras")
    assert back.get_layer("base").trainable is False
    back.fit(x, labels, **step)
    model.fit(x_nchw, labels, **step)
    np.testing.assert_allclose(model.predict(x_nchw), predict_nchw(back, x_nchw), atol=1e-6)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, model.get_layer("base").get_weights()))


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pools_exported_by_dlcore_predict_the_same_in_keras(tmp_path, keepdims):
    keras = real_keras()
    from dlcore.layers import Conv2D, Dense, Flatten, GlobalAvgPool2D, GlobalMaxPool2D
    inputs = dlcore.Input((2, 7, 6))
    features = Conv2D(3, 3, padding="same", activation="relu")(inputs)
    pooled = [GlobalAvgPool2D(keepdims=keepdims)(features),
              GlobalMaxPool2D(keepdims=keepdims)(features)]
    if keepdims:
        pooled = [Flatten()(tensor) for tensor in pooled]
    model = dlcore.Model(inputs, Dense(2, activation="softmax")(
        dlcore.layers.concatenate(pooled)), backend="reference", seed=5)
    model.save(tmp_path / "pools.keras")
    x = images(3, (2, 7, 6))
    np.testing.assert_allclose(predict_nchw(keras.models.load_model(tmp_path / "pools.keras"),
                                            x), model.predict(x), atol=1e-6)


def test_batch_normalization_crosses_to_keras_and_trains_the_same(tmp_path):
    """dlcore trains a net with BatchNormalization, saves an archive; Keras loads it, predicts
    the same, and its next training step (batch statistics, moving averages, momenta) is
    dlcore's."""
    keras = real_keras()
    from dlcore.layers import BatchNormalization, Conv2D, Dense, Flatten, ReLU
    model = dlcore.Sequential([Conv2D(3, 3, use_bias=False, input_shape=(2, 6, 6)),
                               BatchNormalization(momentum=0.9), ReLU(), Flatten(),
                               Dense(4, use_bias=False), BatchNormalization(scale=False),
                               Dense(3, activation="softmax")], backend="cpu", seed=3)
    model.compile(optimizer=dlcore.optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    x = images(16, (2, 6, 6))
    labels = np.arange(16) % 3
    model.fit(x, labels, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "norm.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        back = keras.models.load_model(tmp_path / "norm.keras")
    np.testing.assert_allclose(predict_nchw(back, x), model.predict(x), atol=1e-6)
    back.train_on_batch(x[:8].transpose(0, 2, 3, 1), labels[:8])
    model.train_on_batch(x[:8], labels[:8])
    np.testing.assert_allclose(predict_nchw(back, x), model.predict(x), atol=2e-6)


def test_decay_and_max_norm_cross_to_keras_and_train_the_same(tmp_path):
    """dlcore's L2, L1L2 and max-norm reach Keras as Keras's (half the L2 number, the same
    bound), so Keras's next step with them is dlcore's."""
    keras = real_keras()
    from dlcore.layers import Conv2D, Dense, Flatten
    from dlcore.regularizers import L1L2, L2, MaxNorm
    model = dlcore.Sequential([
        Conv2D(3, 3, activation="relu", input_shape=(2, 6, 6), kernel_regularizer=L2(0.1),
               kernel_constraint=MaxNorm(0.6)),
        Flatten(),
        Dense(4, activation="tanh", kernel_regularizer=L1L2(0.01, 0.1),
              kernel_constraint=MaxNorm(0.5)),
        Dense(3, activation="softmax")], backend="cpu", seed=2)
    model.compile(optimizer=dlcore.optimizers.SGD(0.2, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    x = images(16, (2, 6, 6))
    labels = np.arange(16) % 3
    model.fit(x, labels, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "decay.keras")
    back = keras.models.load_model(tmp_path / "decay.keras")
    back.train_on_batch(x[:8].transpose(0, 2, 3, 1), labels[:8])
    model.train_on_batch(x[:8], labels[:8])
    np.testing.assert_allclose(predict_nchw(back, x), model.predict(x), atol=2e-6)


def test_rescaling_exported_by_dlcore_predicts_the_same_in_keras(tmp_path):
    keras = real_keras()
    from dlcore.layers import Conv2D, Dense, Flatten, Rescaling
    model = dlcore.Sequential([Rescaling(1 / 255, input_shape=(2, 5, 5)), Conv2D(3, 3),
                               Flatten(), Rescaling(0.5, offset=0.25),
                               Dense(2, activation="softmax")], backend="reference", seed=4)
    model.save(tmp_path / "rescaled.keras")
    x = images(3, (2, 5, 5)) * 255
    np.testing.assert_allclose(predict_nchw(keras.models.load_model(tmp_path / "rescaled.keras"),
                                            x), model.predict(x), atol=1e-6)


def test_the_other_activations_cross_to_keras_and_train_the_same(tmp_path):
    """elu, selu, softplus, softsign, relu6 and leaky_relu as activations, LeakyReLU with its
    own slope and ELU as layers: Keras reads dlcore's archive, predicts the same, and its
    next training step lands where dlcore's does (every derivative agrees)."""
    keras = real_keras()
    from dlcore.layers import ELU, Conv2D, Dense, Flatten, LeakyReLU
    model = dlcore.Sequential([Conv2D(3, 3, activation="selu", input_shape=(2, 6, 6)),
                               LeakyReLU(0.05), Conv2D(2, 3, activation="softsign"), Flatten(),
                               Dense(6, activation="softplus"), ELU(),
                               Dense(6, activation="relu6"), Dense(6, activation="leaky_relu"),
                               Dense(6, activation="elu"), Dense(3, activation="softmax")],
                              backend="reference", seed=5)
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.1, momentum=0.9))
    x = images(8, (2, 6, 6)) * 4 - 2
    labels = np.arange(8) % 3
    model.save(tmp_path / "activations.keras")
    in_keras = keras.models.load_model(tmp_path / "activations.keras")
    np.testing.assert_allclose(predict_nchw(in_keras, x), model.predict(x), atol=1e-6)
    model.train_on_batch(x, labels)
    in_keras.train_on_batch(x.transpose(0, 2, 3, 1), labels)
    np.testing.assert_allclose(predict_nchw(in_keras, x), model.predict(x), atol=2e-6)


def test_the_smooth_activations_cross_to_keras_and_train_the_same(tmp_path):
    """gelu, silu, mish, hard_silu (derivatives from z), hard_sigmoid and exponential: Keras
    reads dlcore's archive, predicts the same, and its next step lands where dlcore's does."""
    keras = real_keras()
    from dlcore.layers import Activation, Conv2D, Dense, Flatten
    model = dlcore.Sequential([Conv2D(3, 3, activation="gelu", input_shape=(2, 6, 6)),
                               Conv2D(2, 3, activation="silu"), Flatten(),
                               Dense(6, activation="mish"), Dense(6, activation="hard_silu"),
                               Dense(6, activation="hard_sigmoid"), Dense(6),
                               Activation("gelu"), Dense(6, activation="exponential"),
                               Dense(3, activation="softmax")], backend="reference", seed=6)
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.1, momentum=0.9))
    x = images(8, (2, 6, 6)) * 4 - 2
    labels = np.arange(8) % 3
    model.save(tmp_path / "smooth.keras")
    in_keras = keras.models.load_model(tmp_path / "smooth.keras")
    np.testing.assert_allclose(predict_nchw(in_keras, x), model.predict(x), atol=1e-6)
    before = model.predict(x)
    model.train_on_batch(x, labels)
    in_keras.train_on_batch(x.transpose(0, 2, 3, 1), labels)
    assert np.abs(model.predict(x) - before).max() > 1e-3
    np.testing.assert_allclose(predict_nchw(in_keras, x), model.predict(x), atol=2e-6)


def test_joined_flattened_maps_cross_to_keras_both_ways(tmp_path):
    """A Dense reading a Concatenate of flattened maps and other rows, and one reading an Add
    of flattened maps: Keras predicts dlcore's export as dlcore does, and dlcore Keras's."""
    keras = real_keras()
    from dlcore.layers import Conv2D, Dense, Flatten, add, concatenate
    image = dlcore.Input(shape=(3, 5, 4))
    maps = Conv2D(2, 3, activation="relu")(image)
    flat = Flatten()(image)
    joined = concatenate([Flatten()(maps), Dense(4)(flat), flat])
    summed = add([flat, Flatten()(Conv2D(3, 1)(image))])
    model = dlcore.Model(image, [Dense(3)(joined), Dense(2)(summed)], seed=7)
    x = images(4, (3, 5, 4))
    model.save(tmp_path / "joins.keras")
    in_keras = keras.models.load_model(tmp_path / "joins.keras")
    for theirs, ours in zip(in_keras.predict(x.transpose(0, 2, 3, 1), verbose=0),
                            model.predict(x)):
        np.testing.assert_allclose(theirs, ours, atol=1e-6)
    in_keras.save(tmp_path / "from_keras.keras")
    for theirs, ours in zip(dlcore.load(tmp_path / "from_keras.keras").predict(x),
                            model.predict(x)):
        np.testing.assert_allclose(theirs, ours, atol=1e-6)


def test_keras_trains_on_what_it_trained_on_after_the_round_trip(tmp_path):
    """A Keras model trained on one-hot rows (categorical cross-entropy, its metric named as
    a string), fine-tuned in dlcore on the same rows, trains on in Keras on them; a dlcore
    model with two outputs and metrics=['accuracy'] trains in Keras."""
    keras = real_keras()
    rng = np.random.default_rng(3)
    x, labels = rng.random((32, 6)).astype(np.float32), rng.integers(0, 3, 32)
    one_hot = np.eye(3, dtype=np.float32)[labels]
    trained = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu"),
                                keras.layers.Dense(3, activation="softmax")])
    trained.compile(optimizer="adam", loss="categorical_crossentropy",
                    metrics=["categorical_accuracy"])
    trained.fit(x, one_hot, epochs=1, verbose=0)
    trained.save(tmp_path / "k.keras")
    model = dlcore.load(tmp_path / "k.keras")
    assert model.metrics == ["categorical_accuracy"]      # Keras's name, kept
    assert "categorical_accuracy" in model.fit(x, one_hot, epochs=1, verbose=0).history
    model.save(tmp_path / "tuned.keras")
    keras.models.load_model(tmp_path / "tuned.keras").fit(x, one_hot, epochs=1, verbose=0)
    from dlcore.layers import Dense
    inputs = dlcore.Input(shape=(6,))
    hidden = Dense(5, activation="relu")(inputs)
    two = dlcore.Model(inputs, [Dense(3, activation="softmax", name="cls")(hidden),
                                Dense(1, name="reg")(hidden)])
    two.compile(["cross_entropy", "mse"], "adam", ["accuracy"])
    targets = [labels, x[:, :1]]
    two.fit(x, targets, epochs=1, verbose=0)
    for suffix in (".keras", ".h5"):
        two.save(tmp_path / f"two{suffix}")
        history = keras.models.load_model(tmp_path / f"two{suffix}").fit(x, targets, epochs=1,
                                                                         verbose=0)
        assert "loss" in history.history


def test_keras_mnist_mlp_on_images_without_channels_imports(tmp_path):
    """keras.io's MNIST MLP: Input((28, 28)) without channels, then Flatten."""
    keras = real_keras()
    trained = keras.Sequential([keras.Input((7, 6)), keras.layers.Flatten(),
                                keras.layers.Dense(5, activation="relu"),
                                keras.layers.Dense(3, activation="softmax")])
    x = images(4, (7, 6))
    for suffix in (".keras", ".h5"):
        trained.save(tmp_path / f"mlp{suffix}")
        model = dlcore.load(tmp_path / f"mlp{suffix}")
        assert model.input_shape == (7, 6)
        np.testing.assert_allclose(model.predict(x), trained.predict(x, verbose=0), atol=1e-6)
    inputs = keras.Input((7, 6))     # joined along H and along W, both ways
    joined = [keras.layers.Concatenate(axis=axis)([inputs, inputs]) for axis in (1, -1)]
    two = keras.Model(inputs, [keras.layers.Dense(2)(keras.layers.Flatten()(tensor))
                               for tensor in joined])
    two.save(tmp_path / "joined.keras")
    model = dlcore.load(tmp_path / "joined.keras")
    model.save(tmp_path / "back.keras")
    back = keras.models.load_model(tmp_path / "back.keras")
    for ours, theirs, again in zip(model.predict(x), two.predict(x, verbose=0),
                                   back.predict(x, verbose=0)):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
        np.testing.assert_allclose(again, theirs, atol=1e-6)


def test_losses_and_loss_weights_by_output_name_cross_both_ways(tmp_path):
    """Keras's functional API guide compiles two outputs with a dict of losses and of loss
    weights: dlcore imports them, computes Keras's loss, takes Keras's step, and Keras trains
    on dlcore's export."""
    keras = real_keras()
    rng = np.random.default_rng(5)
    x, labels = rng.random((20, 4)).astype(np.float32), np.arange(20) % 3
    values = rng.random((20, 1)).astype(np.float32)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(5, activation="relu")(inputs)
    trained = keras.Model(inputs, [keras.layers.Dense(3, activation="softmax", name="cls")(hidden),
                                   keras.layers.Dense(1, name="reg")(hidden)])
    trained.compile(optimizer=keras.optimizers.SGD(0.1),
                    loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                    loss_weights={"cls": 1.0, "reg": 0.2}, metrics={"cls": ["accuracy"]})
    trained.fit(x, [labels, values], epochs=1, verbose=0)
    trained.save(tmp_path / "two.keras")
    model = dlcore.load(tmp_path / "two.keras")
    assert model.loss_weights == [1.0, 0.2] and model.metrics == ["accuracy"]
    ours = model.evaluate(x, [labels, values], return_dict=True)
    theirs = trained.evaluate(x, [labels, values], verbose=0, return_dict=True)
    for name in ("loss", "cls_loss", "reg_loss"):
        assert ours[name] == pytest.approx(theirs[name], rel=1e-5), name
    trained.train_on_batch(x, [labels, values])
    model.train_on_batch(x, [labels, values])
    for theirs, ours in zip(trained.predict(x, verbose=0), model.predict(x)):
        np.testing.assert_allclose(theirs, ours, atol=1e-6)
    model.save(tmp_path / "back.keras")
    keras.models.load_model(tmp_path / "back.keras").fit(x, [labels, values], epochs=1,
                                                         verbose=0)


def test_each_outputs_accuracy_reads_as_keras_in_order_both_ways(tmp_path):
    """Two classifier heads, accuracy on the second only (Keras 3's list per output): the
    evaluate numbers, unpacked by position, are Keras's in dlcore, before and after the round
    trip, and Keras reports the same numbers of dlcore's export."""
    keras = real_keras()
    rng = np.random.default_rng(8)
    x = rng.random((40, 4)).astype(np.float32)
    first, second = np.arange(40) % 3, (np.arange(40) * 7) % 4
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(6, activation="tanh")(inputs)
    trained = keras.Model(inputs, [keras.layers.Dense(3, activation="softmax", name="a")(hidden),
                                   keras.layers.Dense(4, activation="softmax", name="b")(hidden)])
    trained.compile("sgd", ["sparse_categorical_crossentropy"] * 2, metrics=[None, ["accuracy"]])
    trained.fit(x, [first, second], epochs=1, verbose=0)
    trained.save(tmp_path / "two.keras")
    model = dlcore.load(tmp_path / "two.keras")
    theirs = trained.evaluate(x, [first, second], verbose=0)
    ours = model.evaluate(x, [first, second])
    assert model.metrics_names == ["loss", "a_loss", "b_loss", "b_accuracy"]
    np.testing.assert_allclose(list(ours), theirs, rtol=1e-5)
    model.save(tmp_path / "back.keras")
    back = keras.models.load_model(tmp_path / "back.keras")
    np.testing.assert_allclose(back.evaluate(x, [first, second], verbose=0), list(ours),
                               rtol=1e-5)


def test_clipping_with_a_regularizer_takes_keras_steps(tmp_path):
    """Keras clips the gradient of the loss with the regularisation in it: a Keras model with
    SGD(clipnorm=0.1) and an L2 kernel regulariser took a step 21 times Keras's in dlcore,
    which clipped the data gradient only."""
    keras = real_keras()
    rng = np.random.default_rng(9)
    x, labels = rng.random((16, 5)).astype(np.float32), np.arange(16) % 3
    trained = keras.Sequential([keras.Input((5,)), keras.layers.Dense(
        3, activation="softmax", kernel_regularizer=keras.regularizers.L2(0.5))])
    trained.compile(keras.optimizers.SGD(0.1, clipnorm=0.1), "sparse_categorical_crossentropy")
    trained.save(tmp_path / "clipped.keras")
    model = dlcore.load(tmp_path / "clipped.keras")
    for _ in range(2):
        trained.train_on_batch(x, labels)
        model.train_on_batch(x, labels)
    for theirs, ours in zip(trained.get_weights(), model.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_segmentation_losses_and_accuracies_are_keras_numbers(tmp_path):
    """A per-pixel softmax (the U-Net paper's) and a one-channel sigmoid mask: the cost and the
    accuracy of dlcore's export evaluated by Keras are dlcore's, and a step in each library
    goes the same way."""
    keras = real_keras()
    rng = np.random.default_rng(10)
    x = rng.random((6, 2, 5, 5)).astype(np.float32)
    labels = rng.integers(0, 3, (6, 5, 5))
    for classes, activation, loss in ((3, "softmax", "categorical_crossentropy"),
                                      (1, "sigmoid", "binary_crossentropy")):
        targets = (np.eye(3, dtype=np.float32)[labels].transpose(0, 3, 1, 2) if classes == 3
                   else (labels[:, None] == 1).astype(np.float32))
        model = dlcore.Sequential([Conv2D(4, 3, padding="same", activation="tanh"),
                                   Conv2D(classes, 1, activation=activation)],
                                  input_shape=(2, 5, 5), seed=2)
        model.compile(loss, dlcore.optimizers.SGD(0.5), ["accuracy"])
        model.save(tmp_path / f"{activation}.keras")
        theirs = keras.models.load_model(tmp_path / f"{activation}.keras")
        nhwc, targets_nhwc = x.transpose(0, 2, 3, 1), targets.transpose(0, 2, 3, 1)
        np.testing.assert_allclose(theirs.evaluate(nhwc, targets_nhwc, verbose=0),
                                   list(model.evaluate(x, targets)), rtol=1e-5)
        theirs.train_on_batch(nhwc, targets_nhwc)
        model.train_on_batch(x, targets)
        np.testing.assert_allclose(theirs.predict(nhwc, verbose=0).transpose(0, 3, 1, 2),
                                   model.predict(x), atol=1e-6)


@pytest.mark.parametrize("build", [lenet5, resnet_small])
def test_to_json_is_read_by_keras_model_from_json(build):
    """The lecture's "Saving a model: json_string = model.to_json()": Keras's
    model_from_json could not read dlcore's (no module, no registered name)."""
    keras = real_keras()
    model = build()
    theirs = keras.models.model_from_json(model.to_json())
    assert theirs.count_params() == model.count_params()
    assert len(theirs.get_weights()) == len(model.get_weights())
    assert json.loads(theirs.to_json())["config"]["name"] == model.name
    again = dlcore.models.model_from_json(theirs.to_json())
    assert again.count_params() == model.count_params()


def test_default_layer_names_are_keras_names():
    """Keras code addresses layers by their default names (get_layer("max_pooling2d")):
    dlcore named them max_pool2d, conv2dtranspose, avg_pool2d, ..."""
    keras = real_keras()
    keras.backend.clear_session()   # Keras numbers its default names over the session
    from dlcore import layers
    pairs = [(layers.Conv2D(2, 3), keras.layers.Conv2D(2, 3)),
             (layers.MaxPool2D(2), keras.layers.MaxPooling2D(2)),
             (layers.AvgPool2D(1), keras.layers.AveragePooling2D(1)),
             (layers.Conv2DTranspose(2, 2), keras.layers.Conv2DTranspose(2, 2)),
             (layers.UpSampling2D(2), keras.layers.UpSampling2D(2)),
             (layers.LeakyReLU(0.1), keras.layers.LeakyReLU(0.1)),
             (layers.ReLU(), keras.layers.ReLU()),
             (layers.BatchNormalization(), keras.layers.BatchNormalization()),
             (layers.GlobalAvgPool2D(keepdims=True),
              keras.layers.GlobalAveragePooling2D(keepdims=True)),
             (layers.GlobalMaxPool2D(), keras.layers.GlobalMaxPooling2D()),
             (layers.Dense(3), keras.layers.Dense(3))]
    ours = dlcore.Sequential([layer for layer, _ in pairs], input_shape=(1, 16, 16))
    theirs = keras.Sequential([keras.Input((16, 16, 1))] + [layer for _, layer in pairs])
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]


def test_reshapes_cross_to_keras_both_ways(tmp_path):
    """keras.io's decoder (Dense, Reshape to maps, transposed convolutions) written by Keras
    predicts in dlcore as in Keras and back; flat rows made one-channel images
    (Reshape((28, 28, 1))) for a convnet; a dlcore model with both, exported, predicts the
    same in Keras."""
    keras = real_keras()
    layers = keras.layers
    codes = images(4, (6,))
    inputs = keras.Input((6,))
    hidden = layers.Reshape((3, 3, 8))(layers.Dense(3 * 3 * 8, activation="relu")(inputs))
    hidden = layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(hidden)
    decoder = keras.Model(inputs, layers.Conv2DTranspose(1, 3, padding="same",
                                                         activation="sigmoid")(hidden))
    decoder.save(tmp_path / "decoder.keras")
    model = dlcore.load(tmp_path / "decoder.keras")
    np.testing.assert_allclose(model.predict(codes).transpose(0, 2, 3, 1),
                               decoder.predict(codes, verbose=0), atol=1e-6)
    model.save(tmp_path / "back.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "back.keras").predict(
        codes, verbose=0), decoder.predict(codes, verbose=0), atol=1e-6)
    rows = images(3, (64,))
    convnet = keras.Sequential([keras.Input((64,)), layers.Reshape((8, 8, 1)),
                                layers.Conv2D(2, 3, activation="relu"), layers.Flatten(),
                                layers.Dense(3, activation="softmax")])
    convnet.save(tmp_path / "convnet.keras")
    np.testing.assert_allclose(dlcore.load(tmp_path / "convnet.keras").predict(rows),
                               convnet.predict(rows, verbose=0), atol=1e-6)
    from dlcore.layers import Conv2D, Dense, Reshape
    ours = dlcore.Sequential([Dense(2 * 3 * 3, activation="tanh"), Reshape((2, 3, 3)),
                              Conv2D(3, 2), Reshape((-1,)), Dense(2)], input_shape=(6,), seed=4)
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(
        codes, verbose=0), ours.predict(codes), atol=1e-6)


def test_a_nested_augmentation_model_imports_from_both_keras_formats(tmp_path):
    """keras.io's data_augmentation Sequential called in a functional model, and nested in a
    Sequential: inlined, predicting as Keras does (from .keras and .h5)."""
    keras = real_keras()
    layers = keras.layers
    x = images(3, (6, 6, 2))
    augmentation = keras.Sequential([layers.RandomFlip("horizontal"),
                                     layers.RandomContrast(0.2)], name="augment")
    inputs = keras.Input((6, 6, 2))
    hidden = layers.Conv2D(3, 3, activation="relu")(augmentation(inputs))
    functional = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(hidden)))
    sequential = keras.Sequential([keras.Input((6, 6, 2)), keras.Sequential(
        [layers.RandomFlip("horizontal")], name="flip"), layers.Conv2D(2, 3), layers.Flatten(),
        layers.Dense(2)])
    for name, trained in (("functional", functional), ("sequential", sequential)):
        for suffix in (".keras", ".h5"):
            trained.save(tmp_path / f"{name}{suffix}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")     # RandomContrast is left out, with a note
                model = dlcore.load(tmp_path / f"{name}{suffix}")
            np.testing.assert_allclose(model.predict(x.transpose(0, 3, 1, 2)),
                                       trained.predict(x, verbose=0), atol=1e-6)


def test_a_nested_trained_base_is_fine_tuned_in_dlcore_and_sent_back(tmp_path):
    """Transfer learning: a Keras base model nested under a head, imported (its layers
    inlined), fine-tuned in dlcore, exported (flat), and Keras predicts and trains on."""
    keras = real_keras()
    layers = keras.layers
    rng = np.random.default_rng(6)
    x, labels = rng.random((12, 6, 6, 2)).astype(np.float32), np.arange(12) % 3
    base = keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(3, 3, activation="relu"),
                             layers.Flatten(), layers.Dense(4)], name="base")
    inputs = keras.Input((6, 6, 2))
    trained = keras.Model(inputs, layers.Dense(3, activation="softmax")(base(inputs)))
    trained.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    trained.fit(x, labels, epochs=1, verbose=0)
    for suffix in (".keras", ".h5"):
        trained.save(tmp_path / f"transfer{suffix}")
        model = dlcore.load(tmp_path / f"transfer{suffix}")
        np.testing.assert_allclose(model.predict(x.transpose(0, 3, 1, 2)),
                                   trained.predict(x, verbose=0), atol=1e-6)
        model.fit(x.transpose(0, 3, 1, 2), labels, epochs=1, verbose=0)
        model.save(tmp_path / f"tuned{suffix}")
        back = keras.models.load_model(tmp_path / f"tuned{suffix}")
        np.testing.assert_allclose(back.predict(x, verbose=0),
                                   model.predict(x.transpose(0, 3, 1, 2)), atol=1e-6)
        back.fit(x, labels, epochs=1, verbose=0)


def test_the_lectures_vision_model_written_by_keras_trains_in_dlcore_and_goes_back(tmp_path):
    """Lecture "Deep learning I"'s code, in Keras: a vision model shared by two digits."""
    keras = real_keras()
    layers = keras.layers
    digit_input = keras.Input(shape=(9, 9, 1))
    x = layers.Conv2D(4, (3, 3))(digit_input)
    x = layers.Conv2D(4, (3, 3))(x)
    x = layers.MaxPooling2D((2, 2))(x)
    vision_model = keras.Model(digit_input, layers.Flatten()(x))
    digit_a, digit_b = keras.Input(shape=(9, 9, 1)), keras.Input(shape=(9, 9, 1))
    concatenated = keras.layers.concatenate([vision_model(digit_a), vision_model(digit_b)])
    classification_model = keras.Model([digit_a, digit_b],
                                       layers.Dense(1, activation="sigmoid")(concatenated))
    pairs = [images(6, (9, 9, 1), seed=seed) for seed in (1, 2)]
    labels = np.arange(6) % 2
    nchw = [pair.transpose(0, 3, 1, 2) for pair in pairs]
    for suffix in (".keras", ".h5"):
        classification_model.save(tmp_path / f"siamese{suffix}")
        model = dlcore.load(tmp_path / f"siamese{suffix}")
        np.testing.assert_allclose(model.predict(nchw), classification_model.predict(
            pairs, verbose=0), atol=1e-6)
        model.compile("binary_cross_entropy", "sgd")
        model.fit(nchw, labels, epochs=1, verbose=0)
        model.save(tmp_path / f"back{suffix}")
        back = keras.models.load_model(tmp_path / f"back{suffix}")
        np.testing.assert_allclose(back.predict(pairs, verbose=0), model.predict(nchw),
                                   atol=1e-6)


def test_a_nested_dense_reshaped_outside_its_model_imports(tmp_path):
    """A generator's Dense inside a nested Sequential, its output made maps by a Reshape after
    it: the Dense's units are reordered as when it is not nested."""
    keras = real_keras()
    layers = keras.layers
    generator = keras.Sequential([keras.Input((5,)), layers.Dense(32)], name="gen")
    codes = keras.Input((5,))
    maps = layers.Reshape((4, 4, 2))(generator(codes))
    trained = keras.Model(codes, layers.Dense(3)(layers.Flatten()(
        layers.Conv2D(2, 3, padding="same")(maps))))
    trained.save(tmp_path / "gen.keras")
    x = images(3, (5,))
    np.testing.assert_allclose(dlcore.load(tmp_path / "gen.keras").predict(x),
                               trained.predict(x, verbose=0), atol=1e-6)


def test_layer_normalization_crosses_to_keras_and_trains_the_same(tmp_path):
    """After a convolution (over the channels of each pixel) and after a Dense (without
    gamma): Keras reads dlcore's archive, predicts the same, and its next step lands where
    dlcore's does."""
    keras = real_keras()
    from dlcore.layers import Conv2D, Dense, Flatten, LayerNormalization
    model = dlcore.Sequential([Conv2D(3, 3, input_shape=(2, 6, 6)), LayerNormalization(),
                               Flatten(), Dense(6, activation="tanh"),
                               LayerNormalization(scale=False, epsilon=0.01),
                               Dense(3, activation="softmax")], backend="reference", seed=6)
    model.compile("cross_entropy", dlcore.optimizers.SGD(0.1, momentum=0.9))
    x = images(8, (2, 6, 6))
    labels = np.arange(8) % 3
    model.train_on_batch(x, labels)            # gamma and beta away from 1 and 0
    model.save(tmp_path / "layer_norm.keras")
    in_keras = keras.models.load_model(tmp_path / "layer_norm.keras")
    np.testing.assert_allclose(predict_nchw(in_keras, x), model.predict(x), atol=1e-6)
    model.train_on_batch(x, labels)
    in_keras.train_on_batch(x.transpose(0, 2, 3, 1), labels)
    np.testing.assert_allclose(predict_nchw(in_keras, x), model.predict(x), atol=2e-6)


def test_sample_and_class_weights_train_as_in_keras(tmp_path):
    """A model written by dlcore, trained one weighted step in each library (SGD, a batch of
    eight): Keras's sum-over-batch-size reduction, and its class_weight rule."""
    keras = real_keras()
    from dlcore.layers import Dense
    x = images(8, (5,))
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    for options in ({"sample_weight": np.linspace(0, 3, 8)}, {"class_weight": {0: 3.0, 2: 0.5}}):
        model = dlcore.Sequential([Dense(6, activation="tanh", input_shape=(5,)),
                                   Dense(3, activation="softmax")], backend="reference", seed=7)
        model.compile("cross_entropy", dlcore.optimizers.SGD(0.5))
        model.save(tmp_path / "weighted.keras")
        in_keras = keras.models.load_model(tmp_path / "weighted.keras")
        ours = model.train_on_batch(x, labels, return_dict=True, **options)["loss"]
        theirs = in_keras.train_on_batch(x, labels, return_dict=True, **options)["loss"]
        assert ours == pytest.approx(float(theirs), rel=1e-5)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(in_keras.predict(x, verbose=0)),
                                   model.predict(x), atol=1e-6)


def projection_block(keras_or_dlcore, shortcut_kernel):
    """The lecture's residual block with a projection shortcut, built by either library under
    the same names; the shortcut convolution is built after the main path, so that dlcore's
    own layer order (stem, proj, a, b) differs from Keras's model.layers (stem, a, proj, b)."""
    layers = keras_or_dlcore.layers
    inputs = (dlcore.Input(shape=(1, 8, 8)) if keras_or_dlcore is dlcore
              else keras_or_dlcore.Input((8, 8, 1)))
    stem = layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    main = layers.Conv2D(8, 3, padding="same", activation="relu", name="a")(stem)
    main = layers.Conv2D(8, 3, padding="same", name="b")(main)
    shortcut = layers.Conv2D(8, shortcut_kernel, padding="same", name="proj")(stem)
    joined = layers.Flatten(name="flat")(
        layers.ReLU(name="relu")(layers.Add(name="add")([shortcut, main])))
    outputs = layers.Dense(10, activation="softmax", name="out")(joined)
    if keras_or_dlcore is dlcore:
        return dlcore.Model(inputs, outputs, seed=0)
    return keras_or_dlcore.Model(inputs, outputs)


@pytest.mark.parametrize("shortcut_kernel", [1, 3], ids=["1x1", "3x3"])
def test_a_projection_shortcut_crosses_keras_legacy_h5_files_both_ways(tmp_path,
                                                                       shortcut_kernel):
    """Keras's legacy loader matches weights to its model.layers by position: dlcore's .h5
    (model file and save_weights) lists the layers in that order, so Keras predicts what
    dlcore does (a 1x1 shortcut was refused, a 3x3 one loaded with two kernels swapped), and
    the same block written by Keras reads into dlcore and back into Keras."""
    keras = real_keras()
    x = images(4, (1, 8, 8))
    model = projection_block(dlcore, shortcut_kernel)
    model.compile("cross_entropy", "sgd")
    model.save(tmp_path / "res.h5")
    in_keras = keras.models.load_model(tmp_path / "res.h5")
    np.testing.assert_allclose(predict_nchw(in_keras, x), model.predict(x), atol=1e-6)
    model.save_weights(tmp_path / "weights.h5")
    twin = projection_block(keras, shortcut_kernel)
    twin.load_weights(tmp_path / "weights.h5")
    np.testing.assert_allclose(predict_nchw(twin, x), model.predict(x), atol=1e-6)
    # Keras's own .h5 of the block, read by dlcore, written again, read by Keras
    theirs = projection_block(keras, shortcut_kernel)
    theirs.save(tmp_path / "theirs.h5")
    ours = dlcore.load(tmp_path / "theirs.h5")
    np.testing.assert_allclose(ours.predict(x), predict_nchw(theirs, x), atol=1e-6)
    ours.save(tmp_path / "again.h5")
    np.testing.assert_allclose(predict_nchw(keras.models.load_model(tmp_path / "again.h5"), x),
                               predict_nchw(theirs, x), atol=1e-6)


@pytest.mark.parametrize("ending", ["Softmax", "Activation"])
def test_a_softmax_layer_after_a_convolution_crosses_both_ways_as_keras_computes_it(
        tmp_path, ending):
    """Keras's Conv2D -> Softmax() (or Activation("softmax")): a softmax along its last axis,
    the channels of each pixel. Written by Keras, dlcore predicts and scores it as Keras does;
    written by dlcore (its Softmax over axis 1, the channels), Keras does too."""
    keras = real_keras()
    rng = np.random.default_rng(11)
    x = rng.random((6, 5, 5, 2)).astype(np.float32)
    targets = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (6, 5, 5))]
    keras.utils.set_random_seed(3)
    softmax = (keras.layers.Softmax() if ending == "Softmax"
               else keras.layers.Activation("softmax"))
    theirs = keras.Sequential([keras.Input((5, 5, 2)),
                               keras.layers.Conv2D(4, 3, padding="same", activation="tanh"),
                               keras.layers.Conv2D(3, 1), softmax])
    theirs.compile("sgd", "categorical_crossentropy", metrics=["accuracy"])
    theirs.save(tmp_path / "theirs.keras")
    ours = dlcore.load(tmp_path / "theirs.keras")
    x_nchw, targets_nchw = x.transpose(0, 3, 1, 2), targets.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(ours.predict(x_nchw), predict_nchw(theirs, x_nchw), atol=1e-6)
    np.testing.assert_allclose(list(ours.evaluate(x_nchw, targets_nchw)),
                               theirs.evaluate(x, targets, verbose=0), rtol=1e-5)
    ours.save(tmp_path / "ours.keras")
    back = keras.models.load_model(tmp_path / "ours.keras")
    np.testing.assert_allclose(predict_nchw(back, x_nchw), ours.predict(x_nchw), atol=1e-6)
    np.testing.assert_allclose(back.evaluate(x, targets, verbose=0),
                               list(ours.evaluate(x_nchw, targets_nchw)), rtol=1e-5)


def test_a_keras_softmax_over_a_spatial_axis_is_refused_in_one_line(tmp_path):
    keras = real_keras()
    theirs = keras.Sequential([keras.Input((5, 5, 2)), keras.layers.Conv2D(3, 1),
                               keras.layers.Softmax(axis=1)])
    theirs.save(tmp_path / "rows.keras")
    with pytest.raises(ValueError, match="only a softmax over the last axis") as error:
        dlcore.load(tmp_path / "rows.keras")
    assert "\n" not in str(error.value)


def test_kerass_set_weights_takes_a_dlcore_models_weights_in_kerass_layout():
    """keras_model.set_weights(model.get_weights(layout="keras")) predicts as dlcore does, and
    model.set_weights(keras_model.get_weights(), layout="keras") likewise: a 3 x 3 kernel from
    3 to 3 channels and a Dense after a Flatten of maps have the same shapes in both layouts,
    so the default layout crossed them silently scrambled."""
    keras = real_keras()
    model = dlcore.Sequential([
        Conv2D(3, 3, activation="relu"), dlcore.layers.BatchNormalization(),
        dlcore.layers.MaxPool2D(2), dlcore.layers.Flatten(),
        dlcore.layers.Dense(4, activation="softmax")], input_shape=(3, 8, 8), seed=1)
    in_keras = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(3, 3, activation="relu"),
        keras.layers.BatchNormalization(), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(), keras.layers.Dense(4, activation="softmax")])
    x = images(8, (3, 8, 8))
    in_keras.set_weights(model.get_weights(layout="keras"))
    np.testing.assert_allclose(predict_nchw(in_keras, x), model.predict(x), atol=1e-5)
    rng = np.random.default_rng(2)
    in_keras.set_weights([rng.uniform(0.1, 1.0, w.shape).astype(np.float32)
                          for w in in_keras.get_weights()])
    model.set_weights(in_keras.get_weights(), layout="keras")
    np.testing.assert_allclose(model.predict(x), predict_nchw(in_keras, x), rtol=1e-4,
                               atol=1e-6)


def test_a_subclassed_keras_models_weights_file_loads_by_its_layers_keras_names(tmp_path):
    """Keras 3 stores a subclassed model's layers under its attributes' names (``conv/vars``,
    ``blocks/dense/vars``), not under ``layers/``: the file was refused as "not a Keras file".
    Each vars group records its layer's Keras name, which finds the architecture's layer."""
    keras = real_keras()

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(3, 3, activation="relu", name="conv2d")
            self.flat = keras.layers.Flatten(name="flatten")
            self.blocks = [keras.layers.Dense(5, activation="relu", name="dense"),
                           keras.layers.Dense(4, activation="softmax", name="dense_1")]

        def call(self, x):
            x = self.flat(self.conv(x))
            for block in self.blocks:
                x = block(x)
            return x

    x = images(4, (2, 6, 6))
    in_keras = Subclassed()
    in_keras(x[:1].transpose(0, 2, 3, 1))
    in_keras.save_weights(tmp_path / "subclassed.weights.h5")

    def architecture(hidden_name="dense"):
        return dlcore.Sequential([
            Conv2D(3, 3, activation="relu"), dlcore.layers.Flatten(),
            dlcore.layers.Dense(5, activation="relu", name=hidden_name),
            dlcore.layers.Dense(4, activation="softmax")], input_shape=(2, 6, 6))

    model = dlcore.load(tmp_path / "subclassed.weights.h5", architecture=architecture())
    np.testing.assert_allclose(model.predict(x), predict_nchw(in_keras, x), atol=1e-6)
    other = architecture(hidden_name="hidden")
    before = other.get_weights()
    with pytest.raises(dlcore.io.errors.ModelFileError,
                       match=r"subclassed Keras model's weights.*blocks/dense \(dense\).*"
                             r"conv2d, hidden, dense; name the architecture's layers"):
        other.load_weights(tmp_path / "subclassed.weights.h5")
    for array, kept in zip(other.get_weights(), before):
        np.testing.assert_array_equal(array, kept)


def test_kerass_layout_of_a_model_nesting_a_model_is_in_the_nesting_models_order(tmp_path):
    """A Keras model nesting a Sequential beside a Dense lists the Sequential's weights
    together at its place in get_weights(); dlcore inlines the nested model, whose layers then
    interleave with the Dense by depth: layout="keras" follows the Keras model read."""
    keras = real_keras()
    base = keras.Sequential([keras.Input((8,)),
                             keras.layers.Dense(6, activation="relu", name="inner_1"),
                             keras.layers.Dense(6, activation="relu", name="inner_2"),
                             keras.layers.Dense(6, name="inner_3")], name="base")
    inputs = keras.Input((8,))
    joined = keras.layers.add([keras.layers.Dense(6, activation="relu", name="beside")(inputs),
                               base(inputs)])
    in_keras = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(joined))
    in_keras.save(tmp_path / "nested.keras")
    model = dlcore.load(tmp_path / "nested.keras")
    x = images(6, (8,))
    rng = np.random.default_rng(3)
    in_keras.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                          for w in in_keras.get_weights()])
    model.set_weights(in_keras.get_weights(), layout="keras")
    np.testing.assert_allclose(model.predict(x), in_keras.predict(x, verbose=0), atol=1e-6)
    tuned = [w * 0.5 for w in model.get_weights()]
    model.set_weights(tuned)
    in_keras.set_weights(model.get_weights(layout="keras"))
    np.testing.assert_allclose(in_keras.predict(x, verbose=0), model.predict(x), atol=1e-6)


def test_compile_takes_kerass_optimizer_loss_and_metric_objects_and_steps_as_keras():
    """keras.io's fine-tuning recipe compiles with Keras's objects
    (optimizer=keras.optimizers.Adam(1e-5), loss=keras.losses....(), metrics=[keras.metrics
    ....()]): dlcore's compile said "unknown optimizer <keras...Adam object>: ... or pass an
    optimizer object". They become dlcore's, with Keras's steps (its epsilon, its SGD
    velocity)."""
    keras = real_keras()
    x = images(16, (5,))
    y = np.arange(16) % 3
    for make_optimizer in (lambda: keras.optimizers.Adam(0.05),
                           lambda: keras.optimizers.SGD(0.1, momentum=0.9)):
        in_keras = keras.Sequential([keras.Input((5,)),
                                     keras.layers.Dense(4, activation="tanh"),
                                     keras.layers.Dense(3, activation="softmax")])
        model = dlcore.Sequential([dlcore.layers.Dense(4, activation="tanh"),
                                   dlcore.layers.Dense(3, activation="softmax")],
                                  input_shape=(5,), seed=2)
        in_keras.set_weights(model.get_weights(layout="keras"))
        for network in (in_keras, model):
            network.compile(optimizer=make_optimizer(),
                            loss=keras.losses.SparseCategoricalCrossentropy(),
                            metrics=[keras.metrics.SparseCategoricalAccuracy()])
        theirs = in_keras.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
        mine = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
        np.testing.assert_allclose(mine.history["loss"], theirs.history["loss"], rtol=1e-5)
        np.testing.assert_allclose(model.predict(x), in_keras.predict(x, verbose=0),
                                   atol=1e-5)
    model.compile(keras.optimizers.RMSprop(), keras.losses.categorical_crossentropy)
    assert model.optimizer.name == "rmsprop" and model.loss.name == "cross_entropy"
    with pytest.raises(ValueError, match=r"Keras object dlcore cannot take: the optimizer "
                                         r"'Lamb' is not one dlcore has"):
        model.compile(optimizer=keras.optimizers.Lamb(), loss="mse")


def keras_model_of_dict_outputs(keras):
    """keras.io's functional API guide's model of dict inputs (``title``, ``body``) and dict
    outputs keyed otherwise than their layers (``score``: ``priority``, ``group``:
    ``department``), uncompiled."""
    layers = keras.layers
    title, body = keras.Input((6,), name="title"), keras.Input((5,), name="body")
    joined = layers.concatenate([title, body])
    return keras.Model(
        inputs={"title": title, "body": body},
        outputs={"score": layers.Dense(1, name="priority")(joined),
                 "group": layers.Dense(3, activation="softmax", name="department")(joined)})


def title_and_body_batch(seed):
    """Six rows of inputs and targets for the dict models above, keyed as their Keras code."""
    generator = np.random.default_rng(seed)
    x = {"title": generator.random((6, 6), np.float32),
         "body": generator.random((6, 5), np.float32)}
    y = {"score": generator.random((6, 1), np.float32),
         "group": np.eye(3, dtype=np.float32)[generator.integers(0, 3, 6)]}
    return x, y


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_keras_model_of_named_inputs_and_outputs_loads_in_keras_order(tmp_path, suffix):
    """Real Keras: keras.io's functional API guide names a model's inputs and outputs by the
    keys of dicts (``keras.Model(inputs={...}, outputs={"score": ...})``), compiled with a
    loss per key; dlcore refused it ("names the tensor {...}, which no layer makes"). It now
    loads with the inputs and outputs in Keras's order (``model.inputs``/``outputs``: by
    sorted key), predicting as Keras, each output compiled with its own loss."""
    keras = real_keras()
    layers = keras.layers
    title, body = keras.Input((6,), name="title"), keras.Input((5,), name="body")
    joined = layers.concatenate([layers.Dense(4, name="of_title")(title),
                                 layers.Dense(4, name="of_body")(body)])
    keras_model = keras.Model(
        inputs={"title": title, "body": body},
        outputs={"score": layers.Dense(1, name="priority")(joined),
                 "group": layers.Dense(3, activation="softmax", name="department")(joined)})
    keras_model.compile(optimizer="sgd", loss={"score": "mse",
                                               "group": "categorical_crossentropy"})
    keras_model.save(tmp_path / f"named{suffix}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)   # compiled as Keras did, no word
        model = dlcore.load(tmp_path / f"named{suffix}")
    assert model.input_names == ["body", "title"] and \
        model.output_names == ["department", "priority"]
    x, y = title_and_body_batch(seed=2)
    expected = keras_model.predict(x, verbose=0)
    got = model.predict([x["body"], x["title"]])
    for key in ["group", "score"]:
        np.testing.assert_allclose(got[key], keras.ops.convert_to_numpy(expected[key]),
                                   atol=1e-6)
    scores = model.evaluate([x["body"], x["title"]], [y["group"], y["score"]], verbose=0)
    np.testing.assert_allclose(scores[0], keras_model.evaluate(x, y, verbose=0)[0],
                               rtol=1e-5)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_keras_model_of_dict_outputs_predicts_dicts_and_goes_back_with_them(tmp_path, suffix):
    """Real Keras: a model of dict inputs and outputs (keras.io's functional API guide) went
    back to Keras with lists (Keras's predict then gave a list), and also so after dlcore's own
    file, pickle or clone; dlcore's predict gave a list, and fit/evaluate refused dicts keyed
    as the Keras model's (``{"score": ...}`` where the layer is ``priority``). Now predict gives
    a dict by those keys, as Keras's; evaluate takes the dicts Keras takes, to Keras's loss;
    and the export (direct, or after dlcore's file, pickle, clone) has the dicts again."""
    import pickle
    keras = real_keras()
    keras_model = keras_model_of_dict_outputs(keras)
    keras_model.compile(optimizer="sgd", loss={"score": "mse",
                                               "group": "categorical_crossentropy"})
    keras_model.save(tmp_path / f"named{suffix}")
    model = dlcore.load(tmp_path / f"named{suffix}")
    x, y = title_and_body_batch(seed=3)
    expected = {key: keras.ops.convert_to_numpy(value)
                for key, value in keras_model.predict(x, verbose=0).items()}
    got = model.predict(x)
    assert sorted(got) == ["group", "score"]
    for key in got:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-6)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0)[0],
                               keras_model.evaluate(x, y, verbose=0)[0], rtol=1e-5)
    dlcore.save(model, tmp_path / "own.h5")
    for name, copy in [("direct", model), ("file", dlcore.load(tmp_path / "own.h5")),
                       ("pickle", pickle.loads(pickle.dumps(model))), ("clone", model.clone())]:
        copy.save(tmp_path / f"{name}{suffix}")
        back = keras.models.load_model(tmp_path / f"{name}{suffix}", compile=False)
        predicted = back.predict(x, verbose=0)
        assert isinstance(predicted, dict) and sorted(predicted) == ["group", "score"], name
        np.testing.assert_allclose(keras.ops.convert_to_numpy(predicted["score"]),
                                   expected["score"], atol=1e-6)


def test_a_keras_model_of_dict_outputs_names_its_scores_and_compiles_by_its_keys(tmp_path):
    """Real Keras: a model of dict outputs keyed otherwise than its output layers are named
    (``{"score": Dense(name="priority")}``) reports ``score_loss`` in Keras (history and
    evaluate) and compiles by those keys; dlcore named the scores after the layers
    (``priority_loss``: ``history.history["score_loss"]`` a KeyError) and refused a compile by
    the keys. Both now follow the keys: the same history keys and scores as Keras's."""
    keras = real_keras()
    keras_model = keras_model_of_dict_outputs(keras)
    keras_model.save(tmp_path / "named.keras")
    model = dlcore.load(tmp_path / "named.keras")
    settings = dict(loss={"score": "mse", "group": "categorical_crossentropy"},
                    loss_weights={"score": 1.0, "group": 0.5}, metrics={"group": ["accuracy"]})
    keras_model.compile(optimizer="sgd", **settings)
    model.compile(optimizer="sgd", **settings)
    x, y = title_and_body_batch(seed=4)
    expected = keras_model.evaluate(x, y, verbose=0, return_dict=True)
    got = model.evaluate(x, y, verbose=0, return_dict=True)
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5)
    history = model.fit(x, y, epochs=1, batch_size=6, verbose=0, validation_data=(x, y))
    keras_history = keras_model.fit(x, y, epochs=1, batch_size=6, verbose=0,
                                    validation_data=(x, y))
    assert sorted(history.history) == sorted(keras_history.history)


def test_keras_models_with_each_merge_cross_to_dlcore_and_back(tmp_path):
    """Keras's Average (an ensemble), Subtract, Multiply (a gate), Maximum and Minimum of
    maps and of rows: dlcore predicts Keras's file as Keras does, and Keras dlcore's export."""
    keras = real_keras()
    layers = keras.layers
    image = keras.Input(shape=(5, 4, 3))
    branches = [layers.Conv2D(2, 3, padding="same", activation=activation)(image)
                for activation in ("tanh", "sigmoid", "relu")]
    maps = layers.subtract([layers.maximum(branches), layers.minimum(branches)])
    gated = layers.multiply([layers.average(branches), maps])
    rows = layers.Flatten()(gated)
    members = [layers.Dense(3, activation="softmax")(rows) for _ in range(2)]
    model = keras.Model(image, layers.average(members))
    x = images(4, (3, 5, 4))
    expected = model.predict(x.transpose(0, 2, 3, 1), verbose=0)
    model.save(tmp_path / "merges.keras")
    ours = dlcore.load(tmp_path / "merges.keras")
    assert {type(layer).__name__ for layer in ours.layers} >= {
        "Average", "Subtract", "Multiply", "Maximum", "Minimum"}
    np.testing.assert_allclose(ours.predict(x), expected, atol=1e-6)
    ours.save(tmp_path / "back.h5")
    np.testing.assert_allclose(predict_nchw(keras.models.load_model(tmp_path / "back.h5"), x),
                               expected, atol=1e-6)


def test_keras_squeeze_and_excitation_blocks_broadcast_across_the_seam(tmp_path):
    """Keras applications' squeeze-and-excitation block, ``Multiply()([x, Reshape((1, 1, C))
    (gate)])`` (or the (C,) gate itself), and the other merges of maps with a (1, 1, C) tensor
    or of rows with a (1,) one (Keras broadcasts them): dlcore refused the file ("needs tensors
    of one shape"). Now
    it predicts Keras's file as Keras does, fine-tunes it, and Keras predicts its export as
    dlcore does."""
    keras = real_keras()
    layers = keras.layers
    image = keras.Input(shape=(5, 4, 3))
    maps = layers.Conv2D(3, 3, padding="same", activation="relu")(image)
    gate = layers.Dense(3, activation="sigmoid")(layers.GlobalAveragePooling2D()(maps))
    gate = layers.Reshape((1, 1, 3))(gate)
    maps = layers.Add()([layers.Multiply()([maps, gate]), image])
    maps = layers.Maximum()([layers.Subtract()([maps, gate]), layers.Average()([gate, maps])])
    # a (C,) gate without the Reshape: Keras reads it per channel too
    maps = layers.Multiply()([maps, layers.Dense(3, activation="sigmoid")(
        layers.GlobalMaxPooling2D()(maps))])
    rows = layers.Flatten()(layers.Minimum()([maps, gate]))
    scale = layers.Dense(1, activation="softplus")(rows)
    output = layers.Dense(2, activation="softmax")(layers.Multiply()([rows, scale]))
    keras.Model(image, output).save(tmp_path / "se.keras")
    assert_crosses_and_fine_tunes(keras, tmp_path / "se.keras", images(4, (3, 5, 4)))


def test_a_keras_siamese_model_scored_by_dot_crosses_to_dlcore_and_back(tmp_path):
    """keras.io's siamese pattern: one shared tower embeds two inputs, ``layers.Dot(axes=1,
    normalize=True)`` scores them by their cosine similarity (and a plain Dot of rows). dlcore
    refused the file ("Keras layer 'cosine' (Dot) cannot be imported"); now it predicts it as
    Keras, fine-tunes it, and Keras predicts dlcore's export as dlcore does."""
    keras = real_keras()
    layers = keras.layers
    left, right = keras.Input((6,), name="left"), keras.Input((6,), name="right")
    tower = keras.Sequential([layers.Dense(5, activation="tanh")], name="tower")
    first, second = tower(left), tower(right)
    cosine = layers.Dot(axes=1, normalize=True, name="cosine")([first, second])
    raw = layers.Dot(axes=-1, name="raw")([first, layers.Dense(5, name="projection")(second)])
    output = layers.Dense(1, activation="sigmoid")(layers.Concatenate()([cosine, raw]))
    keras.Model([left, right], output).save(tmp_path / "siamese.keras")
    rng = np.random.default_rng(0)
    x = [rng.standard_normal((6, 6)).astype(np.float32) for _ in range(2)]
    expected = keras.models.load_model(tmp_path / "siamese.keras").predict(x, verbose=0)
    model = dlcore.load(tmp_path / "siamese.keras")
    np.testing.assert_allclose(model.predict(x), expected, atol=1e-6)
    model.compile("binary_crossentropy", "sgd")
    model.fit(x, np.array([0, 1, 1, 0, 1, 0]), epochs=3, batch_size=3, verbose=0)
    tuned = model.predict(x)
    assert np.abs(tuned - expected).max() > 1e-4
    for name in ("back.keras", "back.h5"):
        model.save(tmp_path / name)
        back = keras.models.load_model(tmp_path / name)
        assert [layer.get_config()["normalize"] for layer in back.layers
                if type(layer).__name__ == "Dot"] == [True, False]
        np.testing.assert_allclose(back.predict(x, verbose=0), tuned, atol=1e-6)


@pytest.mark.parametrize("merge, expected", [
    ("add", r"add needs tensors of one rank, or \(C,\) vectors with \(H, W, C\) maps; got "
            r"\(4, 5, 2\), \(5, 2\)"),
    ("dot", r"Dot takes two batches of rows .*; got \(4, 5, 2\), \(4, 5, 2\): Keras's Dot of "
            r"sequences or maps"),
], ids=["add", "dot"])
def test_a_keras_merge_dlcore_refuses_is_told_in_the_files_shapes(tmp_path, merge, expected):
    """Keras adds (H, W, C) maps to a (W, C) tensor (it broadcasts across ranks) and dots maps
    along their channels; dlcore refuses both in one line, which named its own (C, H, W)
    shapes, "(2, 4, 5), (5, 2)", not those of the file the user wrote."""
    keras = real_keras()
    layers = keras.layers
    image = keras.Input((4, 5, 3))
    maps = layers.Conv2D(2, 3, padding="same")(image)
    if merge == "add":
        rows = layers.Reshape((5, 2))(layers.Dense(10)(layers.Flatten()(image)))
        output = layers.Add()([maps, rows])
    else:
        output = layers.Dot(axes=-1)([maps, maps])
    keras.Model(image, output).save(tmp_path / "merge.keras")
    with pytest.raises(dlcore.ModelFileError, match=expected):
        dlcore.load(tmp_path / "merge.keras")


@pytest.mark.parametrize("squeeze", ["keepdims", "reshape"])
def test_a_keras_dense_of_maps_crosses_to_dlcore_and_back_as_a_dense(tmp_path, squeeze):
    """Keras applies a Dense to the last axis of (H, W, C) maps, each pixel's channels: the
    squeeze-and-excitation block's Dense on its (1, 1, C) squeeze (by a keepdims pool or a
    Reshape), and a Dense on (H, W, C) maps. dlcore refused the file ("Keras applies this Dense
    to the last axis..."); now its Dense does the same, the file predicts as in Keras,
    fine-tunes, and Keras predicts dlcore's export as dlcore does, each layer still a Dense."""
    keras = real_keras()
    layers = keras.layers
    image = keras.Input((4, 5, 3))
    maps = layers.Conv2D(6, 3, padding="same", activation="relu")(image)
    squeezed = layers.GlobalAveragePooling2D(keepdims=True)(maps) if squeeze == "keepdims" \
        else layers.Reshape((1, 1, 6))(layers.GlobalAveragePooling2D()(maps))
    gate = layers.Dense(6, activation="sigmoid")(layers.Dense(2, activation="relu")(squeezed))
    pixels = layers.Dense(3, activation="tanh")(layers.Multiply()([maps, gate]))
    output = layers.Dense(2, activation="softmax")(layers.Flatten()(pixels))
    keras.Model(image, output).save(tmp_path / "se.keras")
    assert_crosses_and_fine_tunes(keras, tmp_path / "se.keras", images(4, (3, 4, 5)),
                                  dense_layers=4)


def dense_count(layers):
    """How many of ``layers`` (dlcore's or Keras's) are Dense layers."""
    return [type(layer).__name__ for layer in layers].count("Dense")


def assert_crosses_and_fine_tunes(keras, path, x, dense_layers=None):
    """Keras's file at ``path`` loaded in dlcore predicts ``x`` (4 maps, NCHW) as Keras does,
    fine-tunes (its predictions move), and dlcore's .keras and .h5 exports predict in Keras as
    the tuned model does; ``dense_layers``: how many Dense layers each side must hold."""
    expected = predict_nchw(keras.models.load_model(path), x)
    model = dlcore.load(path)
    assert dense_layers is None or dense_count(model.layers) == dense_layers
    np.testing.assert_allclose(model.predict(x), expected, atol=1e-6)
    model.compile("sparse_categorical_crossentropy", "sgd")
    model.fit(x, np.array([0, 1, 1, 0]), epochs=2, batch_size=2, verbose=0)
    tuned = model.predict(x)
    assert np.abs(tuned - expected).max() > 1e-4
    for name in ("back.keras", "back.h5"):
        model.save(path.parent / name)
        back = keras.models.load_model(path.parent / name)
        assert dense_layers is None or dense_count(back.layers) == dense_layers
        np.testing.assert_allclose(predict_nchw(back, x), tuned, atol=1e-6)


def test_a_keras_dense_of_sequences_crosses_to_dlcore_and_back(tmp_path):
    """A Keras Dense on (steps, features) sequences, each step's features: dlcore refused the
    file; now it predicts as Keras and Keras reads its export back."""
    keras = real_keras()
    layers = keras.layers
    keras.Sequential([keras.Input((7, 5)), layers.Dense(4, activation="relu"), layers.Flatten(),
                      layers.Dense(3, activation="softmax")]).save(tmp_path / "steps.h5")
    x = np.random.default_rng(1).standard_normal((6, 7, 5)).astype(np.float32)
    expected = keras.models.load_model(tmp_path / "steps.h5").predict(x, verbose=0)
    model = dlcore.load(tmp_path / "steps.h5")
    np.testing.assert_allclose(model.predict(x), expected, atol=1e-6)
    model.save(tmp_path / "back.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "back.keras").predict(
        x, verbose=0), expected, atol=1e-6)


@pytest.mark.parametrize("suffix", ["keras", "h5"])
def test_a_float64_keras_model_stays_float64_both_ways(tmp_path, suffix):
    """A Keras model whose layers compute in float64 (``dtype="float64"``) was imported and
    exported as float32, its weights rounded. Now dlcore computes it in float64 with Keras's
    weights to the bit, fine-tunes it, and Keras reads back float64 layers holding dlcore's
    weights to the bit; a model mixing float64 and float32 layers imports in float32 with a
    warning naming them."""
    keras = real_keras()
    layers = keras.layers
    image = keras.Input((4, 5, 3), dtype="float64")
    maps = layers.Conv2D(4, 3, activation="tanh", dtype="float64")(image)
    gate = layers.Dense(4, activation="sigmoid", dtype="float64")(
        layers.GlobalAveragePooling2D(keepdims=True, dtype="float64")(maps))
    rows = layers.Flatten(dtype="float64")(layers.Multiply(dtype="float64")([maps, gate]))
    output = layers.Dense(3, activation="softmax", dtype="float64")(rows)
    keras.Model(image, output).save(tmp_path / f"f64.{suffix}")
    x = images(4, (3, 4, 5)).astype(np.float64)
    written = keras.models.load_model(tmp_path / f"f64.{suffix}")
    model = dlcore.load(tmp_path / f"f64.{suffix}")
    assert model.dtype == np.float64
    for got, want in zip(model.get_weights(layout="keras"), written.get_weights()):
        assert got.dtype == np.float64 and np.array_equal(got, want)
    np.testing.assert_allclose(model.predict(x), predict_nchw(written, x), atol=1e-6)
    model.compile("sparse_categorical_crossentropy", "sgd")
    model.fit(x, np.array([0, 1, 2, 0]), epochs=2, batch_size=2, verbose=0)
    model.save(tmp_path / f"back.{suffix}")
    back = keras.models.load_model(tmp_path / f"back.{suffix}")
    assert {layer.dtype_policy.name for layer in back.layers
            if type(layer).__name__ != "InputLayer"} == {"float64"}
    for got, want in zip(back.get_weights(), model.get_weights(layout="keras")):
        assert got.dtype == np.float64 and np.array_equal(got, want)
    np.testing.assert_allclose(predict_nchw(back, x), model.predict(x), atol=1e-6)
    mixed = keras.Sequential([keras.Input((4,)), layers.Dense(3, dtype="float64"),
                              layers.Dense(2, name="single")])
    mixed.save(tmp_path / f"mixed.{suffix}")
    with pytest.warns(UserWarning, match=r"Keras layers compute in float32, float64 \(layer "
                      r"'single', .*dlcore computes a model in one dtype.*imports in float32"):
        assert dlcore.load(tmp_path / f"mixed.{suffix}").dtype == np.float32


def test_a_keras_model_of_dict_outputs_nested_in_another_keeps_its_dicts(tmp_path):
    """Real Keras: ``inner({"title": t, "body": b})`` in an outer model (Keras gives a dict of
    tensors by the output keys; its file calls the inner model on a dict). dlcore refused
    the file ("a call of it does not give its inputs") and its nested model returned a list
    on tensors. Now the file predicts as in Keras, the nested model takes and gives dicts of
    tensors, and Keras reads dlcore's export with the nested model's outputs a dict."""
    keras = real_keras()
    inner = keras_model_of_dict_outputs(keras)
    title, body = keras.Input((6,), name="t"), keras.Input((5,), name="b")
    got = inner({"title": title, "body": body})
    keras.Model([title, body], {"s": got["score"], "g": keras.layers.Dense(2)(got["group"])}
                ).save(tmp_path / "outer.keras")
    x, _ = title_and_body_batch(seed=2)
    rows = [x["title"], x["body"]]
    expected = keras.models.load_model(tmp_path / "outer.keras").predict(rows, verbose=0)
    model = dlcore.load(tmp_path / "outer.keras")
    predicted = model.predict(rows)
    nested = model.get_layer(inner.name)
    again = nested({"title": dlcore.Input((6,)), "body": dlcore.Input((5,))})
    assert sorted(predicted) == sorted(expected) == ["g", "s"]
    assert sorted(again) == ["group", "score"]
    model.save(tmp_path / "back.keras")
    back = keras.models.load_model(tmp_path / "back.keras")
    assert sorted(back.get_layer(inner.name).output) == ["group", "score"]
    assert sorted(back.get_layer(inner.name).input) == ["body", "title"]
    model.save_weights(tmp_path / "outer.weights.h5")
    keras_file = keras.models.load_model(tmp_path / "outer.keras")
    keras_file.load_weights(tmp_path / "outer.weights.h5")
    for key in ("g", "s"):
        np.testing.assert_allclose(predicted[key], expected[key], atol=1e-6)
        for copy in (back, keras_file):
            np.testing.assert_allclose(copy.predict(rows, verbose=0)[key], expected[key],
                                       atol=1e-6)


def test_a_keras_model_of_dict_outputs_lists_its_losses_in_its_loss_dicts_order(tmp_path):
    """Real Keras: Keras 3 lists the ``<key>_loss`` scores of a model of dict outputs compiled
    with a dict of losses in that dict's order (``loss={"score": ..., "group": ...}``: score
    first), also after load_model; dlcore listed them by sorted key (group first), so that
    ``loss, score_loss, group_loss = model.evaluate(x, y)`` swapped the two. Now as Keras,
    compiled in dlcore or from Keras's file, and after dlcore's file, pickle and Keras export."""
    import pickle
    keras = real_keras()
    keras_model = keras_model_of_dict_outputs(keras)
    keras_model.save(tmp_path / "uncompiled.keras")
    settings = dict(loss={"score": "mse", "group": "categorical_crossentropy"},
                    metrics={"group": ["accuracy"]})
    keras_model.compile(optimizer="sgd", **settings)
    keras_model.save(tmp_path / "compiled.keras")
    x, y = title_and_body_batch(seed=5)
    expected = keras_model.evaluate(x, y, verbose=0)
    model = dlcore.load(tmp_path / "uncompiled.keras")
    model.compile(optimizer="sgd", **settings)
    assert model.metrics_names == ["loss", "score_loss", "group_loss", "group_accuracy"]
    dlcore.save(model, tmp_path / "own.h5")
    model.save(tmp_path / "back.keras")
    for name, copy in [("compiled here", model), ("Keras's file", dlcore.load(
            tmp_path / "compiled.keras")), ("dlcore's file", dlcore.load(tmp_path / "own.h5")),
            ("pickle", pickle.loads(pickle.dumps(model))),
            ("Keras's load_model", keras.models.load_model(tmp_path / "back.keras"))]:
        got = copy.evaluate(x, y, verbose=0)
        np.testing.assert_allclose(list(got), expected, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("optimizer", ["adam", "nadam"])
def test_a_float64_models_optimizer_state_reaches_keras_in_float64_and_training_goes_on(
        tmp_path, optimizer):
    """A float64 model's slots (and Nadam's product of momenta) are written float64, as Keras
    keeps them: Keras reads dlcore's m and v to the last bit (float32 would round them at
    ~1e-8) and its next step lands where dlcore's does (to float32's precision: Keras
    computes its losses in float32)."""
    keras = real_keras()
    rng = np.random.default_rng(3)
    x, targets = rng.random((8, 3)), rng.random((8, 2))
    model = dlcore.Sequential([dlcore.layers.Dense(4, activation="tanh"), dlcore.layers.Dense(2)],
                              input_shape=(3,), backend="reference", seed=3)
    model.build((3,), dtype=np.float64)
    # Keras's placement of Adam's eps, so that both take the same steps
    model.compile("mse", dlcore.optimizers.Adam(0.01, epsilon_form="keras")
                  if optimizer == "adam" else dlcore.optimizers.Nadam(0.01))
    model.fit(x, targets, epochs=3, batch_size=8, shuffle=False, verbose=0)
    model.save(tmp_path / "float64.keras")
    back = keras.models.load_model(tmp_path / "float64.keras")
    slots = model.optimizer.get_state(model.parameters)["slots"]
    # Keras's order: m then v of each array, layer by layer, kernel then bias
    expected = [slots[layer][weight][name] for layer in ("dense", "dense_1")
                for weight in ("kernel", "bias") for name in ("m", "v")]
    read = [np.asarray(variable.numpy()) for variable in back.optimizer.variables[2:6 + 4]]
    assert [array.dtype for array in read] == [np.float64] * len(expected)
    for theirs, mine in zip(read, expected):
        np.testing.assert_array_equal(theirs, mine)
    back.fit(x, targets, epochs=1, batch_size=8, shuffle=False, verbose=0)
    model.fit(x, targets, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for mine, theirs in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_float64_keras_model_beyond_float32s_range_loads_into_float64(tmp_path, suffix):
    """Keras's float64 weights beyond float32's range load into the float64 model dlcore
    builds of it, which predicts with them; only a float32 model refuses them, in one line."""
    keras = real_keras()
    layers = keras.layers
    in_keras = keras.Sequential([keras.Input((3,), dtype="float64"),
                                 layers.Dense(2, dtype="float64")])
    weights = in_keras.get_weights()
    weights[0][0, 0], weights[0][1, 0] = 1e300, -1e-300
    in_keras.set_weights(weights)
    in_keras.save(tmp_path / f"wide{suffix}")
    model = dlcore.load(tmp_path / f"wide{suffix}")
    assert model.dtype == np.float64
    assert model.get_weights()[0][0, 0] == 1e300
    x = np.random.default_rng(4).random((5, 3))
    # Keras's predict hands back float32 (inf here): the oracle is the Dense's x W + b
    np.testing.assert_allclose(model.predict(x), x @ weights[0] + weights[1], rtol=1e-15)
    narrow = dlcore.Sequential([dlcore.layers.Dense(2)], input_shape=(3,), name="sequential")
    with pytest.raises(dlcore.ModelFileError,
                       match=r"1 value beyond float32's range \(up to 1e\+300\), infinite as "
                             r"dlcore's float32 parameters") as refused:
        narrow.load_weights(tmp_path / f"wide{suffix}")
    assert "\n" not in str(refused.value)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_reports_the_accuracy_dlcore_did_of_a_binary_output_on_logits(tmp_path, suffix):
    """Keras's "accuracy" of a binary cross-entropy on logits counts logits above 0.5 (its
    BinaryAccuracy knows no from_logits); dlcore counts them above 0. A dlcore model saved for
    Keras reported another accuracy there (0.5 here, dlcore 1.0); its file now asks Keras for a
    threshold of 0, which dlcore reads back as "accuracy"."""
    keras = real_keras()
    model = dlcore.Sequential([dlcore.layers.Dense(1)], input_shape=(1,), backend="reference")
    model.compile(dlcore.losses.BinaryCrossentropy(from_logits=True), "sgd", ["accuracy"])
    model.set_weights([np.ones((1, 1), np.float32), np.zeros(1, np.float32)])
    x = np.array([[-0.3], [-0.2], [0.2], [0.3]], np.float32)   # the logits: x itself
    y = np.array([[0], [0], [1], [1]], np.float32)
    assert model.evaluate(x, y, return_dict=True)["accuracy"] == 1.0
    model.save(tmp_path / f"model{suffix}")
    in_keras = keras.models.load_model(tmp_path / f"model{suffix}")
    assert in_keras.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] == 1.0
    in_keras.save(tmp_path / f"again{suffix}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = dlcore.load(tmp_path / f"again{suffix}")
    assert again.metrics == ["accuracy"]
    assert again.evaluate(x, y, return_dict=True)["accuracy"] == 1.0

"""Frozen layers (Keras's ``layer.trainable = False``): lecture "Supervised learning"'s "hold fix
the feature extractor, train linear classifier on features" (slide "Deep Learning is BIG"), and
Keras's transfer-learning recipe.

Oracles: a frozen layer is a fixed feature extractor, so training a net whose first layer is
frozen must give the upper layers exactly the weights that training the upper layers alone on
that layer's outputs gives; freezing changes no gradient of the layers that train (the
backward pass still goes through a frozen layer to the trainable ones below it); a Keras model
with a frozen layer, written by Keras (tests/fixtures/keras_frozen.keras), continues in dlcore
to Keras's own next predictions.
"""
import pickle
import warnings

import h5py
import numpy as np
import pytest

import dlcore
from dlcore.layers import Conv2D, Dense, Flatten, MaxPool2D, add
from dlcore.optimizers import SGD, Adam
from test_io_keras import fixture


def data(n=96, features=10, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, features)).astype(np.float32), rng.integers(0, classes, n)


def mlp(backend="cpu", frozen=(), regularized=False):
    options = {"kernel_regularizer": "l2", "kernel_constraint": "max_norm"} \
        if regularized else {}
    model = dlcore.Sequential([Dense(12, activation="relu", input_shape=(10,), **options),
                               Dense(8, activation="tanh", **options),
                               Dense(3, activation="softmax")], backend=backend, seed=3)
    for index in frozen:
        model.layers[index].trainable = False
    return model


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("optimizer", [lambda: SGD(0.2, momentum=0.9), lambda: Adam(0.01)])
def test_a_frozen_first_layer_is_a_fixed_feature_extractor(backend, optimizer):
    """The upper layers of a net trained with its first layer frozen end exactly where the
    same layers trained alone on that layer's outputs end (same seed, batches and optimiser),
    with weight decay and max-norm on the frozen layer too; the frozen layer is untouched."""
    x, y = data()
    model = mlp(backend, frozen=[0], regularized=True)
    model.compile(optimizer=optimizer(), metrics=["accuracy"])
    first = model.layers[0].get_weights()
    features = model.layers[0](x)
    head = dlcore.Sequential([Dense(8, activation="tanh", kernel_regularizer="l2",
                                    kernel_constraint="max_norm"),
                              Dense(3, activation="softmax")], input_shape=(12,),
                             backend=backend, seed=3)
    head.set_weights(model.get_weights()[2:])
    head.compile(optimizer=optimizer(), metrics=["accuracy"])
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    head.fit(features, y, epochs=3, batch_size=16, verbose=0)
    for mine, alone in zip(model.get_weights()[2:], head.get_weights()):
        np.testing.assert_allclose(mine, alone, rtol=1e-5, atol=1e-6)
    for before, after in zip(first, model.layers[0].get_weights()):
        np.testing.assert_array_equal(before, after)
    assert not np.allclose(model.get_weights()[2], mlp(backend).get_weights()[2])
    # the logged loss penalises the weights that train only (as Keras)
    np.testing.assert_allclose(model.history["loss"][-1] - head.history["loss"][-1], 0,
                               atol=1e-5)


@pytest.mark.parametrize("frozen", [[0], [1], [0, 1], [2]])
def test_freezing_changes_no_gradient_of_the_layers_that_train(frozen):
    x, y = data(32)
    free, partly = mlp(), mlp(frozen=frozen)
    for model in (free, partly):
        model.compile(optimizer="sgd")
        model.loss_and_gradient(x, y)
    names = [layer.name for layer in free.layers]
    assert [p.key for p in partly.trainable_parameters] == \
        [p.key for p in free.parameters if names.index(p.key.split("/")[0]) not in frozen]
    by_key = {p.key: p for p in free.parameters}
    for parameter in partly.trainable_parameters:
        np.testing.assert_allclose(parameter.grad, by_key[parameter.key].grad, rtol=1e-6)


def test_the_backward_pass_stops_at_the_lowest_layer_that_trains():
    x, y = data(32)
    model = mlp(frozen=[0])
    model.compile(optimizer="sgd")
    calls = []
    for layer in model.layers:
        original = layer.backward

        def spy(grad, needed=True, _original=original, _name=layer.name, **kwargs):
            calls.append((_name, needed))
            return _original(grad, needed, **kwargs)
        layer.backward = spy
    model.loss_and_gradient(x, y)
    assert calls == [("dense_2", True), ("dense_1", False)]
    calls.clear()
    model.loss_and_gradient(x, y, input_gradient=True)   # an adversary's gradient: all of it
    assert [name for name, _ in calls] == ["dense_2", "dense_1", "dense"]


def residual_model(backend="cpu"):
    inputs = dlcore.Input((2, 6, 6))
    stem = Conv2D(3, 3, padding="same", activation="relu", name="stem")(inputs)
    branch = Conv2D(3, 3, padding="same", name="branch")(stem)
    merged = add([stem, branch])
    pooled = MaxPool2D(2)(merged)
    outputs = Dense(3, activation="softmax", name="out")(Flatten()(pooled))
    return dlcore.Model(inputs, outputs, backend=backend, seed=1)


@pytest.mark.parametrize("frozen", [["stem"], ["branch"], ["out"], ["stem", "branch"]])
def test_a_functional_graph_with_frozen_layers_trains_the_others_only(frozen):
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 2, 6, 6)).astype(np.float32), rng.integers(0, 3, 16)
    free, partly = residual_model(), residual_model()
    for name in frozen:
        partly.get_layer(name).trainable = False
    for model in (free, partly):
        model.compile(optimizer=SGD(0.1, momentum=0.9))
        model.loss_and_gradient(x, y)
    by_key = {p.key: p for p in free.parameters}
    assert {p.key.split("/")[0] for p in partly.trainable_parameters} == \
        {"stem", "branch", "out"} - set(frozen)
    for parameter in partly.trainable_parameters:
        np.testing.assert_allclose(parameter.grad, by_key[parameter.key].grad, rtol=1e-5,
                                   atol=1e-7)
    before = {name: partly.get_layer(name).get_weights() for name in ("stem", "branch", "out")}
    partly.fit(x, y, epochs=2, batch_size=4, verbose=0)
    for name, weights in before.items():
        unchanged = all(np.array_equal(a, b)
                        for a, b in zip(weights, partly.get_layer(name).get_weights()))
        assert unchanged == (name in frozen), name


def test_a_frozen_model_warns_and_keeps_its_weights_and_unfreezing_trains_again():
    x, y = data()
    model = mlp()
    model.compile(optimizer="adam")
    model.trainable = False
    assert [layer.trainable for layer in model.layers] == [False] * 3
    before = model.get_weights()
    with pytest.warns(UserWarning, match="does not have any trainable weights"):
        history = model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert model.trainable_weights == [] and len(model.non_trainable_weights) == 6
    model.trainable = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before[0], model.get_weights()[0])


def test_train_on_batch_leaves_a_frozen_layer_and_its_optimizer_slots_alone():
    x, y = data(16)
    model = mlp(frozen=[1])
    model.compile(optimizer=SGD(0.1, momentum=0.9))
    frozen = model.layers[1].get_weights()
    model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, model.layers[1].get_weights()))
    slots = {p.key: p.slots["velocity"] for p in model.parameters}
    assert not np.any(slots["dense_1/kernel"]) and np.any(slots["dense/kernel"])


def test_a_large_frozen_layer_never_takes_the_fused_sgd_step(monkeypatch):
    """On the CPU, SGD with momentum updates a Dense kernel whose gradient product is large
    inside its backward pass (``SGD.product_step``): a frozen layer's must not be updated."""
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 256)).astype(np.float32), rng.integers(0, 3, 64)
    model = dlcore.Sequential([Dense(256, activation="relu", input_shape=(256,)),
                               Dense(256, activation="relu", trainable=False),
                               Dense(3, activation="softmax")], backend="cpu")
    model.compile(optimizer=SGD(0.05, momentum=0.9))
    fused, original = [], type(model.backend).dense_weight_step

    def spy(backend, x, grad_z, weights, *args, **kwargs):
        fused.append(weights.shape)
        return original(backend, x, grad_z, weights, *args, **kwargs)
    monkeypatch.setattr(type(model.backend), "dense_weight_step", spy)
    before = model.get_weights()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert (256, 256) in fused   # the first layer took it: the path is exercised
    after = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before[2:4], after[2:4]))
    assert not np.array_equal(before[0], after[0])


def test_summary_counts_trainable_and_frozen_parameters_as_keras():
    model = mlp(frozen=[0])
    summary = model.summary(print_fn=None)
    assert summary.total_params == 10 * 12 + 12 + 12 * 8 + 8 + 8 * 3 + 3
    assert summary.non_trainable_params == 10 * 12 + 12
    assert summary.trainable_params == summary.total_params - 132
    text = str(summary)
    assert "dense (Dense, frozen)" in text and "dense_1 (Dense)" in text
    assert "Trainable parameters: 131; non-trainable: 132" in text
    graph = residual_model()
    graph.get_layer("out").trainable = False
    assert graph.summary(print_fn=None).non_trainable_params == 3 * 3 * 3 * 3 + 3
    assert mlp().count_params() == model.count_params()   # Keras counts frozen ones too


@pytest.mark.parametrize("make", [lambda: mlp(frozen=[1]), residual_model])
def test_the_flags_survive_files_pickles_and_clones(tmp_path, make):
    model = make()
    model.compile(optimizer="sgd")
    if isinstance(model, dlcore.Sequential):
        expected = [True, False, True]
    else:
        model.trainable = False
        model.get_layer("out").trainable = True   # unfrozen inside a frozen model
        expected = [layer.name == "out" for layer in model.layers]
    dlcore.save(model, tmp_path / "m.h5")
    copies = [dlcore.load(tmp_path / "m.h5"), pickle.loads(pickle.dumps(model)), model.clone(),
              type(model).from_config(model.get_config())]
    for copy in copies:
        assert [layer.trainable for layer in copy.layers] == expected
        assert copy.trainable == model.trainable
        assert [p.key for p in copy.trainable_parameters] == \
            [p.key for p in model.trainable_parameters]


def test_a_file_whose_trainable_flag_is_not_a_bool_is_refused_in_one_line(tmp_path):
    import json
    model = mlp(frozen=[0])
    model.compile(optimizer="sgd")
    path = tmp_path / "m.h5"
    dlcore.save(model, path)
    for where in ("layer", "model"):
        with h5py.File(path, "r+") as file:
            config = json.loads(file.attrs["hyperparameters"])
            if where == "layer":
                config["layers"][0]["config"]["trainable"] = "no"
            else:
                config["layers"][0]["config"]["trainable"] = False
                config["trainable"] = [1]
            file.attrs["hyperparameters"] = json.dumps(config)
        with pytest.raises(dlcore.ModelFileError) as error:
            dlcore.load(path)
        message = str(error.value)
        assert "trainable must be True or False" in message and "\n" not in message


def test_layer_arguments_and_flags_are_checked():
    assert Dense(3, trainable=False).trainable is False
    assert Conv2D(2, 3, trainable=False).get_config()["trainable"] is False
    assert "trainable" not in Dense(3).get_config()
    assert Dense.from_config(Dense(3, trainable=False).get_config()).trainable is False
    with pytest.raises(ValueError, match="trainable must be True or False"):
        Dense(3, trainable="no")
    with pytest.raises(ValueError, match="trainable must be True or False"):
        mlp().trainable = 0


def test_get_layer_and_pop_work_as_keras():
    x, y = data()
    model = mlp()
    assert model.get_layer("dense_1") is model.layers[1]
    assert model.get_layer(index=-1) is model.layers[2]
    with pytest.raises(ValueError, match="no layer named 'nope'; the layers are: dense, "):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="out of range"):
        model.get_layer(index=3)
    with pytest.raises(ValueError, match="a name or an index"):
        model.get_layer()
    model.compile(optimizer="sgd", metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    removed = model.pop()
    assert removed.name == "dense_2" and len(model.layers) == 2
    assert model.output_shape == (8,) and len(model.parameters) == 4
    for layer in model.layers:      # transfer learning: a new head on a frozen base
        layer.trainable = False
    model.add(Dense(4, activation="softmax", name="new_head"))
    base = model.get_weights()[:4]
    model.fit(x, np.arange(len(x)) % 4, epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(base, model.get_weights()[:4]))
    assert model.predict(x).shape == (len(x), 4)
    with pytest.raises(ValueError, match="no layers to pop"):
        dlcore.Sequential().pop()


def test_a_keras_model_with_a_frozen_layer_continues_in_dlcore_as_in_keras():
    """Written by Keras (SGD with momentum, the convolution frozen, trained 2 epochs): dlcore
    keeps the layer frozen, takes the optimiser's state of the layers that train (Keras keeps
    none for a frozen one), and its next update lands on Keras's next predictions."""
    saved = np.load(fixture("keras_frozen.keras.npz"))
    x, labels = saved["x"].transpose(0, 3, 1, 2), saved["labels"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # "the optimizer's state ... starts afresh" before
        model = dlcore.load(fixture("keras_frozen.keras"))
    assert [(layer.name, layer.trainable) for layer in model.layers if layer.weight_names] == \
        [("base", False), ("hidden", True), ("out", True)]
    np.testing.assert_allclose(model.predict(x), saved["y"], atol=1e-6)
    base = model.get_layer("base").get_weights()
    model.train_on_batch(x[:4], labels[:4])
    assert np.abs(saved["y_next"] - saved["y"]).max() > 1e-3   # the step moves predictions
    np.testing.assert_allclose(model.predict(x), saved["y_next"], atol=2e-6)
    assert all(np.array_equal(a, b) for a, b in zip(base, model.get_layer("base").get_weights()))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_frozen_layers_cross_to_keras_files_and_back(tmp_path, suffix):
    import json
    import zipfile
    model = mlp(frozen=[0])
    model.compile(optimizer=SGD(0.1, momentum=0.9))
    x, y = data(32)
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / f"m{suffix}"
    model.save(path)
    if suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            with archive.open("model.weights.h5") as stream, h5py.File(stream) as weights:
                variables = len(weights["optimizer/vars"])
        # update count, learning rate, then a velocity for each array that trains: 4
        assert variables == 2 + 4
    else:
        with h5py.File(path) as file:
            config = json.loads(file.attrs["model_config"])
    flags = [entry["config"]["trainable"] for entry in config["config"]["layers"][1:]]
    assert flags == [False, True, True]
    back = dlcore.load(path)
    assert [layer.trainable for layer in back.layers] == [False, True, True]


def test_load_model_reads_keras_and_dlcore_files_as_keras_does(tmp_path):
    model = dlcore.models.load_model(fixture("keras_frozen.keras"))
    assert model.loss is not None and model.get_layer("base").trainable is False
    uncompiled = dlcore.models.load_model(fixture("keras_frozen.keras"), compile=False)
    assert uncompiled.loss is None and uncompiled.optimizer is None
    with pytest.raises(RuntimeError, match="compile the network first"):
        uncompiled.fit(np.zeros((2, 1, 6, 6), np.float32), [0, 1], verbose=0)
    mine = mlp()
    dlcore.save(mine, tmp_path / "m.h5")
    assert dlcore.models.load_model(tmp_path / "m.h5").get_config() == mine.get_config()
    with pytest.raises(ValueError, match="never runs"):
        dlcore.models.load_model(fixture("keras_frozen.keras"),
                                 custom_objects={"Mine": object})


def test_a_model_built_again_trains_its_new_parameters_not_the_old_ones():
    """Building a model again (another dtype) makes new Parameter objects: the frozen-layer
    bookkeeping must follow them, or the optimiser would step arrays no longer used."""
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 2, 6, 6)), rng.integers(0, 3, 16)
    model = residual_model(backend="reference")
    model.get_layer("stem").trainable = False
    model.compile(optimizer=SGD(0.1))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.build(dtype=np.float64)
    before = model.get_weights()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    after = model.get_weights()
    moved = [not np.array_equal(a, b) for a, b in zip(before, after)]
    assert moved == [False, False, True, True, True, True]   # stem frozen; branch, out train
    assert {p.value.dtype for p in model.trainable_parameters} == {np.dtype(np.float64)}

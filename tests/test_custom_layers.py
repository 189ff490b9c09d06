"""Layer classes of one's own (a subclass of ``dlcore.layers.base.Layer`` or of a built-in
layer, as a Keras user subclasses ``keras.layers.Layer``): saved, loaded, cloned and
gradient-checked as themselves, never in place of dlcore's own classes.

Oracles: the network itself (a copy predicts the same numbers, with the class it was built
from), Keras 3's rules (a built-in name is never overridden by a custom class; a layer without
``get_config`` saves the arguments it was made with) and the gradient check's own verdict on a
deliberately wrong backward pass."""
import json

import h5py
import numpy as np
import pytest

import dlcore
from dlcore.layers import Dense, Flatten
from dlcore.layers.base import LAYER_CLASSES, Layer


def two_dense_layers():
    model = dlcore.Sequential([Dense(3, activation="tanh"), Dense(2, activation="softmax")],
                              input_shape=(4,), backend="reference", seed=0)
    model.compile("cross_entropy", "sgd")
    return model


def rows(n=3, width=4):
    return np.random.default_rng(0).random((n, width)).astype(np.float32)


def test_a_class_of_ones_own_named_dense_does_not_replace_dlcores(tmp_path):
    """A student's ``class Dense(dlcore.layers.Dense)``, defined after a model was saved and
    never used in it, took dlcore's place in the registry: load and clone built it (zeros)."""
    model = two_dense_layers()
    dlcore.save(model, tmp_path / "model.h5")

    class Dense(dlcore.layers.Dense):   # the student's own, never used by `model`
        def forward(self, x, training=False, step=0, apply_activation=True):
            return super().forward(x, training, step, apply_activation) * 0.0

    assert LAYER_CLASSES["Dense"] is dlcore.layers.Dense
    for copy in (dlcore.load(tmp_path / "model.h5"), model.clone()):
        assert [type(layer) for layer in copy.layers] == [dlcore.layers.Dense] * 2
        np.testing.assert_array_equal(copy.predict(rows()), model.predict(rows()))


def test_a_network_of_a_class_of_ones_own_copies_with_that_class(tmp_path):
    """The model that does use the student's Dense names it by its module-qualified name, so
    its file, its clone and its gradient check use the student's code: a wrong backward pass
    is caught."""

    class Dense(dlcore.layers.Dense):   # the gradient of the kernel twice what it is
        def backward(self, grad_y, need_input_gradient=True, apply_activation=True):
            grad_x = super().backward(grad_y, need_input_gradient, apply_activation)
            self.grads["kernel"] *= 2
            return grad_x

    model = dlcore.Sequential([Dense(3, activation="tanh"), dlcore.layers.Dense(2)],
                              input_shape=(4,), backend="reference", seed=0)
    model.compile("mse", "sgd")
    assert model.get_config()["layers"][0]["class_name"] == f"{__name__}.{Dense.__qualname__}"
    dlcore.save(model, tmp_path / "model.h5")
    for copy in (dlcore.load(tmp_path / "model.h5"), model.clone()):
        assert [type(layer) for layer in copy.layers] == [Dense, dlcore.layers.Dense]
        np.testing.assert_array_equal(copy.predict(rows()), model.predict(rows()))
    errors = dlcore.gradcheck(model, rows(), rows(width=2), verbose=False)
    assert errors["dense/kernel"] > 0.1 and errors["dense_1/kernel"] < 1e-6


class Scale(Layer):
    """The report's layer: a constructor argument, no get_config."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def forward(self, x, training=False, step=0):
        return np.asarray(x) * self.factor

    def backward(self, grad_y, need_input_gradient=True):
        return grad_y * self.factor


def scaled(layer):
    model = dlcore.Sequential([Flatten(), layer, Dense(2, activation="softmax")],
                              input_shape=(4,), backend="reference", seed=0)
    model.compile("cross_entropy", "sgd")
    return model


def test_a_layer_without_get_config_saves_clones_and_checks_as_keras_3_does(tmp_path):
    """Keras 3 records the arguments a custom layer was made with as its config; gradcheck
    (which copies the network through the configs) died with "missing 1 required positional
    argument: 'factor'", and a file dlcore.save wrote was called damaged by dlcore.load."""
    model = scaled(Scale(np.float32(3.0)))
    assert model.get_config()["layers"][1]["config"] == {"name": "scale", "factor": 3.0}
    dlcore.save(model, tmp_path / "model.h5")
    loaded = dlcore.load(tmp_path / "model.h5")
    assert type(loaded.layers[1]) is Scale and loaded.layers[1].factor == 3.0
    np.testing.assert_array_equal(loaded.predict(rows()), model.predict(rows()))
    assert max(dlcore.gradcheck(model, rows(), [0, 1, 1], verbose=False).values()) < 1e-6
    # a file whose config the class rejects (the class changed since) blames the class
    with h5py.File(tmp_path / "model.h5", "r+") as h5file:
        config = json.loads(h5file.attrs["hyperparameters"])
        del config["layers"][1]["config"]["factor"]
        h5file.attrs["hyperparameters"] = json.dumps(config)
    with pytest.raises(dlcore.io.ModelFileError) as caught:
        dlcore.load(tmp_path / "model.h5")
    assert str(caught.value).endswith("; Scale.get_config() must return the arguments its "
                                      "__init__() takes")


class Table(Scale):
    """A constructor argument no config can hold."""

    def __init__(self, table, **kwargs):
        super().__init__(float(np.mean(table)), **kwargs)


class Forgetful(Scale):
    """A config that leaves out a required argument."""

    def get_config(self):
        return {"name": self.name}


@pytest.mark.parametrize("layer, problem", [
    (Table(np.ones(3)), "it was given table=array([1., 1., 1.]), which is no JSON value; "
                        "define Table.get_config()"),
    (Forgetful(2.0), "has the arguments ['factor'] in __init__() that its get_config() leaves "
                     "out, so it cannot be saved or copied: make Forgetful.get_config() return "
                     "them"),
], ids=["no-json", "incomplete"])
def test_a_layer_whose_config_cannot_rebuild_it_is_refused_at_save_and_gradcheck(
        tmp_path, layer, problem):
    """Refused in one line naming get_config when saved (no file is written) and when
    gradcheck copies the network, rather than a file the loader calls damaged."""
    model = scaled(layer)
    with pytest.raises(NotImplementedError) as caught:
        dlcore.save(model, tmp_path / "model.h5")
    assert problem in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "model.h5").exists()
    with pytest.raises(NotImplementedError) as caught:
        dlcore.gradcheck(model, rows(), [0, 1, 1], verbose=False)
    assert str(caught.value).startswith("gradcheck checks a float64 copy of the network made "
                                        "through its layers' get_config(), and ")
    assert problem in str(caught.value)


class Doubled(dlcore.layers.Dense):
    """A Dense whose outputs are doubled: another forward pass than Keras's Dense."""

    def forward(self, x, training=False, step=0, apply_activation=True):
        return super().forward(x, training, step, apply_activation) * 2.0


class Wide(dlcore.layers.Dense):
    """A Dense of 5 units by default, with a method of its own: Keras's Dense exactly."""

    def __init__(self, units=5, **kwargs):
        super().__init__(units, **kwargs)

    def describe(self):
        return f"{self.units} units"


def with_first_layer(layer, functional=False):
    if functional:
        inputs = dlcore.Input(shape=(4,))
        return dlcore.Model(inputs, Dense(2)(layer(inputs)), backend="reference", seed=0)
    return dlcore.Sequential([layer, Dense(2)], input_shape=(4,), backend="reference", seed=0)


@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
def test_a_layer_of_ones_own_that_changes_the_forward_pass_is_refused_in_keras_files(
        tmp_path, functional):
    """A student's ``class Dense(dlcore.layers.Dense)`` overriding ``forward`` was written as
    Keras's plain Dense, without a word: Keras predicted what the model does not (1.2 apart on
    the report's rows). A Keras model file (and the JSON) now refuses it in one line naming the
    layer and Keras's custom objects; dlcore's own file, and a weights file, hold it."""
    class Dense(Doubled):   # the student's name: Keras's Dense's
        pass

    for layer, name in ((Dense(3), "dense"), (Doubled(3), "doubled"), (Scale(2.0), "scale")):
        model = with_first_layer(layer, functional)
        for path in (tmp_path / "m.keras", tmp_path / "m.h5"):
            with pytest.raises(ValueError, match=rf"^layer '{name}' is .*, a (layer )?class of "
                                                 rf"one's own.*custom_objects"):
                model.save(path)
            assert not path.exists()
        with pytest.raises(ValueError, match="custom_objects"):
            model.to_json()
        dlcore.save(model, tmp_path / "own.h5")
        np.testing.assert_array_equal(dlcore.load(tmp_path / "own.h5").predict(rows()),
                                      model.predict(rows()))
    with pytest.raises(ValueError, match="overrides Dense's forward"):
        with_first_layer(Dense(3)).save(tmp_path / "m.keras")
    model = with_first_layer(Doubled(3, name="hidden"))
    model.save_weights(tmp_path / "w.h5")   # arrays only: Doubled's are a Dense's
    again = with_first_layer(dlcore.layers.Dense(3, name="hidden"))
    again.load_weights(tmp_path / "w.h5")
    for mine, theirs in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_a_subclass_that_changes_no_method_is_written_as_its_base_class(tmp_path):
    """Other defaults and methods of one's own change nothing Keras computes: the file holds
    Keras's Dense, and reads back predicting the same (it was refused as having no Keras
    equivalent)."""
    model = with_first_layer(Wide())
    model.save(tmp_path / "m.keras")
    config = json.loads(model.to_json())
    assert [entry["class_name"] for entry in config["config"]["layers"]][-2:] == ["Dense",
                                                                                  "Dense"]
    np.testing.assert_allclose(dlcore.load(tmp_path / "m.keras").predict(rows()),
                               model.predict(rows()), atol=1e-6)

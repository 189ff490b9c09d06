"""Layer classes of one's own (a subclass of ``dlcore.layers.base.Layer`` or of a built-in
layer, as a Keras user subclasses ``keras.layers.Layer``): saved, loaded, cloned and
gradient-checked as themselves, never in place of dlcore's own classes.

Oracles: the network itself (a copy predicts the same numbers, with the class it was built
from), Keras 3's rule (a built-in name is never overridden by a custom class) and the gradient
check's own verdict on a deliberately wrong backward pass."""
import numpy as np

import dlcore
from dlcore.layers import Dense
from dlcore.layers.base import LAYER_CLASSES


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

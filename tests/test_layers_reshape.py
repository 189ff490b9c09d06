"""Reshape (Keras's layer): the same numbers of each sample in another shape, a view; Flatten
is the Reshape to (-1,).

Oracles: NumPy's reshape of each sample in C order, and its inverse for the gradient; a
convolutional network on flat rows (Reshape first) against the same network on the images;
finite differences through it."""
import numpy as np
import pytest

import dlcore
from dlcore.layers import Conv2D, Dense, Flatten, MaxPool2D, Reshape
from test_layers_kernels import images


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_each_sample_keeps_its_numbers_in_c_order(backend):
    x = images(3, 2, 3, 4)
    layer = Reshape((4, -1)).build((2, 3, 4), backend=backend)
    assert layer.output_shape == (4, 6)
    np.testing.assert_array_equal(layer.forward(x), x.reshape(3, 4, 6))
    grad = images(3, 4, 6, seed=1)
    np.testing.assert_array_equal(layer.backward(grad), grad.reshape(3, 2, 3, 4))
    assert layer.backward(grad, need_input_gradient=False) is None


def test_a_convnet_on_flat_rows_is_the_convnet_on_the_images():
    x = images(16, 1, 8, 8)
    labels = np.arange(16) % 3

    def convnet(first):
        model = dlcore.Sequential(first + [Conv2D(4, 3, activation="relu"), MaxPool2D(2),
                                           Flatten(), Dense(3, activation="softmax")], seed=5)
        model.compile("cross_entropy", dlcore.optimizers.SGD(0.1, momentum=0.9))
        return model
    on_rows = convnet([Reshape((1, 8, 8), input_shape=(64,))])
    on_images = convnet([])
    on_images.build((1, 8, 8))
    on_rows.build((64,))
    on_images.set_weights(on_rows.get_weights())   # a layer's seed follows its position
    on_rows.fit(x.reshape(16, 64), labels, epochs=2, batch_size=4, verbose=0)
    on_images.fit(x, labels, epochs=2, batch_size=4, verbose=0)
    np.testing.assert_array_equal(on_rows.predict(x.reshape(16, 64)), on_images.predict(x))


def test_the_gradient_through_it_matches_finite_differences():
    model = dlcore.Sequential([Reshape((2, 3, 3), input_shape=(18,)), Conv2D(2, 2),
                               Reshape((-1,)), Dense(3, activation="softmax")],
                              backend="reference", seed=1)
    model.compile("cross_entropy", "sgd")
    rs = np.random.default_rng(0)
    errors = dlcore.gradcheck(model, rs.standard_normal((3, 18)), rs.integers(0, 3, 3),
                              verbose=False)
    assert max(errors.values()) < 1e-6 and "input" in errors


def test_it_keeps_through_files_and_flatten_is_unchanged(tmp_path):
    model = dlcore.Sequential([Reshape((1, 4, 4), input_shape=(16,)), Conv2D(2, 3), Flatten(),
                               Dense(2, activation="softmax")], seed=2)
    dlcore.save(model, tmp_path / "m.h5")
    loaded = dlcore.load(tmp_path / "m.h5")
    assert loaded.layers[0].get_config()["target_shape"] == [1, 4, 4]
    assert "target_shape" not in Flatten().get_config()
    x = images(3, 16)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("target, message", [
    ((3, 5), "Reshape cannot make 16 values a sample \\(shape \\(16,\\)\\) into shape \\(3, 5\\)"),
    ((-1, 5), "cannot make 16 values a sample"),
])
def test_a_shape_of_another_size_is_refused_in_one_line(target, message):
    with pytest.raises(ValueError, match=message):
        Reshape(target).build((16,))


@pytest.mark.parametrize("target", [(), (0, 4), (-1, -1), (2.5,), "1, 28, 28", (True, 2)])
def test_a_bad_target_shape_is_refused_in_one_line(target):
    with pytest.raises(ValueError, match="target_shape must be a tuple of positive integers"):
        Reshape(target)

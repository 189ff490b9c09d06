"""UpSampling2D (lecture "Deep learning I", "The U-Net architecture"): nearest-neighbour
up-sampling.

Oracles: ``np.repeat`` along the height and the width for the forward pass, the block sums of
the output gradient for the backward pass, :func:`dlcore.gradcheck` (float64 central
differences) through a network, and the NumPy reference for the ``cpu`` kernels (``cuda`` under
the simulator)."""
import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import Conv2D, Dense, Flatten, UpSampling2D


def repeat(x, size):
    return np.repeat(np.repeat(x, size[0], axis=2), size[1], axis=3)


def run(layer, x, backend):
    layer.build(x.shape[1:], backend=backend, dtype=x.dtype)
    y = np.array(layer.backend.to_numpy(layer.forward(layer.backend.asarray(x))))
    return y


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("size", [2, (2, 3), (1, 4), (3, 1)])
def test_upsampling_repeats_every_pixel_into_a_block(backend, size):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    layer = UpSampling2D(size)
    pair = layer.size
    y = run(layer, x, backend)
    assert y.shape == (2, 3, 4 * pair[0], 5 * pair[1]) == (2,) + layer.output_shape
    np.testing.assert_array_equal(y, repeat(x, pair))
    grad_y = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    grad_x = np.array(layer.backend.to_numpy(layer.backward(layer.backend.asarray(grad_y))))
    expected = grad_y.reshape(2, 3, 4, pair[0], 5, pair[1]).sum(axis=(3, 5))
    np.testing.assert_allclose(grad_x, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend, shape", [
    ("cpu", (3, 2, 5, 3)),
    pytest.param("cuda", (1, 2, 2, 3), marks=requires_cuda)])
def test_upsampling_kernels_equal_the_reference(backend, shape):
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    outputs = {}
    for name in ("reference", backend):
        layer = UpSampling2D((3, 2))
        y = run(layer, x, name)
        grad = layer.backward(layer.backend.asarray(np.cos(y)))
        outputs[name] = (y, np.array(layer.backend.to_numpy(grad)))
    np.testing.assert_array_equal(outputs[backend][0], outputs["reference"][0])
    np.testing.assert_allclose(outputs[backend][1], outputs["reference"][1], rtol=1e-5,
                               atol=1e-6)


def test_upsampling_gradients_match_finite_differences():
    model = dlcore.Sequential([Conv2D(2, 2, activation="tanh"), UpSampling2D((2, 3)), Flatten(),
                               Dense(3, activation="softmax")], input_shape=(1, 3, 3),
                              backend="reference", seed=1)
    model.compile(loss="cross_entropy", optimizer="sgd")
    rs = np.random.default_rng(1)
    errors = dlcore.gradcheck(model, rs.standard_normal((3, 1, 3, 3)), rs.integers(0, 3, 3),
                              verbose=False)
    assert "input" in errors and all(error < 1e-6 for error in errors.values()), errors


@pytest.mark.parametrize("arguments, words", [
    ({"size": 0}, "size must be a positive integer"),
    ({"size": (2, 2, 2)}, "size must be a positive integer"),
    ({"size": 1.5}, "size must be a positive integer"),
    ({"interpolation": "bilinear"}, "interpolation must be 'nearest'"),
    ({"interpolation": 3}, "interpolation must be 'nearest'"),
])
def test_bad_upsampling_arguments_are_refused_in_one_line(arguments, words):
    with pytest.raises(ValueError, match=words) as error:
        UpSampling2D(**arguments)
    assert "\n" not in str(error.value)


def test_upsampling_needs_images():
    with pytest.raises(ValueError, match="needs \\(channels, height, width\\) inputs"):
        UpSampling2D().compute_output_shape((4, 5))


def test_upsampling_config_round_trips():
    layer = UpSampling2D((2, 3), name="up")
    again = UpSampling2D.from_config(layer.get_config())
    assert again.size == (2, 3) and again.interpolation == "nearest" and again.name == "up"

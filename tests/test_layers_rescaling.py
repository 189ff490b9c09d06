"""Rescaling (Keras's layer): y = scale x + offset, the first layer of many Keras image models.

Oracles: the affine map and its gradient (scale dL/dy) in NumPy; the cpu and cuda (simulator)
kernels against the reference; finite differences; an archive written by Keras 3.15.1 (JAX,
tests/fixtures/keras_rescaled.keras: 8-bit pixels in, one Rescaling after a Flatten) predicts
as Keras did.
"""

import numpy as np
import pytest

import dlcore
from conftest import requires_cuda
from dlcore.layers import Conv2D, Dense, Flatten, Rescaling
from test_io_keras import fixture, with_layer_config
from test_layers_kernels import assert_backends_agree, images


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_rescaling_is_the_affine_map_and_its_gradient_the_scale(backend):
    x = images(3, 2, 4, 5)
    layer = Rescaling(1 / 255, offset=-0.5).build((2, 4, 5), backend=backend)
    np.testing.assert_allclose(layer.forward(x), x / 255 - 0.5, rtol=1e-6, atol=1e-7)
    grad = images(3, 2, 4, 5)
    np.testing.assert_allclose(layer.backward(grad), grad / 255, rtol=1e-6)


def test_cpu_rescaling_follows_the_reference():
    assert_backends_agree(lambda: Rescaling(2.5, offset=1.0), images(3, 7))


@requires_cuda
def test_cuda_rescaling_follows_the_reference():
    assert_backends_agree(lambda: Rescaling(-0.5, offset=0.25), images(2, 1, 3, 4),
                          backend="cuda")


def test_a_net_with_rescaling_passes_the_gradient_check():
    model = dlcore.Sequential([Rescaling(0.5, offset=1.0, input_shape=(1, 4, 4)),
                               Conv2D(2, 3, activation="tanh"), Flatten(),
                               Rescaling(3.0), Dense(2, activation="softmax")],
                              backend="reference")
    model.compile(optimizer="sgd")
    errors = dlcore.gradcheck(model, images(3, 1, 4, 4), [0, 1, 1], verbose=False)
    assert max(errors.values()) < 1e-6


def test_keras_rescaling_imports_and_goes_back(tmp_path):
    saved = np.load(fixture("keras_rescaled.keras.npz"))
    x = saved["x"].transpose(0, 3, 1, 2)
    assert x.max() > 100                              # 8-bit pixels, as Keras took them
    model = dlcore.load(fixture("keras_rescaled.keras"))
    assert [type(layer).__name__ for layer in model.layers] == \
        ["Rescaling", "Conv2D", "Flatten", "Rescaling", "Dense"]
    np.testing.assert_allclose(model.predict(x), saved["y"], atol=1e-6)
    model.save(tmp_path / "back.keras")
    np.testing.assert_allclose(dlcore.load(tmp_path / "back.keras").predict(x), saved["y"],
                               atol=1e-6)
    dlcore.save(model, tmp_path / "mine.h5")
    assert dlcore.load(tmp_path / "mine.h5").layers[3].get_config()["offset"] == -1.0


def test_a_per_channel_scale_is_refused_in_one_line(tmp_path):
    path = with_layer_config(tmp_path, "keras_rescaled.keras", "pixels", scale=[0.1, 0.2])
    with pytest.raises(dlcore.ModelFileError) as error:
        dlcore.load(path)
    assert "'pixels' (Rescaling) cannot be imported: a per-channel scale" in str(error.value)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="scale must be"):
        Rescaling("1/255")
